import { DataType } from '../ir/dtype';

/**
 * What each execution provider's kernel for a fused or contrib op accepts (onnxruntime 1.30). Sources:
 * CPU by running single-op models; WebGPU from the provider's kernel registrations and, where marked,
 * runs on the real provider. "webgpu" is two implementations: the native WebGPU EP (onnxruntime-node,
 * `onnxruntime-web/webgpu`) and JSEP (plain `onnxruntime-web`, the default import in browsers), whose
 * kernels check sizes of their own at run time; the webgpu column is what both run; CUDA from its registrations and kernel sources (../shared/REFERENCE.md §3).
 * An op absent from a target's column has no kernel there. Standard ai.onnx ops not listed run everywhere.
 * This is the one place a kernel's limits live: rules ask `Target.accepts()`, docs/targets.md is rendered
 * from it, and compile() refuses an output holding an op its target lacks.
 */
export type TargetName = 'cpu' | 'webgpu' | 'cuda';
export const TARGETS: TargetName[] = ['cpu', 'webgpu', 'cuda'];

export type Layout = 'NCHW' | 'NHWC';

export interface Kernel {
  /** Element types of the main input the kernel is registered for. */
  dtypes: DataType[];
  /** Named sizes the kernel is limited to (BiasAdd channels, BiasSplitGelu hidden size); absent: any. */
  sizes?: Record<string, number[]>;
  /** Named sizes the kernel needs to be a multiple of (its shader's vector width). */
  multiples?: Record<string, number>;
  /** Memory layouts the kernel computes in; absent: the op's standard layout. */
  layouts?: Layout[];
  note?: string;
}

export interface OpEntry {
  targets: Partial<Record<TargetName, Kernel>>;
  note?: string;
}

const F32: DataType[] = [DataType.FLOAT];
const F32_F16: DataType[] = [DataType.FLOAT, DataType.FLOAT16];
const everywhere = (cpu: DataType[], gpu: DataType[]): Partial<Record<TargetName, Kernel>> => ({ cpu: { dtypes: cpu }, webgpu: { dtypes: gpu }, cuda: { dtypes: gpu } });

/** keyed `domain::op`, ai.onnx for the default domain */
export const KERNELS: Record<string, OpEntry> = {
  'com.microsoft::MultiHeadAttention': { targets: everywhere(F32, F32_F16), note: 'separate q, k, v; packed QKV/KV not on cpu' },
  'ai.onnx::Attention': { targets: everywhere(F32_F16, F32_F16), note: 'opset 23+; webgpu coverage uneven' },
  'com.microsoft::Attention': { targets: everywhere(F32, F32_F16), note: 'packed weight' },
  'ai.onnx::GroupNormalization': {
    targets: { cuda: { dtypes: F32_F16 } },
    note: 'cpu and webgpu: no kernel, run as its function body (measured slower on cpu, Shape ops return; webgpu places 2 of its 27 nodes on the CPU)',
  },
  'com.microsoft::GroupNorm': { targets: { cuda: { dtypes: F32_F16, layouts: ['NHWC'] } }, note: 'webgpu: session creation fails' },
  'com.microsoft::SkipGroupNorm': { targets: { cuda: { dtypes: F32_F16, layouts: ['NHWC'] } }, note: 'webgpu: session creation fails' },
  'com.microsoft::NhwcConv': { targets: { cuda: { dtypes: F32_F16, layouts: ['NHWC'] } }, note: 'webgpu: session creation fails' },
  'com.microsoft::BiasSplitGelu': {
    targets: { webgpu: { dtypes: F32_F16, sizes: { hidden: [2560, 5120, 10240] }, multiples: { hidden: 8 } }, cuda: { dtypes: F32_F16, sizes: { hidden: [2560, 5120, 10240] } } },
    note: 'hidden sizes: the CUDA kernel\'s and onnxruntime-web\'s JSEP kernel\'s (it throws "hidden state should be 2560, 5120 or 10240" at run time); the native WebGPU EP computes any multiple of 8 (vec4 halves; measured on SwiftShader)',
  },
  'com.microsoft::BiasAdd': {
    targets: { webgpu: { dtypes: F32_F16, sizes: { channels: [320, 640, 1280] } }, cuda: { dtypes: F32_F16, sizes: { channels: [320, 640, 1280] } } },
    note: 'channels: the CUDA kernel\'s and onnxruntime-web\'s JSEP kernel\'s ("number of channels should be 320, 640 or 1280"); the native WebGPU EP computes any channel count (measured on SwiftShader: 1 to 2048)',
  },
  'ai.onnx::LayerNormalization': { targets: everywhere(F32_F16, F32_F16) },
  'ai.onnx::Split': {
    targets: { cpu: { dtypes: F32_F16 }, webgpu: { dtypes: F32_F16, sizes: { outputs: [1, 2, 3, 4, 5, 6, 7] } }, cuda: { dtypes: F32_F16 } },
    note: 'webgpu: one shader binds the input and every output, and WebGPU guarantees 8 storage buffers per stage (SwiftShader: 12; 13 fails the session run)',
  },
  'com.microsoft::SkipLayerNormalization': { targets: everywhere(F32, F32_F16) },
  'ai.onnx::Gelu': { targets: everywhere(F32_F16, F32_F16), note: 'opset 20' },
  'com.microsoft::Gelu': { targets: everywhere(F32, F32_F16) },
  'com.microsoft::FastGelu': { targets: everywhere(F32, F32_F16) },
};
