import { DataType } from './dtype';
import { Node, Value } from './graph';

/**
 * Questions every pass and rule asks of nodes and constants, answered in one place so that they answer
 * alike: which domain an op is in, what a small constant holds, whether an op may be removed or merged.
 */

/** ONNX's default domain is spelled '' or 'ai.onnx'. */
export const isDefaultDomain = (n: Node): boolean => n.domain === '' || n.domain === 'ai.onnx';

/** Ops whose result differs from call to call: never folded, never merged with a twin. */
const NONDETERMINISTIC = new Set(['RandomNormal', 'RandomUniform', 'RandomNormalLike', 'RandomUniformLike', 'Multinomial', 'Bernoulli']);
/** Checked by name in any domain: a custom op called RandomNormal is taken at its word. */
export const isNondeterministic = (n: Node): boolean => NONDETERMINISTIC.has(n.opType);

/** Largest constant read whole by these helpers: a pattern predicate must stay cheap. */
const SMALL_BYTES = 1 << 16;

/** The elements of a small numeric constant as numbers (int64 beyond 2^53 lose precision), else null. */
function constValues(v: Value | null | undefined): number[] | null {
  const t = v?.constant;
  if (!t || t.data.kind === 'strings' || t.byteLength > SMALL_BYTES) return null;
  return Array.from(t.values() as ArrayLike<number | bigint>, Number);
}

/** The single value of a constant whose elements are all equal (within 1e-6 relative), else null. */
export function uniformConst(v: Value | null | undefined): number | null {
  const vals = constValues(v);
  if (!vals || !vals.length) return null;
  return vals.every((x) => Math.abs(x - vals[0]) <= 1e-6 * Math.max(1, Math.abs(vals[0]))) ? vals[0] : null;
}

/** A constant 1-D (or scalar) integer list, such as axes, starts or split sizes, else null. */
export function constInts(v: Value | null | undefined): number[] | null {
  const t = v?.constant;
  if (!t || t.dims.length > 1) return null;
  const vals = constValues(v);
  return vals && vals.every(Number.isInteger) ? vals : null;
}

/**
 * The channel count of a float constant that holds one value per channel of an NCHW tensor, broadcast
 * over the rest: [C, 1, 1] or [1, C, 1, 1]. Null for anything else.
 */
export function perChannelCount(v: Value | null | undefined): number | null {
  const t = v?.constant;
  if (!t || t.dtype !== DataType.FLOAT) return null;
  const d = t.dims;
  if (d.length === 3 && d[1] === 1 && d[2] === 1) return d[0];
  if (d.length === 4 && d[0] === 1 && d[2] === 1 && d[3] === 1) return d[1];
  return null;
}
