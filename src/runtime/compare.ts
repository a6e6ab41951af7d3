import { fromHalfBits } from '../ir/half';

/*
 * The one error metric for "the same outputs": `--check`, the benchmarks and the tests compare a
 * reference tensor (the original model's output) with another (the compiled model's) here.
 *
 * The rule:
 * - finite values: maxRel = max |a − b| over the positions where both are finite, divided by
 *   max(max |a| over the finite a, SCALE_FLOOR); meanRel = mean |a − b| / mean |a| over the positions
 *   where both are finite. A non-finite value never enters the bound, so an Inf in the original cannot
 *   make the scale infinite and every difference look like zero.
 * - non-finite values (NaN, +Inf, −Inf) must match exactly, position by position: NaN matches NaN, +Inf
 *   matches +Inf. A NaN or an Inf on one side only, or a different one, is a mismatch: a failure
 *   whatever the tolerance, described by `mismatch` (where, and what each side holds).
 * - different dims or element types: a mismatch.
 */

/**
 * The smallest scale the relative bound divides by (float32's smallest normal): 0/0 is never NaN, and
 * against an all-zero reference any difference is (hugely) relative, as it is.
 */
export const SCALE_FLOOR = 2 ** -126;

/** What the metric reads of a tensor (an onnxruntime Tensor is one). */
export interface TensorLike {
  readonly type: string;
  readonly dims: readonly number[];
  readonly data: unknown;
}

export interface Comparison {
  /** max |a − b| over positions where both are finite / max(max |a| over finite a, SCALE_FLOOR). */
  maxRel: number;
  /** mean |a − b| / max(mean |a|, SCALE_FLOOR) over positions where both are finite. */
  meanRel: number;
  /** max |a − b| over positions where both are finite. */
  maxAbs: number;
  /** Positions where the reference holds NaN or ±Inf. */
  nonFinite: number;
  /** Positions (or 1 for dims or types) that differ in a way no tolerance accepts. */
  mismatches: number;
  /** The first of them in words, or null when there is none. */
  mismatch: string | null;
}

/** Compare `out` with the reference `ref`; `name` names the tensor in `mismatch`. */
export function compareTensors(ref: TensorLike, out: TensorLike, name = 'output'): Comparison {
  const none = { maxRel: 0, meanRel: 0, maxAbs: 0, nonFinite: 0 };
  if (ref.dims.join() !== out.dims.join()) return { ...none, mismatches: 1, mismatch: `${name}: dims differ: original [${ref.dims.join('x')}], compiled [${out.dims.join('x')}]` };
  if (ref.type !== out.type) return { ...none, mismatches: 1, mismatch: `${name}: element types differ: original ${ref.type}, compiled ${out.type}` };
  const x = numbers(ref);
  const y = numbers(out);
  if (x.length !== y.length) return { ...none, mismatches: 1, mismatch: `${name}: ${x.length} elements in the original, ${y.length} compiled` };
  let scale = 0;
  let sumAbs = 0;
  let maxAbs = 0;
  let sumDiff = 0;
  let nonFinite = 0;
  let mismatches = 0;
  let first = -1;
  for (let i = 0; i < x.length; i++) {
    const a = x.at(i);
    const b = y.at(i);
    if (Number.isFinite(a)) {
      const m = Math.abs(a);
      if (m > scale) scale = m;
      if (Number.isFinite(b)) {
        const d = Math.abs(a - b);
        if (d > maxAbs) maxAbs = d;
        sumDiff += d;
        sumAbs += m;
        continue;
      }
    } else nonFinite++;
    if (a === b || (Number.isNaN(a) && Number.isNaN(b))) continue;
    if (first < 0) first = i;
    mismatches++;
  }
  return {
    maxRel: maxAbs / Math.max(scale, SCALE_FLOOR),
    meanRel: sumDiff / Math.max(sumAbs, SCALE_FLOOR),
    maxAbs,
    nonFinite,
    mismatches,
    mismatch: first < 0 ? null : describe(name, ref.dims, first, x.at(first), y.at(first), mismatches),
  };
}

/** The single figure: maxRel, or Infinity when the two do not match (mismatch); for tests and the benchmarks. */
export function relError(ref: TensorLike, out: TensorLike): number {
  const c = compareTensors(ref, out);
  return c.mismatch ? Infinity : c.maxRel;
}

/** Whether a comparison passes: no mismatch and maxRel within `tolerance`. */
export const withinTolerance = (c: Comparison, tolerance: number): boolean => !c.mismatch && c.maxRel <= tolerance;

/** The tensor's elements as numbers: float16 bits decoded, int64 as (possibly rounded) numbers, bool 0/1. */
function numbers(t: TensorLike): { length: number; at: (i: number) => number } {
  const data = t.data as ArrayLike<number | bigint | boolean>;
  const at: (i: number) => number =
    t.type === 'float16' && data instanceof Uint16Array ? (i) => fromHalfBits(data[i] as number)
    : typeof data[0] === 'number' ? (i) => data[i] as number
    : (i) => Number(data[i]);
  return { length: data.length, at };
}

function describe(name: string, dims: readonly number[], i: number, a: number, b: number, count: number): string {
  const at: number[] = [];
  for (let k = dims.length - 1, r = i; k >= 0; k--) {
    at.unshift(r % dims[k]);
    r = Math.floor(r / dims[k]);
  }
  const what = (v: number) => (Number.isNaN(v) ? 'NaN' : v === Infinity ? '+Inf' : v === -Infinity ? '-Inf' : String(v));
  const more = count > 1 ? ` (and ${count - 1} more position${count === 2 ? '' : 's'})` : '';
  return `${name}[${at.join(',')}]: the original has ${what(a)}, the compiled model ${what(b)}${more}`;
}
