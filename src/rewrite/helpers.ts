import { Value } from '../ir/graph';
import { uniformConst } from '../ir/query';
import { Pattern, p } from './match';

/** A constant whose every element is close to `x` (relative 1e-5: float32 spellings of √2, 0.5, ...). */
export function constNear(capture: string, x: number): Pattern {
  return p.any(capture, (v: Value) => {
    const u = uniformConst(v);
    return u !== null && Math.abs(u - x) <= 1e-5 * Math.abs(x);
  });
}
