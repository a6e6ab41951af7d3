import { analyzeShapes, ShapeAnalysis } from '../analysis/shapes';
import { AttrType, Graph, Node, Value } from '../ir/graph';
import { replaceOutput } from '../ir/edit';
import { isDefaultDomain } from '../ir/query';
import { Pass } from '../rewrite/pass';
import { normalizeAxis, sameDims } from '../ir/dims';

/** Ops that only move data: when the output shape equals the input shape they copy it unchanged. */
const SHAPE_ONLY = new Set(['Reshape', 'Flatten', 'Squeeze', 'Unsqueeze', 'Expand']);
/** x op c == x when every element of c is this value (and c does not broadcast x to a bigger shape). */
const NEUTRAL: Record<string, { value: number; either: boolean }> = {
  Add: { value: 0, either: true },
  Sub: { value: 0, either: false },
  Mul: { value: 1, either: true },
  Div: { value: 1, either: false },
  Pow: { value: 1, either: false },
};

/**
 * Remove what computes nothing: Identity, Dropout at inference, Cast to the same type, reshapes/expands
 * to the shape the value already has, identity Transposes, single-input Concat, x*1, x+0, x/1, x-0; and
 * merge Transpose∘Transpose and Reshape∘Reshape chains.
 */
export const eliminateNoops: Pass = {
  name: 'eliminate-noops',
  description: 'drop Identity, Dropout, same-type Cast, same-shape Reshape/Expand, x*1, x+0, x+zeros; merge Transpose and Reshape chains',
  run(graph, ctx) {
    const sa = analyzeShapes(ctx.model, graph);
    const counts: Record<string, number> = {};
    const bump = (k: string) => (counts[k] = (counts[k] ?? 0) + 1);
    for (const n of [...graph.nodes]) {
      if (!graph.contains(n) || !isDefaultDomain(n)) continue;
      const r = simplify(graph, n, sa);
      if (r) bump(r);
    }
    return { changed: Object.keys(counts).length > 0, counts };
  },
};

/** A finite-valued constant tensor (small constants, or ConstantOfShape of a finite value). */
function finiteFill(v: Value | null): number | null {
  if (!v) return null;
  const c = v.constant;
  if (c && c.byteLength <= 4096 && c.data.kind !== 'strings') {
    const vals = Array.from(c.values() as ArrayLike<number | bigint>, Number);
    return vals.length && vals.every((x) => x === vals[0] && Number.isFinite(x)) ? vals[0] : null;
  }
  const p = v.producer;
  if (p && p.opType === 'ConstantOfShape' && isDefaultDomain(p)) {
    const a = p.attr('value');
    if (!a) return 0;
    if (a.type !== AttrType.TENSOR || a.value.data.kind === 'strings') return null;
    const x = Number(a.value.values()[0]);
    return Number.isFinite(x) ? x : null;
  }
  return null;
}

/** Provably all zeros: a zero fill, or a finite fill times a zero fill. */
function isZeros(v: Value | null): boolean {
  if (!v) return false;
  if (finiteFill(v) === 0) return true;
  const p = v.producer;
  if (p && p.opType === 'Mul' && isDefaultDomain(p) && p.inputs.length === 2) {
    const [a, b] = [finiteFill(p.inputs[0]), finiteFill(p.inputs[1])];
    return a !== null && b !== null && (a === 0 || b === 0);
  }
  return false;
}

const sameShape = sameDims;

const constInts = (v: Value | null | undefined): number[] | null => (v?.constant && v.constant.size <= 8 ? Array.from(v.constant.values() as ArrayLike<number | bigint>, Number) : null);

/**
 * Slice(Concat(a, b, …)) whose range along the concat axis is exactly one input (step 1, static sizes) is
 * that input: exporters flip sin/cos halves of a timestep embedding this way (cat, then two slices).
 */
function sliceOfConcat(g: Graph, n: Node, sa: ShapeAnalysis): boolean {
  const cat = n.inputs[0]?.producer;
  if (!cat || cat.opType !== 'Concat' || !isDefaultDomain(cat) || n.inputs.length < 3) return false;
  const rank = sa.get(n.inputs[0]!).shape?.length;
  if (!rank) return false;
  const [starts, ends] = [constInts(n.inputs[1]), constInts(n.inputs[2])];
  const axes = n.inputs[3] ? constInts(n.inputs[3]) : starts?.map((_, i) => i) ?? null;
  const steps = n.inputs[4] ? constInts(n.inputs[4]) : null;
  if (!starts || !ends || !axes || starts.length !== 1 || (steps && steps[0] !== 1)) return false;
  const axis = normalizeAxis(cat.int('axis') ?? 0, rank);
  if (normalizeAxis(axes[0], rank) !== axis) return false;
  const sizes = cat.inputs.map((v) => (v ? sa.get(v).shape?.[axis]?.value ?? null : null));
  if (sizes.some((d) => d === null)) return false;
  const total = (sizes as number[]).reduce((a, b) => a + b, 0);
  const norm = (i: number) => Math.min(Math.max(i < 0 ? i + total : i, 0), total);
  const [from, to] = [norm(starts[0]), norm(ends[0])];
  let at = 0;
  for (let i = 0; i < cat.inputs.length; i++) {
    if (from === at && to === at + sizes[i]!) return replaceOutput(g, n, cat.inputs[i]!);
    at += sizes[i]!;
  }
  return false;
}

