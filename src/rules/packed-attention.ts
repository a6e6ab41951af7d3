import { DataType } from '../ir/dtype';
import { AttrType, Value } from '../ir/graph';
import { p } from '../rewrite/match';
import { defineRule } from '../rewrite/rule';
import { concatColumns, matrixRows } from '../ir/tensor';

const weight2d = (v: Value) => !!v.constant && v.constant.dtype === DataType.FLOAT && v.constant.dims.length === 2;
const projection = (x: string, w: string, capture: string) => p.op('MatMul', [p.any(x), p.any(w, weight2d)], { capture });

/** MultiHeadAttention of three projections (q, k, v) without bias Adds, each read only by the attention. */
const SELF_ATTENTION = p.op('MultiHeadAttention', [projection('xq', 'wq', 'q'), projection('xk', 'wk', 'k'), projection('xv', 'wv', 'v')], { domain: 'com.microsoft', capture: 'mha' });

/**
 * Self-attention whose q, k and v are projections of one tensor → com.microsoft Attention with the
 * three weights packed ([C, 3C]): the projections run inside the attention kernel, two dispatches fewer
 * per site than three MatMuls (or one MatMul and a Split). Cross-attention (k, v from another tensor) is
 * left to merge-projections. The rule set runs for webgpu, where each kernel is a dispatch.
 */
export const packedAttention = defineRule<{ heads: number; hidden: number; vHidden: number }>({
  name: 'packed-attention',
  description: 'MultiHeadAttention(x·Wq, x·Wk, x·Wv) → com.microsoft Attention(x, [Wq|Wk|Wv])',
  priority: 0,
  pattern: SELF_ATTENTION,
  site: 'mha',
  counter: 'packedAttention',
  label: '…packed (self)',
  emits: () => ['com.microsoft::Attention'],
  check(m, ctx) {
    const mha = m.nodes.mha;
    if (mha.inputs.slice(4).some((v) => v && !v.omitted)) return 'has a mask or past input';
    const bias = mha.inputs[3] && !mha.inputs[3].omitted ? mha.inputs[3] : null;
    if (bias && !(bias.constant?.dtype === DataType.FLOAT && bias.constant.dims.length === 1)) return 'its q/k/v bias is not a constant';
    if (m.values.xq !== m.values.xk || m.values.xq !== m.values.xv) return 'q, k and v do not project one tensor (cross-attention)';
    const [wq, wk, wv] = [m.values.wq, m.values.wk, m.values.wv].map((v) => v.constant!);
    if (wq.dims[0] !== wk.dims[0] || wq.dims[0] !== wv.dims[0]) return 'the projections take different input widths';
    if (wq.dims[1] !== wk.dims[1]) return 'q and k have different widths';
    if (bias && bias.constant!.dims[0] !== 2 * wq.dims[1] + wv.dims[1]) return 'its q/k/v bias does not match the projections\' widths';
    const xs = ctx.shapes.get(m.values.xq);
    if (xs.dtype !== DataType.FLOAT || xs.shape?.length !== 3) return 'the input is not a float32 [batch, sequence, hidden] tensor';
    return ctx.target.accepts('com.microsoft', 'Attention', { dtype: xs.dtype }) ?? { heads: mha.int('num_heads')!, hidden: wq.dims[1], vHidden: wv.dims[1] };
  },
  rewrite(m, s, rw) {
    const mha = m.nodes.mha;
    const [wq, wk, wv] = [m.values.wq, m.values.wk, m.values.wv].map((v) => v.constant!);
    const rows = wq.dims[0];
    const width = 2 * s.hidden + s.vHidden;
    const widths = [s.hidden, s.hidden, s.vHidden];
    const name = mha.name;
    const packed = concatColumns(`${name}_qkv_weight`, rows, [wq, wk, wv].map((t, i) => ({ width: widths[i], rows: matrixRows(t, widths[i]) })), [wq, wk, wv]);
    const w = rw.constant(`${name}_qkv_weight`, packed);
    // the attention's own q/k/v bias (attention-bias moved the projections' there), else zeros
    const given = mha.inputs[3] && !mha.inputs[3].omitted ? mha.inputs[3].constant! : null;
    const b = given ? mha.inputs[3]! : rw.floats(`${name}_qkv_bias`, [width], new Float32Array(width));
    const scale = mha.attrs.get('scale');
    const attrs = [
      { name: 'num_heads', type: AttrType.INT as const, value: s.heads },
      ...(s.vHidden !== s.hidden ? [{ name: 'qkv_hidden_sizes', type: AttrType.INTS as const, value: widths }] : []),
      ...(scale ? [{ name: 'scale', type: AttrType.FLOAT as const, value: mha.float('scale', 0) }] : []),
    ];
    const node = rw.add({ op: 'Attention', domain: 'com.microsoft', inputs: [m.values.xq, w, b], outputs: [`${m.values.mha.name}_packed`], name: `${name}_Packed`, attrs });
    rw.replace(m.values.mha, node.outputs[0]);
    return `Attention (${s.heads} heads, qkv ${widths.join('/')})`;
  },
});
