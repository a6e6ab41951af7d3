import * as ort from 'onnxruntime-node';
import { toHalfBits } from '../src/ir/half';
import { SCALE_FLOOR, compareTensors, relError, withinTolerance } from '../src/runtime/compare';

const f32 = (data: number[], dims = [data.length]) => new ort.Tensor('float32', Float32Array.from(data), dims);

test('finite values: max |a - b| / max |a| and mean |a - b| / mean |a|, as every check had it', () => {
  const c = compareTensors(f32([1, -4, 2, 0]), f32([1.5, -4, 2, 0.25]));
  expect(c).toEqual({ maxRel: 0.5 / 4, meanRel: 0.75 / 7, maxAbs: 0.5, nonFinite: 0, mismatches: 0, mismatch: null });
  expect(relError(f32([1, -4, 2, 0]), f32([1.5, -4, 2, 0.25]))).toBe(0.125);
  expect(withinTolerance(c, 0.125)).toBe(true);
  expect(withinTolerance(c, 0.1)).toBe(false);
  expect(relError(f32([3, 2]), f32([3, 2]))).toBe(0);
});

test('an all-zero reference: equal is 0 (never NaN), different is relative to the floor, so it fails', () => {
  expect(compareTensors(f32([0, 0]), f32([0, 0]))).toMatchObject({ maxRel: 0, meanRel: 0, mismatch: null });
  expect(relError(f32([0, 0]), f32([0, 1e-6]))).toBeCloseTo(1e-6 / SCALE_FLOOR, -30);
  expect(relError(f32([0, 0]), f32([0, 1e-6]))).toBeGreaterThan(1e30);
});

test('NaN and ±Inf matched position by position: allowed, counted, and kept out of the bound', () => {
  const ref = f32([NaN, Infinity, -Infinity, 2, 1]);
  expect(compareTensors(ref, f32([NaN, Infinity, -Infinity, 2, 1]))).toEqual({ maxRel: 0, meanRel: 0, maxAbs: 0, nonFinite: 3, mismatches: 0, mismatch: null });
  // an Inf in the reference no longer makes the scale infinite: 2 → 2.5 beside it is 25% off
  const c = compareTensors(ref, f32([NaN, Infinity, -Infinity, 2.5, 1]));
  expect(c).toMatchObject({ maxRel: 0.25, maxAbs: 0.5, nonFinite: 3, mismatch: null });
  expect(withinTolerance(c, 1e-3)).toBe(false);
  expect(relError(f32([Infinity, 1]), f32([Infinity, 2]))).toBe(1);
});

test('a NaN or an Inf on one side only, or a different one, is a mismatch said where, whatever the tolerance', () => {
  const ref = f32([1, Infinity, 3, NaN, 5, 6], [2, 3]);
  const cases: [number[], string][] = [
    [[1, -Infinity, 3, NaN, 5, 6], 'y[0,1]: the original has +Inf, the compiled model -Inf'],
    [[1, 2, 3, NaN, 5, 6], 'y[0,1]: the original has +Inf, the compiled model 2'],
    [[1, Infinity, 3, 4, 5, 6], 'y[1,0]: the original has NaN, the compiled model 4'],
    [[1, Infinity, 3, NaN, 5, NaN], 'y[1,2]: the original has 6, the compiled model NaN'],
    [[1, Infinity, Infinity, NaN, 5, 6], 'y[0,2]: the original has 3, the compiled model +Inf'],
    [[NaN, NaN, 3, Infinity, 5, 6], 'y[0,0]: the original has 1, the compiled model NaN (and 2 more positions)'],
  ];
  for (const [out, said] of cases) {
    const c = compareTensors(ref, f32(out, [2, 3]), 'y');
    expect(c.mismatch).toBe(said);
    expect(withinTolerance(c, Infinity)).toBe(false);
    expect(relError(ref, f32(out, [2, 3]))).toBe(Infinity);
  }
  // the finite positions are still measured beside a mismatch
  expect(compareTensors(f32([1, 2]), f32([NaN, 3]))).toMatchObject({ maxRel: 0.5, mismatches: 1 });
});

test('empty tensors compare equal', () => {
  expect(compareTensors(f32([], [0, 4]), f32([], [0, 4]))).toEqual({ maxRel: 0, meanRel: 0, maxAbs: 0, nonFinite: 0, mismatches: 0, mismatch: null });
  expect(relError(f32([], [0]), f32([], [0]))).toBe(0);
});

test('different dims or element types are a mismatch, not a number', () => {
  const c = compareTensors(f32([1, 2, 3, 4, 5, 6], [2, 3]), f32([1, 2, 3, 4, 5, 6], [3, 2]), 'out_sample');
  expect(c).toMatchObject({ mismatches: 1, mismatch: 'out_sample: dims differ: original [2x3], compiled [3x2]' });
  expect(relError(f32([1, 2], [2]), f32([1, 2], [1, 2]))).toBe(Infinity);
  expect(relError(f32([1, 2], [2]), f32([1, 2, 3], [3]))).toBe(Infinity);
  const h = new ort.Tensor('float16', Uint16Array.from([1, 2].map(toHalfBits)), [2]);
  expect(compareTensors(f32([1, 2]), h).mismatch).toBe('output: element types differ: original float32, compiled float16');
});

test('float16 (half bits), int64 and bool tensors are read by value', () => {
  const h = (xs: number[]) => new ort.Tensor('float16', Uint16Array.from(xs.map(toHalfBits)), [xs.length]);
  expect(compareTensors(h([1, 4, Infinity]), h([1, 5, Infinity]))).toMatchObject({ maxRel: 0.25, nonFinite: 1, mismatch: null });
  expect(relError(new ort.Tensor('int64', BigInt64Array.from([4n, 2n]), [2]), new ort.Tensor('int64', BigInt64Array.from([4n, 3n]), [2]))).toBe(0.25);
  expect(relError(new ort.Tensor('bool', Uint8Array.from([1, 0]), [2]), new ort.Tensor('bool', Uint8Array.from([1, 1]), [2]))).toBe(1);
});
