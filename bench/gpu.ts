import { execFileSync } from 'child_process';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import * as ort from 'onnxruntime-node';
import { compile } from '../src/compiler/compile';
import { fixturesDir, materialize, modelCacheDir, sd15Model } from '../fixtures/materialize';
import { terminalProgress } from '../src/compiler/progress';
import { readModel } from '../src/onnx/read';
import { SDC_VERSION } from '../src/compiler/version';
import { syntheticFeeds } from '../src/runtime/feeds';
import { Placement, profilePlacement } from '../src/runtime/placement';
import { calibrate } from '../src/runtime/calibrate';
import { webgpuF16Unavailable, webgpuUnavailable } from '../src/runtime/session';
import { useSwiftShader } from '../src/runtime/swiftshader';
import { relError } from '../src/runtime/compare';
import { alternateRuns, pairedRatio, spread, Spread } from '../src/runtime/timing';
import { recommendedSession } from '../src/targets/session-options';

/**
 * `npm run bench -- --target webgpu [--quick] [--runs=N] [--only=TEXT,...] [--out=FILE]`: the models as
 * exported and compiled by sdc (default, reduce-overhead) on onnxruntime's WebGPU provider, each
 * variant alternated with the as-exported model in one process: ms per step with the median's ~90% interval, the paired
 * ratio, and kernels per step from one profiled call. Writes docs/benchmarks-gpu.md (and .json). On a
 * machine without a GPU it runs on SwiftShader and says so; those timings measure a CPU, not a GPU.
 */
interface GpuSpec {
  id: string;
  file: () => string;
  shapes: Record<string, number[]>;
  /** the peer's fused output of the same UNet, run with the provider's defaults */
  peer?: () => string;
}

interface GpuVariant {
  name: string;
  options: string;
  compileMs?: number;
  run?: Spread;
  baselineRun?: Spread;
  ratio?: Spread & { withinNoise: boolean };
  placement?: Placement;
  relError?: number;
  /** fp16 only: fp32 ms / fp16 ms, alternated with the same variant in fp32 (paired per round). */
  vsFp32?: Spread & { withinNoise: boolean };
  failed?: string;
  /** Not measured on this adapter, and why (fp16 without shader-f16). */
  skipped?: string;
}

interface GpuResult {
  date: string;
  adapter: string;
  machine: string;
  versions: Record<string, string>;
  command: string;
  models: { id: string; shapes: Record<string, number[]>; variants: GpuVariant[] }[];
}

function specs(quick: boolean): GpuSpec[] {
  const tiny = (s: string): GpuSpec => ({
    id: `tiny ${s}`,
    file: () => path.join(fixturesDir(), 'models', 'tiny', `unet_${s}.onnx`),
    shapes: { sample: [2, 4, 32, 32], timestep: [2], encoder_hidden_states: [2, 16, 32] },
  });
  // one guidance step of SD1.5 at 512×512: batch 2 (cond + uncond), 64×64 latent, 77 tokens
  const sd = (s: 'sdpa_op17' | 'vanilla_op17' | 'dynamo_op18'): GpuSpec => ({
    id: `SD1.5 ${s}`,
    file: () => sd15Model(s, terminalProgress()),
    shapes: { sample: [2, 4, 64, 64], timestep: [2], encoder_hidden_states: [2, 77, 768] },
    peer: s === 'sdpa_op17' ? peerModel : undefined,
  });
  const all = [tiny('sdpa_op17'), tiny('vanilla_op17'), tiny('dynamo_op18'), sd('sdpa_op17'), sd('vanilla_op17')];
  return quick ? all.slice(0, 3) : all;
}

/** The peer's WebGPU output for SD1.5 (fixtures/models/peer), with synthetic weights of its own. */
function peerModel(): string {
  return materialize(path.join(fixturesDir(), 'models', 'peer', 'sd15_unet_vanilla_op17.ortopt_webgpu.graph.onnx'), null, path.join(modelCacheDir(), 'sd15_peer_webgpu'));
}

/** The adapter's name: what the caller says, else the GPU's driver, else SwiftShader. */
function adapterName(): string {
  if (process.env.SDC_GPU_NAME) return process.env.SDC_GPU_NAME;
  if (process.env.VK_ICD_FILENAMES?.includes('swiftshader')) return 'SwiftShader (Vulkan on the CPU; not a GPU)';
  try {
    return execFileSync('nvidia-smi', ['--query-gpu=name,driver_version', '--format=csv,noheader'], { encoding: 'utf8' }).trim().split('\n')[0];
  } catch {
    return 'unknown adapter';
  }
}

