import * as fs from 'fs';
import * as path from 'path';
import { autotune, CANDIDATES } from '../src/autotune/autotune';
import { compile } from '../src/compiler/compile';
import { readModel } from '../src/onnx/read';
import { webgpuUnavailable } from '../src/runtime/session';
import { relError, runModel, tinyPath, tmpDir, unetFeeds } from './helpers/ort';

const dir = tmpDir();
afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));

test('max-autotune times every candidate on the target and keeps the fastest', async () => {
  const out = path.join(dir, 'tuned.onnx');
  const shapes = { sample: [2, 4, 32, 32], timestep: [2], encoder_hidden_states: [2, 16, 32] }; // a plain object works too
  const r = await autotune(tinyPath('unet_sdpa_op17'), { output: out, target: 'cpu', shapes, runs: 3 });
  expect(r.autotune.candidates.map((c) => c.name)).toEqual(CANDIDATES.filter((c) => !c.layout).map((c) => c.name));
  expect(r.autotune.timedOn).toBe('cpu');
  const fastest = r.autotune.candidates.reduce((a, b) => (b.runMs! < a.runMs! ? b : a));
  expect(r.autotune.chosen).toBe(fastest.name);
  expect(r.nodesAfter).toBe(fastest.nodes);
  expect(fs.readdirSync(dir)).toEqual(['tuned.onnx']); // the other candidates are gone
  // --shape is honoured: the kept model is specialized, and no note claims the shapes were ignored
  expect(readModel(out).graph.inputs.map((v) => v.shape)).toEqual([[2, 4, 32, 32], [2], [2, 16, 32]]);
  expect(r.warnings).toEqual([]);
  const feeds = unetFeeds(2, 32, 16, 32);
  expect(relError((await runModel(tinyPath('unet_sdpa_op17'), feeds)).out_sample, (await runModel(out, feeds)).out_sample)).toBeLessThan(1e-4);
});

test('max-autotune without input dims, or through compile(), says what to do', async () => {
  await expect(autotune(tinyPath('unet_sdpa_op17'), { output: path.join(dir, 'x.onnx') })).rejects.toThrow(/needs every input's dims: give --shape/);
  expect(() => compile(tinyPath('unet_sdpa_op17'), { output: path.join(dir, 'y.onnx'), mode: 'max-autotune' })).toThrow(/autotune\(\)/);
});

test('max-autotune for webgpu says which provider timed it, or that none could, once', async () => {
  const out = path.join(dir, 'web', 'tuned.onnx');
  fs.mkdirSync(path.dirname(out));
  const errors: string[] = [];
  const write = process.stderr.write.bind(process.stderr);
  process.stderr.write = ((s: string) => (errors.push(String(s)), true)) as typeof process.stderr.write;
  try {
    const r = await autotune(tinyPath('unet_dynamo_op18'), { output: out, target: 'webgpu', runs: 1 });
    const missing = await webgpuUnavailable();
    if (missing) {
      expect(r.autotune.timedOn).toBeNull();
      expect(r.autotune.chosen).toBe(CANDIDATES[0].name);
      expect(r.autotune.candidates.every((c) => c.runMs === null)).toBe(true);
      expect(errors.filter((e) => /WebGPU/.test(e))).toHaveLength(1);
    } else {
      expect(r.autotune.timedOn).toBe('webgpu');
      // both provider layouts were timed, and the kept model records the winner's
      expect(r.autotune.candidates.map((c) => c.name)).toContain('all fusions, NHWC layout');
      const layout = readModel(out, { allowMissingData: true }).getMetadata('sdc.session.preferredLayout');
      expect(layout).toBe(r.autotune.chosen === 'all fusions, NHWC layout' ? 'NHWC' : 'NCHW');
    }
  } finally {
    process.stderr.write = write;
  }
  expect(fs.existsSync(out)).toBe(true);
}, 300000);
