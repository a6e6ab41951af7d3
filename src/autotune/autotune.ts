import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import * as ort from 'onnxruntime-node';
import { CompileReport, compileStaged, StagedOutput, toShapeMap } from '../compiler/compile';
import { SdcError } from '../ir/errors';
import { readModel } from '../onnx/read';
import { inputTypes, syntheticFeeds } from '../runtime/feeds';
import { openSession, providerUnavailable } from '../runtime/session';
import { TARGETS, targetTraits } from '../targets';
import { alternateRuns, median, pairedRatio } from '../runtime/timing';
import { adapterName, softwareAdapter } from '../runtime/swiftshader';
import { ProviderLayout, recommendedSession } from '../targets/session-options';
import { CheckedCompileOptions, CheckedReport, commitChecked, prepareChecked } from '../verify/check';

/**
 * The variants max-autotune times: the whole pipeline, and the same with fewer rewrites. A candidate with
 * a `layout` is timed only for a target whose provider takes that layout (traits' providerLayout).
 */
export const CANDIDATES: { name: string; passes: string[] | undefined; layout?: ProviderLayout }[] = [
  { name: 'all fusions', passes: undefined },
  // the WebGPU provider's NHWC Conv kernels cost Transposes but ran SD1.5 1.46x faster on an H200
  { name: 'all fusions, NHWC layout', passes: undefined, layout: 'NHWC' },
  { name: 'cleanup + attention', passes: ['cleanup', 'fuse-attention', 'cleanup', 'capture-hints'] },
  { name: 'cleanup only', passes: ['cleanup', 'capture-hints'] },
];

/**
 * Is the variant's gain over the baseline within the noise of paired, alternated runs? The reason when
 * it is (the paired ratio's confidence interval holds 1, or one run per candidate gives no spread), else null.
 */
function withinNoise(baseline: number[], variant: number[]): string | null {
  const r = pairedRatio(baseline, variant);
  if (r.level === 0) return `${r.n} run per candidate has no spread; give more runs`;
  if (!r.withinNoise) return null;
  return `speedup ${r.median.toFixed(3)}x, ${Math.round(r.level * 100)}% interval ${r.lo.toFixed(3)}-${r.hi.toFixed(3)}x over ${r.n} runs`;
}

export interface AutotuneResult {
  /** runMs is null when the candidates could not be timed on the target here. */
  candidates: { name: string; runMs: number | null; nodes: number }[];
  chosen: string;
  /** The execution provider the candidates were timed on, or null when none was timed. */
  timedOn: string | null;
  /** Why the choice was not made by timing (or the fastest was not kept), when it was not. */
  untimed?: string;
}

/**
 * max-autotune: compile each candidate, time it on the target with inputs of the given shapes (runs
 * alternated between candidates, medians), and keep the fastest. Needs `shapes` unless the model is
 * static. Every candidate is staged beside the output (compileStaged); the winner then takes the path
 * every checked door takes (commitChecked: onnxruntime load check, `check`, commit or discard), and
 * the others are discarded. With `dryRun` the candidates are staged in a temporary folder and nothing
 * is kept.
 */
