import { Node, Value } from '../ir/graph';
import { ShapeLookup } from './shapes';
import { Sym } from '../ir/symbolic';

/**
 * Layout tracking through pure data-movement ops. A tensor is described as axes, each a row-major group
 * of named factors of a source tensor: [B,S,C] reshaped to [B,S,8,40] is [[B],[S],[C.0],[C.1]]; a
 * transpose permutes axes; a reshape regroups the flat factor list, splitting a factor when a target dim
 * divides it. Two spellings of the same head split (4-D transposes, 3-D batched heads, dynamo's
 * round trips) end as the same factor layout, which is what attention fusion compares.
 */
interface Factor {
  id: string;
  size: Sym;
}
export type Layout = Factor[][];

export function sourceLayout(shape: Sym[], names: string[]): Layout {
  return shape.map((d, i) => [{ id: names[i], size: d }]);
}

/** Is `perm` a reordering of 0..rank-1? */
function isPermutation(perm: number[], rank: number): boolean {
  return perm.length === rank && [...perm].sort((a, b) => a - b).every((p, i) => p === i);
}

function transposeLayout(l: Layout, perm: number[]): Layout | null {
  if (!isPermutation(perm, l.length)) return null;
  return perm.map((p) => l[p]);
}

const product = (fs: Factor[]) => fs.reduce((a, f) => a.mul(f.size), Sym.const(1));


/** Regroup the factors into the target dims; null when a dim cuts through a factor in a way we cannot name. */
function reshapeLayout(l: Layout, target: Sym[]): Layout | null {
  // Size-1 factors (batch 1 in a static model) stay in the flow so that a dim keeps its name; a target
  // dim of 1 takes one if it is next, and leftovers of size 1 may be dropped.
  const flat = l.flat();
  const out: Layout = [];
  for (const t of target) {
    const group: Factor[] = [];
    if (t.value === 1) {
      if (flat.length && flat[0].size.value === 1) group.push(flat.shift()!);
      out.push(group);
      continue;
    }
    while (!(group.length > 0 && product(group).equals(t))) {
      const f = flat.shift();
      if (!f || group.length > 5) return null;
      const prod = product(group);
      if (prod.mul(f.size).equals(t)) {
        group.push(f);
        // a size-1 factor right after still belongs to no later dim only if the next target takes it
        break;
      }
      const need = t.value !== null && prod.value !== null ? t.value / prod.value : null;
      const fs = f.size.value;
      if (need !== null && fs !== null) {
        if (fs < need && need % fs === 0) group.push(f); // more factors to come
        else if (fs > need && Number.isInteger(need) && fs % need === 0) {
          // C → C.0 (outer, `need` long) and C.1 (inner, the rest): row-major order makes this exact
          group.push({ id: `${f.id}.0`, size: Sym.const(need) });
          flat.unshift({ id: `${f.id}.1`, size: Sym.const(fs / need) });
        } else return null;
      } else {
        group.push(f); // symbolic: keep taking factors until the product is exactly the target
      }
    }
    out.push(group);
  }
  return flat.every((f) => f.size.value === 1) ? out : null;
}

/** A pure data-movement step between a source and a use: reshape, transpose, or a scalar scale. */
export interface Step {
  node: Node;
  /** Multiplies the values by this (Mul/Div by a scalar constant); layout steps have 1. */
  scale: number;
}

const scalarConst = (v: Value | null): number | null => {
  const t = v?.constant;
  if (!t || t.size !== 1 || t.data.kind === 'strings') return null;
  const x = Number(t.values()[0]);
  return Number.isFinite(x) ? x : null;
};

/** For a Mul/Div by a scalar constant: [the other input's index, the factor]; else null. */
export function scalarScale(n: Node): [number, number] | null {
  if (n.domain !== '' && n.domain !== 'ai.onnx') return null;
  if (n.opType === 'Mul') {
    const a = scalarConst(n.inputs[1]);
    if (a !== null) return [0, a];
    const b = scalarConst(n.inputs[0]);
    if (b !== null) return [1, b];
  }
  if (n.opType === 'Div') {
    const a = scalarConst(n.inputs[1]);
    if (a !== null && a !== 0) return [0, 1 / a];
  }
  return null;
}

/**
 * Walk back from `v` through Reshape/Transpose/scalar scaling to the first value something else
 * produces. Returns that source and the steps in forward order. Intermediate values may have other
 * readers (a Shape computing a reshape target): the caller checks what really dies after a rewrite.
 */
export function traceBack(v: Value, max = 12): { source: Value; steps: Step[] } {
  const steps: Step[] = [];
  let cur = v;
  for (let i = 0; i < max; i++) {
    const n = cur.producer;
    if (!n || (cur !== v && cur.isGraphOutput)) break;
    if (n.domain !== '' && n.domain !== 'ai.onnx') break;
    // an omitted input (a damaged or hand-made graph) ends the chain here, as any other producer would
    const from = n.opType === 'Reshape' || n.opType === 'Transpose' ? [0, 1] : scalarScale(n);
    const next = from ? n.inputs[from[0]] : null;
    if (!from || !next) break;
    steps.unshift({ node: n, scale: from[1] });
    cur = next;
  }
  return { source: cur, steps };
}

/** Apply steps to a layout; returns the final layout and the product of the scales, or null. */
export function replay(l: Layout, steps: Step[], sa: ShapeLookup): { layout: Layout; scale: number } | null {
  let cur: Layout | null = l;
  let scale = 1;
  for (const s of steps) {
    if (!cur) return null;
    if (s.node.opType === 'Transpose') {
      const perm = s.node.ints('perm') ?? cur.map((_, i) => cur!.length - 1 - i);
      cur = transposeLayout(cur, perm);
    } else if (s.node.opType === 'Reshape') {
      const shape = sa.get(s.node.outputs[0]).shape;
      cur = shape ? reshapeLayout(cur, shape) : null;
    } else {
      scale *= s.scale;
    }
  }
  return cur ? { layout: cur, scale } : null;
}

/** Layout as ids, e.g. [['B'],['C.0'],['S'],['C.1']] → "B|C.0|S|C.1" with '+' joining merged factors. */
export function layoutKey(l: Layout): string {
  return l.map((g) => g.map((f) => f.id).join('+')).join('|');
}
