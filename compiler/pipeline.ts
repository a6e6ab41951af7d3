import { validate } from './ir/validate';
import { Model } from './onnx/model';
import { Explanation, Mode, Pass, PassContext } from './pass';
import { Target } from './targets';
import { ALL_PASSES, passByName } from '../passes';
import { SdcError } from './errors';
import { Node } from './ir/graph';

/** The passes each mode runs, in order; the target then drops the passes that do not apply to it. */
const MODE_PIPELINES: Record<Mode, string[]> = {
  default: [],
  'reduce-overhead': [],
  'max-autotune': [],
};

export interface PassReport {
  name: string;
  ms: number;
  nodesBefore: number;
  nodesAfter: number;
  changed: boolean;
  counts?: Record<string, number>;
}

export interface PipelineOptions {
  mode: Mode;
  target: Target;
  /** Explicit pass list (overrides the mode's); [] runs none. */
  passes?: string[];
  verifyEach?: boolean;
  shapes?: Map<string, number[]> | null;
  onPass?: (name: string, index: number, total: number) => void;
}

export function pipelineFor(mode: Mode, target: Target, explicit?: string[]): Pass[] {
  const names = explicit ?? MODE_PIPELINES[mode];
  return names.map((n) => {
    const p = passByName(n);
    if (!p) throw new SdcError('', `unknown pass '${n}' (known: ${ALL_PASSES.map((q) => q.name).join(', ') || 'none'})`);
    return p;
  }).filter((p) => explicit || p.targets.includes(target.name));
}

export function runPipeline(model: Model, opts: PipelineOptions): { passes: PassReport[]; explanations: Explanation[] } {
  const passes = pipelineFor(opts.mode, opts.target, opts.passes);
  const reports: PassReport[] = [];
  const explanations: Explanation[] = [];
  passes.forEach((pass, i) => {
    opts.onPass?.(pass.name, i, passes.length);
    const ctx: PassContext = {
      model,
      target: opts.target,
      mode: opts.mode,
      shapes: opts.shapes ?? null,
      explain: (site: Node | string, status, reason) =>
        explanations.push({ pass: pass.name, site: typeof site === 'string' ? site : site.name, status, reason }),
    };
    const before = model.graph.countNodes();
    const t0 = performance.now();
    const result = pass.run(model.graph, ctx);
    const ms = performance.now() - t0;
    reports.push({ name: pass.name, ms: round(ms), nodesBefore: before, nodesAfter: model.graph.countNodes(), changed: result.changed, counts: result.counts });
    if (opts.verifyEach) {
      const problems = validate(model);
      if (problems.length) throw new Error(`pass ${pass.name} left an invalid graph:\n  ${problems.slice(0, 10).join('\n  ')}`);
    }
  });
  return { passes: reports, explanations };
}

export function round(ms: number): number {
  return Math.round(ms * 10) / 10;
}
