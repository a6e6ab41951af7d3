import { DataType } from '../ir/dtype';
import { Graph, Node, Value } from '../ir/graph';
import { Tensor } from '../ir/tensor';
import { Emitter, float } from './emit';
import { everywhere, F32, F32_F16, likeInput, LoweringError, OpRecord, TypeShape } from './record';

const NHWC_TO_NCHW = [0, 3, 1, 2];
const NCHW_TO_NHWC = [0, 2, 3, 1];

/**
 * GroupNorm of an NHWC tensor as its definition: back to NCHW, InstanceNormalization over groups
 * (Reshape to [B, G, -1]), the per-channel affine, SiLU when activation=1, and to NHWC again.
 */
function groupNormOf(e: Emitter, n: Node, input: Value): Value {
  const groups = n.int('groups');
  const gamma = n.inputs[1]?.constant;
  const beta = n.inputs[2]?.constant;
  if (groups === undefined || !gamma || !beta) throw new LoweringError(`cannot lower ${n.opType} '${n.name}': groups, gamma and beta must be given (gamma and beta constant)`);
  const c = gamma.size;
  const x = e.transpose(input, NHWC_TO_NCHW);
  const r = e.one('Reshape', [x, e.int64s('gn_shape', [0, groups, -1])]);
  const fill = (name: string, v: number) => e.constant(name, DataType.FLOAT, [groups], new Array(groups).fill(v));
  const inorm = e.one('InstanceNormalization', [r, fill('gn_one', 1), fill('gn_zero', 0)], [float('epsilon', n.float('epsilon', 1e-5))]);
  let y = e.one('Reshape', [inorm, e.one('Shape', [x])]);
  const perChannel = (t: Tensor, name: string) => e.constant(name, DataType.FLOAT, [c, 1, 1], t.values() as Float32Array);
  y = e.one('Add', [e.one('Mul', [y, perChannel(gamma, 'gn_gamma')]), perChannel(beta, 'gn_beta')]);
  if (n.int('activation', 0) === 1) y = e.one('Mul', [y, e.one('Sigmoid', [y])]);
  return e.transpose(y, NCHW_TO_NHWC);
}

export const ONNX_GROUP_NORMALIZATION: OpRecord = {
  op: 'ai.onnx::GroupNormalization',
  kernels: { cuda: { dtypes: F32_F16 } },
  note: 'cpu and webgpu: no kernel, run as its function body (measured slower on cpu, Shape ops return; webgpu places 2 of its 27 nodes on the CPU)',
  infer: 'onnx',
  lower: 'cpu',
};

export const GROUP_NORM: OpRecord = {
  op: 'com.microsoft::GroupNorm',
  kernels: { cuda: { dtypes: F32_F16, layouts: ['NHWC'] } },
  note: 'webgpu: session creation fails',
  infer: likeInput,
  lower: (g: Graph, n: Node) => [groupNormOf(new Emitter(g, n), n, n.inputs[0]!)],
};

export const SKIP_GROUP_NORM: OpRecord = {
  op: 'com.microsoft::SkipGroupNorm',
  kernels: { cuda: { dtypes: F32_F16, layouts: ['NHWC'] } },
  note: 'webgpu: session creation fails',
  infer: (_n, ins): TypeShape[] => {
    const same = { dtype: ins[0]?.dtype ?? null, shape: ins[0]?.shape ?? null };
    return [same, same];
  },
  // Y = GroupNorm(X + skip [+ bias]), S = X + skip [+ bias]
  lower(g, n) {
    const e = new Emitter(g, n);
    let sum = e.one('Add', [n.inputs[0], n.inputs[3]]);
    if (n.inputs[4] && !n.inputs[4].omitted) sum = e.one('Add', [sum, n.inputs[4]]);
    return [groupNormOf(e, n, sum), sum];
  },
};

export const LAYER_NORMALIZATION: OpRecord = {
  op: 'ai.onnx::LayerNormalization',
  kernels: everywhere(F32_F16, F32_F16),
  infer: 'onnx',
  lower: 'cpu',
};

export const SKIP_LAYER_NORMALIZATION: OpRecord = {
  op: 'com.microsoft::SkipLayerNormalization',
  kernels: everywhere(F32, F32_F16),
  infer: (_n, ins) => {
    const same = { dtype: ins[0]?.dtype ?? null, shape: ins[0]?.shape ?? null };
    const unknown = { dtype: null, shape: null };
    return [same, unknown, unknown, same];
  },
  lower: 'cpu',
};

export const BATCH_NORMALIZATION: OpRecord = {
  op: 'ai.onnx::BatchNormalization',
  infer: 'onnx',
  lower: 'cpu',
};
