import { Value } from '../ir/graph';
import { p } from '../rewrite/match';
import { defineRule } from '../rewrite/rule';
import { checkDims } from '../ir/dims';
import { Sym } from '../ir/symbolic';

/** (x + bias) + skip, in either order of the outer Add. */
const BIAS_ADD = p.op('Add', [
  p.op('Add', [p.any('x'), p.any('bias', (v) => !!v.constant && v.constant.dims.length === 1)], { commutative: true, capture: 'inner' }),
  p.any('skip'),
], { commutative: true, capture: 'root' });

/**
 * A projection's bias and the residual in one kernel: x + bias + skip → com.microsoft BiasAdd, for 3-D
 * tensors of the channel counts the target's kernel takes. Runs after the layer-norm rules, so residual
 * Adds feeding a LayerNorm are already SkipLayerNormalization.
 */
export const biasAdd = defineRule<{ channels: number }>({
  name: 'bias-add',
  description: 'x + bias + residual → com.microsoft BiasAdd (3-D)',
  priority: 0,
  pattern: BIAS_ADD,
  site: 'root',
  counter: 'biasAdd',
  label: 'bias add',
  emits: () => ['com.microsoft::BiasAdd'],
  check(m, ctx) {
    const dims = new Map<string, Sym>();
    const why = checkDims(ctx.shapes.get(m.values.x).shape, ['B', 'S', 'C'], dims, 'the input') ?? checkDims(ctx.shapes.get(m.values.skip).shape, ['B', 'S', 'C'], dims, 'the residual');
    if (why) return `input and residual are not the same 3-D shape: ${why}`;
    const c = dims.get('C')!.value;
    if (c !== null && m.values.bias.constant!.size !== c) return 'the bias does not have one value per channel';
    return ctx.target.accepts('com.microsoft', 'BiasAdd', { dtype: ctx.shapes.get(m.values.x).dtype, sizes: { channels: c } }) ?? { channels: c! };
  },
  rewrite(m, s, rw) {
    const out: Value = m.values.root;
    const b = rw.add({ op: 'BiasAdd', domain: 'com.microsoft', inputs: [m.values.x, m.values.bias, m.values.skip], outputs: [`${out.name}_biasadd`], name: `${m.nodes.root.name}_BiasAdd` });
    rw.replace(out, b.outputs[0]);
    return `BiasAdd (${s.channels} channels)`;
  },
});
