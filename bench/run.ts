import { execFileSync, spawnSync } from 'child_process';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import * as ort from 'onnxruntime-node';
import { ModelBuilder } from '../src/ir/builder';
import { fixturesDir, sd15Model } from '../fixtures/materialize';
import { terminalProgress } from '../src/compiler/progress';
import { SDC_VERSION } from '../src/compiler/version';
import { countGflop } from './flops';
import { fusionCountsTable } from './fusion-counts';
import { syntheticFeeds } from '../src/runtime/feeds';
import { compareResults } from './compare';
import { compareTensors } from '../src/runtime/compare';
import { alternateRuns, median, pairedRatio, spread, Spread } from '../src/runtime/timing';
import { load } from '../src/runtime';
import { renderMarkdown } from './report';
import { saveModel } from '../src/onnx/write';
import { gpuBench } from './gpu';
import { TARGETS, TargetName, targetTraits } from '../src/targets';
import { compileStudy, CompileStudy } from './compile-study';

/**
 * `npm run bench [-- --quick]`: every figure side by side with its baseline in the same run, medians of
 * alternated runs, ratios original/variant. Writes docs/benchmarks.md and docs/benchmarks.json.
 * A variant whose outputs differ from the original beyond tolerance is reported as refused, never timed.
 * Then the compile study (bench/compile-study.ts): SD1.5 compile time against the disk's floor and peak
 * memory per target and precision, `--compile-rounds=N` rounds (default 3). `--only=compile` runs that
 * study alone and replaces only its section (and its part of the JSON); any other `--only=` skips it
 * and keeps the study already written.
 */
const ROOT = path.resolve(__dirname, '..', '..');
const FIXTURES = fixturesDir();
const TOLERANCE = 1e-4;

export interface StepStats { wallMs: number; maxRssMb: number }
export interface Variant {
  name: string;
  file: string | null;
  /** onnxruntime graphOptimizationLevel the session is created with */
  level?: 'disabled' | 'basic' | 'extended' | 'all';
  compile?: StepStats & { nodes: number; passesMs?: number; counts?: Record<string, number> };
  ops?: Record<string, number>;
  nodes?: number;
  /** Session creation in fresh processes, alternated with the original's (page cache warmed first). */
  create?: Spread;
  baselineCreate?: Spread;
  createRatio?: Spread & { withinNoise: boolean };
  run?: Spread;
  baselineRun?: Spread;
  runRatio?: Spread & { withinNoise: boolean };
  relError?: number;
  gflop?: number;
  ceilingFraction?: number;
  refused?: string;
}
export interface ModelResult {
  id: string;
  shapes: Record<string, number[]>;
  inspect?: StepStats & { result?: unknown };
  passesNone?: StepStats;
  variants: Variant[];
}
export interface BenchResult {
  date: string;
  machine: string;
  versions: Record<string, string>;
  command: string;
  matmulGflops: number;
  models: ModelResult[];
  /** Markdown table: fused sites per model and target, and the commit it was made at. */
  fusionCounts?: string;
  fusionCountsCommit?: string;
  /** SD1.5 compile time and peak memory per target and precision, with its own date and command */
  compileStudy?: CompileStudy;
}

interface Spec {
  id: string;
  file: () => string;
  shapes: Record<string, number[]>;
  peer?: string;
  big: boolean;
  /** also time each fusion on its own (cleanup + that fusion) */
  study?: boolean;
}

/** Each CPU fusion on its own after the same cleanup ('cleanup' is the modes' repeated cleanup group). */
const STUDY: [string, string[]][] = [
  ['sdc cleanup only', ['cleanup']],
  ['sdc cleanup + fuse-attention', ['cleanup', 'fuse-attention', 'cleanup']],
  ['sdc cleanup + fuse-layer-norm', ['cleanup', 'fuse-layer-norm', 'cleanup']],
  ['sdc cleanup + fuse-gelu', ['cleanup', 'fuse-gelu', 'cleanup']],
];

