import * as fs from 'fs';
import * as path from 'path';
import * as ort from 'onnxruntime-node';
import { analyzeShapes } from '../src/analysis/shapes';
import { compile } from '../src/compiler/compile';
import { DataType } from '../src/ir/dtype';
import { ModelBuilder } from '../src/ir/builder';
import { fromHalfBits, toHalfBits } from '../src/ir/half';
import { readModel } from '../src/onnx/read';
import { saveModel } from '../src/onnx/write';
import { randomFloats, relError, tinyPath, tmpDir, unetFeeds } from './helpers/ort';
import { FAST_PAIRS, expectFp16, run, weightBytes } from './helpers/tiny';

const dir = tmpDir();
afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));

test('float16 bits round to nearest even, saturate to Inf and keep NaN', () => {
  for (const x of [0, 1, -2, 0.1, 65504, 1e-5, 6e-8, 3.14159]) expect(Math.abs(fromHalfBits(toHalfBits(x)) - x)).toBeLessThanOrEqual(Math.abs(x) * 2 ** -11 + 2 ** -25);
  expect(fromHalfBits(toHalfBits(70000))).toBe(Infinity);
  expect(Number.isNaN(fromHalfBits(toHalfBits(NaN)))).toBe(true);
  expect(toHalfBits(1 + 2 ** -11)).toBe(0x3c00); // a tie rounds to the even neighbour
});

// every model for cpu, every target for sdpa; the other pairs: test/full/tiny-cross-product.test.ts
test.each(FAST_PAIRS)('tiny %s in fp16 for %s: float32 I/O, no Cast→Cast, at most 52%% of the weight bytes; on the CPU within 2e-2 at t = 0, 500, 999', (name, target) => expectFp16(name, target, dir));

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
  expect(relError(want, got)).toBeLessThan(2e-3);
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
  expect(relError(await run(src, feeds), await run(out, feeds))).toBeLessThan(2e-3);
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
  expect(relError(await run(tinyPath('unet_dynamo_op18'), feeds), got)).toBeLessThan(2e-2);
  expect(readModel(file, { allowMissingData: true }).getMetadata('sdc.precision')).toBe('fp16');
  const src = path.join(dir, 'assets-src');
  fs.mkdirSync(src);
  fs.copyFileSync(tinyPath('unet_sdpa_op17'), path.join(src, 'unet.onnx'));
  const [r] = await compileAssets({ srcDir: src, outDir: path.join(dir, 'assets-out'), precision: 'fp16', cacheDir: path.join(dir, 'assets-cache') });
  expect(weightBytes(r.output)).toBeLessThanOrEqual(0.52 * weightBytes(tinyPath('unet_sdpa_op17')));
});

/** (300x)²/90000: nothing the rules know is unsafe, but the middle value leaves fp16's range. */
function hiddenOverflow(): string {
  const b = new ModelBuilder();
  const x = b.input('x', ['n', 4]);
  const a = b.op('Mul', [x, b.const('k', [1], [300])]);
  const big = b.op('Mul', [a, a]);
  b.output(b.op('Relu', [b.op('Mul', [big, b.const('inv', [1], [1 / 90000])])]), ['n', 4]);
  return saveModel(b.model, path.join(dir, 'hidden-overflow.onnx'));
}

