import { DataType } from '../ir/dtype';
import { AttrType, Graph, Node, Value } from '../ir/graph';
import { fromHalfBits } from '../ir/half';
import { Tensor } from '../ir/tensor';
import { readModel } from '../onnx/read';
import { writeModel } from '../onnx/write';
import { analyzeShapes, ShapeLookup } from '../analysis/shapes';

/**
 * The oracle for GPU-only outputs (`--check` and the tests): rewrite the contrib ops sdc emits for
 * webgpu/cuda (NhwcConv, GroupNorm NHWC, SkipGroupNorm, BiasSplitGelu, BiasAdd) back into ops the CPU
 * runs, with their documented semantics, so the transformed graph — transposes sunk, weights re-laid
 * out, affines and SiLU folded — can be run and compared with the original model on a machine without
 * the GPU. It checks sdc's algebra, not the provider's kernels. `only` names the op types to lower
 * instead (MultiHeadAttention is lowered only when named). A float16 op (--precision fp16) is lowered
 * as its float32 definition between casts. Returns how many nodes were lowered.
 */
export function lowerToCpu(src: string, out: string, only?: string[]): number {
  const model = readModel(src);
  const g = model.graph;
  let facts: ShapeLookup | null = null;
  const ctx = { opset: model.opset('') ?? 17, facts: () => (facts ??= analyzeShapes(model)) };
  let n = 0;
  const lowerable = (node: Node) => node.domain === 'com.microsoft' && !!LOWERINGS[node.opType]
    && (only ? only.includes(node.opType) : !['MultiHeadAttention', 'Attention'].includes(node.opType));
  const nodes = g.nodes.filter(lowerable);
  // element types, read before anything changes (a lowered op's result is a value the analysis never saw)
  const dtypeOf = nodes.length ? elementTypes(g, ctx.facts()) : () => null;
  const inputTypes = new Map(nodes.map((node) => [node, node.inputs.map(dtypeOf)]));
  for (const node of nodes) {
    const lowered = LOWERINGS[node.opType];
    // fp16 (--precision fp16): the lowering computes in float32 (its constants are float32) between casts
    const types = inputTypes.get(node)!;
    const half = types[0] === DataType.FLOAT16;
    if (half) widen(g, node, types);
    const narrow = (v: Value) => (half ? op(g, 'Cast', [v], node, [{ name: 'to', type: AttrType.INT, value: DataType.FLOAT16 }]) : v);
    if (node.opType === 'SkipGroupNorm') {
      // Y = GroupNorm(X + skip), S = X + skip
      const sum = op(g, 'Add', [node.inputs[0], node.inputs[3]], node);
      if (node.outputs[1] && !node.outputs[1].omitted) g.replaceAllUsesWith(node.outputs[1], narrow(sum));
      g.setInput(node, 0, sum);
    }
    const result = narrow(lowered(g, node, ctx));
    result.type = node.outputs[0].type;
    g.replaceAllUsesWith(node.outputs[0], result);
    g.removeNode(node);
    n++;
  }
  g.topoSort();
  model.source = '';
  writeModel(model, out);
  return n;
}

/**
 * Element type of each value: the shape analysis's, or where it has none (it does not follow NhwcConv,
 * and then nothing downstream), the first input's — what the contrib ops sdc emits and the layout ops
 * around them keep.
 */
function elementTypes(g: Graph, facts: ShapeLookup): (v: Value | null) => DataType | null {
  const types = new Map<Value, DataType | null>();
  const of = (v: Value | null): DataType | null => {
    if (!v || v.omitted) return null;
    const known = types.get(v);
    return known !== undefined ? known : v.constant?.dtype ?? v.elemType ?? facts.get(v).dtype;
  };
  for (const n of g.nodes) {
    for (const o of n.outputs) types.set(o, o.elemType ?? facts.get(o).dtype ?? (n.opType === 'Cast' ? n.int('to') ?? null : of(n.inputs[0])));
  }
  return of;
}

