import { F32_F16, OpRecord } from './record';

/** Standard ops passes emit as the op of a rewrite (not as glue): declared, inferred by the analysis, run by the CPU. */
export const SPLIT: OpRecord = {
  op: 'ai.onnx::Split',
  kernels: { cpu: { dtypes: F32_F16 }, webgpu: { dtypes: F32_F16, sizes: { outputs: [1, 2, 3, 4, 5, 6, 7] } }, cuda: { dtypes: F32_F16 } },
  note: 'webgpu: one shader binds the input and every output, and WebGPU guarantees 8 storage buffers per stage (SwiftShader: 12; 13 fails the session run)',
  infer: 'onnx',
  lower: 'cpu',
};
export const MATMUL: OpRecord = { op: 'ai.onnx::MatMul', infer: 'onnx', lower: 'cpu' };
export const GEMM: OpRecord = { op: 'ai.onnx::Gemm', infer: 'onnx', lower: 'cpu' };
export const CAST: OpRecord = { op: 'ai.onnx::Cast', infer: 'onnx', lower: 'cpu' };
export const TRANSPOSE: OpRecord = { op: 'ai.onnx::Transpose', infer: 'onnx', lower: 'cpu' };
