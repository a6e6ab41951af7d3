import * as fs from 'fs';
import * as path from 'path';
import * as ort from 'onnxruntime-node';
import { analyzeShapes } from '../../src/analysis/shapes';
import { compile } from '../../src/compiler/compile';
import { DataType } from '../../src/ir/dtype';
import { ModelBuilder } from '../../src/ir/builder';
import { readModel } from '../../src/onnx/read';
import { saveModel } from '../../src/onnx/write';
import { checkOutput } from '../../src/verify/check';
import { lowerToCpu } from '../../src/verify/lower';
import { randomFloats, runModel, tinyPath, tmpDir, unetFeeds } from '../helpers/ort';

const dir = tmpDir();
afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));

/** max |a − b| / max |a|, a non-finite b counted as infinitely wrong (as test/fp16.test.ts). */
function diff(a: ort.Tensor, b: ort.Tensor): number {
  const x = a.data as Float32Array;
  const y = b.data as Float32Array;
  let m = 0;
  let s = 0;
  for (let i = 0; i < x.length; i++) {
    if (!Number.isFinite(y[i])) return Infinity;
    m = Math.max(m, Math.abs(x[i] - y[i]));
    s = Math.max(s, Math.abs(x[i]));
  }
  return m / s;
}

const NAME = 'unet_sdpa_op17';

/** The runtime's calibration timesteps, each with its own latents; the original's outputs, computed once. */
const FEEDS = [[1, 0], [2, 500], [3, 999]].map(([seed, t]) => {
  const feeds = unetFeeds(2, 32, 16, 32);
  feeds.sample = new ort.Tensor('float32', randomFloats(2 * 4 * 32 * 32, seed), [2, 4, 32, 32]);
  feeds.timestep = new ort.Tensor('float32', Float32Array.from([t, t]), [2]);
  return feeds;
});
let wanted: ort.Tensor[];
beforeAll(async () => {
  wanted = await runAll(tinyPath(NAME));
});

async function runAll(file: string): Promise<ort.Tensor[]> {
  const s = await ort.InferenceSession.create(file, { executionProviders: ['cpu'], logSeverityLevel: 3 });
  try {
    const out: ort.Tensor[] = [];
    for (const f of FEEDS) out.push((await s.run(f)).out_sample as ort.Tensor);
    return out;
  } finally {
    await s.release();
  }
}

/**
 * The fp16 outputs for the GPU targets hold ops the CPU cannot run (cuda: NhwcConv, GroupNorm,
 * SkipGroupNorm) in float16 with float32 islands; lowered by the oracle they run here, and must give the
 * float32 original's numbers within fp16's tolerance at the timesteps the runtime calibrates with.
 */
test.each(['webgpu', 'cuda'] as const)('%s --precision fp16, lowered to CPU ops, is within 2e-2 of the fp32 original at t = 0, 500, 999', async (target) => {
  const out = path.join(dir, `${NAME}.${target}.fp16.onnx`);
  const r = compile(tinyPath(NAME), { output: out, target, precision: 'fp16' });
  expect(r.passes.some((p) => p.name === 'convert-fp16' && p.changed)).toBe(true);
  const lowered = path.join(dir, `${NAME}.${target}.fp16.lowered.onnx`);
  const n = lowerToCpu(out, lowered);
  if (target === 'cuda') expect(n).toBeGreaterThanOrEqual(31 + 46); // (Skip)GroupNorms and NhwcConvs, as in fp32 (test/gpu-outputs.test.ts)
  const got = await runAll(lowered);
  for (const [i, want] of wanted.entries()) expect(diff(want, got[i])).toBeLessThan(2e-2);
  if (target !== 'cuda') return;
  // --check takes the same path for cuda (no provider here): it runs the lowered model and compares
  const check = await checkOutput(tinyPath(NAME), out, { sets: 1, target, shapes: 'sample=2x4x32x32,timestep=2,encoder_hidden_states=2x16x32', tolerance: 2e-2 }); // compileChecked's fp16 tolerance
  expect(check.ranOn).toMatch(/^cpu \(GPU-only ops lowered/);
  expect(check.passed).toBe(true);
});

/**
 * Conv (stride 2×1 on a 6×5 input) → Reshape → Softmax: the unfused Softmax is a float32 island
 * downstream of cuda's NhwcConv, which convert-fp16 can cast into only if the shape analysis follows
 * the NhwcConv (element type, and the NHWC dims [1, 3, 5, 4]).
 */
test('cuda fp16: a float32 island after an NhwcConv reads its input through a Cast (the lowered model runs, numbers within 2e-2)', async () => {
  const b = new ModelBuilder();
  const x = b.input('x', [1, 4, 6, 5]);
  const c = b.op('Conv', [x, b.const('w', [4, 4, 3, 3], Array.from(randomFloats(144, 1)))], { kernel_shape: [3, 3], pads: [1, 1, 1, 1], strides: [2, 1] });
  b.output(b.op('Softmax', [b.op('Reshape', [c, b.ints('s', [1, 4, 15])])], { axis: -1 }), [1, 4, 15]);
  const src = saveModel(b.model, path.join(dir, 'island.onnx'));
  const out = path.join(dir, 'island.cuda.fp16.onnx');
  const r = compile(src, { output: out, target: 'cuda', precision: 'fp16' });
  expect(r.opsAfter['com.microsoft::NhwcConv']).toBe(1);
  expect(r.explanations).toContainEqual(expect.objectContaining({ pass: 'convert-fp16', status: 'skipped', reason: 'kept float32: an unfused Softmax (exponentials of unbounded scores)' }));
  const m = readModel(out);
  const conv = m.graph.nodes.find((n) => n.opType === 'NhwcConv')!;
  const facts = analyzeShapes(m).get(conv.outputs[0]);
  expect([facts.dtype, facts.shape?.map((d) => d.value)]).toEqual([DataType.FLOAT16, [1, 3, 5, 4]]);
  const softmax = m.graph.nodes.find((n) => n.opType === 'Softmax')!;
  expect(softmax.inputs[0]!.producer!.opType).toBe('Cast');
  const lowered = path.join(dir, 'island.cuda.fp16.lowered.onnx');
  lowerToCpu(out, lowered);
  const feeds = { x: new ort.Tensor('float32', randomFloats(120, 7), [1, 4, 6, 5]) };
  const [want, got] = [await runModel(src, feeds), await runModel(lowered, feeds)];
  expect(got[softmax.outputs[0].name].type).toBe('float32');
  expect(diff(Object.values(want)[0], Object.values(got)[0])).toBeLessThan(2e-2);
});
