import { Node, Value } from '../ir/graph';
import { Pattern, p } from './match';

/** The single value of a constant tensor of any shape whose elements are all equal (within 1e-6), else null. */
export function uniformConst(v: Value | null): number | null {
  const t = v?.constant;
  if (!t || t.data.kind === 'strings' || t.byteLength > 1 << 16) return null;
  const vals = Array.from(t.values() as ArrayLike<number | bigint>, Number);
  if (!vals.length) return null;
  return vals.every((x) => Math.abs(x - vals[0]) <= 1e-6 * Math.max(1, Math.abs(vals[0]))) ? vals[0] : null;
}

/** A constant whose every element is close to `x` (relative 1e-5: float32 spellings of √2, 0.5, ...). */
export function constNear(capture: string, x: number): Pattern {
  return p.any(capture, (v) => {
    const u = uniformConst(v);
    return u !== null && Math.abs(u - x) <= 1e-5 * Math.abs(x);
  });
}

/** Every reader of the node's outputs is inside `keep` (so replacing the group loses nothing). */
export function onlyReadBy(n: Node, keep: Set<Node>): boolean {
  return n.outputs.every((o) => !o.isGraphOutput && o.uses.every((u) => keep.has(u.node)));
}
