// Runs in its own process (for the cross-process cache tests): load the tiny model through the built
// runtime, run one shape, print stats and a checksum of the output as JSON.
const path = require('path');
const ort = require('onnxruntime-node');
const { load } = require(path.resolve(__dirname, '..', '..', 'dist', 'src', 'runtime', 'index.js'));

async function main() {
  const [model, cacheDir, batch] = process.argv.slice(2);
  const b = Number(batch);
  const m = await load(model, { cacheDir, warn: () => {} });
  const fill = (n, k) => Float32Array.from({ length: n }, (_, i) => Math.sin(i * k));
  const out = await m.run({
    sample: new ort.Tensor('float32', fill(b * 4 * 32 * 32, 0.1), [b, 4, 32, 32]),
    timestep: new ort.Tensor('float32', new Float32Array(b).fill(500), [b]),
    encoder_hidden_states: new ort.Tensor('float32', fill(b * 16 * 32, 0.3), [b, 16, 32]),
  });
  let sum = 0;
  for (const x of out.out_sample.data) sum += x;
  process.stdout.write(JSON.stringify({ stats: m.stats(), sum }) + '\n');
  await m.release();
}
main().catch((e) => { process.stderr.write(String(e.stack || e)); process.exit(1); });
