import { AttrType } from '../ir/graph';
import { p } from '../rewrite/match';
import { defineRule } from '../rewrite/rule';
import { transpose } from './group-norm';
import { samePerm, TO_NCHW } from '../ir/dims';


/** y · sigmoid(y) where y is a GroupNorm's result moved back to NCHW. */
const SILU = p.op('Mul', [
  p.op('Transpose', [p.op(['GroupNorm', 'SkipGroupNorm'], null, { domain: 'com.microsoft', capture: 'gn', where: (n, m) => m.values.gn === n.outputs[0] })], { capture: 't', singleUse: false }),
  p.op('Sigmoid', [p.any('t')]),
], { commutative: true, capture: 'root' });

/** A SiLU right after a GroupNorm (or SkipGroupNorm) runs inside the kernel: activation=1. */
export const groupNormSilu = defineRule<null>({
  name: 'group-norm-silu',
  description: 'GroupNorm followed by SiLU → the same GroupNorm with activation=1',
  priority: 0,
  pattern: SILU,
  site: 'gn',
  counter: 'withSilu',
  label: '…with SiLU',
  emits: () => ['com.microsoft::GroupNorm'],
  check(m) {
    const t = m.values.t;
    if (!samePerm(m.nodes.t.ints('perm'), TO_NCHW)) return 'the GroupNorm result is not moved back to NCHW before the SiLU';
    if (t.isGraphOutput || t.uses.length !== 2) return 'the GroupNorm result has readers besides the SiLU';
    if (m.nodes.gn.int('activation', 0) !== 0) return 'the GroupNorm already has an activation';
    return null;
  },
  rewrite(m, _facts, rw) {
    const gn = m.nodes.gn;
    const attrs = [...gn.attrs.values()].filter((a) => a.name !== 'activation');
    const fused = rw.add({ op: gn.opType, domain: gn.domain, inputs: [...gn.inputs], outputs: gn.outputs.map((o) => `${o.name}_silu`), name: `${gn.name}_silu`,
      attrs: [...attrs, { name: 'activation', type: AttrType.INT, value: 1 }] });
    gn.outputs.forEach((o, i) => {
      if (i === 0) return;
      if (o.omitted) fused.outputs[i].omitted = true;
      else rw.replace(o, fused.outputs[i]);
    });
    rw.replace(m.values.root, transpose(rw, fused.outputs[0], TO_NCHW, `${gn.name}_silu_nchw`));
    return `${gn.opType} + SiLU (activation=1)`;
  },
});
