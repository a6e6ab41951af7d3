import * as ort from 'onnxruntime-node';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { load } from '../runtime';
import { openSession } from '../runtime/session';
import { alternateRuns, median } from '../runtime/timing';
import { inputTypes, refuseHugeFeeds, refuseUnfeedable, syntheticFeeds } from '../runtime/feeds';
import { parseShapes } from '../compiler/compile';
import { checkLineTail, compileChecked, cpuOriginal } from '../verify/check';
import { readModel } from '../onnx/read';
import { TargetName, targetTraits } from '../targets';
import { recommendedSession } from '../targets/session-options';
import { formatPlacement, profilePlacement } from '../runtime/placement';
import { providerUnavailable } from '../runtime/session';
import { ADAPTER_HINT, adapterName } from '../runtime/swiftshader';
import { SdcError } from '../ir/errors';
import { DataType } from '../ir/dtype';
import { analyzeShapes, ShapeLookup } from '../analysis/shapes';
import { analyzeAt } from '../analysis/solve-dims';

/** Every input's dims from --shape and its element type; a partial --shape is the user's mistake, said as compile says it. */
function inputsOf(model: string, shapeSpec: string): { shapes: Map<string, number[]>; types: Map<string, string> } {
  const m = readModel(model);
  const shapes = parseShapes(shapeSpec, model, m);
  const inputs = m.graph.inputs.filter((v) => !v.initializer);
  const missing = inputs.filter((v) => !shapes.has(v.name));
  if (missing.length) throw new SdcError(model, `--shape leaves ${missing.map((v) => `'${v.name}' [${(v.shape ?? []).join(', ')}]`).join(', ')} without dims; give every input's dims`);
  const types = inputTypes(inputs);
  refuseUnfeedable(types, model);
  refuseHugeFeeds(shapes, model, '--shape');
  // sizes the model cannot compute with (77 positions fed 100 tokens, an odd latent through a stride-2
  // path) are said as compile says them, naming the node, before onnxruntime runs into them
  const c = analyzeAt(m, shapes).conflicts.find((x) => x.certain);
  if (c) throw new SdcError(model, `--shape ${shapeSpec} contradicts the model at node '${c.node.name}' (${c.node.opType}): ${c.problem}`);
  return { shapes, types };
}


