import { DataType } from '../ir/dtype';
import { Value } from '../ir/graph';
import { p } from '../rewrite/match';
import { defineRule } from '../rewrite/rule';

const weight2d = (v: Value) => !!v.constant && v.constant.dtype === DataType.FLOAT && v.constant.dims.length === 2;
const bias1d = (v: Value) => !!v.constant && v.constant.dtype === DataType.FLOAT && v.constant.dims.length === 1;

/** x·W + b with constant W and b, the Add read only by the attention. */
const projection = (r: string) => p.op('Add', [p.op('MatMul', [p.any(`x${r}`), p.any(`w${r}`, weight2d)], { capture: `m${r}` }), p.any(`b${r}`, bias1d)], { commutative: true });

const BIASED = p.op('MultiHeadAttention', [projection('q'), projection('k'), projection('v')], { domain: 'com.microsoft', capture: 'mha' });

/** MultiHeadAttention's inputs after q, k, v: the packed q/k/v bias, then the ones this rule keeps. */
const BIAS_INPUT = 3;

/**
 * The projections' biases (CLIP's and the VAE's q/k/v Linear layers have them; the UNet's do not) moved
 * into MultiHeadAttention's packed `bias` input [q | k | v]: the kernel adds them while it lays out the
 * heads, three elementwise ops fewer per site, and on webgpu the self-attention then packs into one
 * com.microsoft Attention with that bias.
 */
export const attentionBias = defineRule<{ bias: Float32Array }>({
  name: 'attention-bias',
  description: 'MultiHeadAttention(x·Wq + bq, x·Wk + bk, x·Wv + bv) → MultiHeadAttention(x·Wq, x·Wk, x·Wv, bias=[bq|bk|bv])',
  priority: 0,
  pattern: BIASED,
  site: 'mha',
  counter: 'attentionBias',
  label: '…qkv bias in',
  emits: () => ['com.microsoft::MultiHeadAttention'],
  check(m, ctx) {
    const mha = m.nodes.mha;
    if (mha.inputs[BIAS_INPUT] && !mha.inputs[BIAS_INPUT]!.omitted) return 'already has a bias';
    const parts = (['q', 'k', 'v'] as const).map((r) => ({ w: m.values[`w${r}`].constant!, b: m.values[`b${r}`].constant! }));
    const bad = parts.findIndex(({ w, b }) => b.dims[0] !== w.dims[1]);
    if (bad >= 0) return `the ${'qkv'[bad]} bias does not have one value per projected channel`;
    if (parts[0].b.dims[0] !== parts[1].b.dims[0]) return 'q and k have different widths';
    const why = ctx.target.accepts('com.microsoft', 'MultiHeadAttention', { dtype: DataType.FLOAT, options: ['bias'] });
    if (why) return why;
    const bias = new Float32Array(parts.reduce((n, { b }) => n + b.dims[0], 0));
    let at = 0;
    for (const { b } of parts) {
      bias.set(b.values() as Float32Array, at);
      at += b.dims[0];
    }
    return { bias };
  },
  rewrite(m, s, rw) {
    const mha = m.nodes.mha;
    const bias = rw.floats(`${mha.name}_qkv_bias`, [s.bias.length], s.bias);
    const rest = mha.inputs.slice(BIAS_INPUT + 1);
    const node = rw.add({
      op: 'MultiHeadAttention', domain: 'com.microsoft', name: `${mha.name}_biased`, outputs: [`${m.values.mha.name}_biased`],
      inputs: [m.values.mq, m.values.mk, m.values.mv, bias, ...rest], attrs: [...mha.attrs.values()],
    });
    rw.replace(m.values.mha, node.outputs[0]);
    return `bias [${s.bias.length}] into MultiHeadAttention`;
  },
});
