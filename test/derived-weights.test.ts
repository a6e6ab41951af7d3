import * as fs from 'fs';
import * as path from 'path';
import { compile } from '../src/compiler/compile';
import { ModelBuilder } from '../src/ir/builder';
import { fromHalfBits, halfBytes, halfBytesScalar, toHalfBits } from '../src/ir/half';
import { halfKernel } from '../src/ir/half-simd';
import { DataType } from '../src/ir/dtype';
import { Tensor, concatColumns, matrixRows } from '../src/ir/tensor';
import { readModel } from '../src/onnx/read';
import { saveModel } from '../src/onnx/write';
import { randomFloats, relError, runModel, tensor, tmpDir } from './helpers/ort';

/**
 * Weights computed from weights (NhwcConv's OHWI layout, merged projections, fp16 conversions) are
 * written a block of rows at a time. These tensors span several write pieces (2 MB), so a block boundary
 * that drops, repeats or misplaces a row shows up as a wrong element; expectations are computed here from
 * the source weights, element by element, not by the code under test.
 */
const dir = tmpDir('sdc-derived-');
afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));

const [M, C, K] = [96, 760, 3]; // a 2.6 MB 3×3 kernel: two pieces, rows of 27 KB
const w3 = randomFloats(M * C * K * K, 11);
const w1 = randomFloats(M * M, 12); // a 1×1 kernel: OHWI bytes are OIHW's
const w23 = randomFloats(8 * M * 2 * 3, 13); // a 2×3 kernel: the transpose's generic loop (3×3 has its own)

function convModel(): string {
  const b = new ModelBuilder();
  const x = b.input('x', [1, C, 5, 5]);
  const c1 = b.op('Conv', [x, b.const('w3', [M, C, K, K], w3)], { kernel_shape: [K, K], pads: [1, 1, 1, 1] });
  const c2 = b.op('Conv', [b.op('Relu', [c1]), b.const('w1', [M, M, 1, 1], w1)], { kernel_shape: [1, 1] });
  const c3 = b.op('Conv', [b.op('Relu', [c2]), b.const('w23', [8, M, 2, 3], w23)], { kernel_shape: [2, 3] });
  b.output(c3);
  return saveModel(b.model, path.join(dir, 'conv.onnx'), { externalData: 'always' });
}

/** OIHW → OHWI of a [m, c, kh, kw] weight, kernel = kh·kw elements. */
const ohwi = (w: Float32Array, m: number, c: number, kernel: number) => {
  const out = new Float32Array(w.length);
  for (let o = 0; o < m; o++) for (let i = 0; i < c; i++) for (let s = 0; s < kernel; s++) out[(o * kernel + s) * c + i] = w[(o * c + i) * kernel + s];
  return out;
};

const weightOf = (file: string, op: string, slot = 1): Tensor[] => readModel(file).graph.nodes.filter((n) => n.opType === op).map((n) => n.inputs[slot]!.constant!);

test('cuda: OHWI weights written in pieces equal the transposed source, element for element', () => {
  const src = convModel();
  const out = path.join(dir, 'conv.cuda.onnx');
  compile(src, { output: out, target: 'cuda' });
  const [a, b, c] = weightOf(out, 'NhwcConv');
  expect(a.dims).toEqual([M, K, K, C]);
  expect(Buffer.from((a.values() as Float32Array).buffer).equals(Buffer.from(ohwi(w3, M, C, K * K).buffer))).toBe(true);
  expect(b.dims).toEqual([M, 1, 1, M]);
  expect(Buffer.from((b.values() as Float32Array).buffer).equals(Buffer.from(w1.buffer))).toBe(true);
  expect(c.dims).toEqual([8, 2, 3, M]);
  expect(Buffer.from((c.values() as Float32Array).buffer).equals(Buffer.from(ohwi(w23, 8, M, 2 * 3).buffer))).toBe(true);
});

test('cuda fp16: the halves of the OHWI weights, rounded to nearest even, element for element', () => {
  const src = convModel();
  const out = path.join(dir, 'conv.cuda16.onnx');
  compile(src, { output: out, target: 'cuda', precision: 'fp16' });
  const [a] = weightOf(out, 'NhwcConv');
  const want = ohwi(w3, M, C, K * K);
  const got = a.values() as Uint16Array;
  expect(got.length).toBe(want.length);
  let wrong = 0;
  for (let i = 0; i < want.length; i++) if (got[i] !== toHalfBits(want[i])) wrong++;
  expect(wrong).toBe(0);
});