function summarize(name: string, t: ort.Tensor): string {
  // int64 outputs hold bigints, bool outputs 0/1 bytes: summarized as numbers like the rest
  const d = Array.from(t.data as ArrayLike<number | bigint>, Number);
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
    const out = await m.run(syntheticFeeds(shapes, types, model));
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
  // timings on a fallback provider would be presented as the target's
  const unavailable = await providerUnavailable(o.target);
  if (unavailable) throw new SdcError(model, `bench times the model on the ${o.target} provider, which cannot start here (${unavailable}); bench where it runs, or with --target cpu`);
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'sdc-bench-'));
  try {
    const out = path.join(dir, 'model.onnx');
    const report = await compileChecked(model, { output: out, mode: o.mode, target: o.target, shapes: o.mode === 'reduce-overhead' ? shapes : null, check: o.check ?? 0 });
    const feeds = syntheticFeeds(shapes, types, model);
    const warn = (m: string) => process.stderr.write(`${m}\n`);
    // the original with the provider's defaults, the output as sdc recommends opening it (e.g. its WebGPU layout)
    const open = async (f: string, options: ort.InferenceSession.SessionOptions) => {
      const t0 = performance.now();
      const { session } = await openSession(f, o.target, options, warn);
      return { session, createMs: performance.now() - t0 };
    };
    const compiledModel = readModel(out, { allowMissingData: true });
    const a = await open(cpuOriginal(model, () => dir), { graphOptimizationLevel: 'all' });
    const b = await open(out, recommendedSession((k) => compiledModel.getMetadata(k), o.target).options as ort.InferenceSession.SessionOptions);
    const [ta, tb] = await alternateRuns([a.session, b.session], feeds, o.runs);
    await a.session.release();
    await b.session.release();
    const med = median;
    return [
      `${model}: ${report.nodesBefore} -> ${report.nodesAfter} nodes (sdc ${o.mode}, ${o.target}, compiled in ${(report.compileMs / 1000).toFixed(1)} s)`,
      `session create: original ${a.createMs.toFixed(0)} ms, compiled ${b.createMs.toFixed(0)} ms (${(a.createMs / b.createMs).toFixed(2)}x)`,
      `run, median of ${o.runs} alternated: original ${med(ta).toFixed(1)} ms, compiled ${med(tb).toFixed(1)} ms (${(med(ta) / med(tb)).toFixed(2)}x)`,
      ...(report.check ? [`check: ${report.check.sets} input sets on ${report.check.ranOn}: max rel ${report.check.maxRel.toExponential(2)} (tolerance ${report.check.tolerance}) ok; ${checkLineTail(report.check)}`] : []),
    ].join('\n');
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

/** `sdc inspect --placement`: one profiled call on the target's provider, nodes per provider and why. */
export async function placementCommand(
  model: string,
  shapeSpec: string | undefined,
  o: { target?: TargetName; json: boolean; explain: boolean },
): Promise<string> {
  const m = readModel(model);
  const target = o.target ?? ((m.getMetadata('sdc.target') as TargetName | undefined) || 'webgpu');
  const inputs = m.graph.inputs.filter((v) => !v.initializer);
  const staticDims = new Map(inputs.filter((v) => v.shape?.every((d) => typeof d === 'number')).map((v) => [v.name, v.shape as number[]]));
  const { shapes, types } = shapeSpec ? inputsOf(model, shapeSpec) : { shapes: staticDims, types: inputTypes(inputs) };
  const dynamic = inputs.filter((v) => !shapes.has(v.name));
  if (dynamic.length) throw new SdcError(model, `has dynamic inputs (${dynamic.map((v) => `${v.name} [${(v.shape ?? []).join(', ')}]`).join(', ')}): give --shape to run it`);
  // placement is exact on a software adapter (it counts kernels, not time): use one where no GPU is
  const why = await providerUnavailable(target, { software: true });
  if (why) throw new SdcError(model, `placement on ${target} not measured: the ${target} provider cannot start here (${why})${targetTraits(target).vulkanAdapter ? `; ${ADAPTER_HINT}` : ''}`);
  const adapter = targetTraits(target).vulkanAdapter ? adapterName() : null;
  // an sdc output opens as sdc recommends; any other model with the provider's own defaults
  const rec = m.getMetadata('sdc.target') ? recommendedSession((k) => m.getMetadata(k), target) : { options: { executionProviders: [target] } };
  const placement = await profilePlacement(model, syntheticFeeds(shapes, types, model), rec.options as ort.InferenceSession.SessionOptions);
  const facts = placement.cpuNodes.length ? analyzeShapes(m, m.graph) : null;
  const fallbacks = placement.cpuNodes.map((n) => ({ ...n, why: cpuReason(m, facts!, n.name, n.op, target) }));
  if (o.json) return JSON.stringify({ target, adapter, sessionOptions: rec.options, ...placement, cpuNodes: fallbacks }, null, 2);
  const lines = [`placement on ${target}${adapter ? ` (${adapter})` : ''} (${JSON.stringify(rec.options.executionProviders[0])}), inputs ${[...shapes].map(([k, d]) => `${k}=${d.join('x')}`).join(',')}:`, ...formatPlacement(placement)];
  if (o.explain) for (const f of fallbacks) lines.push(`  on the CPU: ${f.op} '${f.name}': ${f.why}`);
  else if (fallbacks.length) lines.push(`  (--explain names the ${fallbacks.length} CPU nodes and why)`);
  return lines.join('\n');
}

/** Why onnxruntime ran a node on the CPU under a device provider, from what the graph says about it. */
function cpuReason(m: ReturnType<typeof readModel>, facts: ShapeLookup, name: string, op: string, target: TargetName): string {
  const node = m.graph.nodes.find((n) => n.name === name);
  if (!node) return `a node onnxruntime made (${op}) and placed on the CPU`;
  const intOut = node.outputs.every((v) => [DataType.INT64, DataType.INT32].includes(facts.get(v).dtype ?? DataType.UNDEFINED));
  if (intOut || ['Shape', 'Size'].includes(op)) return 'integer shape arithmetic: onnxruntime keeps it on the CPU (compile with --mode reduce-overhead and --shape to fold it)';
  return `the ${target} provider has no kernel for ${op} with these element types or attributes`;
}
