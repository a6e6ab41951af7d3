import { Sym } from './symbolic';

/**
 * Small facts rules and passes keep re-deriving about dims, axes and permutations, in one place:
 * a named-dims check (as onnxscript's `check_shape(bindings, v, ["B", "S", "H", "D"])`), shape
 * equality, axis normalisation and the NCHW ⇄ NHWC permutations.
 */

/** Moves NCHW to NHWC (Transpose perm), and back. */
export const TO_NHWC = [0, 2, 3, 1];
export const TO_NCHW = [0, 3, 1, 2];

export const samePerm = (a: readonly number[] | null | undefined, b: readonly number[]): boolean => !!a && a.length === b.length && a.every((x, i) => x === b[i]);

/** An axis attribute as a non-negative index into a tensor of `rank` dims (ONNX counts negatives from the end). */
export const normalizeAxis = (axis: number, rank: number): number => (axis < 0 ? axis + rank : axis);

/** Two shapes with provably equal dims (false when either is unknown). */
export function sameDims(a: readonly Sym[] | null | undefined, b: readonly Sym[] | null | undefined): boolean {
  return !!a && !!b && a.length === b.length && a.every((d, i) => d.equals(b[i]));
}

/**
 * Check `shape` against named dims: one entry per dim, a number must be that size, a name binds the dim
 * the first time it is seen (in `bindings`, shared across calls) and must be provably equal to it after.
 * Returns null, or a sentence naming `what` and the first dim that does not fit.
 */
export function checkDims(shape: readonly Sym[] | null | undefined, dims: readonly (string | number)[], bindings: Map<string, Sym>, what: string): string | null {
  if (!shape) return `${what} has an unknown shape`;
  if (shape.length !== dims.length) return `${what} is ${shape.length}-D, not [${dims.join(', ')}]`;
  for (let i = 0; i < dims.length; i++) {
    const want = dims[i];
    if (typeof want === 'number') {
      if (shape[i].value !== want) return `${what} dim ${i} is ${shape[i]}, not ${want}`;
      continue;
    }
    const bound = bindings.get(want);
    if (!bound) bindings.set(want, shape[i]);
    else if (!bound.equals(shape[i])) return `${what} dim ${i} (${want}) is ${shape[i]}, not provably ${bound}`;
  }
  return null;
}