test('halfBytes agrees with toHalfBits on edge values and on unaligned input', () => {
  const edge = [0, -0, 1, -1, 65504, 65520, 1e9, -1e9, 2 ** -14, 2 ** -24, 2 ** -25, 3 * 2 ** -26, 1e-10, NaN, Infinity, -Infinity, 1 + 2 ** -11, 1 + 3 * 2 ** -11];
  // and arbitrary bit patterns: every sign, exponent and mantissa, rounding boundaries included
  let seed = 12345;
  const bits = Int32Array.from({ length: 200_000 }, () => (seed = (Math.imul(seed, 1103515245) + 12345) | 0) ^ (seed >>> 15));
  const values = Float32Array.from([...edge, ...randomFloats(4000, 5).map((v, i) => v * 2 ** ((i % 60) - 30)), ...new Float32Array(bits.buffer)]);
  const bytes = new Uint8Array(values.buffer);
  const unaligned = new Uint8Array(bytes.byteLength + 1).subarray(1);
  unaligned.set(bytes);
  for (const input of [bytes, unaligned]) {
    const h = new Uint16Array(halfBytes(input).buffer);
    const wrong = [...values.keys()].filter((i) => (Number.isNaN(values[i]) ? !Number.isNaN(fromHalfBits(h[i])) : h[i] !== toHalfBits(values[i])));
    expect(wrong.slice(0, 5).map((i) => [values[i], h[i], toHalfBits(values[i])])).toEqual([]);
  }
});

test('the SIMD conversion equals the scalar one bit for bit: every exponent and sign, rounding ties, any length', () => {
  // Node runs WebAssembly SIMD: were the kernel missing, this would compare the scalar loop with itself
  expect(halfKernel()).not.toBeNull();
  // each sign and exponent with the mantissas around every rounding boundary of both results' ranges
  const bits: number[] = [];
  for (let se = 0; se < 512; se++) {
    for (const m of [0, 1, 0xfff, 0x1000, 0x1001, 0x1fff, 0x2000, 0x3000, 0x7fffff, 0x7ff000, 0x400000, 0x123456]) bits.push((se << 23) | m);
    for (let s = 1; s < 24; s++) bits.push((se << 23) | (1 << s) | ((1 << (s - 1)) - 1), (se << 23) | (3 << (s - 1)));
  }
  const all = new Int32Array(bits);
  for (const n of [all.length, 1, 7, 9, 8191]) {
    const input = new Uint8Array(all.buffer, 0, n * 4);
    expect(Buffer.from(halfBytes(input)).equals(Buffer.from(halfBytesScalar(input)))).toBe(true);
  }
  // past one call of the kernel (2 M elements): converted in chunks
  const big = randomFloats((2 << 20) + 13, 9).map((v, i) => v * 2 ** ((i % 40) - 20));
  const bigBytes = new Uint8Array(big.buffer);
  expect(Buffer.from(halfBytes(bigBytes)).equals(Buffer.from(halfBytesScalar(bigBytes)))).toBe(true);
});

test('webgpu: merged MatMul and transposed-Gemm weights larger than a piece compute the same numbers', async () => {
  const b = new ModelBuilder();
  const x = b.input('x', [2, 700]);
  const y = b.op('Relu', [x]);
  for (const [i, width] of [900, 1100].entries()) b.output(b.op('Relu', [b.op('MatMul', [y, b.const(`m${i}`, [700, width], randomFloats(700 * width, 20 + i))])]));
  for (const [i, width] of [800, 600].entries()) {
    const g = b.op('Gemm', [y, b.const(`g${i}`, [width, 700], randomFloats(700 * width, 30 + i)), b.const(`gb${i}`, [width], randomFloats(width, 40 + i))], { transB: 1 });
    b.output(b.op('Relu', [g]));
  }
  const src = saveModel(b.model, path.join(dir, 'proj.onnx'), { externalData: 'always' });
  const out = path.join(dir, 'proj.webgpu.onnx');
  const r = compile(src, { output: out, target: 'webgpu' });
  expect(r.opsAfter['ai.onnx::Split']).toBe(2);
  const merged = weightOf(out, 'MatMul').concat(weightOf(out, 'Gemm'));
  expect(merged.map((t) => t.byteLength).every((n) => n > 2 << 20)).toBe(true);
  const feeds = { x: tensor([2, 700], 7) };
  const [want, got] = [await runModel(src, feeds), await runModel(out, feeds)];
  for (const k of Object.keys(want)) expect(relError(want[k], got[k])).toBeLessThan(1e-6);
});

test('a derived tensor gives any byte range as its whole gives it, whatever the row boundaries', () => {
  const part = (w: number, seed: number) => Tensor.fromValues(`p${seed}`, DataType.FLOAT, [37, w], randomFloats(37 * w, seed));
  const parts = [part(5, 1), part(11, 2), part(3, 3)];
  const t = concatColumns('cat', 37, parts.map((p) => ({ width: p.dims[1], rows: matrixRows(p, p.dims[1]) })), parts);
  const whole = t.bytes();
  expect(whole.byteLength).toBe(37 * 19 * 4);
  expect((t.values() as Float32Array)[19 * 4 + 5 + 2]).toBe((parts[1].values() as Float32Array)[11 * 4 + 2]);
  for (const [at, len] of [[0, 1], [3, 77], [75, 76], [19 * 4 * 10 - 1, 19 * 4 * 3 + 2], [whole.byteLength - 5, 5], [0, whole.byteLength]]) {
    expect(Buffer.from(t.bytesIn(at, len)).equals(Buffer.from(whole.subarray(at, at + len)))).toBe(true);
  }
});
