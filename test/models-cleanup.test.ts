import * as fs from 'fs';
import * as path from 'path';
import { compile } from '../src/compiler/compile';
import { TINY, relError, runModel, tinyPath, tmpDir, unetFeeds } from './helpers/ort';
import { compiledTiny } from './helpers/compiled';

const dir = tmpDir();
afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));

/** The dynamo export is static (batch 2, 32x32, sequence 16); the TorchScript ones take any shape. */
const sizesFor = (name: string): [number, number, number][] =>
  name.includes('dynamo') ? [[2, 32, 16]] : [[1, 32, 16], [2, 32, 16], [1, 64, 16], [2, 64, 77]];

describe.each(TINY)('tiny %s', (name) => {
  test('default cleanup: fewer nodes, outputs within 1e-5 at every shape', async () => {
    const { file: out, report: r } = compiledTiny(name, { mode: 'default' });
    expect(r.nodesAfter).toBeLessThan(r.nodesBefore);
    for (const [b, s, seq] of sizesFor(name)) {
      const feeds = unetFeeds(b, s, seq, 32);
      const [x, y] = [await runModel(tinyPath(name), feeds), await runModel(out, feeds)];
      expect(relError(x.out_sample, y.out_sample)).toBeLessThan(1e-5);
    }
  });

  test('reduce-overhead with a static shape key: no Shape op left, outputs within 1e-5', async () => {
    const { file: out, report: r } = compiledTiny(name, { mode: 'reduce-overhead', shapes: 'sample=2x4x32x32,timestep=2,encoder_hidden_states=2x16x32' });
    expect(r.opsAfter['ai.onnx::Shape'] ?? 0).toBe(0);
    expect(r.nodesAfter).toBeLessThan(r.nodesBefore);
    const feeds = unetFeeds(2, 32, 16, 32);
    const [x, y] = [await runModel(tinyPath(name), feeds), await runModel(out, feeds)];
    expect(relError(x.out_sample, y.out_sample)).toBeLessThan(1e-5);
  });
});

test('a shape key that contradicts the model is refused with the input named', () => {
  expect(() => compile(tinyPath('unet_dynamo_op18'), { output: path.join(dir, 'x.onnx'), mode: 'reduce-overhead', shapes: 'sample=1x4x32x32,timestep=1,encoder_hidden_states=1x16x32' }))
    .toThrow(/'sample' dim 0 = 1, but the model fixes it at 2/);
  expect(() => compile(tinyPath('unet_sdpa_op17'), { output: path.join(dir, 'y.onnx'), mode: 'reduce-overhead', shapes: 'sample=2x4x32x32,timestep=3,encoder_hidden_states=2x16x32' }))
    .toThrow(/dim 'batch' is 2 in 'sample' but 3 in 'timestep'/);
  expect(() => compile(tinyPath('unet_sdpa_op17'), { output: path.join(dir, 'z.onnx'), mode: 'reduce-overhead', shapes: 'sample=2x4x32' }))
    .toThrow(/3 dims/);
});
