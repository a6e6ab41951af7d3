import * as ort from 'onnxruntime-node';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { load } from '../runtime';
import { openSession } from '../runtime/session';
import { alternateRuns, median } from '../runtime/timing';
import { syntheticFeeds } from '../runtime/feeds';
import { parseShapes } from '../compiler/compile';
import { compileChecked } from '../verify/check';
import { readModel } from '../onnx/read';
import { TargetName } from '../targets';

function inputsOf(model: string, shapeSpec: string): { shapes: Map<string, number[]>; types: Map<string, string> } {
  const m = readModel(model);
  const shapes = parseShapes(shapeSpec, model, m);
  const inputs = m.graph.inputs.filter((v) => !v.initializer);
  const missing = inputs.filter((v) => !shapes.has(v.name));
  if (missing.length) throw new Error(`--shape must give every input; missing: ${missing.map((v) => `${v.name} [${(v.shape ?? []).join(', ')}]`).join(', ')}`);
  return { shapes, types: new Map(inputs.map((v) => [v.name, v.elemType === 1 ? 'float32' : `dtype ${v.elemType}`])) };
}

function summarize(name: string, t: ort.Tensor): string {
  const d = t.data as Float32Array;
  let min = Infinity, max = -Infinity, sum = 0, sq = 0;
  for (const x of d) {
    min = Math.min(min, x);
    max = Math.max(max, x);
    sum += x;
    sq += x * x;
  }
  const mean = sum / d.length;
  return `${name}: ${t.type}[${t.dims.join('x')}] mean ${mean.toPrecision(6)} std ${Math.sqrt(Math.max(0, sq / d.length - mean * mean)).toPrecision(6)} min ${min.toPrecision(6)} max ${max.toPrecision(6)}`;
}

/** `sdc run`: load through the runtime (compile or reuse the cached specialization), run once, summarize. */
export async function runCommand(model: string, shapeSpec: string, o: { cacheDir?: string; target: TargetName; mode: 'default' | 'reduce-overhead' }): Promise<string> {
  const { shapes, types } = inputsOf(model, shapeSpec);
  const m = await load(model, { cacheDir: o.cacheDir, target: o.target, mode: o.mode });
  try {
    const t0 = performance.now();
    const out = await m.run(syntheticFeeds(shapes, types));
    const ms = performance.now() - t0;
    const lines = Object.entries(out).map(([k, t]) => summarize(k, t));
    const s = m.stats();
    lines.push(`first call ${ms.toFixed(0)} ms (${s.compiles ? 'compiled' : s.diskHits ? 'from the disk cache' : 'in memory'}, provider ${s.provider})`);
    lines.push(...m.explain());
    return lines.join('\n');
  } finally {
    await m.release();
  }
}

/** `sdc bench`: the original and the compiled model side by side in one process, runs alternated. */
export async function benchCommand(model: string, shapeSpec: string, o: { target: TargetName; runs: number; mode: 'default' | 'reduce-overhead'; check?: number }): Promise<string> {
  const { shapes, types } = inputsOf(model, shapeSpec);
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'sdc-bench-'));
  try {
    const out = path.join(dir, 'model.onnx');
    const report = await compileChecked(model, { output: out, mode: o.mode, target: o.target, shapes: o.mode === 'reduce-overhead' ? shapes : null, check: o.check ?? 0 });
    const feeds = syntheticFeeds(shapes, types);
    const warn = (m: string) => process.stderr.write(`${m}\n`);
    const open = async (f: string) => {
      const t0 = performance.now();
      const { session } = await openSession(f, o.target, { graphOptimizationLevel: 'all' }, warn);
      return { session, createMs: performance.now() - t0 };
    };
    const a = await open(model);
    const b = await open(out);
    const [ta, tb] = await alternateRuns([a.session, b.session], feeds, o.runs);
    await a.session.release();
    await b.session.release();
    const med = median;
    return [
      `${model}: ${report.nodesBefore} -> ${report.nodesAfter} nodes (sdc ${o.mode}, ${o.target}, compiled in ${(report.compileMs / 1000).toFixed(1)} s)`,
      `session create: original ${a.createMs.toFixed(0)} ms, compiled ${b.createMs.toFixed(0)} ms (${(a.createMs / b.createMs).toFixed(2)}x)`,
      `run, median of ${o.runs} alternated: original ${med(ta).toFixed(1)} ms, compiled ${med(tb).toFixed(1)} ms (${(med(ta) / med(tb)).toFixed(2)}x)`,
      ...(report.check ? [`check: ${report.check.sets} input sets on ${report.check.ranOn}: max rel ${report.check.maxRel.toExponential(2)} (tolerance ${report.check.tolerance}) ok`] : []),
    ].join('\n');
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
}
