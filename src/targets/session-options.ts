import { TargetName } from './kernels';

/**
 * How to open a compiled model: what sdc records in its metadata and what a runtime (ours, or an app
 * on onnxruntime-web) should pass to onnxruntime. Plain data, no onnxruntime import, so the compiler,
 * `inspect` and the runtime all read it from here.
 */
export const SESSION_LEVEL_KEY = 'sdc.session.graphOptimizationLevel';
export const SESSION_LAYOUT_KEY = 'sdc.session.preferredLayout';

export type ProviderLayout = 'NCHW' | 'NHWC';
export type OptimizationLevel = 'disabled' | 'basic' | 'extended' | 'all';

/**
 * The WebGPU provider's default layout, NHWC, wraps every NCHW Conv in two Transposes (measured:
 * 66 of the tiny UNet's 78 Transposes). sdc emits NCHW graphs for webgpu, so NCHW is the default;
 * max-autotune may record NHWC where a real GPU times it faster.
 */
export function defaultLayout(target: TargetName): ProviderLayout | null {
  return target === 'webgpu' ? 'NCHW' : null;
}

export interface RecommendedSession {
  /** an onnxruntime SessionOptions object (node or web) */
  options: {
    executionProviders: (string | { name: string; preferredLayout?: ProviderLayout })[];
    graphOptimizationLevel: OptimizationLevel;
  };
  /** why each choice, for people */
  reasons: string[];
}

const LEVELS: OptimizationLevel[] = ['disabled', 'basic', 'extended', 'all'];

/** The session options a compiled model's metadata recommends for a target (its own by default). */
export function recommendedSession(metadata: (key: string) => string | undefined, target?: TargetName): RecommendedSession {
  const t = target ?? (metadata('sdc.target') as TargetName | undefined) ?? 'cpu';
  const rawLevel = metadata(SESSION_LEVEL_KEY);
  const level = LEVELS.includes(rawLevel as OptimizationLevel) ? (rawLevel as OptimizationLevel) : 'all';
  const reasons = [`graphOptimizationLevel '${level}'${rawLevel ? ' (recorded by sdc)' : ' (onnxruntime default)'}`];
  if (t !== 'webgpu') return { options: { executionProviders: [t], graphOptimizationLevel: level }, reasons };
  const recorded = metadata(SESSION_LAYOUT_KEY);
  const layout: ProviderLayout = recorded === 'NHWC' || recorded === 'NCHW' ? recorded : defaultLayout(t)!;
  reasons.push(
    recorded
      ? `WebGPU preferredLayout '${layout}' (recorded by sdc)`
      : `WebGPU preferredLayout '${layout}': the graph's Convs are NCHW; NHWC would wrap each in Transposes`,
  );
  return { options: { executionProviders: [{ name: 'webgpu', preferredLayout: layout }], graphOptimizationLevel: level }, reasons };
}
