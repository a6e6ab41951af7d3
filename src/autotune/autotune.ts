import * as fs from 'fs';
import * as path from 'path';
import * as ort from 'onnxruntime-node';
import { compile, CompileOptions, CompileReport, parseShapes, writeJsonAtomic } from '../compiler/compile';
import { SdcError } from '../ir/errors';
import { readModel } from '../onnx/read';
import { syntheticFeeds } from '../runtime/feeds';
import { openSession } from '../runtime/session';
import { alternateRuns, median } from '../runtime/timing';

/** The variants max-autotune times: the whole pipeline, and the same with fewer rewrites. */
export const CANDIDATES: { name: string; passes: string[] | undefined }[] = [
  { name: 'all fusions', passes: undefined },
  { name: 'cleanup + attention', passes: ['cleanup', 'fuse-attention', 'cleanup', 'capture-hints'] },
  { name: 'cleanup only', passes: ['cleanup', 'capture-hints'] },
];

export interface AutotuneResult {
  candidates: { name: string; runMs: number; nodes: number }[];
  chosen: string;
}

/**
 * max-autotune: compile each candidate, time it on the target with inputs of the given shapes (runs
 * alternated between candidates, medians), and keep the fastest. Needs `shapes` unless the model is
 * static. The candidates are written beside the output and the loser files removed.
 */
export async function autotune(input: string, opts: CompileOptions & { runs?: number }): Promise<CompileReport & { autotune: AutotuneResult }> {
  const target = opts.target ?? 'cpu';
  if (target === 'cuda') throw new SdcError(input, 'max-autotune times candidates on the target, and onnxruntime-node here has no CUDA provider; use --mode default for cuda');
  const model = readModel(input);
  const shapes = typeof opts.shapes === 'string' ? parseShapes(opts.shapes, input, model) : opts.shapes ?? null;
  const inputs = model.graph.inputs.filter((v) => !v.initializer);
  const dims = new Map<string, number[]>();
  for (const v of inputs) {
    const s = shapes?.get(v.name) ?? (v.shape?.every((d) => typeof d === 'number') ? (v.shape as number[]) : null);
    if (!s) throw new SdcError(input, `max-autotune times the model, so it needs every input's dims: give --shape (missing: ${v.name} [${(v.shape ?? []).join(', ')}])`);
    dims.set(v.name, s);
  }
  const feeds = syntheticFeeds(dims, new Map(inputs.map((v) => [v.name, v.elemType === 1 ? 'float32' : `dtype ${v.elemType}`])));
  const outDir = path.dirname(path.resolve(opts.output));
  const work = fs.mkdtempSync(path.join(outDir, `.${path.basename(opts.output)}.autotune-`));
  try {
    const built = CANDIDATES.map((c, i) => {
      const file = path.join(work, String(i), path.basename(opts.output));
      fs.mkdirSync(path.dirname(file));
      const report = compile(input, { ...opts, report: undefined, mode: 'default', passes: c.passes, output: file });
      return { ...c, file, report };
    });
    const warn = (m: string) => process.stderr.write(`${m}\n`);
    const sessions: ort.InferenceSession[] = [];
    for (const b of built) sessions.push((await openSession(b.file, target, { graphOptimizationLevel: 'all' }, warn)).session);
    const times = await alternateRuns(sessions, feeds, opts.runs ?? 7);
    for (const s of sessions) await s.release();
    const candidates = built.map((b, i) => ({ name: b.name, runMs: Math.round(median(times[i]) * 10) / 10, nodes: b.report.nodesAfter }));
    const best = candidates.reduce((a, b) => (b.runMs < a.runMs ? b : a));
    const winner = built.find((b) => b.name === best.name)!;
    // Move the winner (model, then its data file first) into place.
    const data = `${winner.file}.data`;
    if (fs.existsSync(data)) fs.renameSync(data, `${path.resolve(opts.output)}.data`);
    fs.renameSync(winner.file, path.resolve(opts.output));
    const result: AutotuneResult = { candidates, chosen: best.name };
    const report = { ...winner.report, mode: 'max-autotune' as const, output: path.resolve(opts.output), dataFile: fs.existsSync(`${path.resolve(opts.output)}.data`) ? `${path.resolve(opts.output)}.data` : null, autotune: result };
    if (opts.report) writeJsonAtomic(opts.report, report);
    return report;
  } finally {
    fs.rmSync(work, { recursive: true, force: true });
  }
}
