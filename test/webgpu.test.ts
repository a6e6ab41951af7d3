import * as fs from 'fs';
import * as path from 'path';
import * as ort from 'onnxruntime-node';
import { compile } from '../src/compiler/compile';
import { readModel } from '../src/onnx/read';
import { analyzeShapes } from '../src/analysis/shapes';
import { DataType } from '../src/ir/dtype';
import { profilePlacement } from '../src/runtime/placement';
import { recommendedSession } from '../src/targets/session-options';
import { lowerToCpu } from '../src/verify/lower';
import { TINY, relError, runModel, tinyPath, tmpDir, unetFeeds } from './helpers/ort';
import { webgpuForTests } from './helpers/webgpu';

/**
 * Every tiny export compiled for webgpu runs on onnxruntime's real WebGPU provider (SwiftShader where
 * there is no GPU): the session opens (every op has a kernel with those attributes), the profile says
 * where each node ran, and the numbers equal the original's on the CPU. MultiHeadAttention's
 * flash-attention path disagrees with the CPU on SwiftShader for query lengths ≥ 32 (docs/webgpu.md),
 * so the numbers are checked with that op lowered; its placement is checked on the real model.
 */
const dir = tmpDir();
afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));

let ready: Promise<boolean>;
beforeAll(() => {
  ready = webgpuForTests();
});

const feeds = unetFeeds(2, 32, 16, 32);
const shapes = Object.fromEntries(Object.entries(feeds).map(([k, t]) => [k, [...t.dims]]));

async function openOptions(file: string): Promise<ort.InferenceSession.SessionOptions> {
  const m = readModel(file, { allowMissingData: true });
  return recommendedSession((k) => m.getMetadata(k)).options as ort.InferenceSession.SessionOptions;
}

describe.each(TINY)('tiny %s on the WebGPU provider', (name) => {
  test.each(['default', 'reduce-overhead'] as const)('%s: placed on the GPU and equal to the original', async (mode) => {
    if (!(await ready)) return;
    const out = path.join(dir, `${name}.${mode}.onnx`);
    compile(tinyPath(name), { output: out, target: 'webgpu', mode, shapes: mode === 'reduce-overhead' ? shapes : null });
    const options = await openOptions(out);
    expect(options.executionProviders).toEqual([{ name: 'webgpu', preferredLayout: 'NCHW' }]);

    const p = await profilePlacement(out, feeds, options);
    const model = readModel(out);
    const ownTransposes = model.graph.nodes.filter((n) => n.opType === 'Transpose').length;
    // the provider adds no Transposes of its own (NHWC wrapping) under the recommended layout
    expect(p.transposes).toBeLessThanOrEqual(ownTransposes);
    if (mode === 'reduce-overhead') {
      expect(p.cpuNodes).toEqual([]);
      expect(p.memcpy).toBe(0);
      expect(p.dispatches).toBeLessThanOrEqual(300);
    } else {
      // default mode keeps dynamic shapes: only integer shape arithmetic may run on the CPU
      const facts = analyzeShapes(model);
      const byName = new Map(model.graph.nodes.map((n) => [n.name, n]));
      for (const c of p.cpuNodes) {
        const node = byName.get(c.name);
        expect(node && node.outputs.every((v) => [DataType.INT64, DataType.INT32].includes(facts.get(v).dtype!))).toBe(true);
      }
    }
    expect(p.byOp['webgpu:MultiHeadAttention']).toBe(model.graph.nodes.filter((n) => n.opType === 'MultiHeadAttention').length);

    const lowered = path.join(dir, `${name}.${mode}.mha-lowered.onnx`);
    lowerToCpu(out, lowered, ['MultiHeadAttention']);
    const want = (await runModel(tinyPath(name), feeds)).out_sample;
    const got = (await runModel(lowered, feeds, options)).out_sample;
    expect(relError(want, got)).toBeLessThan(1e-4);
  });
});

test('the MultiHeadAttention lowering computes the fused op (on the CPU, where the op is exact)', async () => {
  const out = path.join(dir, 'mha.onnx');
  compile(tinyPath('unet_sdpa_op17'), { output: out, target: 'cpu' });
  const lowered = path.join(dir, 'mha.lowered.onnx');
  expect(lowerToCpu(out, lowered, ['MultiHeadAttention'])).toBeGreaterThan(0);
  expect(readModel(lowered).graph.nodes.some((n) => n.opType === 'MultiHeadAttention')).toBe(false);
  expect(relError((await runModel(out, feeds)).out_sample, (await runModel(lowered, feeds)).out_sample)).toBeLessThan(1e-5);
});

test('Split: the most outputs the target table allows run on the WebGPU provider, and more do not', async () => {
  if (!(await ready)) return;
  const { ModelBuilder } = await import('../src/ir/builder');
  const { saveModel } = await import('../src/onnx/write');
  const { parseTarget } = await import('../src/targets');
  const webgpu = parseTarget('webgpu');
  const most = [...Array(16).keys()].filter((n) => n > 0 && !webgpu.accepts('', 'Split', { sizes: { outputs: n } })).pop()!;
  const run = async (n: number) => {
    const b = new ModelBuilder();
    const outs = b.opN('Split', [b.input('x', [n * 4]), b.ints('sizes', new Array(n).fill(4))], { axis: 0 }, { outputs: n });
    for (const o of outs) b.output(o, [4]);
    const file = saveModel(b.model, path.join(dir, `split${n}.onnx`));
    const r = await runModel(file, { x: new ort.Tensor('float32', Float32Array.from({ length: n * 4 }, (_, i) => i), [n * 4]) }, { executionProviders: ['webgpu'] });
    return Object.values(r).map((t) => (t.data as Float32Array)[0]);
  };
  expect(await run(most)).toEqual([...Array(most).keys()].map((i) => i * 4));
  // SwiftShader binds 12 storage buffers per stage: input + 12 outputs cannot run there
  if (process.env.VK_ICD_FILENAMES?.includes('swiftshader')) await expect(run(12)).rejects.toThrow(/storage buffers/);
});
