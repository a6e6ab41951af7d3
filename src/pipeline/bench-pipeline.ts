import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import * as ort from 'onnxruntime-node';
import { SdcError } from '../ir/errors';
import { readModel } from '../onnx/read';
import { Mode, Precision } from '../rewrite/pass';
import { TargetName, targetTraits } from '../targets';
import { recommendedSession } from '../targets/session-options';
import { Progress, silentProgress } from '../compiler/progress';
import { relError } from '../runtime/compare';
import { providerUnavailable } from '../runtime/session';
import { compilePipeline, PipelineReport } from './compile-pipeline';
import { planDims, PipelineShape } from './dims';
import { readPipeline } from './layout';
import { pipelineFacts, runWorkload, Workload, workloadsFor } from './workloads';

export interface PipelineBenchOptions {
  target?: TargetName;
  mode?: Exclude<Mode, 'max-autotune'>;
  precision?: Precision;
  shape?: PipelineShape;
  /** Denoising steps per image (default 4: this is a benchmark of the components, not of image quality). */
  steps?: number;
  /** Timed images per variant, alternated, after one warm-up image each (default 3). */
  runs?: number;
  /** Which workloads (default: every one the pipeline can run). */
  workloads?: Workload[];
  progress?: Progress;
}

/** Median and range of a set of timings, in ms. */
export interface Spread {
  median: number;
  min: number;
  max: number;
}

export interface VariantTimes {
  /** Seconds per image. */
  image: Spread;
  /** Per component, ms per call (median over every call of every timed image). */
  stages: Record<string, Spread>;
}

export interface WorkloadResult {
  workload: Workload;
  exported: VariantTimes;
  compiled: VariantTimes;
  /** exported / compiled seconds per image: the median of per-run ratios, and their range. */
  speedup: Spread;
  /** max |a - b| / max |a| between the two final images (same latents, same ids). */
  imageRelError: number;
  imagesAgree: boolean;
}

export interface PipelineBenchReport {
  input: string;
  target: TargetName;
  mode: string;
  precision: Precision;
  provider: string;
  steps: number;
  runs: number;
  shape: PipelineReport['shape'];
  compileMs: number;
  workloads: WorkloadResult[];
}

const AGREE_FP32 = 1e-3;
const AGREE_FP16 = 5e-2;

/**
 * `sdc bench DIR`: the pipeline as exported and as sdc compiles it, the same workloads on the same
 * inputs, alternated image by image, on the target's provider. Compiles into a temporary folder.
 */