test('calibration: a value that leaves fp16\'s range in a calibration run keeps its producer and readers float32', async () => {
  const { calibrate } = await import('../src/runtime/calibrate');
  const { compileChecked } = await import('../src/verify/check');
  const src = hiddenOverflow();
  const feeds = { x: new ort.Tensor('float32', Float32Array.from([1, -0.5, 2, 0.25, 1, 1, 1, 1.5]), [2, 4]) };
  const want = await run(src, feeds);
  const halfTyped = (file: string) => {
    const m = readModel(file);
    const sa = analyzeShapes(m);
    return m.graph.nodes.filter((n) => n.opType === 'Mul' && sa.get(n.outputs[0]).dtype === DataType.FLOAT16).length;
  };

  // the rules alone see nothing unsafe: all three Muls become fp16. (onnxruntime's CPU provider has no fp16
  // Mul and computes it in fp32 behind casts of its own, so the overflow would only show on a GPU.)
  const rulesOnly = path.join(dir, 'hidden.rules.onnx');
  await compileChecked(src, { output: rulesOnly, precision: 'fp16', calibrate: false });
  expect(halfTyped(rulesOnly)).toBe(3);

  const { ranges, report } = await calibrate(src);
  expect(report.timesteps).toEqual([0, 500, 999]);
  expect(report.dims).toEqual({ x: [1, 4] });
  const largest = Math.max(...[...ranges.values()].map((r) => r.maxAbs));
  expect(fromHalfBits(toHalfBits(largest))).toBe(Infinity); // in fp16 that value is Inf

  const measured = path.join(dir, 'hidden.calibrated.onnx');
  const r = await compileChecked(src, { output: measured, precision: 'fp16' });
  expect(r.calibration?.values).toBe(4);
  const islands = r.explanations.filter((e) => e.pass === 'convert-fp16' && /^kept float32: calibration/.test(e.reason ?? ''));
  // the Mul that produces (300x)² and the Mul that reads it; the first Mul (300x) stays fp16
  expect(islands.map((e) => e.reason)).toEqual(expect.arrayContaining([expect.stringMatching(/produces .* which reached/), expect.stringMatching(/reads .* which reached/)]));
  expect(islands).toHaveLength(2);
  expect(halfTyped(measured)).toBe(1);
  const got = await run(measured, feeds);
  expect(relError(want, got)).toBeLessThan(2e-3);
});

test('the runtime calibrates once per model: load({ precision: fp16 }) keeps the overflowing region float32 and explains it', async () => {
  const { load } = await import('../src/runtime');
  const src = hiddenOverflow();
  const feeds = (n: number) => ({ x: new ort.Tensor('float32', Float32Array.from({ length: 4 * n }, (_, i) => [1, -0.5, 2, 0.25][i % 4]), [n, 4]) });
  const m = await load(src, { precision: 'fp16', cacheDir: path.join(dir, 'rt-calibrated'), warn: () => {} });
  for (const n of [2, 3]) expect(relError(await run(src, feeds(n)), Object.values(await m.run(feeds(n)))[0])).toBeLessThan(2e-3);
  expect(m.calibrationReport?.values).toBe(4);
  const lines = m.explain();
  await m.release();
  expect(lines.filter((l) => /^fp16: value ranges measured/.test(l))).toHaveLength(1);
  // both specializations were compiled with the one calibration: two islands each, both by measurement
  expect(lines.filter((l) => /: 2 node\(s\) kept float32 \(2 by measurement\)/.test(l))).toHaveLength(2);

  const off = await load(src, { precision: 'fp16', calibrate: false, cacheDir: path.join(dir, 'rt-calibrated'), warn: () => {} });
  await off.run(feeds(2));
  expect(off.calibrationReport).toBeNull();
  const offLines = off.explain();
  await off.release();
  // a separate cache entry (not the calibrated one), compiled by the rules alone
  expect(offLines[0]).toMatch(/: compiled \(first call\)$/);
  expect(offLines).toEqual(expect.arrayContaining(['fp16: not calibrated (calibrate: false): float32 islands come from the rules only', expect.stringMatching(/: 0 node\(s\) kept float32 \(0 by measurement\)$/)]));
});

