import { TargetName } from './kernels';
import { TRAITS, TargetTraits, targetTraits } from './traits';

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
 * The provider layout sdc records for a target whose provider takes one (traits.ts says which, and why
 * WebGPU's is NCHW); null for the others.
 */
export function defaultLayout(target: TargetName): ProviderLayout | null {
  return targetTraits(target).providerLayout?.default ?? null;
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
  // the metadata is the model's: a target this sdc does not know is passed on as its provider's name
  const traits = (TRAITS as Partial<Record<string, TargetTraits>>)[t];
  const choices = traits?.providerLayout;
  if (!traits || !choices) return { options: { executionProviders: [traits?.provider ?? t], graphOptimizationLevel: level }, reasons };
  const recorded = metadata(SESSION_LAYOUT_KEY);
  const layout = choices.choices.includes(recorded as ProviderLayout) ? (recorded as ProviderLayout) : choices.default;
  reasons.push(
    recorded
      ? `${traits.label} preferredLayout '${layout}' (recorded by sdc)`
      : `${traits.label} preferredLayout '${layout}': the graph's Convs are NCHW; NHWC would wrap each in Transposes`,
  );
  return { options: { executionProviders: [{ name: traits.provider, preferredLayout: layout }], graphOptimizationLevel: level }, reasons };
}
