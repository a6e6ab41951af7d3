import { Value } from '../ir/graph';
import { p } from '../rewrite/match';
import { defineRule } from '../rewrite/rule';
import { transpose } from './group-norm';
import { sameDims, samePerm, TO_NCHW, TO_NHWC } from '../ir/dims';

/** GroupNorm of a residual sum a + b (moved to NHWC). */
const RESIDUAL = p.op('GroupNorm', [
  p.op('Transpose', [p.op('Add', [p.any('a'), p.any('b')], { capture: 'add', singleUse: false })], { capture: 't' }),
  p.any('gamma'),
  p.any('beta'),
], { domain: 'com.microsoft', capture: 'gn' });

/**
 * A GroupNorm of a residual sum becomes SkipGroupNorm: the sum is computed in the same kernel and handed
 * on, through its second output, to the sum's other readers. Both operands must have the full shape.
 */
export const skipGroupNorm = defineRule<{ a: Value; b: Value }>({
  name: 'skip-group-norm',
  description: 'GroupNorm of a residual sum → com.microsoft SkipGroupNorm (sum passed on)',
  priority: 0,
  pattern: RESIDUAL,
  site: 'gn',
  counter: 'skipGroupNorm',
  label: '…of a residual sum',
  emits: () => ['com.microsoft::SkipGroupNorm'],
  check(m, ctx) {
    if (!samePerm(m.nodes.t.ints('perm'), TO_NHWC)) return 'the GroupNorm input is not an NCHW tensor moved to NHWC';
    const { a, b } = m.values;
    const sa = a.constant ? null : ctx.shapes.get(a).shape;
    const sb = b.constant ? null : ctx.shapes.get(b).shape;
    if (sa?.length !== 4 || !sameDims(sa, sb)) return 'the residual operands do not both have the input\'s full shape';
    return ctx.target.accepts('com.microsoft', 'SkipGroupNorm', { dtype: ctx.shapes.get(a).dtype, layout: 'NHWC' }) ?? { a, b };
  },
  rewrite(m, { a, b }, rw) {
    const gn = m.nodes.gn;
    const sum = m.values.add;
    const others = sum.uses.filter((u) => u.node !== m.nodes.t);
    const node = rw.add({ op: 'SkipGroupNorm', domain: 'com.microsoft', inputs: [transpose(rw, a, TO_NHWC, `${gn.name}_a_nhwc`), m.values.gamma, m.values.beta, transpose(rw, b, TO_NHWC, `${gn.name}_b_nhwc`)],
      outputs: [`${gn.name}_skip`, `${gn.name}_sum`], name: `${gn.name}_Skip`, attrs: [...gn.attrs.values()] });
    rw.replace(gn.outputs[0], node.outputs[0]);
    if (others.length || sum.isGraphOutput) rw.replace(sum, transpose(rw, node.outputs[1], TO_NCHW, `${gn.name}_sum_nchw`));
    else node.outputs[1].omitted = true;
    return `SkipGroupNorm${others.length ? ' (sum passed on)' : ''}`;
  },
});
