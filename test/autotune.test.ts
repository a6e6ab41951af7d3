import * as fs from 'fs';
import * as path from 'path';
import { autotune, CANDIDATES } from '../src/autotune/autotune';
import { compile } from '../src/compiler/compile';
import { relError, runModel, tinyPath, tmpDir, unetFeeds } from './helpers/ort';

const dir = tmpDir();
afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));

test('max-autotune times every candidate on the target and keeps the fastest', async () => {
  const out = path.join(dir, 'tuned.onnx');
  const r = await autotune(tinyPath('unet_sdpa_op17'), { output: out, target: 'cpu', shapes: 'sample=2x4x32x32,timestep=2,encoder_hidden_states=2x16x32', runs: 3 });
  expect(r.autotune.candidates.map((c) => c.name)).toEqual(CANDIDATES.map((c) => c.name));
  const fastest = r.autotune.candidates.reduce((a, b) => (b.runMs < a.runMs ? b : a));
  expect(r.autotune.chosen).toBe(fastest.name);
  expect(r.nodesAfter).toBe(fastest.nodes);
  expect(fs.readdirSync(dir)).toEqual(['tuned.onnx']); // the other candidates are gone
  const feeds = unetFeeds(2, 32, 16, 32);
  expect(relError((await runModel(tinyPath('unet_sdpa_op17'), feeds)).out_sample, (await runModel(out, feeds)).out_sample)).toBeLessThan(1e-4);
});

test('max-autotune without input dims, or through compile(), says what to do', async () => {
  await expect(autotune(tinyPath('unet_sdpa_op17'), { output: path.join(dir, 'x.onnx') })).rejects.toThrow(/needs every input's dims: give --shape/);
  expect(() => compile(tinyPath('unet_sdpa_op17'), { output: path.join(dir, 'y.onnx'), mode: 'max-autotune' })).toThrow(/autotune\(\)/);
});