const asExported: ort.InferenceSession.SessionOptions = { executionProviders: ['webgpu'], logSeverityLevel: 3 };

async function benchModel(spec: GpuSpec, dir: string, runs: number, log: (s: string) => void): Promise<GpuResult['models'][number]> {
  const src = spec.file();
  const feeds = syntheticFeeds(new Map(Object.entries(spec.shapes)), new Map());
  const base = path.join(dir, spec.id.replace(/\W+/g, '_'));
  const variants: GpuVariant[] = [{ name: 'as exported', options: 'webgpu (provider defaults)' }];
  log(`${spec.id}: as exported`);
  const o = await ort.InferenceSession.create(src, asExported);
  const reference = (await o.run(feeds)).out_sample as ort.Tensor;
  variants[0].placement = await profilePlacement(src, feeds, asExported);
  const origRuns: number[] = [];
  const measure = async (v: GpuVariant, file: string, options: ort.InferenceSession.SessionOptions, comparable: boolean) => {
    v.options = JSON.stringify(options.executionProviders?.[0]);
    const s = await ort.InferenceSession.create(file, options);
    const first = (await s.run(feeds)).out_sample as ort.Tensor;
    if (comparable) v.relError = relError(reference, first);
    const [theirs, mine] = await alternateRuns([o, s], feeds, runs);
    await s.release();
    origRuns.push(...theirs);
    v.run = spread(mine);
    v.baselineRun = spread(theirs);
    v.ratio = pairedRatio(theirs, mine);
    v.placement = await profilePlacement(file, feeds, options);
  };
  for (const mode of ['default', 'reduce-overhead'] as const) {
    const v: GpuVariant = { name: `sdc ${mode}`, options: '' };
    variants.push(v);
    const out = `${base}.${mode}.onnx`;
    try {
      log(`${spec.id}: sdc ${mode}`);
      const t0 = performance.now();
      compile(src, { output: out, mode, target: 'webgpu', shapes: mode === 'reduce-overhead' ? spec.shapes : null });
      v.compileMs = performance.now() - t0;
      const m = readModel(out, { allowMissingData: true });
      const options = { logSeverityLevel: 3, ...recommendedSession((k) => m.getMetadata(k)).options } as ort.InferenceSession.SessionOptions;
      await measure(v, out, options, true);
      if (mode === 'reduce-overhead') {
        // the provider's own layout, for max-autotune's choice: NHWC Conv kernels with Transposes around them
        const nhwc: GpuVariant = { name: 'sdc reduce-overhead, preferredLayout NHWC', options: '' };
        variants.push(nhwc);
        await measure(nhwc, out, { ...options, executionProviders: [{ name: 'webgpu', preferredLayout: 'NHWC' }] } as ort.InferenceSession.SessionOptions, true);
      }
    } catch (e) {
      v.failed = (e as Error).message.split('\n')[0].slice(0, 200);
    }
  }
  await fp16Variants(spec, src, base, variants, measure, runs, feeds, log);
  for (const f of fs.readdirSync(dir)) if (f.startsWith(path.basename(base))) fs.rmSync(path.join(dir, f), { force: true });
  if (spec.peer) {
    const v: GpuVariant = { name: 'peer: onnxruntime transformers optimizer (vanilla export, its own weights)', options: '' };
    variants.push(v);
    try {
      log(`${spec.id}: peer`);
      await measure(v, spec.peer(), asExported, false);
    } catch (e) {
      v.failed = (e as Error).message.split('\n')[0].slice(0, 200);
    }
  }
  await o.release();
  variants[0].run = spread(origRuns);
  return { id: spec.id, shapes: spec.shapes, variants };
}

/**
 * reduce-overhead in fp16 (calibrated, as `sdc compile --precision fp16` does), in both layouts: against
 * the as-exported model like every row, and alternated with the same variant in fp32 for the fp16 gain.
 * Needs the adapter's shader-f16; without it the rows say so.
 */