function specs(quick: boolean): Spec[] {
  const tiny = (s: string): Spec => ({
    id: `tiny ${s}`, file: () => path.join(FIXTURES, 'models', 'tiny', `unet_${s}.onnx`), big: false, study: true,
    shapes: { sample: [2, 4, 32, 32], timestep: [2], encoder_hidden_states: [2, 16, 32] },
    peer: s === 'vanilla_op17' ? path.join(FIXTURES, 'models', 'peer', 'tiny_unet_vanilla_op17.ortopt.onnx') : undefined,
  });
  const sd = (s: 'sdpa_op17' | 'vanilla_op17' | 'dynamo_op18'): Spec => ({
    id: `SD1.5 ${s}`, file: () => sd15Model(s, terminalProgress()), big: true, study: s === 'sdpa_op17',
    shapes: s === 'dynamo_op18' ? { sample: [2, 4, 64, 64], timestep: [2], encoder_hidden_states: [2, 77, 768] } : { sample: [1, 4, 32, 32], timestep: [1], encoder_hidden_states: [1, 77, 768] },
  });
  const all = [tiny('sdpa_op17'), tiny('vanilla_op17'), tiny('dynamo_op18'), sd('sdpa_op17'), sd('vanilla_op17'), sd('dynamo_op18')];
  return quick ? all.slice(0, 4) : all;
}

const feedsFor = (shapes: Record<string, number[]>) => syntheticFeeds(new Map(Object.entries(shapes)), new Map());


function child(args: string[]): StepStats & { result: any } {
  const t0 = performance.now();
  const r = spawnSync(process.execPath, [path.join(__dirname, 'child.js'), ...args], { encoding: 'utf8', maxBuffer: 256 << 20 });
  const wallMs = performance.now() - t0;
  if (r.status !== 0) throw new Error(r.stderr.split("\n").find((l) => l.trim() && !l.trim().startsWith("at ")) ?? `bench step failed: ${args.join(" ")}`);
  const out = JSON.parse(r.stdout.trim().split('\n').pop()!);
  return { wallMs, maxRssMb: out.maxRssMb, result: out.result };
}

/** Read a model and its data files once, so every timed creation finds them in the page cache alike. */
function warm(file: string): void {
  const dir = path.dirname(file);
  const files = [file, ...fs.readdirSync(dir).filter((f) => f.startsWith(path.basename(file)) && f.endsWith('.data')).map((f) => path.join(dir, f))];
  const buf = Buffer.alloc(16 << 20);
  for (const f of files) {
    const fd = fs.openSync(f, 'r');
    try {
      while (fs.readSync(fd, buf, 0, buf.length, null) > 0);
    } finally {
      fs.closeSync(fd);
    }
  }
}

/**
 * Session creation, `times` times each, in fresh processes (in the bench process the sessions already
 * open would slow every later creation), alternating original and variant so drift hits both alike.
 */
function timeCreates(original: string, variant: string, level: string, originalLevel: string, times: number): { base: number[]; mine: number[] } {
  warm(original);
  warm(variant);
  const base: number[] = [];
  const mine: number[] = [];
  for (let i = 0; i < times; i++) {
    base.push(child(['create', original, originalLevel]).result.ms);
    mine.push(child(['create', variant, level]).result.ms);
  }
  return { base, mine };
}

/** Throughput of one large MatMul here and now: the practical ceiling for the compute-bound ops. */
async function matmulGflops(dir: string): Promise<number> {
  const n = 2048;
  const b = new ModelBuilder();
  const x = b.input('x', [n, n]);
  b.output(b.op('MatMul', [x, b.const('w', [n, n], new Float32Array(n * n).fill(0.001))]), [n, n]);
  const file = saveModel(b.model, path.join(dir, 'matmul.onnx'), { externalData: 'never' });
  const s = await ort.InferenceSession.create(file);
  const feed = { x: new ort.Tensor('float32', new Float32Array(n * n).fill(1), [n, n]) };
  await s.run(feed);
  const times: number[] = [];
  for (let i = 0; i < 5; i++) {
    const t0 = performance.now();
    await s.run(feed);
    times.push(performance.now() - t0);
  }
  await s.release();
  return (2 * n ** 3) / (median(times) / 1000) / 1e9;
}