export async function autotune(input: string, options: CheckedCompileOptions & { runs?: number }): Promise<CheckedReport & { autotune: AutotuneResult }> {
  const target = options.target ?? 'cpu';
  if (!(TARGETS as string[]).includes(target)) throw new SdcError('', `unknown target '${target}' (choose ${TARGETS.join(', ')})`);
  const traits = targetTraits(target);
  if (traits.untimeable) throw new SdcError(input, `max-autotune times candidates on the target, and ${traits.untimeable}; use --mode default for ${target}`);
  if (!options.output && !options.dryRun) throw new SdcError(input, 'max-autotune needs an output path (or dryRun)');
  const model = readModel(input);
  const shapes = options.shapes ? toShapeMap(options.shapes, input, model) : null;
  const inputs = model.graph.inputs.filter((v) => !v.initializer);
  const dims = new Map<string, number[]>();
  for (const v of inputs) {
    const s = shapes?.get(v.name) ?? (v.shape?.every((d) => typeof d === 'number') ? (v.shape as number[]) : null);
    if (!s) throw new SdcError(input, `max-autotune times the model, so it needs every input's dims: give --shape (missing: ${v.name} [${(v.shape ?? []).join(', ')}])`);
    dims.set(v.name, s);
  }
  const feeds = syntheticFeeds(dims, inputTypes(inputs), input);
  // fp16: one calibration, by value name, serves every candidate
  const prepared = await prepareChecked(input, options);
  const opts = prepared.opts;
  const scratch = opts.dryRun ? fs.mkdtempSync(path.join(os.tmpdir(), 'sdc-autotune-')) : null;
  const stageAt = scratch ? path.join(scratch, path.basename(opts.output ?? input)) : opts.output!;
  const built: (typeof CANDIDATES[number] & { report: CompileReport; staged: StagedOutput })[] = [];
  try {
    // Each candidate is specialized to the timed shapes (reduce-overhead's specialize-shapes first).
    for (const c of CANDIDATES.filter((c) => !c.layout || traits.providerLayout?.choices.includes(c.layout))) {
      // with fp16 every candidate converts (before capture-hints, as the modes' pipelines do)
      const listed = c.passes && opts.precision === 'fp16' ? c.passes.flatMap((p) => (p === 'capture-hints' ? ['convert-fp16', p] : [p])) : c.passes;
      const passes = listed && shapes ? ['specialize-shapes', ...listed] : listed;
      const { report, staged } = compileStaged(input, { ...opts, dryRun: false, mode: shapes ? 'reduce-overhead' : 'default', shapes, passes, output: stageAt, preferredLayout: c.layout ?? opts.preferredLayout });
      built.push({ ...c, report, staged: staged! });
    }
    // A model compiled for the GPU may hold ops the CPU cannot run: without the provider, nothing is
    // timed and the full pipeline is kept, said once.
    const missing = await providerUnavailable(target);
    // an emulated GPU's timings rank kernels by what is slow on a CPU, and the recorded choice (a
    // layout) ships to real GPUs: nothing is timed there either
    const emulated = !missing && traits.vulkanAdapter && softwareAdapter() ? `the ${traits.label} adapter is ${adapterName()}: its timings say nothing about a GPU` : null;
    let result: AutotuneResult;
    if (missing || emulated) {
      const why = emulated ?? `the ${traits.label} provider could not start here (${missing})`;
      result = { candidates: built.map((b) => ({ name: b.name, runMs: null, nodes: b.report.nodesAfter })), chosen: built[0].name, timedOn: null, untimed: `${why}; kept '${built[0].name}' without timing` };
      process.stderr.write(`sdc: ${result.untimed}\n`);
    } else {
      const sessions: ort.InferenceSession[] = [];
      let provider = target as string;
      try {
        for (const b of built) {
          // each candidate opened as the runtime will open it (its recorded layout and level)
          const meta = readModel(b.staged.modelFile, { allowMissingData: true });
          const options = recommendedSession((k) => meta.getMetadata(k)).options as ort.InferenceSession.SessionOptions;
          const opened = await openSession(b.staged.modelFile, target, options, (m) => process.stderr.write(`${m}\n`));
          provider = opened.provider;
          sessions.push(opened.session);
        }
        const times = await alternateRuns(sessions, feeds, options.runs ?? 7);
        const candidates = built.map((b, i) => ({ name: b.name, runMs: Math.round(median(times[i]) * 10) / 10, nodes: b.report.nodesAfter }));
        const best = candidates.indexOf(candidates.reduce((a, b) => (b.runMs! < a.runMs! ? b : a)));
        result = { candidates, chosen: candidates[best].name, timedOn: provider };
        // the default pipeline (candidate 0) gives way only to a gain beyond the runs' own spread
        const noise = best === 0 ? null : withinNoise(times[0], times[best]);
        if (noise) {
          result.chosen = candidates[0].name;
          result.untimed = `'${candidates[best].name}' timed ${candidates[best].runMs} ms against ${candidates[0].runMs} ms, within the spread of the alternated runs (${noise}); kept '${candidates[0].name}'`;
          process.stderr.write(`sdc: ${result.untimed}\n`);
        }
      } finally {
        for (const s of sessions) await s.release();
      }
    }
    const winner = built.find((b) => b.name === result.chosen)!;
    for (const b of built) if (b !== winner) b.staged.discard();
    const report = { ...winner.report, mode: 'max-autotune' as const, autotune: result };
    if (!scratch) return await commitChecked(input, report, winner.staged, prepared);
    // a dry run keeps nothing: the report names the output as compile's dry run does, without weights
    winner.staged.discard();
    return await commitChecked(input, { ...report, output: path.resolve(opts.output ?? `${input}.sdc.onnx`), dataFile: null }, null, prepared);
  } finally {
    for (const b of built) b.staged.discard();
    if (scratch) fs.rmSync(scratch, { recursive: true, force: true });
  }
}
