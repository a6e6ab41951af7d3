import { analyzeShapes } from '../analysis/shapes';
import { Graph, Node, Value } from '../ir/graph';
import { Pass, PassContext } from '../rewrite/pass';
import { Match, matchValue, p } from '../rewrite/match';
import { constNear } from '../rewrite/helpers';

/** 1 + erf(x/√2), with the division also spelled as a multiplication by 1/√2. */
const ERF_TERM = p.op('Add', [
  p.op('Erf', [p.alt(p.op('Div', [p.any('x'), constNear('c', Math.SQRT2)]), p.op('Mul', [p.any('x'), constNear('c', Math.SQRT1_2)], { commutative: true }))]),
  constNear('one', 1),
], { commutative: true });
const HALF = constNear('half', 0.5);

/** x · ½ · (1 + erf(x/√2)) in the three association orders exporters produce. */
export const GELU = p.alt(
  p.op('Mul', [p.op('Mul', [p.any('x'), ERF_TERM], { commutative: true }), HALF], { commutative: true, capture: 'root' }),
  p.op('Mul', [p.any('x'), p.op('Mul', [HALF, ERF_TERM], { commutative: true })], { commutative: true, capture: 'root' }),
  p.op('Mul', [p.op('Mul', [p.any('x'), HALF], { commutative: true }), ERF_TERM], { commutative: true, capture: 'root' }),
);

/** BiasSplitGelu's kernels (CUDA; WebGPU as verified on SD1.5) take these hidden sizes (2·inner dim). */
const BIAS_SPLIT_SIZES = new Set([2560, 5120, 10240]);

/**
 * Exact (erf) GELU → one Gelu op (ai.onnx Gelu at opset ≥ 20, else com.microsoft Gelu: every target).
 * On webgpu and cuda, the GEGLU feed-forward — (h + bias) split in halves, left · gelu(right) — becomes
 * com.microsoft BiasSplitGelu where the kernel supports the size.
 */
export const fuseGelu: Pass = {
  name: 'fuse-gelu',
  description: 'erf GELU → Gelu; GEGLU (bias, split, left·gelu(right)) → BiasSplitGelu on webgpu/cuda',
  targets: ['cpu', 'webgpu', 'cuda'],
  run(graph, ctx) {
    let gelu = 0;
    let biasSplit = 0;
    for (const erf of graph.nodes.filter((n) => n.opType === 'Erf')) {
      const m = findGelu(erf);
      if (!m) {
        ctx.explain(erf, 'skipped', 'Erf is not part of x·½·(1+erf(x/√2))');
        continue;
      }
      const split = biasSplitSite(graph, ctx, m);
      if (typeof split !== 'string') {
        biasSplit++;
        ctx.explain(erf, 'applied', 'BiasSplitGelu');
        continue;
      }
      const onnx = (ctx.model.opset('') ?? 0) >= 20;
      const lacks = onnx ? ctx.target.lacks('', 'Gelu') : ctx.target.lacks('com.microsoft', 'Gelu');
      if (lacks) {
        ctx.explain(erf, 'skipped', lacks);
        continue;
      }
      const out = m.values.root;
      const n = graph.addNode({ op: 'Gelu', domain: onnx ? '' : 'com.microsoft', inputs: [m.values.x], outputs: [`${out.name}_gelu`], name: `${erf.name}_Gelu` });
      if (!onnx) ctx.model.useDomain('com.microsoft');
      n.outputs[0].type = out.type;
      graph.replaceAllUsesWith(out, n.outputs[0]);
      gelu++;
      ctx.explain(erf, 'applied', `Gelu (${split})`);
    }
    if (gelu + biasSplit) graph.topoSort();
    return { changed: gelu + biasSplit > 0, counts: { gelu, biasSplitGelu: biasSplit } };
  },
};

/** The GELU this Erf belongs to: match from each Mul that could be the root. */
function findGelu(erf: Node): Match | null {
  const add = erf.outputs[0].uses[0]?.node;
  if (!add) return null;
  const seen = new Set<Value>();
  const frontier: Value[] = [add.outputs[0]];
  for (let depth = 0; depth < 3; depth++) {
    const next: Value[] = [];
    for (const v of frontier) {
      for (const u of v.uses) {
        if (u.node.opType !== 'Mul') continue;
        const out = u.node.outputs[0];
        if (seen.has(out)) continue;
        seen.add(out);
        const m = matchValue(GELU, out);
        if (m) return m;
        next.push(out);
      }
    }
    frontier.splice(0, frontier.length, ...next);
  }
  return null;
}