async function fp16Variants(
  spec: GpuSpec,
  src: string,
  base: string,
  variants: GpuVariant[],
  measure: (v: GpuVariant, file: string, options: ort.InferenceSession.SessionOptions, comparable: boolean) => Promise<void>,
  runs: number,
  feeds: Record<string, ort.Tensor>,
  log: (s: string) => void,
): Promise<void> {
  const layouts = [['', null], [', preferredLayout NHWC', 'NHWC']] as const;
  const rows = layouts.map(([suffix]) => ({ name: `sdc reduce-overhead fp16${suffix}`, options: '' }) as GpuVariant);
  variants.push(...rows);
  const why = await webgpuF16Unavailable();
  if (why) {
    for (const v of rows) v.skipped = why;
    return;
  }
  const fp32 = `${base}.reduce-overhead.onnx`;
  const fp16 = `${base}.reduce-overhead-fp16.onnx`;
  try {
    log(`${spec.id}: sdc reduce-overhead fp16 (calibrating)`);
    const t0 = performance.now();
    const { ranges } = await calibrate(src);
    compile(src, { output: fp16, mode: 'reduce-overhead', target: 'webgpu', precision: 'fp16', shapes: spec.shapes, ranges });
    rows[0].compileMs = performance.now() - t0;
  } catch (e) {
    for (const v of rows) v.failed = (e as Error).message.split('\n')[0].slice(0, 200);
    return;
  }
  const optionsOf = (file: string, layout: string | null) => {
    const m = readModel(file, { allowMissingData: true });
    const o = { logSeverityLevel: 3, ...recommendedSession((k) => m.getMetadata(k)).options } as ort.InferenceSession.SessionOptions;
    return layout ? ({ ...o, executionProviders: [{ name: 'webgpu', preferredLayout: layout }] } as ort.InferenceSession.SessionOptions) : o;
  };
  for (const [i, [, layout]] of layouts.entries()) {
    const v = rows[i];
    try {
      await measure(v, fp16, optionsOf(fp16, layout), true);
      if (!fs.existsSync(fp32)) continue;
      const [a, b] = [await ort.InferenceSession.create(fp32, optionsOf(fp32, layout)), await ort.InferenceSession.create(fp16, optionsOf(fp16, layout))];
      const [t32, t16] = await alternateRuns([a, b], feeds, runs);
      await a.release();
      await b.release();
      v.vsFp32 = pairedRatio(t32, t16);
    } catch (e) {
      v.failed = (e as Error).message.split('\n')[0].slice(0, 200);
    }
  }
}

const ms = (s?: Spread) => (s ? `${s.median.toFixed(1)} (${(s.lo ?? s.p25).toFixed(1)}–${(s.hi ?? s.p75).toFixed(1)})` : '—');

function renderGpu(r: GpuResult): string {
  const lines = [
    '# sdc on the WebGPU provider',
    '',
    `Written by \`${r.command}\` on ${r.date.slice(0, 10)} (commit ${r.versions.commit}).`,
    `Adapter: **${r.adapter}**. Machine: ${r.machine}. onnxruntime-node ${r.versions['onnxruntime-node']}, node ${r.versions.node}.`,
    '',
    'ms per step: median (~90% confidence interval of the median) of runs alternated with the as-exported model in one',
    'process; ratio = as exported / variant, paired per round, with its interval ("within noise" when it contains 1.0).',
    'Kernels from one profiled call: dispatches are WebGPU kernels other than Reshape, Unsqueeze, Squeeze,',
    'Flatten, Shape and Identity; CPU nodes and host↔device copies are what the provider could not keep on',
    'the GPU. sdc variants are opened with the session options sdc recommends (`sdc inspect`). fp16 rows are',
    'compiled as `sdc compile --precision fp16` does (calibrated, float32 I/O); "fp16 vs fp32" alternates each',
    'with the same variant in fp32: fp32 ms / fp16 ms, paired per round. They need the adapter\'s shader-f16.',
    '',
  ];
  if (/swiftshader/i.test(r.adapter)) lines.push('**SwiftShader is a CPU implementation of Vulkan: these timings say nothing about a GPU; the kernel counts do.**', '');
  for (const m of r.models) {
    lines.push(`## ${m.id} (${Object.entries(m.shapes).map(([k, v]) => `${k} ${v.join('×')}`).join(', ')})`, '');
    lines.push('| variant | ms per step | ratio | fp16 vs fp32 | dispatches | CPU nodes | copies | Transposes | kernels | rel. error vs as exported |');
    lines.push('|---|---|---|---|---|---|---|---|---|---|');
    for (const v of m.variants) {
      if (v.failed || v.skipped) {
        lines.push(`| ${v.name} | ${v.failed ? `failed: ${v.failed}` : `not run: ${v.skipped}`} | | | | | | | | |`);
        continue;
      }
      const p = v.placement;
      const ratio = v.ratio ? `${v.ratio.median.toFixed(2)}× (${(v.ratio.lo ?? v.ratio.p25).toFixed(2)}–${(v.ratio.hi ?? v.ratio.p75).toFixed(2)})${v.ratio.withinNoise ? ' within noise' : ''}` : '1';
      const vs = v.vsFp32 ? `${v.vsFp32.median.toFixed(2)}× (${v.vsFp32.lo.toFixed(2)}–${v.vsFp32.hi.toFixed(2)})${v.vsFp32.withinNoise ? ' within noise' : ''}` : '';
      lines.push(`| ${v.name} | ${ms(v.run)} | ${ratio} | ${vs} | ${p?.dispatches ?? '—'} | ${p?.cpuNodes.length ?? '—'} | ${p?.memcpy ?? '—'} | ${p?.transposes ?? '—'} | ${p?.kernels ?? '—'} | ${v.relError === undefined ? (v.name.startsWith('peer') ? 'n/a (other weights)' : '') : v.relError.toExponential(1)} |`);
    }
    lines.push('');
  }
  return lines.join('\n');
}

