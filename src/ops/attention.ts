import { DataType } from '../ir/dtype';
import { Node, Value } from '../ir/graph';
import { Sym } from '../ir/symbolic';
import { Emitter, int } from './emit';
import { everywhere, F32, F32_F16, LoweringError, OpRecord, TypeShape, UNKNOWN_TYPE } from './record';

/** q [B, S, N·H] with v's width: MultiHeadAttention and ai.onnx Attention with 3-D q/k/v. */
function attentionOutput(_n: Node, ins: TypeShape[]): TypeShape[] {
  const q = ins[0]?.shape;
  const v = ins[2]?.shape;
  return [{ dtype: ins[0]?.dtype ?? null, shape: q && v && q.length === 3 && v.length === 3 ? [q[0], q[1], v[2]] : null }];
}

/**
 * Per-head softmax(q·kᵀ·scale)·v of [B, S, N·H] q, k, v, merged back to [B, S, N·H] — the definition of
 * every attention op sdc emits, so each lowers to it.
 */
function attentionCore(e: Emitter, n: Node, query: Value, key: Value, value: Value, hidden: number | null, heads: number, scale: number, bias: Value | null = null): Value {
  if (!scale) {
    if (hidden === null) throw new LoweringError(`cannot lower ${n.opType} '${n.name}': its hidden size is unknown and it has no scale`);
    scale = 1 / Math.sqrt(hidden / heads);
  }
  const split = e.int64s('attn_split_heads', [0, 0, heads, -1]);
  const perHead = (x: Value) => e.transpose(e.one('Reshape', [x, split]), [0, 2, 1, 3]);
  const [q, k, v] = [perHead(query), perHead(key), perHead(value)];
  let scores = e.one('Mul', [e.one('MatMul', [q, e.transpose(k, [0, 1, 3, 2])]), e.constant('attn_scale', DataType.FLOAT, [], [scale])]);
  // an additive bias [B or 1, N or 1, S, T] after the scale, as the kernels add it
  if (bias) scores = e.one('Add', [scores, bias]);
  const probs = e.one('Softmax', [scores], [int('axis', -1)]);
  const ctxHeads = e.transpose(e.one('MatMul', [probs, v]), [0, 2, 1, 3]);
  return e.one('Reshape', [ctxHeads, e.int64s('attn_merge_heads', [0, 0, -1])]);
}

const lastDim = (s: Sym[] | null) => (s && typeof s[s.length - 1]?.value === 'number' ? s[s.length - 1].value : null);

/** Inputs 3.. of MultiHeadAttention; the lowering takes bias and attention_bias. */
const MHA_OPTIONAL = ['bias', 'key_padding_mask', 'attention_bias', 'past_key', 'past_value'];

export const MULTI_HEAD_ATTENTION: OpRecord = {
  op: 'com.microsoft::MultiHeadAttention',
  // bias [q | k | v] and attention_bias [B or 1, N or 1, S, T] (a causal or padding mask as an additive bias)
  // measured in single-op sessions on cpu and webgpu (SwiftShader); cuda from its kernel sources
  // (broadcast_attn_bias_dim_0/1).
  // unidirectional runs on cpu; the WebGPU kernel refuses it (ORT_ENFORCE in its constructor)
  kernels: {
    cpu: { dtypes: F32, options: ['bias', 'attention_bias', 'unidirectional'] },
    webgpu: { dtypes: F32_F16, options: ['bias', 'attention_bias'] },
    cuda: { dtypes: F32_F16, options: ['bias', 'attention_bias'] },
  },
  note: 'separate q, k, v; packed QKV/KV not on cpu; attention_bias must be 4-D with dims 2 and 3 exactly S and T',
  infer: attentionOutput,
  // The CPU runs the op itself; this lowering serves providers whose kernel is in doubt (the WebGPU
  // flash-attention path on SwiftShader), so the rest of the graph can still be checked on them.
  lower(g, n, ctx) {
    const extra = n.inputs.slice(3).findIndex((v, i) => v && !v.omitted && MHA_OPTIONAL[i] !== 'attention_bias' && MHA_OPTIONAL[i] !== 'bias');
    if (extra >= 0) throw new LoweringError(`cannot lower MultiHeadAttention '${n.name}': its ${MHA_OPTIONAL[extra] ?? `input ${extra + 3}`} input is not supported`);
    if (n.int('unidirectional', 0)) throw new LoweringError(`cannot lower MultiHeadAttention '${n.name}': unidirectional is not supported`);
    if (ctx.shapeOf(n.inputs[1]!)?.length !== 3) throw new LoweringError(`cannot lower MultiHeadAttention '${n.name}': packed key/value are not supported`);
    const given = (i: number) => (n.inputs[i] && !n.inputs[i]!.omitted ? n.inputs[i]! : null);
    const e = new Emitter(g, n);
    let [q, k, v] = [n.inputs[0]!, n.inputs[1]!, n.inputs[2]!];
    const qkvBias = given(3);
    if (qkvBias) {
      // [q | k | v] biases, q's and k's as wide as q, v's the rest
      const hidden = lastDim(ctx.shapeOf(q));
      const vHidden = lastDim(ctx.shapeOf(v));
      if (hidden === null || vHidden === null) throw new LoweringError(`cannot lower MultiHeadAttention '${n.name}': its bias needs q's and v's widths`);
      const [bq, bk, bv] = e.op('Split', [qkvBias, e.int64s('attn_bias_sizes', [hidden, hidden, vHidden])], [int('axis', 0)], '', 3);
      [q, k, v] = [e.one('Add', [q, bq]), e.one('Add', [k, bk]), e.one('Add', [v, bv])];
    }
    return [attentionCore(e, n, q, k, v, lastDim(ctx.shapeOf(n.inputs[0]!)), n.int('num_heads')!, n.float('scale', 0), given(5))];
  },
};

