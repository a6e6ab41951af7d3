import * as fs from 'fs';
import * as path from 'path';
import * as ort from 'onnxruntime-node';
import { compile, CompileOptions, CompileReport, toShapeMap, writeJsonAtomic } from '../compiler/compile';
import { SdcError } from '../ir/errors';
import { readModel } from '../onnx/read';
import { inputTypes, syntheticFeeds } from '../runtime/feeds';
import { calibrate } from '../runtime/calibrate';
import { openSession, providerUnavailable } from '../runtime/session';
import { TARGETS, targetTraits } from '../targets';
import { alternateRuns, median } from '../runtime/timing';
import { ProviderLayout, recommendedSession } from '../targets/session-options';

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

export interface AutotuneResult {
  /** runMs is null when the candidates could not be timed on the target here. */
  candidates: { name: string; runMs: number | null; nodes: number }[];
  chosen: string;
  /** The execution provider the candidates were timed on, or null when none was timed. */
  timedOn: string | null;
  /** Why the choice was not made by timing, when it was not. */
  untimed?: string;
}

/**
 * max-autotune: compile each candidate, time it on the target with inputs of the given shapes (runs
 * alternated between candidates, medians), and keep the fastest. Needs `shapes` unless the model is
 * static. The candidates are written beside the output and the loser files removed.
 */
export async function autotune(input: string, options: CompileOptions & { runs?: number; calibrate?: boolean }): Promise<CompileReport & { autotune: AutotuneResult }> {
  let opts = options;
  const target = opts.target ?? 'cpu';
  if (!(TARGETS as string[]).includes(target)) throw new SdcError('', `unknown target '${target}' (choose ${TARGETS.join(', ')})`);
  const traits = targetTraits(target);
  if (traits.untimeable) throw new SdcError(input, `max-autotune times candidates on the target, and ${traits.untimeable}; use --mode default for ${target}`);
  const model = readModel(input);
  const shapes = opts.shapes ? toShapeMap(opts.shapes, input, model) : null;
  const inputs = model.graph.inputs.filter((v) => !v.initializer);
  const dims = new Map<string, number[]>();
  for (const v of inputs) {
    const s = shapes?.get(v.name) ?? (v.shape?.every((d) => typeof d === 'number') ? (v.shape as number[]) : null);
    if (!s) throw new SdcError(input, `max-autotune times the model, so it needs every input's dims: give --shape (missing: ${v.name} [${(v.shape ?? []).join(', ')}])`);
    dims.set(v.name, s);
  }
  // fp16: one calibration, by value name, serves every candidate
  if (opts.precision === 'fp16' && opts.calibrate !== false && !opts.ranges) opts = { ...opts, ranges: (await calibrate(input, { shapes: opts.shapes })).ranges };
  const feeds = syntheticFeeds(dims, inputTypes(inputs), input);
  if (!opts.output) throw new SdcError(input, 'max-autotune needs an output path');
  const output = opts.output;
  const outDir = path.dirname(path.resolve(output));
  const work = fs.mkdtempSync(path.join(outDir, `.${path.basename(output)}.autotune-`));
  try {
    // Each candidate is specialized to the timed shapes (reduce-overhead's specialize-shapes first).
    const built = CANDIDATES.filter((c) => !c.layout || traits.providerLayout?.choices.includes(c.layout)).map((c, i) => {
      const file = path.join(work, String(i), path.basename(output));
      fs.mkdirSync(path.dirname(file));
      // with fp16 every candidate converts (before capture-hints, as the modes' pipelines do)
      const listed = c.passes && opts.precision === 'fp16' ? c.passes.flatMap((p) => (p === 'capture-hints' ? ['convert-fp16', p] : [p])) : c.passes;
      const passes = listed && shapes ? ['specialize-shapes', ...listed] : listed;
      const report = compile(input, { ...opts, report: undefined, mode: shapes ? 'reduce-overhead' : 'default', shapes, passes, output: file, preferredLayout: c.layout ?? opts.preferredLayout });
      return { ...c, file, report };
    });
    // A model compiled for the GPU may hold ops the CPU cannot run: without the provider, nothing is
    // timed and the full pipeline is kept, said once.
    const missing = await providerUnavailable(target);
    let result: AutotuneResult;
    if (missing) {
      result = { candidates: built.map((b) => ({ name: b.name, runMs: null, nodes: b.report.nodesAfter })), chosen: built[0].name, timedOn: null, untimed: `the ${traits.label} provider could not start here (${missing}); kept '${built[0].name}' without timing` };
      process.stderr.write(`sdc: ${result.untimed}\n`);
    } else {
      const sessions: ort.InferenceSession[] = [];
      let provider = target as string;
      for (const b of built) {
        // each candidate opened as the runtime will open it (its recorded layout and level)
        const meta = readModel(b.file, { allowMissingData: true });
        const options = recommendedSession((k) => meta.getMetadata(k)).options as ort.InferenceSession.SessionOptions;
        const opened = await openSession(b.file, target, options, (m) => process.stderr.write(`${m}\n`));
        provider = opened.provider;
        sessions.push(opened.session);
      }
      const times = await alternateRuns(sessions, feeds, opts.runs ?? 7);
      for (const s of sessions) await s.release();
      const candidates = built.map((b, i) => ({ name: b.name, runMs: Math.round(median(times[i]) * 10) / 10, nodes: b.report.nodesAfter }));
      const best = candidates.reduce((a, b) => (b.runMs! < a.runMs! ? b : a));
      result = { candidates, chosen: best.name, timedOn: provider };
    }
    const winner = built.find((b) => b.name === result.chosen)!;
    // Move the winner (model, then its data file first) into place.
    const data = `${winner.file}.data`;
    if (fs.existsSync(data)) fs.renameSync(data, `${path.resolve(output)}.data`);
    fs.renameSync(winner.file, path.resolve(output));
    const report = { ...winner.report, mode: 'max-autotune' as const, output: path.resolve(output), dataFile: fs.existsSync(`${path.resolve(output)}.data`) ? `${path.resolve(output)}.data` : null, autotune: result };
    if (opts.report) writeJsonAtomic(opts.report, report);
    return report;
  } finally {
    fs.rmSync(work, { recursive: true, force: true });
  }
}