test('a model with a bool input (a mask) is calibrated: the input generator feeds it true', async () => {
  const { load } = await import('../src/runtime');
  const b = new ModelBuilder();
  const x = b.input('x', [2]);
  const cond = b.input('cond', [2], DataType.BOOL);
  const y = b.op('Where', [cond, b.op('Mul', [x, b.const('k', [1], [3])]), b.op('Neg', [x])]);
  b.output(y, [2]);
  const src = saveModel(b.model, path.join(dir, 'where.onnx'));
  const warnings: string[] = [];
  const m = await load(src, { precision: 'fp16', cacheDir: null, warn: (w) => warnings.push(w) });
  const feeds = { x: new ort.Tensor('float32', Float32Array.from([1, -2]), [2]), cond: new ort.Tensor('bool', Uint8Array.from([1, 0]), [2]) };
  expect(Array.from(Object.values(await m.run(feeds))[0].data as Float32Array)).toEqual([3, 2]);
  const lines = m.explain();
  await m.release();
  expect(warnings).toEqual([]);
  expect(m.calibrationReport?.dims).toEqual({ x: [2], cond: [2] });
  expect(lines).toEqual(expect.arrayContaining([expect.stringMatching(/^fp16: value ranges measured on the CPU in fp32/)]));
});

test('a model calibration cannot feed (a string input) still loads in fp16, with the rules\' islands, and says so', async () => {
  const { load } = await import('../src/runtime');
  const b = new ModelBuilder();
  const x = b.input('x', [2]);
  const label = b.input('label', [1], DataType.STRING);
  b.output(b.op('Mul', [x, b.const('k', [1], [3])]), [2]);
  b.output(b.op('Identity', [label]), [1], DataType.STRING);
  const src = saveModel(b.model, path.join(dir, 'labelled.onnx'));
  const warnings: string[] = [];
  const m = await load(src, { precision: 'fp16', cacheDir: null, warn: (w) => warnings.push(w) });
  const feeds = { x: new ort.Tensor('float32', Float32Array.from([1, -2]), [2]), label: new ort.Tensor('string', ['a'], [1]) };
  expect(Array.from(Object.values(await m.run(feeds))[0].data as Float32Array)).toEqual([3, -6]);
  const lines = m.explain();
  await m.release();
  expect(warnings).toEqual([expect.stringMatching(/^sdc: fp16 calibration failed \(.*'label' is STRING\); float32 islands come from the rules only$/)]);
  expect(lines).toEqual(expect.arrayContaining([expect.stringMatching(/^fp16: calibration failed \(.*'label' is STRING\)/)]));
});

test('--keep-fp32 keeps the named op types and nodes float32, and says when an entry matches nothing', async () => {
  const out = path.join(dir, 'keep.fp16.onnx');
  const r = compile(tinyPath('unet_sdpa_op17'), { output: out, target: 'webgpu', precision: 'fp16', keepFp32: ['Conv', 'NoSuchOp'] });
  const convs = readModel(out).graph.nodes.filter((n) => n.opType === 'Conv');
  expect(convs.length).toBeGreaterThan(0);
  for (const c of convs) expect(c.inputs[1]!.initializer!.dtype).toBe(DataType.FLOAT);
  const kept = r.explanations.filter((e) => e.reason === 'kept float32: --keep-fp32 Conv');
  expect(kept).toHaveLength(convs.length);
  expect(r.explanations.some((e) => e.site === 'NoSuchOp' && /no float node has this name or op type/.test(e.reason ?? ''))).toBe(true);
});

test('a model with external weights keeps them external when they are converted (and still at half the bytes)', async () => {
  const b = new ModelBuilder();
  const x = b.input('x', [1, 4096]);
  b.output(b.op('MatMul', [x, b.const('w', [4096, 64], randomFloats(4096 * 64, 9))]), [1, 64]);
  const src = saveModel(b.model, path.join(dir, 'ext.onnx'), { externalData: 'always' });
  const out = path.join(dir, 'ext.fp16.onnx');
  const r = compile(src, { output: out, precision: 'fp16' });
  expect(r.dataFile).toBe(`${out}.data`);
  expect(fs.statSync(`${out}.data`).size).toBeLessThanOrEqual(0.52 * fs.statSync(`${src}.data`).size);
  expect(fs.statSync(out).size).toBeLessThan(16 * 1024); // the graph only: the weights are not inline
  const feeds = { x: new ort.Tensor('float32', randomFloats(4096, 3), [1, 4096]) };
  expect(relError(await run(src, feeds), await run(out, feeds))).toBeLessThan(2e-2);
});