export async function gpuBench(argv: string[], root: string): Promise<void> {
  const quick = argv.includes('--quick');
  const only = argv.find((a) => a.startsWith('--only='))?.slice(7);
  const runsArg = argv.find((a) => a.startsWith('--runs='))?.slice(7);
  const out = argv.find((a) => a.startsWith('--out='))?.slice(6) ?? path.join(root, 'docs', 'benchmarks-gpu.md');
  const log = (s: string) => process.stderr.write(`[bench webgpu] ${s}\n`);
  // a real GPU first; SwiftShader only where the provider finds no adapter without it
  let why = await webgpuUnavailable();
  if (why && !process.env.VK_ICD_FILENAMES && useSwiftShader()) {
    log(`no WebGPU adapter (${why}); re-running on SwiftShader (the Vulkan loader reads its driver at start): the timings will measure this CPU`);
    execFileSync(process.execPath, process.argv.slice(1), { stdio: 'inherit', env: process.env });
    return;
  }
  if (why) throw new Error(`the WebGPU provider cannot start here: ${why}`);
  const runs = Number(runsArg ?? (quick ? 3 : 10));
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'sdc-bench-gpu-'));
  try {
    const result: GpuResult = {
      date: new Date().toISOString(),
      adapter: adapterName(),
      machine: `${os.cpus()[0]?.model ?? 'cpu'} × ${os.cpus().length}, ${(os.totalmem() / 2 ** 30).toFixed(0)} GiB`,
      versions: { sdc: SDC_VERSION, node: process.version, 'onnxruntime-node': ort.env.versions.node ?? '?', commit: commitOf(root) },
      command: `npm run bench -- --target webgpu${quick ? ' --quick' : ''}${runsArg ? ` --runs=${runsArg}` : ''}${only ? ` --only=${only}` : ''}`,
      models: [],
    };
    const wanted = only?.split(',');
    for (const spec of specs(quick).filter((s) => !wanted || wanted.some((w) => s.id.includes(w)))) {
      try {
        result.models.push(await benchModel(spec, dir, runs, log));
      } catch (e) {
        // one model that cannot run (memory, a missing file) is reported, and the others still run
        result.models.push({ id: spec.id, shapes: spec.shapes, variants: [{ name: 'as exported', options: '', failed: (e as Error).message.split('\n')[0].slice(0, 200) }] });
      }
      fs.writeFileSync(out, renderGpu(result) + '\n');
      fs.writeFileSync(out.replace(/\.md$/, '.json'), JSON.stringify(result, null, 2) + '\n');
    }
    log(`wrote ${out}`);
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

function commitOf(root: string): string {
  if (process.env.SDC_COMMIT) return process.env.SDC_COMMIT;
  try {
    return execFileSync('git', ['rev-parse', '--short', 'HEAD'], { cwd: root, encoding: 'utf8' }).trim();
  } catch {
    return 'unknown';
  }
}
