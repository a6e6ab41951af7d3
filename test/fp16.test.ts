import * as fs from 'fs';
import * as path from 'path';
import * as ort from 'onnxruntime-node';
import { compile } from '../src/compiler/compile';
import { DataType } from '../src/ir/dtype';
import { ModelBuilder } from '../src/ir/builder';
import { fromHalfBits, toHalfBits } from '../src/ir/half';
import { readModel } from '../src/onnx/read';
import { saveModel } from '../src/onnx/write';
import { TINY, randomFloats, tinyPath, tmpDir, unetFeeds } from './helpers/ort';

const dir = tmpDir();
afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));

/** max |a − b| / max |a|, NaN/Inf in b counted as infinitely wrong */
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

async function run(file: string, feeds: Record<string, ort.Tensor>): Promise<ort.Tensor> {
  const s = await ort.InferenceSession.create(file, { executionProviders: ['cpu'], logSeverityLevel: 3 });
  try {
    return Object.values(await s.run(feeds))[0] as ort.Tensor;
  } finally {
    await s.release();
  }
}

const weightBytes = (file: string) => readModel(file, { allowMissingData: true }).graph.initializers().reduce((s, v) => s + v.initializer!.byteLength, 0);

test('float16 bits round to nearest even, saturate to Inf and keep NaN', () => {
  for (const x of [0, 1, -2, 0.1, 65504, 1e-5, 6e-8, 3.14159]) expect(Math.abs(fromHalfBits(toHalfBits(x)) - x)).toBeLessThanOrEqual(Math.abs(x) * 2 ** -11 + 2 ** -25);
  expect(fromHalfBits(toHalfBits(70000))).toBe(Infinity);
  expect(Number.isNaN(fromHalfBits(toHalfBits(NaN)))).toBe(true);
  expect(toHalfBits(1 + 2 ** -11)).toBe(0x3c00); // a tie rounds to the even neighbour
});

describe.each(TINY)('tiny %s in fp16', (name) => {
  test.each(['cpu', 'webgpu', 'cuda'] as const)('for %s: float32 I/O, no Cast→Cast, at most 52%% of the weight bytes; on the CPU within 2e-2 at t = 0, 500, 999', async (target) => {
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
      expect(diff(await run(tinyPath(name), feeds), await run(out, feeds))).toBeLessThan(2e-2);
    }
  });
});

test('an intermediate beyond 65504 keeps its region float32 and the output finite; a second conversion changes nothing', async () => {
  const b = new ModelBuilder();
  const x = b.input('x', [4]);
  // exp(12) ≈ 162755 overflows fp16: Exp and what reads its result stay float32
  const big = b.op('Exp', [b.op('Mul', [x, b.const('k', [4], [12, 12, 12, 12])])]);
  b.output(b.op('Div', [b.op('Relu', [x]), b.op('ReduceSum', [big], { keepdims: 1 })]), [4]);
  const src = saveModel(b.model, path.join(dir, 'big.onnx'));
  const out = path.join(dir, 'big.fp16.onnx');
  compile(src, { output: out, precision: 'fp16', passes: ['convert-fp16'] });
  const feeds = { x: new ort.Tensor('float32', Float32Array.from([1, 0.5, 0.25, 1]), [4]) };
  const [want, got] = [await run(src, feeds), await run(out, feeds)];
  expect(diff(want, got)).toBeLessThan(2e-3);
  const again = path.join(dir, 'big.fp16.again.onnx');
  const r = compile(out, { output: again, precision: 'fp16', passes: ['convert-fp16'] });
  expect(r.passes[0].changed).toBe(false);
  expect(readModel(again).graph.nodes.map((n) => n.opType)).toEqual(readModel(out).graph.nodes.map((n) => n.opType));
});

test('the timestep embedding stays accurate at t = 999', async () => {
  const b = new ModelBuilder();
  const t = b.input('t', [1]);
  const freqs = b.const('freqs', [1, 8], Array.from({ length: 8 }, (_, i) => Math.exp((-Math.log(10000) * i) / 8)));
  const arg = b.op('Mul', [b.op('Unsqueeze', [t, b.ints('axes', [1])]), freqs]);
  const emb = b.op('Concat', [b.op('Sin', [arg]), b.op('Cos', [arg])], { axis: -1 });
  b.output(b.op('MatMul', [emb, b.const('w', [16, 4], Array.from(randomFloats(64, 5)))]), [1, 4]);
  const src = saveModel(b.model, path.join(dir, 'temb.onnx'));
  const out = path.join(dir, 'temb.fp16.onnx');
  compile(src, { output: out, precision: 'fp16' });
  const feeds = { t: new ort.Tensor('float32', Float32Array.from([999]), [1]) };
  expect(diff(await run(src, feeds), await run(out, feeds))).toBeLessThan(2e-3);
});

test('--io-types fp16: inputs and outputs float16', async () => {
  const out = path.join(dir, 'io.fp16.onnx');
  compile(tinyPath('unet_dynamo_op18'), { output: out, precision: 'fp16', ioTypes: 'fp16' });
  const m = readModel(out);
  for (const v of [m.graph.inputs.find((x) => x.name === 'sample')!, ...m.graph.outputs]) expect(v.elemType).toBe(DataType.FLOAT16);
});

test('the runtime and the build step take precision fp16: float32 feeds, fp16 specializations, half the bytes', async () => {
  const { load } = await import('../src/runtime');
  const { compileAssets } = await import('../src/assets/compile-assets');
  const m = await load(tinyPath('unet_dynamo_op18'), { precision: 'fp16', cacheDir: path.join(dir, 'rt-cache'), warn: () => {} });
  const feeds = unetFeeds(2, 32, 16, 32);
  const got = (await m.run(feeds)).out_sample;
  const file = await m.modelFileFor(feeds);
  await m.release();
  expect(diff(await run(tinyPath('unet_dynamo_op18'), feeds), got)).toBeLessThan(2e-2);
  expect(readModel(file, { allowMissingData: true }).getMetadata('sdc.precision')).toBe('fp16');
  const src = path.join(dir, 'assets-src');
  fs.mkdirSync(src);
  fs.copyFileSync(tinyPath('unet_sdpa_op17'), path.join(src, 'unet.onnx'));
  const [r] = await compileAssets({ srcDir: src, outDir: path.join(dir, 'assets-out'), precision: 'fp16', cacheDir: path.join(dir, 'assets-cache') });
  expect(weightBytes(r.output)).toBeLessThanOrEqual(0.52 * weightBytes(tinyPath('unet_sdpa_op17')));
});
