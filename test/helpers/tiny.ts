import * as fs from 'fs';
import * as path from 'path';
import * as ort from 'onnxruntime-node';
import { compile } from '../../src/compiler/compile';
import { DataType } from '../../src/ir/dtype';
import { readModel } from '../../src/onnx/read';
import { webgpuUnavailable } from '../../src/runtime/session';
import { compileChecked } from '../../src/verify/check';
import { TINY, randomFloats, tinyPath, unetFeeds } from './ort';
import { relError } from '../../src/runtime/compare';

/**
 * The tiny UNets × targets cross product, split: `npm test` takes every model on cpu and every target
 * on the sdpa export (5 of 9 pairs); test/full/tiny-cross-product.test.ts takes the other 4.
 */
type Pair = readonly [(typeof TINY)[number], 'cpu' | 'webgpu' | 'cuda'];
const ALL: Pair[] = TINY.flatMap((style) => (['cpu', 'webgpu', 'cuda'] as const).map((target) => [style, target] as const));
const fast = ([style, target]: Pair) => target === 'cpu' || style === 'unet_sdpa_op17';
export const FAST_PAIRS = ALL.filter(fast);
export const REST_PAIRS = ALL.filter((p) => !fast(p));

/** `compile --check 2` of a tiny export for a target: passes, and says where it ran. */
export async function expectChecked(style: (typeof TINY)[number], target: 'cpu' | 'webgpu' | 'cuda', dir: string): Promise<void> {
  const out = path.join(dir, style, target, 'unet.onnx');
  const r = await compileChecked(tinyPath(style), { output: out, target, check: 2 });
  const dynamo = style === 'unet_dynamo_op18'; // static export: checked at its own dims
  expect(r.check).toMatchObject({ sets: 2, derivedDims: !dynamo, passed: true });
  expect(r.check!.maxRel).toBeLessThan(1e-4);
  expect(r.check!.dims.sample).toEqual(dynamo ? [2, 4, 32, 32] : [1, 4, 8, 8]);
  const why = target === 'webgpu' ? await webgpuUnavailable() : null;
  const webgpu = target === 'webgpu' && !why;
  // without an adapter a webgpu output is checked on the CPU, and the report says why
  expect(r.check!.ranOn).toEqual(target === 'cuda' ? 'cpu (GPU-only ops lowered to CPU ops)' : webgpu ? expect.stringMatching(/^webgpu/) : why ? `cpu (WebGPU here: ${why})` : 'cpu');
  if (target === 'cuda') expect(r.loaded!.by).toMatch(/^structure only: onnxruntime's CPU provider has no kernel for NhwcConv/);
  else if (target === 'webgpu') expect(r.loaded!.by).toMatch(webgpu ? /^onnxruntime webgpu \(.*adapter.*\)$/ : /^structure only: onnxruntime's CPU provider has no kernel for \w+|^onnxruntime cpu$/);
  else expect(r.loaded!.by).toBe('onnxruntime cpu');
  expect(fs.existsSync(out)).toBe(true);
  expect(fs.readdirSync(path.dirname(out))).toEqual(['unet.onnx']); // no staging folder left behind
}

/** The first output of one CPU run. */
export async function run(file: string, feeds: Record<string, ort.Tensor>): Promise<ort.Tensor> {
  const s = await ort.InferenceSession.create(file, { executionProviders: ['cpu'], logSeverityLevel: 3 });
  try {
    return Object.values(await s.run(feeds))[0] as ort.Tensor;
  } finally {
    await s.release();
  }
}

export const weightBytes = (file: string) => readModel(file, { allowMissingData: true }).graph.initializers().reduce((s, v) => s + v.initializer!.byteLength, 0);

/**
 * A tiny export compiled fp16 for a target: float32 I/O, no Cast→Cast, at most 52% of the weight
 * bytes, the timestep embedding kept float32; for cpu, within 2e-2 of the original at t = 0, 500, 999.
 */
export async function expectFp16(name: (typeof TINY)[number], target: 'cpu' | 'webgpu' | 'cuda', dir: string): Promise<void> {
  const out = path.join(dir, `${name}.${target}.fp16.onnx`);
  const r = compile(tinyPath(name), { output: out, target, precision: 'fp16' });
  const m = readModel(out);
  for (const v of [...m.graph.inputs.filter((x) => !x.initializer), ...m.graph.outputs]) expect(v.elemType).toBe(DataType.FLOAT);
  for (const n of m.graph.nodes) if (n.opType === 'Cast') expect(n.inputs[0]!.producer?.opType).not.toBe('Cast');
  expect(weightBytes(out)).toBeLessThanOrEqual(0.52 * weightBytes(tinyPath(name)));
  expect(r.explanations.some((e) => e.pass === 'convert-fp16' && /Sin|Cos|argument/.test(e.reason ?? ''))).toBe(true);
  if (target !== 'cpu') return; // GPU-only ops: the numbers are the CPU output's
  for (const [seed, t] of [[1, 0], [2, 500], [3, 999]]) {
    const feeds = unetFeeds(2, 32, 16, 32);
    feeds.sample = new ort.Tensor('float32', randomFloats(2 * 4 * 32 * 32, seed), [2, 4, 32, 32]);
    feeds.timestep = new ort.Tensor('float32', Float32Array.from([t, t]), [2]);
    expect(relError(await run(tinyPath(name), feeds), await run(out, feeds))).toBeLessThan(2e-2);
  }
}
