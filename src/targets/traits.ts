import { Layout, TargetName } from './kernels';

/**
 * What a target is, beyond which kernels it has (kernels.ts): the facts passes, doors and the runtime ask
 * about instead of comparing target names. Adding a target is a row here and a column in kernels.ts.
 */
export interface TargetTraits {
  /** onnxruntime's execution provider name (onnxruntime-node and onnxruntime-web's native EP). */
  provider: 'cpu' | 'webgpu' | 'cuda';
  /** The provider's name for people ("the WebGPU provider"). */
  label: string;
  /** The provider runs on this machine's own CPU, always available (no adapter or driver to probe). */
  hostCpu: boolean;
  /**
   * Every kernel is a separate GPU dispatch with a fixed cost: rewrites that trade a copy of weights for
   * fewer kernels (packed attention, folded affines, merged projections) pay off only here.
   */
  dispatchBound: boolean;
  /** The provider takes a `preferredLayout` option (the layout it computes Convs in); null: it has none. */
  providerLayout: { default: Layout; choices: Layout[] } | null;
  /** The adapter feature a float16 model needs (WebGPU's shader-f16); null: fp16 needs nothing more. */
  fp16Feature: string | null;
  /** Storage buffers one shader may bind (WebGPU guarantees 8); null: no such limit. */
  maxStorageBuffers: number | null;
  /** onnxruntime-web execution providers for a browser app; null: the target has no browser provider. */
  webProviders: string[] | null;
  /** Why sdc cannot time candidates on this target from onnxruntime-node (max-autotune); null: it can. */
  untimeable: string | null;
  /**
   * onnxruntime-node as sdc installs it has this provider (where the device exists): the load check and
   * --check run the output on it. false (cuda: .npmrc skips the CUDA binaries): GPU-only ops are lowered
   * to CPU ops and checked there.
   */
  nodeProvider: boolean;
  /** onnxruntime-web can capture the provider's graph (enableGraphCapture, GPU-resident inputs and outputs). */
  webCapture: boolean;
  /**
   * The provider opens a Vulkan adapter, so a software one (SwiftShader, src/runtime/swiftshader.ts) can
   * stand in where no GPU is: exact for placement, slow to run, meaningless to time.
   */
  vulkanAdapter: boolean;
  /**
   * The Triton instance-group kind that makes Triton's onnxruntime backend run this provider (KIND_GPU:
   * the CUDA provider); null: the backend has no such provider (WebGPU), so sdc does not export for it.
   */
  tritonKind: 'KIND_CPU' | 'KIND_GPU' | null;
}

export const TRAITS: Record<TargetName, TargetTraits> = {
  cpu: {
    provider: 'cpu', label: 'CPU', hostCpu: true, dispatchBound: false, providerLayout: null, fp16Feature: null,
    maxStorageBuffers: null, webProviders: ['wasm'], untimeable: null,
    nodeProvider: true, webCapture: false, vulkanAdapter: false, tritonKind: 'KIND_CPU',
  },
  webgpu: {
    provider: 'webgpu', label: 'WebGPU', hostCpu: false, dispatchBound: true,
    // the provider's own default, NHWC, wraps every NCHW Conv in two Transposes (66 of the tiny UNet's 78):
    // sdc emits NCHW graphs, so NCHW is the default; max-autotune may record NHWC where a GPU times it faster
    providerLayout: { default: 'NCHW', choices: ['NCHW', 'NHWC'] },
    fp16Feature: 'shader-f16', maxStorageBuffers: 8, webProviders: ['webgpu'], untimeable: null,
    nodeProvider: true, webCapture: true, vulkanAdapter: true, tritonKind: null,
  },
  cuda: {
    provider: 'cuda', label: 'CUDA', hostCpu: false, dispatchBound: false, providerLayout: null, fp16Feature: null,
    maxStorageBuffers: null, webProviders: null,
    untimeable: 'onnxruntime-node here has no CUDA provider',
    nodeProvider: false, webCapture: false, vulkanAdapter: false, tritonKind: 'KIND_GPU',
  },
};

export function targetTraits(name: TargetName): TargetTraits {
  return TRAITS[name];
}