/**
 * left · gelu(right) where left and right are the two halves (Slice or Split on the last axis) of
 * h + bias: replace the whole feed-forward head by BiasSplitGelu(h, bias). Returns why not, or the node.
 */
function biasSplitSite(g: Graph, ctx: PassContext, m: Match): Node | string {
  if (ctx.target.name === 'cpu') return 'cpu has no BiasSplitGelu kernel';
  const lacks = ctx.target.lacks('com.microsoft', 'BiasSplitGelu');
  if (lacks) return lacks;
  const geluOut = m.values.root;
  if (geluOut.uses.length !== 1 || geluOut.uses[0].node.opType !== 'Mul') return 'GELU is not multiplied by a gate';
  const mul = geluOut.uses[0].node;
  const left = mul.inputs[0] === geluOut ? mul.inputs[1] : mul.inputs[0];
  const right = m.values.x;
  const halves = splitHalves(left, right);
  if (!halves) return 'the gate and the GELU input are not the two halves of one tensor';
  const { whole, half } = halves;
  const add = whole.producer;
  if (!add || add.opType !== 'Add') return 'the split tensor is not h + bias';
  const bi = add.inputs.findIndex((v) => !!v?.constant && v.constant.dims.length === 1);
  if (bi < 0) return 'no 1-D constant bias before the split';
  const h = add.inputs[1 - bi]!;
  const sa = analyzeShapes(ctx.model, g);
  const shape = sa.get(h).shape;
  const hidden = shape?.[shape.length - 1]?.value;
  if (!shape || shape.length !== 3 || hidden === null || hidden === undefined || !BIAS_SPLIT_SIZES.has(hidden)) {
    return `BiasSplitGelu kernels take a 3-D input of hidden size ${[...BIAS_SPLIT_SIZES].join('/')} (got [${shape?.map(String).join(', ') ?? '?'}])`;
  }
  if (half !== null && half * 2 !== hidden) return 'the slices are not the two halves of the last axis';
  const out = mul.outputs[0];
  const n = g.addNode({ op: 'BiasSplitGelu', domain: 'com.microsoft', inputs: [h, add.inputs[bi]], outputs: [`${out.name}_bsg`], name: `${mul.name}_BiasSplitGelu` });
  ctx.model.useDomain('com.microsoft');
  n.outputs[0].type = out.type;
  g.replaceAllUsesWith(out, n.outputs[0]);
  return n;
}

/** Are `left` and `right` the first and second halves of one tensor along its last axis? */
function splitHalves(left: Value | null, right: Value | null): { whole: Value; half: number | null } | null {
  if (!left || !right) return null;
  const a = left.producer;
  const b = right.producer;
  if (!a || !b) return null;
  if (a === b && a.opType === 'Split' && a.outputs.length === 2 && a.outputs[0] === left && a.outputs[1] === right) {
    const axis = a.int('axis', 0);
    const sizes = a.inputs[1]?.constant ? Array.from(a.inputs[1].constant.values() as BigInt64Array, Number) : a.ints('split') ?? null;
    if (sizes && sizes[0] !== sizes[1]) return null;
    return axis === -1 || axis === 2 ? { whole: a.inputs[0]!, half: null } : null;
  }
  if (a.opType === 'Slice' && b.opType === 'Slice' && a.inputs[0] === b.inputs[0]) {
    const nums = (n: Node, i: number) => (n.inputs[i]?.constant ? Array.from(n.inputs[i]!.constant!.values() as BigInt64Array, Number) : null);
    const [as, ae, aa] = [nums(a, 1), nums(a, 2), nums(a, 3)];
    const [bs, be, ba] = [nums(b, 1), nums(b, 2), nums(b, 3)];
    if (!as || !ae || !bs || !be || !aa || !ba || aa[0] !== ba[0] || (aa[0] !== -1 && aa[0] !== 2)) return null;
    if (as[0] === 0 && ae[0] === bs[0] && be[0] >= 2 * ae[0]) return { whole: a.inputs[0]!, half: ae[0] };
  }
  return null;
}

