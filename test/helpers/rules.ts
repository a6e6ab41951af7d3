import * as path from 'path';
import { opHistogram } from '../../src/compiler/inspect';
import { ModelBuilder } from '../../src/ir/builder';
import { validate } from '../../src/ir/validate';
import { saveModel } from '../../src/onnx/write';
import { applyRuleSet } from '../../src/rewrite/driver';
import { Explanation, PassContext } from '../../src/rewrite/pass';
import { Rule } from '../../src/rewrite/rule';
import { Target, TargetName } from '../../src/targets';
import { lowerToCpu } from '../../src/verify/lower';
import { Feeds, relError, runModel } from './ort';

export interface RuleRun {
  ops: Record<string, number>;
  counts: Record<string, number>;
  explanations: Explanation[];
  /** The reason of the first skipped explanation, or null. */
  skipped: string | null;
  /** The model before and after, saved under `dir` (for numeric checks). */
  before: string;
  after: string;
}

/**
 * Run rules on a graph built in code, in memory, the way the pipeline would (one rule set, one driver),
 * and save the model before and after. The graph must stay valid.
 */
export function applyRules(b: ModelBuilder, rules: Rule[], dir: string, name: string, target: TargetName = 'cpu'): RuleRun {
  const before = saveModel(b.model, path.join(dir, `${name}.onnx`));
  const explanations: Explanation[] = [];
  const ctx: PassContext = {
    model: b.model,
    target: new Target(target),
    mode: 'default',
    shapes: null,
    explain: (site, status, reason, rule) => explanations.push({ pass: 'test', rule, site: typeof site === 'string' ? site : site.name, status, reason }),
  };
  const result = applyRuleSet({ name: 'test', description: 'rules under test', rules }, b.model.graph, ctx);
  const problems = validate(b.model);
  if (problems.length) throw new Error(`rules left an invalid graph: ${problems.join('; ')}`);
  const after = saveModel(b.model, path.join(dir, `${name}.after.onnx`));
  return { ops: opHistogram(b.model.graph), counts: result.counts ?? {}, explanations, skipped: explanations.find((e) => e.status === 'skipped')?.reason ?? null, before, after };
}

/**
 * Worst relative difference between the model before and after over the feeds, on the CPU provider.
 * GPU-only ops are first lowered back to CPU ops with the kernels' semantics (test/helpers/lower.ts).
 */
export async function worstError(run: RuleRun, feeds: Feeds[]): Promise<number> {
  const lowered = run.after.replace(/\.onnx$/, '.lowered.onnx');
  lowerToCpu(run.after, lowered);
  let worst = 0;
  for (const f of feeds) {
    const a = await runModel(run.before, f);
    const c = await runModel(lowered, f);
    for (const k of Object.keys(a)) worst = Math.max(worst, relError(a[k], c[k]));
  }
  return worst;
}
