import * as fs from 'fs';
import * as path from 'path';
import { autotune, CANDIDATES } from '../src/autotune/autotune';
import { compile } from '../src/compiler/compile';
import { SdcError } from '../src/ir/errors';
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
  // the fastest, unless its gain over the default pipeline is within the spread of the alternated runs (said)
  const kept = r.autotune.candidates.find((c) => c.name === r.autotune.chosen)!;
  if (kept !== fastest) {
    expect(kept.name).toBe('all fusions');
    expect(r.autotune.untimed).toMatch(new RegExp(`^'${fastest.name.replace(/[+]/g, '\\+')}' timed ${fastest.runMs} ms against ${kept.runMs} ms, within the spread of the alternated runs \\(speedup [\\d.]+x, \\d+% interval [\\d.]+-[\\d.]+x over 3 runs\\); kept 'all fusions'$`));
  } else {
    expect(r.autotune.untimed).toBeUndefined();
  }
  expect(r.nodesAfter).toBe(kept.nodes);
  expect(fs.readdirSync(dir)).toEqual(['tuned.onnx']); // the other candidates are gone
  // --shape is honoured: the kept model is specialized, and no note claims the shapes were ignored
  expect(readModel(out).graph.inputs.map((v) => v.shape)).toEqual([[2, 4, 32, 32], [2], [2, 16, 32]]);
  expect(r.warnings).toEqual([]);
  const feeds = unetFeeds(2, 32, 16, 32);
  expect(relError((await runModel(tinyPath('unet_sdpa_op17'), feeds)).out_sample, (await runModel(out, feeds)).out_sample)).toBeLessThan(1e-4);
});

describe('max-autotune takes the path every checked door takes: staged, loaded, --check, then committed', () => {
  const shapes = 'sample=1x4x8x8,timestep=1,encoder_hidden_states=1x5x32';

  test('the kept candidate is loaded by onnxruntime and checked before it is moved into place', async () => {
    const sub = path.join(dir, 'checked');
    const out = path.join(sub, 'tuned.onnx');
    const r = await autotune(tinyPath('unet_sdpa_op17'), { output: out, target: 'cpu', shapes, runs: 1, check: 1 });
    expect(r.loaded).toEqual({ by: 'onnxruntime cpu' });
    expect(r.check).toMatchObject({ sets: 1, dims: { sample: [1, 4, 8, 8] }, ranOn: 'cpu', passed: true });
    expect(r.mode).toBe('max-autotune');
    expect(fs.readdirSync(sub)).toEqual(['tuned.onnx']); // no candidate or stage folder left
  });

  test('a kept candidate that fails --check is refused (exit code 3) and nothing is written', async () => {
    const sub = path.join(dir, 'refused');
    const out = path.join(sub, 'tuned.onnx');
    // every candidate differs from the original by ~1e-6 (float reassociation): 1e-9 refuses whichever wins
    const p = autotune(tinyPath('unet_sdpa_op17'), { output: out, target: 'cpu', shapes, runs: 1, check: 1, checkTolerance: 1e-9 });
    await expect(p).rejects.toBeInstanceOf(SdcError);
    await expect(p).rejects.toMatchObject({ exitCode: 3, problem: expect.stringMatching(/differs from the original by .* nothing was written/) });
    expect(fs.existsSync(sub) ? fs.readdirSync(sub) : []).toEqual([]);
  });

  test('a dry run times the candidates and keeps none, and says --check checked nothing', async () => {
    const out = path.join(dir, 'dry', 'tuned.onnx');
    const r = await autotune(tinyPath('unet_sdpa_op17'), { output: out, dryRun: true, target: 'cpu', shapes, runs: 1, check: 1 });
    expect(r.autotune.timedOn).toBe('cpu');
    // one run per candidate has no spread to tell a gain from noise: the default pipeline stays
    expect(r.autotune.chosen).toBe('all fusions');
    if (r.autotune.untimed !== undefined) expect(r.autotune.untimed).toMatch(/^'.+' timed [\d.]+ ms against [\d.]+ ms, within the spread of the alternated runs \(1 run per candidate has no spread; give more runs\); kept 'all fusions'$/);
    expect([r.output, r.dataFile, r.check, r.loaded]).toEqual([out, null, undefined, undefined]);
    expect(r.warnings).toContain('--check needs a written model; --dry-run checked nothing');
    expect(fs.existsSync(path.dirname(out))).toBe(false);
  });
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
