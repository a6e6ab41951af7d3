import { AttrType } from '../ir/graph';
import { p } from '../rewrite/match';
import { defineRule } from '../rewrite/rule';
import { normalizeAxis, sameDims } from '../ir/dims';

/** LayerNormalization of a residual sum; the sum may have other readers (the next residual). */
const RESIDUAL = p.op('LayerNormalization', [p.op('Add', [p.any('a'), p.any('b')], { capture: 'add', singleUse: false }), p.any('gamma')], { capture: 'ln' });

/**
 * A residual Add feeding a LayerNormalization → com.microsoft SkipLayerNormalization, whose fourth output
 * carries the sum on to the sum's other readers.
 */
export const skipLayerNorm = defineRule<null>({
  name: 'skip-layer-norm',
  description: 'residual Add + LayerNormalization → com.microsoft SkipLayerNormalization (sum passed on)',
  priority: 0,
  pattern: RESIDUAL,
  site: 'ln',
  counter: 'skipLayerNorm',
  label: 'skip layer norm',
  emits: () => ['com.microsoft::SkipLayerNormalization'],
  check(m, ctx) {
    const ln = m.nodes.ln;
    const { a, b } = m.values;
    if (ln.outputs.slice(1).some((o) => !o.omitted && (o.uses.length || o.isGraphOutput))) return 'mean/inv_std outputs are used';
    const sa = ctx.shapes.get(a).shape;
    const sb = ctx.shapes.get(b).shape;
    const r = sa?.length;
    if (r !== 3 || normalizeAxis(ln.int('axis', -1), r) !== 2) return 'SkipLayerNormalization normalizes the last axis of 3-D input';
    if (!sameDims(sa, sb)) return 'the residual operands do not have the same shape';
    const kernel = ctx.target.accepts('com.microsoft', 'SkipLayerNormalization', { dtype: ctx.shapes.get(a).dtype });
    if (kernel) return kernel;
    if (!ln.inputs[1]?.constant || (ln.inputs[2] && !ln.inputs[2].constant)) return 'gamma/beta are not constant';
    return null;
  },
  rewrite(m, _facts, rw) {
    const ln = m.nodes.ln;
    const sum = m.values.add;
    const passedOn = sum.uses.some((u) => u.node !== ln) || sum.isGraphOutput;
    const n = rw.add({ op: 'SkipLayerNormalization', domain: 'com.microsoft', inputs: [m.values.a, m.values.b, ln.inputs[1], ln.inputs[2] ?? null],
      outputs: [`${ln.name}_out`, `${ln.name}_mean`, `${ln.name}_invstd`, `${ln.name}_sum`], name: `${ln.name}_SkipLayerNormalization`,
      attrs: [{ name: 'epsilon', type: AttrType.FLOAT, value: ln.float('epsilon', 1e-5) }] });
    n.outputs[1].omitted = true;
    n.outputs[2].omitted = true;
    rw.replace(ln.outputs[0], n.outputs[0]);
    if (passedOn) rw.replace(sum, n.outputs[3]);
    else n.outputs[3].omitted = true;
    return `SkipLayerNormalization${passedOn ? ' (sum passed on)' : ''}`;
  },
});
