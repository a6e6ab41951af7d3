import { Value } from '../ir/graph';
import { AttrType } from '../ir/graph';
import { uniformConst } from '../ir/query';
import { p } from '../rewrite/match';
import { defineRule } from '../rewrite/rule';

/** A one-element constant (a scalar or [1]): multiplying by it keeps the other operand's shape. */
const scalar = (v: Value) => !!v.constant && v.constant.size === 1 && v.constant.dims.length <= 1 && uniformConst(v) !== null;

/** x · sigmoid(α·x), both products in either order. */
const QUICK_GELU = p.op('Mul', [
  p.any('x'),
  p.op('Sigmoid', [p.op('Mul', [p.any('x'), p.any('alpha', scalar)], { commutative: true })], { capture: 'sigmoid' }),
], { commutative: true, capture: 'root' });

/**
 * CLIP's quick GELU, x·σ(1.702·x) (transformers' `quick_gelu`), → com.microsoft QuickGelu with the
 * constant as `alpha`. SiLU written as x·σ(x) has no inner product and is left alone.
 */
export const quickGelu = defineRule<{ alpha: number }>({
  name: 'quick-gelu',
  description: 'x·sigmoid(α·x) with a constant α → com.microsoft QuickGelu(alpha)',
  priority: 0,
  pattern: QUICK_GELU,
  site: 'sigmoid',
  counter: 'quickGelu',
  label: 'quick gelu',
  emits: () => ['com.microsoft::QuickGelu'],
  check(m, ctx) {
    const alpha = uniformConst(m.values.alpha)!;
    if (!Number.isFinite(alpha)) return `α is ${alpha}`;
    return ctx.target.accepts('com.microsoft', 'QuickGelu', { dtype: ctx.shapes.get(m.values.x).dtype }) ?? { alpha };
  },
  rewrite(m, s, rw) {
    const out = m.values.root;
    const n = rw.add({ op: 'QuickGelu', domain: 'com.microsoft', inputs: [m.values.x], outputs: [`${out.name}_quickgelu`], name: `${m.nodes.sigmoid.name}_QuickGelu`, attrs: [{ name: 'alpha', type: AttrType.FLOAT, value: s.alpha }] });
    rw.replace(out, n.outputs[0]);
    return `QuickGelu (alpha ${s.alpha.toPrecision(5)})`;
  },
});
