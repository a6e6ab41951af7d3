import { DataType } from '../ir/dtype';
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
/** The numeric element types onnxruntime's CPU and CUDA Casts take (and bool). */
const NUMERIC: DataType[] = [
  DataType.FLOAT, DataType.FLOAT16, DataType.DOUBLE, DataType.INT8, DataType.INT16, DataType.INT32, DataType.INT64,
  DataType.UINT8, DataType.UINT16, DataType.UINT32, DataType.UINT64, DataType.BOOL,
];
/** WGSL's plain types: what the WebGPU providers' Cast, Gather and ArgMax read and write. */
const WGSL: DataType[] = [DataType.FLOAT, DataType.FLOAT16, DataType.INT32, DataType.UINT32];

export const CAST: OpRecord = {
  op: 'ai.onnx::Cast',
  kernels: { cpu: { dtypes: NUMERIC }, webgpu: { dtypes: [...WGSL, DataType.BOOL] }, cuda: { dtypes: NUMERIC } },
  note: 'webgpu: int64 input only when the session captures its graph (webgpu/tensor/cast.cc), which onnxruntime-node ignores: cast-by-lookup replaces an int64 Cast of token ids',
  infer: 'onnx',
  lower: 'cpu',
};
/** Emitted by cast-by-lookup; the main input is the gathered table (indices int32 or int64 everywhere). */
export const GATHER: OpRecord = {
  op: 'ai.onnx::Gather',
  kernels: { cpu: { dtypes: NUMERIC }, webgpu: { dtypes: WGSL }, cuda: { dtypes: NUMERIC } },
  infer: 'onnx',
  lower: 'cpu',
};
export const TRANSPOSE: OpRecord = { op: 'ai.onnx::Transpose', infer: 'onnx', lower: 'cpu' };
