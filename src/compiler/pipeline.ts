import { validate } from '../ir/validate';
import { Model } from '../ir/model';
import { Explanation, Mode, Pass, PassContext, Precision, ValueRange } from '../rewrite/pass';
import { Target } from '../targets';
import { ALL_PASSES, cleanupGroup, passByName, pipelineSteps } from '../passes';
import { SdcError } from '../ir/errors';
import { Node } from '../ir/graph';
import { log, logEnabled } from './log';

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
  precision?: Precision;
  ioTypes?: Precision;
  ranges?: Map<string, ValueRange> | null;
  keepFp32?: string[];
  onPass?: (name: string, index: number, total: number) => void;
}

type Resolved = Pass | { repeat: Pass[]; max: number };

function resolve(name: string): Pass {
  const p = passByName(name);
  if (!p) throw new SdcError('', `unknown pass '${name}' (known: ${ALL_PASSES.map((q) => q.name).join(', ')})`);
  return p;
}

/**
 * The steps to run. Explicit pass names run once each, in the order given, whatever the target; the name
 * `cleanup` stands for the repeated cleanup group the modes use.
 */
function pipelineFor(mode: Mode, target: Target, explicit?: string[], precision: Precision = 'fp32'): Resolved[] {
  if (explicit) return explicit.map((n): Resolved => (n === 'cleanup' ? { repeat: cleanupGroup().repeat.map(resolve), max: cleanupGroup().max } : resolve(n)));
  const applies = (p: Pass) => !p.appliesTo?.(target);
  return pipelineSteps(mode, precision).map((s): Resolved => (typeof s === 'string' ? resolve(s) : { repeat: s.repeat.map(resolve).filter(applies), max: s.max }))
    .filter((s) => ('repeat' in s ? s.repeat.length > 0 : applies(s)));
}

/** Whether a pass the pipeline will run rewrites most of the weights (Pass.movesWeights). */
export function plansToMoveWeights(opts: Pick<PipelineOptions, 'mode' | 'target' | 'passes' | 'precision'>): boolean {
  return pipelineFor(opts.mode, opts.target, opts.passes, opts.precision).some((s) => ('repeat' in s ? s.repeat : [s]).some((p) => p.movesWeights));
}

/** The mode's passes that the target drops, each with why (reported in --explain). */
function droppedPasses(mode: Mode, target: Target, explicit?: string[]): { pass: string; reason: string }[] {
  if (explicit) return [];
  const names = pipelineSteps(mode).flatMap((s) => (typeof s === 'string' ? [s] : s.repeat));
  return [...new Set(names)].map(resolve).flatMap((p) => {
    const reason = p.appliesTo?.(target);
    return reason ? [{ pass: p.name, reason }] : [];
  });
}

export function runPipeline(model: Model, opts: PipelineOptions): { passes: PassReport[]; explanations: Explanation[] } {
  const steps = pipelineFor(opts.mode, opts.target, opts.passes, opts.precision);
  const reports: PassReport[] = [];
  const explanations: Explanation[] = droppedPasses(opts.mode, opts.target, opts.passes).map((d) => ({ pass: d.pass, site: '(pass)', status: 'skipped', reason: d.reason }));
  let index = 0;
  const runOne = (pass: Pass): boolean => {
    opts.onPass?.(pass.name, index++, steps.length);
    const ctx: PassContext = {
      model,
      target: opts.target,
      mode: opts.mode,
      shapes: opts.shapes ?? null,
      precision: opts.precision ?? 'fp32',
      ioTypes: opts.ioTypes ?? 'fp32',
      ranges: opts.ranges ?? null,
      keepFp32: opts.keepFp32 ?? [],
      explain: (site: Node | string, status, reason, rule) =>
        explanations.push({ pass: pass.name, ...(rule ? { rule } : {}), site: typeof site === 'string' ? site : site.name, status, reason }),
    };
    const before = model.graph.countNodes();
    const explained = explanations.length;
    const t0 = performance.now();
    const result = pass.run(model.graph, ctx);
    const ms = performance.now() - t0;
    const report: PassReport = { name: pass.name, ms: round(ms), nodesBefore: before, nodesAfter: model.graph.countNodes(), changed: result.changed, counts: result.counts };
    reports.push(report);
    log('passes', formatPassRow(report));
    if (logEnabled('fusions')) for (const e of explanations.slice(explained)) log('fusions', formatExplanation(e));
    if (opts.verifyEach) {
      const problems = validate(model);
      if (problems.length) throw new Error(`pass ${pass.name} left an invalid graph:\n  ${problems.slice(0, 10).join('\n  ')}`);
    }
    return result.changed;
  };
  for (const step of steps) {
    if ('repeat' in step) {
      for (let round = 0; round < step.max; round++) {
        let changed = false;
        for (const p of step.repeat) changed = runOne(p) || changed;
        if (!changed) break;
      }
    } else {
      runOne(step);
    }
  }
  return { passes: reports, explanations };
}

/** One line per pass: name, nodes before -> after, time, counts (the CLI's --verbose and SDC_LOG=passes). */
export function formatPassRow(p: PassReport): string {
  const counts = p.counts ? ' ' + Object.entries(p.counts).map(([k, v]) => `${k}=${v}`).join(' ') : '';
  return `${p.name.padEnd(22)} ${String(p.nodesBefore).padStart(6)} -> ${String(p.nodesAfter).padEnd(6)} ${p.ms.toFixed(0).padStart(6)} ms${counts}`;
}

/** One line per fusion site (--explain and SDC_LOG=fusions). */
export function formatExplanation(e: Explanation): string {
  return `[${e.pass}${e.rule ? `/${e.rule}` : ''}] ${e.site}: ${e.status}${e.reason ? ` (${e.reason})` : ''}`;
}

export function round(ms: number): number {
  return Math.round(ms * 10) / 10;
}
