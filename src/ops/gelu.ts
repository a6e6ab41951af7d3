import { Sym } from '../ir/symbolic';
import { Emitter, int } from './emit';
import { DataType } from '../ir/dtype';
import { everywhere, F32, F32_F16, likeInput, OpRecord } from './record';

export const BIAS_SPLIT_GELU: OpRecord = {
  op: 'com.microsoft::BiasSplitGelu',
  kernels: { webgpu: { dtypes: F32_F16, sizes: { hidden: [2560, 5120, 10240] }, multiples: { hidden: 8 } }, cuda: { dtypes: F32_F16, sizes: { hidden: [2560, 5120, 10240] } } },
  note: 'hidden sizes: the CUDA kernel\'s and onnxruntime-web\'s JSEP kernel\'s (it throws "hidden state should be 2560, 5120 or 10240" at run time); the native WebGPU EP computes any multiple of 8 (vec4 halves; measured on SwiftShader)',
  // [.., 2·H] in, [.., H] out: left half · gelu(right half)
  infer(_n, ins) {
    const x = ins[0]?.shape;
    const last = x?.[x.length - 1]?.value;
    return [{ dtype: ins[0]?.dtype ?? null, shape: x && typeof last === 'number' ? [...x.slice(0, -1), Sym.const(last / 2)] : null }];
  },
  lower(g, n, { opset }) {
    const e = new Emitter(g, n);
    const h = e.one('Add', [n.inputs[0], n.inputs[1]]);
    // before opset 18 a Split with two outputs and no sizes already halves the axis
    const [left, right] = e.op('Split', [h], [int('axis', -1), ...(opset >= 18 ? [int('num_outputs', 2)] : [])], '', 2);
    return [e.one('Mul', [left, e.one('Gelu', [right], [], 'com.microsoft')])];
  },
};

export const BIAS_ADD: OpRecord = {
  op: 'com.microsoft::BiasAdd',
  kernels: { webgpu: { dtypes: F32_F16, sizes: { channels: [320, 640, 1280] } }, cuda: { dtypes: F32_F16, sizes: { channels: [320, 640, 1280] } } },
  note: 'channels: the CUDA kernel\'s and onnxruntime-web\'s JSEP kernel\'s ("number of channels should be 320, 640 or 1280"); the native WebGPU EP computes any channel count (measured on SwiftShader: 1 to 2048)',
  infer: likeInput,
  lower(g, n) {
    const e = new Emitter(g, n);
    return [e.one('Add', [e.one('Add', [n.inputs[0], n.inputs[1]]), n.inputs[2]])];
  },
};

export const ONNX_GELU: OpRecord = { op: 'ai.onnx::Gelu', kernels: everywhere(F32_F16, F32_F16), note: 'opset 20', infer: 'onnx', lower: 'cpu' };
export const MS_GELU: OpRecord = { op: 'com.microsoft::Gelu', kernels: everywhere(F32, F32_F16), infer: likeInput, lower: 'cpu' };
export const FAST_GELU: OpRecord = { op: 'com.microsoft::FastGelu', kernels: everywhere(F32, F32_F16), infer: likeInput, lower: 'cpu' };

export const QUICK_GELU: OpRecord = {
  op: 'com.microsoft::QuickGelu',
  // cpu and webgpu measured in single-op sessions (alpha 1.702, any width); cuda from its registrations
  kernels: everywhere(F32, F32_F16),
  note: 'x·sigmoid(alpha·x)',
  infer: likeInput,
  lower(g, n) {
    const e = new Emitter(g, n);
    const x = n.inputs[0]!;
    const alpha = e.constant('quick_gelu_alpha', DataType.FLOAT, [], [n.float('alpha', 1.702)]);
    return [e.one('Mul', [x, e.one('Sigmoid', [e.one('Mul', [x, alpha])])])];
  },
};
