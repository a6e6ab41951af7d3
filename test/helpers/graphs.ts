import { ModelBuilder, float } from '../../src/ir/builder';
import { Value } from '../../src/ir/graph';
import { randomFloats } from './ort';

/** GroupNorm as torch exports it on x [2, 8, 4, 4], 4 groups, with an optional per-channel affine. */
export function exportedGroupNorm(o: { affine?: boolean; back?: 'shape' | 'flat'; channelsConst?: number } = {}): { b: ModelBuilder; x: Value; y: Value } {
  const b = new ModelBuilder(17);
  const x = b.input('x', [2, 8, 4, 4]);
  const r = b.op('Reshape', [x, b.ints('g', [0, 4, -1])]);
  const inorm = b.op('InstanceNormalization', [r, b.const('s', [4], [1.5, 0.5, 1, 2]), b.const('bias', [4], [0.1, -0.2, 0, 0.3])], { epsilon: float(1e-5) });
  let y: Value = b.op('Reshape', [inorm, o.back === 'flat' ? b.ints('back', [0, 8, 16]) : b.op('Shape', [x])]);
  if (o.affine) {
    const c = o.channelsConst ?? 8;
    y = b.op('Mul', [y, b.const('gamma', [c, 1, 1], Array.from(randomFloats(c, 3)))]);
    y = b.op('Add', [y, b.const('beta', [c, 1, 1], Array.from(randomFloats(c, 4)))]);
  }
  return { b, x, y };
}

/** y = x · ½ · (1 + erf(x/√2)) in one of the three association orders exporters write. */
export function erfGeluGraph(b: ModelBuilder, x: Value, form: 0 | 1 | 2, tag = ''): Value {
  const erfTerm = b.op('Add', [b.op('Erf', [b.op('Div', [x, b.scalar(`sqrt2${tag}`, Math.SQRT2)])]), b.scalar(`one${tag}`, 1)]);
  const half = b.scalar(`half${tag}`, 0.5);
  if (form === 0) return b.op('Mul', [b.op('Mul', [x, erfTerm]), half]);
  if (form === 1) return b.op('Mul', [x, b.op('Mul', [half, erfTerm])]);
  return b.op('Mul', [b.op('Mul', [x, half]), erfTerm]);
}