async function benchModel(spec: Spec, dir: string, rounds: number, createTimes: number, gflops: number, log: (s: string) => void): Promise<ModelResult> {
  const src = spec.file();
  const res: ModelResult = { id: spec.id, shapes: spec.shapes, variants: [] };
  const shapeKey = Object.entries(spec.shapes).map(([k, v]) => `${k}=${v.join('x')}`).join(',');
  const base = path.join(dir, spec.id.replace(/\W+/g, '_'));
  log(`${spec.id}: inspect and compile`);
  res.inspect = child(['inspect', src]);
  const orig = res.inspect.result as { nodes: number; ops: Record<string, number> };
  if (spec.big) {
    res.passesNone = child(['compile', src, `${base}.none.onnx`, JSON.stringify({ passes: [] })]);
    fs.rmSync(`${base}.none.onnx`, { force: true });
    fs.rmSync(`${base}.none.onnx.data`, { force: true });
  }
  const variants: Variant[] = [{ name: 'original', file: src, nodes: orig.nodes, ops: orig.ops }];
  const compiled: [string, Record<string, unknown>][] = [['sdc default', { mode: 'default' }], ['sdc reduce-overhead', { mode: 'reduce-overhead', shapes: shapeKey }]];
  if (spec.study) compiled.push(...STUDY.map(([name, passes]): [string, Record<string, unknown>] => [name, { passes }]));
  for (const [name, opts] of compiled) {
    const out = `${base}.${name.replace(/\W+/g, '_')}.onnx`;
    const c = child(['compile', src, out, JSON.stringify({ ...opts, target: 'cpu' })]);
    const passesMs = c.result.passes.reduce((s: number, p: { ms: number }) => s + p.ms, 0);
    const counts: Record<string, number> = {};
    for (const p of c.result.passes) for (const [k, v] of Object.entries(p.counts ?? {})) if (['attention', 'folded', 'shapeValuesFolded'].includes(k)) counts[k] = (counts[k] ?? 0) + (v as number);
    variants.push({ name, file: out, nodes: c.result.nodesAfter, ops: c.result.opsAfter, compile: { wallMs: c.wallMs, maxRssMb: c.maxRssMb, nodes: c.result.nodesAfter, passesMs, counts } });
  }
  // The same sdc output with onnxruntime's own rewrites limited to basic: the session-creation lever.
  const sdcDefault = variants.find((v) => v.name === 'sdc default')!;
  variants.push({ ...sdcDefault, name: 'sdc default, ORT level basic', level: 'basic', compile: undefined });
  // What the runtime serves: the static specialization, finalized for this CPU and cached on disk.
  log(`${spec.id}: sdc runtime specialization`);
  const t0 = performance.now();
  const rt = await load(src, { cacheDir: path.join(dir, 'runtime-cache'), warn: log });
  const cached = await rt.modelFileFor(feedsFor(spec.shapes));
  await rt.release();
  variants.push({ name: 'sdc runtime (cached specialization)', file: cached, level: 'disabled', compile: { wallMs: performance.now() - t0, maxRssMb: NaN, nodes: NaN } });
  variants.push({ name: 'onnxruntime offline (all, saved)', file: `${base}.ortopt.onnx`, level: 'disabled' });
  if (spec.peer) variants.push({ name: 'peer: ORT transformers optimizer', file: spec.peer });

  const feeds = feedsFor(spec.shapes);
  log(`${spec.id}: original session`);
  const o = await ort.InferenceSession.create(src, { graphOptimizationLevel: 'all', logSeverityLevel: 3 });
  const reference = (await o.run(feeds)).out_sample as ort.Tensor;
  const origRuns: number[] = [];
  const origCreates: number[] = [];
  for (const v of variants.slice(1)) {
    log(`${spec.id}: ${v.name}`);
    const level = v.level ?? 'all';
    let s: ort.InferenceSession;
    try {
      if (v.name.startsWith('onnxruntime offline')) {
        // finalized at "all" like sdc's runtime specialization, saved, then opened with optimizations off
        const t0 = performance.now();
        const opt = await ort.InferenceSession.create(src, {
          graphOptimizationLevel: 'all', optimizedModelFilePath: v.file!, logSeverityLevel: 3,
          extra: { session: { optimized_model_external_initializers_file_name: `${path.basename(v.file!)}.data`, optimized_model_external_initializers_min_size_in_bytes: '1024' } },
        });
        await opt.release();
        v.compile = { wallMs: performance.now() - t0, maxRssMb: NaN, nodes: NaN };
        v.nodes = undefined;
      }
      s = await ort.InferenceSession.create(v.file!, { graphOptimizationLevel: level, logSeverityLevel: 3 });
    } catch (e) {
      v.refused = `does not load on the CPU provider: ${(e as Error).message.split('\n')[0].slice(0, 160)}`;
      continue;
    }
    const out = (await s.run(feeds)).out_sample as ort.Tensor;
    const diff = compareTensors(reference, out, 'out_sample');
    v.relError = diff.mismatch ? Infinity : diff.maxRel;
    if (diff.mismatch || !(diff.maxRel <= TOLERANCE)) {
      v.refused = `outputs differ from the original (${diff.mismatch ?? `relative error ${diff.maxRel.toExponential(2)} > ${TOLERANCE}`})`;
      await s.release();
      continue;
    }
    // Alternate original and variant so drift (thermal, other load) hits both alike.
    const [theirs, mine] = await alternateRuns([o, s], feeds, rounds);
    await s.release();
    origRuns.push(...theirs);
    v.run = spread(mine);
    v.baselineRun = spread(theirs);
    v.runRatio = pairedRatio(theirs, mine);
    const c = timeCreates(src, v.file!, level, 'all', createTimes);
    origCreates.push(...c.base);
    v.create = spread(c.mine);
    v.baselineCreate = spread(c.base);
    v.createRatio = pairedRatio(c.base, c.mine);
  }
  await o.release();
  variants[0].run = spread(origRuns);
  variants[0].create = spread(origCreates);
  // The math is the same in every variant that passed the check: count it once, on sdc's static output
  // (where every shape is known).
  let gflop: number | undefined;
  for (const v of [...variants].reverse()) {
    if (gflop !== undefined || v.refused || !v.file || !v.name.startsWith('sdc')) continue;
    try {
      gflop = countGflop(v.file, spec.shapes);
    } catch {
      /* try the next */
    }
  }
  for (const v of variants) {
    if (v.refused || gflop === undefined || v.run === undefined) continue;
    v.gflop = gflop;
    v.ceilingFraction = gflop / gflops / (v.run.median / 1000);
  }
  for (const v of variants.slice(1)) {
    if (v.file && !v.name.startsWith('peer')) for (const f of [v.file, `${v.file}.data`]) fs.rmSync(f, { force: true });
  }
  res.variants = variants;
  return res;
}