function simplify(g: Graph, n: Node, sa: ShapeAnalysis): string | null {
  const x = n.inputs[0];
  if (!x) return null;
  const out = n.outputs[0];
  switch (n.opType) {
    case 'Identity':
      return replaceOutput(g, n, x) ? 'identity' : null;
    case 'Dropout':
      if (n.outputs.length > 1 && !n.outputs[1].omitted && (n.outputs[1].uses.length || n.outputs[1].isGraphOutput)) return null;
      if (n.inputs[2] && !(n.inputs[2].constant && Number(n.inputs[2].constant.values()[0]) === 0)) return null;
      return replaceOutput(g, n, x) ? 'dropout' : null;
    case 'Cast': {
      const from = sa.get(x).dtype;
      return from !== null && from === n.int('to') && replaceOutput(g, n, x) ? 'cast' : null;
    }
    case 'Transpose': {
      const perm = n.ints('perm');
      if (perm && perm.every((p, i) => p === i)) return replaceOutput(g, n, x) ? 'transpose' : null;
      const prev = x.producer;
      if (perm && prev && prev.opType === 'Transpose' && isDefaultDomain(prev) && x.uses.length === 1 && !x.isGraphOutput) {
        const p1 = prev.ints('perm');
        if (!p1) return null;
        const merged = perm.map((p) => p1[p]);
        g.setInput(n, 0, prev.inputs[0]);
        n.setAttr({ name: 'perm', type: AttrType.INTS, value: merged });
        g.removeNode(prev);
        if (merged.every((p, i) => p === i)) replaceOutput(g, n, n.inputs[0]!);
        return 'transposeChain';
      }
      return null;
    }
    case 'Concat':
      return n.inputs.length === 1 && replaceOutput(g, n, x) ? 'concat' : null;
    case 'Slice':
      return sliceOfConcat(g, n, sa) ? 'sliceOfConcat' : null;
    case 'Reshape': {
      const prev = x.producer;
      const target = n.inputs[1]?.constant;
      // Reshape(Reshape(a)) == Reshape(a) when the outer target does not copy dims (no 0) from the middle.
      if (prev && prev.opType === 'Reshape' && isDefaultDomain(prev) && x.uses.length === 1 && !x.isGraphOutput && target && n.int('allowzero', 0) === 0) {
        const vals = Array.from(target.values() as BigInt64Array, Number);
        if (!vals.includes(0)) {
          g.setInput(n, 0, prev.inputs[0]);
          g.removeNode(prev);
          return 'reshapeChain';
        }
      }
      break;
    }
  }
  if (SHAPE_ONLY.has(n.opType) && n.outputs.length === 1 && sameShape(sa.get(x).shape, sa.get(out).shape)) {
    return replaceOutput(g, n, x) ? `${n.opType.toLowerCase()}` : null;
  }
  if ((n.opType === 'Add' || n.opType === 'Sub') && n.inputs.length === 2) {
    // x + zeros: baddbmm(beta=0) exports as Add(alpha·QKᵀ, Mul(ConstantOfShape(...), 0))
    for (const zi of n.opType === 'Add' ? [0, 1] : [1]) {
      const other = n.inputs[1 - zi];
      if (other && isZeros(n.inputs[zi]) && sameShape(sa.get(other).shape, sa.get(out).shape) && sa.get(other).dtype === sa.get(out).dtype) {
        if (replaceOutput(g, n, other)) return 'addZeros';
      }
    }
  }
  const neutral = NEUTRAL[n.opType];
  if (neutral && n.inputs.length === 2) {
    const sides = neutral.either ? [0, 1] : [1];
    for (const ci of sides) {
      const c = n.inputs[ci]?.constant;
      const other = n.inputs[1 - ci];
      if (!c || !other || c.byteLength > 4096 || c.data.kind === 'strings') continue;
      const info = sa.get(other);
      if (info.dtype === null || info.dtype !== c.dtype) continue;
      const vals = c.values();
      if (!Array.from(vals as ArrayLike<number | bigint>).every((v) => Number(v) === neutral.value)) continue;
      if (!sameShape(info.shape, sa.get(out).shape)) continue;
      if (replaceOutput(g, n, other)) return `${n.opType.toLowerCase()}By${neutral.value}`;
    }
  }
  return null;
}