export const ONNX_ATTENTION: OpRecord = {
  op: 'ai.onnx::Attention',
  // attn_mask [B or 1, N or 1, S, T] and is_causal: single-op sessions on cpu and webgpu (SwiftShader)
  kernels: {
    cpu: { dtypes: F32_F16, options: ['attn_mask', 'is_causal'] },
    webgpu: { dtypes: F32_F16, options: ['attn_mask', 'is_causal'] },
    cuda: { dtypes: F32_F16, options: ['attn_mask', 'is_causal'] },
  },
  note: 'opset 23+; webgpu coverage uneven',
  // 3-D q/k/v as sdc emits it (q_num_heads/kv_num_heads given); 4-D inputs keep q's shape with v's head size
  infer(n, ins) {
    const q = ins[0]?.shape;
    const v = ins[2]?.shape;
    if (q && v && q.length === 4 && v.length === 4) return [{ dtype: ins[0].dtype, shape: [q[0], q[1], q[2], v[3]] }];
    return attentionOutput(n, ins);
  },
  lower: 'cpu',
};

export const PACKED_ATTENTION: OpRecord = {
  op: 'com.microsoft::Attention',
  kernels: everywhere(F32, F32_F16),
  note: 'packed weight',
  infer(n, ins) {
    // packed weights [C, q+k+v]: the output has v's width
    const w = n.inputs[1]?.constant;
    const sizes = n.ints('qkv_hidden_sizes');
    const width = sizes?.[2] ?? (w && w.dims.length === 2 ? w.dims[1] / 3 : null);
    const q = ins[0]?.shape;
    return [{ dtype: ins[0]?.dtype ?? null, shape: q && q.length === 3 && width ? [q[0], q[1], Sym.const(width)] : null }, UNKNOWN_TYPE];
  },
  // x·W + b split into q, k, v, then the attention definition
  lower(g, n) {
    if (n.inputs.slice(3).some((v) => v && !v.omitted)) throw new LoweringError(`cannot lower Attention '${n.name}': only input, weights and bias are supported`);
    const w = n.inputs[1]?.constant;
    if (!w) throw new LoweringError(`cannot lower Attention '${n.name}': its weights are not a constant`);
    const sizes = n.ints('qkv_hidden_sizes') ?? [w.dims[1] / 3, w.dims[1] / 3, w.dims[1] / 3];
    const e = new Emitter(g, n);
    let qkv = e.one('MatMul', [n.inputs[0], n.inputs[1]]);
    if (n.inputs[2] && !n.inputs[2].omitted) qkv = e.one('Add', [qkv, n.inputs[2]]);
    const [q, k, v] = e.op('Split', [qkv, e.int64s('attn_sizes', sizes)], [int('axis', -1)], '', 3);
    return [attentionCore(e, n, q, k, v, sizes[0], n.int('num_heads')!, n.float('scale', 0)), null];
  },
};