/** The node's float16 inputs as float32: constants converted, tensors cast. */
function widen(g: Graph, n: Node, types: (DataType | null)[]): void {
  n.inputs.forEach((v, i) => {
    if (!v || types[i] !== DataType.FLOAT16) return;
    const t = v.constant;
    const wide = t
      ? constant(g, `${t.name}_fp32`, DataType.FLOAT, t.dims, Array.from(t.values() as Uint16Array, fromHalfBits))
      : op(g, 'Cast', [v], n, [{ name: 'to', type: AttrType.INT, value: DataType.FLOAT }]);
    g.setInput(n, i, wide);
  });
}

const T = (g: Graph, x: Value, perm: number[], before: Node) =>
  g.addNode({ op: 'Transpose', inputs: [x], outputs: ['lower_t'], attrs: [{ name: 'perm', type: AttrType.INTS, value: perm }], before }).outputs[0];
const op = (g: Graph, type: string, inputs: (Value | null)[], before: Node, attrs: Node['attrs'] extends Map<string, infer A> ? A[] : never = [], domain = '') =>
  g.addNode({ op: type, domain, inputs, outputs: [`lower_${type.toLowerCase()}`], attrs, before }).outputs[0];
const constant = (g: Graph, name: string, dtype: DataType, dims: number[], values: ArrayLike<number> | ArrayLike<bigint>) => g.addInitializer(name, Tensor.fromValues(name, dtype, dims, values));

interface LowerContext {
  opset: number;
  facts: () => ShapeLookup;
}

function nhwcConv(g: Graph, n: Node): Value {
  const w = n.inputs[1]!.constant!;
  const [m, kh, kw, c] = w.dims;
  const a = w.values() as Float32Array;
  const oihw = new Float32Array(a.length);
  for (let o = 0; o < m; o++) for (let y = 0; y < kh; y++) for (let x = 0; x < kw; x++) for (let i = 0; i < c; i++) oihw[((o * c + i) * kh + y) * kw + x] = a[((o * kh + y) * kw + x) * c + i];
  const wv = constant(g, `${w.name}_oihw`, DataType.FLOAT, [m, c, kh, kw], oihw);
  const conv = op(g, 'Conv', [T(g, n.inputs[0]!, [0, 3, 1, 2], n), wv, n.inputs[2] ?? null], n, [...n.attrs.values()]);
  return T(g, conv, [0, 2, 3, 1], n);
}

function groupNorm(g: Graph, n: Node): Value {
  const groups = n.int('groups')!;
  const gamma = n.inputs[1]!.constant!;
  const c = gamma.size;
  const x = T(g, n.inputs[0]!, [0, 3, 1, 2], n);
  const r = op(g, 'Reshape', [x, constant(g, 'gn_shape', DataType.INT64, [3], [0n, BigInt(groups), -1n])], n);
  const inorm = op(g, 'InstanceNormalization', [r, constant(g, 'gn_one', DataType.FLOAT, [groups], new Array(groups).fill(1)), constant(g, 'gn_zero', DataType.FLOAT, [groups], new Array(groups).fill(0))], n,
    [{ name: 'epsilon', type: AttrType.FLOAT, value: n.float('epsilon', 1e-5) }]);
  let y = op(g, 'Reshape', [inorm, op(g, 'Shape', [x], n)], n);
  const per = (t: Tensor, name: string) => constant(g, name, DataType.FLOAT, [c, 1, 1], t.values() as Float32Array);
  y = op(g, 'Add', [op(g, 'Mul', [y, per(gamma, 'gn_gamma')], n), per(n.inputs[2]!.constant!, 'gn_beta')], n);
  if (n.int('activation', 0) === 1) y = op(g, 'Mul', [y, op(g, 'Sigmoid', [y], n)], n);
  return T(g, y, [0, 2, 3, 1], n);
}

function biasSplitGelu(g: Graph, n: Node, { opset }: LowerContext): Value {
  const h = op(g, 'Add', [n.inputs[0], n.inputs[1]], n);
  // before opset 18 a Split with two outputs and no sizes already halves the axis
  const attrs = [{ name: 'axis', type: AttrType.INT as const, value: -1 }, ...(opset >= 18 ? [{ name: 'num_outputs', type: AttrType.INT as const, value: 2 }] : [])];
  const split = g.addNode({ op: 'Split', inputs: [h], outputs: ['lower_left', 'lower_right'], attrs, before: n });
  return op(g, 'Mul', [split.outputs[0], op(g, 'Gelu', [split.outputs[1]], n, [], 'com.microsoft')], n);
}