export async function benchPipeline(dir: string, o: PipelineBenchOptions = {}): Promise<PipelineBenchReport> {
  const target = o.target ?? 'cpu';
  const traits = targetTraits(target);
  if (!traits.nodeProvider) throw new SdcError(dir, `onnxruntime-node has no ${traits.label} provider here; bench a pipeline for cpu or webgpu`);
  const missing = await providerUnavailable(target);
  if (missing) throw new SdcError(dir, `the ${traits.label} provider does not start here: ${missing}`);
  const steps = o.steps ?? 4;
  const runs = o.runs ?? 3;
  if (!Number.isSafeInteger(steps) || steps < 1) throw new SdcError(dir, `--steps takes a whole number of denoising steps, at least 1 (got ${steps})`);
  if (!Number.isSafeInteger(runs) || runs < 1) throw new SdcError(dir, `--runs takes a whole number of timed images, at least 1 (got ${runs})`);
  const p = readPipeline(dir);
  const plan = planDims(p, o.shape ?? {});
  const facts = pipelineFacts(p);
  const can = workloadsFor(p, plan, facts);
  const wanted = o.workloads ?? can;
  const unable = wanted.find((w) => !can.includes(w));
  if (unable) throw new SdcError(dir, `cannot run ${unable}: this pipeline runs ${can.join(', ') || 'no workload'}`);
  const progress = o.progress ?? silentProgress;

  const scratch = fs.mkdtempSync(path.join(os.tmpdir(), 'sdc-bench-pipeline-'));
  try {
    progress.step('compiling the pipeline');
    const compiled = await compilePipeline(dir, { output: path.join(scratch, 'compiled'), target, mode: o.mode ?? 'reduce-overhead', precision: o.precision, shape: o.shape, progress });
    const variants = {
      exported: await openAll(p.dir, p.components.map((c) => c.name), () => ({ executionProviders: [traits.provider] })),
      compiled: await openAll(compiled.output, p.components.map((c) => c.name), (file) => {
        const m = readModel(file, { allowMissingData: true });
        return recommendedSession((k) => m.getMetadata(k), target).options as ort.InferenceSession.SessionOptions;
      }),
    };
    try {
      const results: WorkloadResult[] = [];
      for (const w of wanted) {
        const times = { exported: { image: [] as number[], stages: new Map<string, number[]>() }, compiled: { image: [] as number[], stages: new Map<string, number[]>() } };
        const images: Record<string, ort.Tensor> = {};
        for (let r = 0; r <= runs; r++) {
          const order = r % 2 ? (['compiled', 'exported'] as const) : (['exported', 'compiled'] as const);
          for (const v of order) {
            progress.step(`${w}: ${v}, ${r === 0 ? 'warm-up' : `image ${r} of ${runs}`}`);
            const stageMs = new Map<string, number[]>();
            const sessions = variants[v];
            const t0 = performance.now();
            const img = await runWorkload(facts, plan, { workload: w, steps }, async (c, feeds) => {
              const s = sessions.get(c)!;
              const t = performance.now();
              const wantedFeeds = Object.fromEntries(Object.entries(feeds).filter(([k]) => s.inputNames.includes(k)));
              const out = await s.run(wantedFeeds);
              stageMs.set(c, [...(stageMs.get(c) ?? []), performance.now() - t]);
              return out as Record<string, ort.Tensor>;
            });
            const ms = performance.now() - t0;
            if (r === 0) {
              images[v] = img;
              continue;
            }
            times[v].image.push(ms / plan.batch / 1000);
            for (const [c, l] of stageMs) times[v].stages.set(c, [...(times[v].stages.get(c) ?? []), ...l]);
          }
        }
        const imageRelError = relError(images.exported, images.compiled);
        const ratios = times.exported.image.map((e, i) => e / times.compiled.image[i]);
        results.push({
          workload: w,
          exported: { image: spread(times.exported.image), stages: Object.fromEntries([...times.exported.stages].map(([k, l]) => [k, spread(l)])) },
          compiled: { image: spread(times.compiled.image), stages: Object.fromEntries([...times.compiled.stages].map(([k, l]) => [k, spread(l)])) },
          speedup: spread(ratios),
          imageRelError,
          imagesAgree: imageRelError <= (o.precision === 'fp16' ? AGREE_FP16 : AGREE_FP32),
        });
      }
      progress.done();
      return { input: p.dir, target, mode: o.mode ?? 'reduce-overhead', precision: o.precision ?? 'fp32', provider: traits.provider, steps, runs, shape: compiled.shape, compileMs: compiled.compileMs, workloads: results };
    } finally {
      for (const m of Object.values(variants)) for (const s of m.values()) await s.release();
    }
  } finally {
    fs.rmSync(scratch, { recursive: true, force: true });
  }
}

async function openAll(dir: string, names: string[], options: (file: string) => ort.InferenceSession.SessionOptions): Promise<Map<string, ort.InferenceSession>> {
  const out = new Map<string, ort.InferenceSession>();
  for (const n of names) {
    const file = path.join(dir, n, 'model.onnx');
    out.set(n, await ort.InferenceSession.create(file, { logSeverityLevel: 4, ...options(file) }));
  }
  return out;
}

function spread(l: number[]): Spread {
  const s = [...l].sort((a, b) => a - b);
  const m = s.length % 2 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
  const r = (x: number) => Math.round(x * 1000) / 1000;
  return { median: r(m), min: r(s[0]), max: r(s[s.length - 1]) };
}

/** The report for people: per workload, seconds per image both ways, the speedup, per-stage ms, and whether the images agree. */
export function formatPipelineBench(r: PipelineBenchReport): string {
  const f = (s: Spread, unit: string, k = 1) => `${(s.median * k).toFixed(k === 1 ? 3 : 1)}${unit} [${(s.min * k).toFixed(k === 1 ? 3 : 1)}–${(s.max * k).toFixed(k === 1 ? 3 : 1)}]`;
  const lines = [`${r.input} on ${r.provider}: ${r.shape.height}x${r.shape.width}, batch ${r.shape.batch}${r.shape.cfg ? ' (guidance)' : ''}, ${r.steps} steps; sdc ${r.mode} ${r.precision}; median [min–max] of ${r.runs} alternated images`];
  for (const w of r.workloads) {
    lines.push(`${w.workload}: exported ${f(w.exported.image, ' s')} per image, sdc ${f(w.compiled.image, ' s')}: ${w.speedup.median.toFixed(2)}x [${w.speedup.min.toFixed(2)}–${w.speedup.max.toFixed(2)}]; images ${w.imagesAgree ? 'agree' : 'DIFFER'} (max rel ${w.imageRelError.toExponential(1)})`);
    for (const c of Object.keys(w.exported.stages)) lines.push(`  ${c}: ${f(w.exported.stages[c], ' ms')} -> ${f(w.compiled.stages[c], ' ms')} per call`);
  }
  return lines.join('\n');
}