/** `--render-only`: rebuild docs/benchmarks.md from docs/benchmarks.json (and refresh the fusion counts). */
function renderOnly(): void {
  const docs = path.join(ROOT, 'docs');
  const result: BenchResult = JSON.parse(fs.readFileSync(path.join(docs, 'benchmarks.json'), 'utf8'));
  const quick = result.command.includes('--quick');
  result.fusionCounts = fusionCountsTable(specs(quick).filter((s) => result.models.some((m) => m.id === s.id)).map((s) => ({ id: s.id, file: s.file() })));
  result.fusionCountsCommit = gitCommit();
  fs.writeFileSync(path.join(docs, 'benchmarks.json'), JSON.stringify(result, null, 2) + '\n');
  fs.writeFileSync(path.join(docs, 'benchmarks.md'), renderMarkdown(result, fs.existsSync(path.join(docs, 'benchmarks-gpu.md')) ? fs.readFileSync(path.join(docs, 'benchmarks-gpu.md'), 'utf8') : null));
}

/** `--compare A.json B.json`: the ratios of two runs side by side, and whether their intervals overlap. */
function compareOnly(files: string[]): void {
  const [a, b] = files.map((f) => JSON.parse(fs.readFileSync(f, 'utf8')) as BenchResult);
  const { markdown } = compareResults(a, b, [path.basename(files[0]), path.basename(files[1])]);
  process.stdout.write(`${markdown}\n`);
}

