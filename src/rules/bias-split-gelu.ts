import { Value } from '../ir/graph';
import { constInts } from '../ir/query';
import { Match, p } from '../rewrite/match';
import { defineRule } from '../rewrite/rule';
import { erfGelu } from './gelu';

/** h + bias, with a 1-D constant bias: the projection before the split. */
const BIASED = p.op('Add', [p.any('h'), p.any('bias', (v) => !!v.constant && v.constant.dims.length === 1)], { commutative: true, capture: 'whole', singleUse: false });

/** left · gelu(right), left and right the two outputs of one Split of h + bias on the last axis. */
const BY_SPLIT = p.op('Mul', [
  p.op('Split', [BIASED], { capture: 'splitL', singleUse: false }),
  erfGelu(p.op('Split', [p.any('whole')], { capture: 'splitR', singleUse: false })),
], { commutative: true, capture: 'root' });

/** left · gelu(right), left and right Slices [0, half) and [half, end) of h + bias on the last axis. */
const BY_SLICE = p.op('Mul', [
  p.op('Slice', [BIASED, p.any('ls'), p.any('le'), p.any('la')], { capture: 'sliceL' }),
  erfGelu(p.op('Slice', [p.any('whole'), p.any('rs'), p.any('re'), p.any('ra')], { capture: 'sliceR', singleUse: false })),
], { commutative: true, capture: 'root' });

const lastAxis = (axis: number | undefined) => axis === -1 || axis === 2;

/** Null when left and right are the first and second halves of `whole`'s last axis, else why not. */
function halves(m: Match, hidden: number): string | null {
  const { splitL, splitR, sliceL, sliceR } = m.nodes;
  if (splitL) {
    if (splitL !== splitR || splitL.outputs.length !== 2 || m.values.splitL !== splitL.outputs[0] || m.values.splitR !== splitL.outputs[1]) return 'the gate and the GELU input are not the two outputs of one Split';
    const sizes = constInts(splitL.inputs[1]) ?? splitL.ints('split') ?? null;
    if (sizes && sizes[0] !== sizes[1]) return 'the Split is not into halves';
    return lastAxis(splitL.int('axis', 0)) ? null : 'the Split is not on the last axis';
  }
  const [ls, le, la, rs, re, ra] = ['ls', 'le', 'la', 'rs', 're', 'ra'].map((k) => constInts(m.values[k]));
  if (!sliceL || !sliceR || !ls || !le || !la || !rs || !re || !ra || la[0] !== ra[0] || !lastAxis(la[0])) return 'the gate and the GELU input are not slices of the last axis';
  if (ls[0] !== 0 || le[0] !== rs[0] || re[0] < 2 * le[0]) return 'the slices are not the two halves of the last axis';
  return le[0] * 2 === hidden ? null : 'the slices are not the two halves of the last axis';
}

/**
 * The GEGLU feed-forward head: (h + bias) split in halves, left · gelu(right) → com.microsoft
 * BiasSplitGelu(h, bias), where the target's kernel takes the hidden size.
 */
export const biasSplitGelu = defineRule<{ h: Value; bias: Value }>({
  name: 'bias-split-gelu',
  description: 'GEGLU: (h + bias) split in halves, left·gelu(right) → com.microsoft BiasSplitGelu',
  priority: 10,
  pattern: p.alt(BY_SPLIT, BY_SLICE),
  site: 'erf',
  counter: 'biasSplitGelu',
  label: 'bias split gelu',
  emits: () => ['com.microsoft::BiasSplitGelu'],
  check(m, ctx) {
    const h = m.values.h;
    const info = ctx.shapes.get(h);
    const hidden = info.shape?.[info.shape.length - 1]?.value ?? null;
    if (!info.shape || info.shape.length !== 3) return `BiasSplitGelu takes a 3-D input (got [${info.shape?.map(String).join(', ') ?? '?'}])`;
    const kernel = ctx.target.accepts('com.microsoft', 'BiasSplitGelu', { dtype: info.dtype, sizes: { hidden } });
    if (kernel) return kernel;
    return halves(m, hidden!) ?? { h, bias: m.values.bias };
  },
  rewrite(m, s, rw) {
    const out = m.values.root;
    const n = rw.add({ op: 'BiasSplitGelu', domain: 'com.microsoft', inputs: [s.h, s.bias], outputs: [`${out.name}_bsg`], name: `${m.nodes.root.name}_BiasSplitGelu` });
    rw.replace(out, n.outputs[0]);
    return 'BiasSplitGelu';
  },
});
