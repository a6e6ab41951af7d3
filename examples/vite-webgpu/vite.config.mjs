// The tiny UNet, compiled by sdc at build time: the app imports it with `?sdc` (src/main.js) and gets
// the compiled model's URL, its inputs and the session options to open it with.
import sdc from 'sdc-compiler/plugin';

export default {
  plugins: [
    sdc.vite({
      mode: 'reduce-overhead',
      models: [
        // one specialization per model: every dim static, every shape computation folded
        { include: 'unet_*.onnx', shapes: 'sample=1x4x4x4,timestep=1,encoder_hidden_states=1x16x32' },
      ],
    }),
  ],
  build: { target: 'esnext' },
};