async function main(): Promise<void> {
  if (process.argv.includes('--render-only')) return renderOnly();
  const cmp = process.argv.indexOf('--compare');
  if (cmp >= 0) return compareOnly(process.argv.slice(cmp + 1, cmp + 3));
  const target = process.argv.find((a) => a.startsWith('--target='))?.slice(9) ?? (process.argv.includes('--target') ? process.argv[process.argv.indexOf('--target') + 1] : 'cpu');
  // the CPU suite below times on this host's CPU; bench/gpu.ts on the one device provider onnxruntime-node has here (WebGPU)
  const traits = (TARGETS as string[]).includes(target) ? targetTraits(target as TargetName) : null;
  if (!traits || traits.untimeable) throw new Error(`--target ${target}: the benchmark runs on ${TARGETS.filter((t) => !targetTraits(t).untimeable).join(' or ')}`);
  if (!traits.hostCpu) return gpuBench(process.argv.slice(2), ROOT);
  const quick = process.argv.includes('--quick');
  const only = process.argv.find((a) => a.startsWith('--only='))?.slice(7);
  const roundsArg = process.argv.find((a) => a.startsWith('--compile-rounds='))?.slice(17);
  const compileRounds = roundsArg === undefined ? 3 : Number(roundsArg);
  if (!Number.isInteger(compileRounds) || compileRounds < 1) throw new Error(`--compile-rounds takes a number of rounds, 1 or more (got ${roundsArg})`);
  const docs = path.join(ROOT, 'docs');
  // --out=F: F.json and F.md instead of docs/benchmarks.* (e.g. two runs to compare)
  const out = process.argv.find((a) => a.startsWith('--out='))?.slice(6) ?? path.join(docs, 'benchmarks');
  const gpuPage = () => (fs.existsSync(path.join(docs, 'benchmarks-gpu.md')) ? fs.readFileSync(path.join(docs, 'benchmarks-gpu.md'), 'utf8') : null);
  const previous = (): BenchResult | null => (fs.existsSync(`${out}.json`) ? JSON.parse(fs.readFileSync(`${out}.json`, 'utf8')) : null);
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'sdc-bench-'));
  const log = (s: string) => process.stderr.write(`[bench] ${s}\n`);
  const rest = process.argv.slice(2).filter((a) => a.startsWith('--out=') || a.startsWith('--compile-rounds=')).join(' ');
  const study = (command: string) => compileStudy({ rounds: compileRounds, dir, root: ROOT, command, commit: gitCommit(), log });
  try {
    if (only === 'compile') {
      // the study alone: the rest of the page and the JSON stay as the last full run wrote them
      const result: BenchResult = previous() ?? { date: new Date().toISOString(), machine: '', versions: { commit: gitCommit() }, command: '(none: only the compile study has run)', matmulGflops: NaN, models: [] };
      result.compileStudy = await study(`npm run bench -- --only=compile${rest ? ` ${rest}` : ''}`);
      fs.writeFileSync(`${out}.json`, JSON.stringify(result, null, 2) + '\n');
      fs.writeFileSync(`${out}.md`, renderMarkdown(result, gpuPage()));
      log(`wrote the compile study into ${out}.md and ${out}.json`);
      return;
    }
    const gflops = await matmulGflops(dir);
    log(`2048³ MatMul: ${gflops.toFixed(1)} GFLOP/s`);
    const result: BenchResult = {
      date: new Date().toISOString(),
      machine: `${os.cpus()[0]?.model ?? 'cpu'} × ${os.cpus().length}, ${(os.totalmem() / 2 ** 30).toFixed(0)} GiB, ${os.platform()} ${os.arch()}`,
      versions: { sdc: SDC_VERSION, node: process.version, 'onnxruntime-node': ort.env.versions.node ?? '?', commit: gitCommit() },
      command: `npm run bench${quick ? ' -- --quick' : ''}${only ? ` -- --only=${only}` : ''}`,
      matmulGflops: gflops,
      models: [],
    };
    for (const spec of specs(quick).filter((s) => !only || s.id.includes(only))) {
      // 5 creates at least: the whole range of 5 samples covers their median with 94% probability; of 3, 75%
      result.models.push(await benchModel(spec, dir, quick ? (spec.big ? 5 : 11) : spec.big ? 7 : 21, 5, gflops, log));
    }
    log('fusion counts per target (dry-run compiles)');
    result.fusionCounts = fusionCountsTable(specs(quick).filter((s) => !only || s.id.includes(only)).map((s) => ({ id: s.id, file: s.file() })));
    result.fusionCountsCommit = gitCommit();
    const kept = previous()?.compileStudy;
    if (!only) result.compileStudy = await study(`${result.command}${roundsArg === undefined ? '' : ` -- --compile-rounds=${compileRounds}`}`);
    else if (kept) result.compileStudy = kept;
    fs.writeFileSync(`${out}.json`, JSON.stringify(result, null, 2) + '\n');
    fs.writeFileSync(`${out}.md`, renderMarkdown(result, gpuPage()));
    log(`wrote ${out}.md and ${out}.json`);
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

function gitCommit(): string {
  try {
    return execFileSync('git', ['rev-parse', '--short', 'HEAD'], { cwd: ROOT, encoding: 'utf8' }).trim();
  } catch {
    return 'unknown';
  }
}

main().catch((e) => {
  process.stderr.write(`${e.stack ?? e}\n`);
  process.exit(1);
});