function biasAdd(g: Graph, n: Node): Value {
  return op(g, 'Add', [op(g, 'Add', [n.inputs[0], n.inputs[1]], n), n.inputs[2]], n);
}

/**
 * MultiHeadAttention with separate query/key/value ([B, S, N·H]) as its definition: per-head
 * softmax(q·kᵀ·scale)·v. The CPU runs the fused op itself; this lowering is for providers whose
 * kernel is in doubt (the WebGPU flash-attention path on SwiftShader), so the rest of the graph can
 * still be checked on them.
 */
function multiHeadAttention(g: Graph, n: Node, { facts }: LowerContext): Value {
  if (n.inputs.slice(3).some((v) => v && !v.omitted)) throw new Error(`cannot lower MultiHeadAttention '${n.name}': only query, key and value inputs are supported`);
  if (facts().get(n.inputs[1]!).shape?.length !== 3) throw new Error(`cannot lower MultiHeadAttention '${n.name}': packed key/value are not supported`);
  const hidden = facts().get(n.inputs[0]!).shape?.[2]?.value;
  return attentionCore(g, n, n.inputs[0]!, n.inputs[1]!, n.inputs[2]!, typeof hidden === 'number' ? hidden : null);
}

/** com.microsoft Attention with packed weights: x·W + b split into q, k, v, then the same definition. */
function packedAttention(g: Graph, n: Node): Value {
  if (n.inputs.slice(3).some((v) => v && !v.omitted)) throw new Error(`cannot lower Attention '${n.name}': only input, weights and bias are supported`);
  const w = n.inputs[1]!.constant!;
  const sizes = n.ints('qkv_hidden_sizes') ?? [w.dims[1] / 3, w.dims[1] / 3, w.dims[1] / 3];
  let qkv = op(g, 'MatMul', [n.inputs[0], n.inputs[1]], n);
  if (n.inputs[2] && !n.inputs[2].omitted) qkv = op(g, 'Add', [qkv, n.inputs[2]], n);
  const split = g.addNode({
    op: 'Split', inputs: [qkv, constant(g, 'attn_sizes', DataType.INT64, [3], sizes.map(BigInt))], outputs: ['lower_q', 'lower_k', 'lower_v'],
    attrs: [{ name: 'axis', type: AttrType.INT, value: -1 }], before: n,
  });
  return attentionCore(g, n, split.outputs[0], split.outputs[1], split.outputs[2], sizes[0]);
}

function attentionCore(g: Graph, n: Node, query: Value, key: Value, value: Value, hidden: number | null): Value {
  const heads = n.int('num_heads')!;
  let scale = n.float('scale', 0);
  if (!scale) {
    if (hidden === null) throw new Error(`cannot lower ${n.opType} '${n.name}': its hidden size is unknown and it has no scale`);
    scale = 1 / Math.sqrt(hidden / heads);
  }
  const split = constant(g, 'mha_split_heads', DataType.INT64, [4], [0n, 0n, BigInt(heads), -1n]);
  const perHead = (x: Value) => T(g, op(g, 'Reshape', [x, split], n), [0, 2, 1, 3], n);
  const [q, k, v] = [perHead(query), perHead(key), perHead(value)];
  const scores = op(g, 'Mul', [op(g, 'MatMul', [q, T(g, k, [0, 1, 3, 2], n)], n), constant(g, 'mha_scale', DataType.FLOAT, [], [scale])], n);
  const probs = op(g, 'Softmax', [scores], n, [{ name: 'axis', type: AttrType.INT, value: -1 }]);
  const ctxHeads = T(g, op(g, 'MatMul', [probs, v], n), [0, 2, 1, 3], n);
  return op(g, 'Reshape', [ctxHeads, constant(g, 'mha_merge_heads', DataType.INT64, [3], [0n, 0n, -1n])], n);
}

const LOWERINGS: Record<string, (g: Graph, n: Node, ctx: LowerContext) => Value> = {
  NhwcConv: nhwcConv, GroupNorm: groupNorm, SkipGroupNorm: groupNorm, BiasSplitGelu: biasSplitGelu, BiasAdd: biasAdd,
  MultiHeadAttention: multiHeadAttention, Attention: packedAttention,
};
