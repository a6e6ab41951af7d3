import * as fs from 'fs';
import * as path from 'path';
import { SdcError } from '../ir/errors';
import { opHistogram } from './inspect';
import { analyzeShapes } from '../analysis/shapes';
import { refuseInvalid, validate } from '../ir/validate';
import { Model } from '../ir/model';
import { readModel } from '../onnx/read';
import { realPath, refuseToClobber, WriteOptions, writeModel } from '../onnx/write';
import { startWeightsCopy, WeightsCopy } from '../onnx/weights-copy';
import { Explanation, MODES, Mode, Precision, ValueRange } from '../rewrite/pass';
import { PassReport, plansToMoveWeights, round, runPipeline } from './pipeline';
import { Progress, silentProgress } from './progress';
import { TargetName, parseTarget } from '../targets';
import { SDC_VERSION } from './version';
import { lowerNodes, unrunnableOn } from './lower';
import { defaultLayout, ProviderLayout, SESSION_LAYOUT_KEY, SESSION_LEVEL_KEY } from '../targets/session-options';

export interface CompileOptions {
  /** Where to write the model; may be left out with dryRun. */
  output?: string;
  mode?: Mode;
  target?: TargetName;
  /** Explicit pass names instead of the mode's pipeline; [] runs none. */
  passes?: string[];
  verifyEach?: boolean;
  /** Static input dims for specialization: `sample=2x4x64x64,...`, a Map, or a plain object. */
  shapes?: ShapeSpec | null;
  /** Where to write the JSON report (optional; the report is also returned). */
  report?: string;
  externalData?: WriteOptions['externalData'];
  /** Run the pipeline and report, but write no model (for --explain and counts). */
  dryRun?: boolean;
  /**
   * onnxruntime graphOptimizationLevel recorded in the metadata for whoever opens the output (the
   * runtime does): 'all' by default (onnxruntime's own layout rewrites still help on the CPU).
   */
  sessionLevel?: 'disabled' | 'basic' | 'extended' | 'all';
  /** fp16: float16 weights and computation with float32 islands (src/passes/convert-fp16.ts). */
  precision?: Precision;
  /** Element type of the graph's float inputs and outputs with precision fp16 (default fp32). */
  ioTypes?: Precision;
  /** With fp16: value ranges from a calibration run of this model (`calibrate()`); tensors out of fp16's range keep their region fp32. */
  ranges?: Map<string, ValueRange> | null;
  /** With fp16: op types or node names to keep in float32, whatever the rules and the calibration say. */
  keepFp32?: string[];
  /** The WebGPU provider layout recorded for whoever opens the output (default: targets' defaultLayout). */
  preferredLayout?: ProviderLayout;
  /** Name of the weights file beside the output (default `<output file name>.data`). */
  dataFileName?: string;
  progress?: Progress;
}

export interface CompileReport {
  sdcVersion: string;
  input: string;
  output: string;
  dataFile: string | null;
  mode: Mode;
  target: TargetName;
  compileMs: number;
  readMs: number;
  writeMs: number;
  nodesBefore: number;
  nodesAfter: number;
  opsBefore: Record<string, number>;
  opsAfter: Record<string, number>;
  passes: PassReport[];
  explanations: Explanation[];
  /** Things the user asked for that had no effect, said rather than ignored. */
  warnings: string[];
  /** Peak resident memory of this process so far (MB): the compile's, when it runs alone. */
  peakMemoryMb: number;
}

/**
 * A compiled model written into a private folder beside its destination, not yet visible there. The
 * doors that check an output (load it, compare its numbers) do so here and then commit or discard.
 */
export interface StagedOutput {
  modelFile: string;
  dataFile: string | null;
  /** Move the data file, then the model, into place. */
  commit(): void;
  discard(): void;
}

/** The one entry point every door (CLI, plugin, runtime, bench) goes through. */
export function compile(input: string, opts: CompileOptions): CompileReport {
  refuseReportPath(input, opts);
  const { report, staged } = compileStaged(input, opts);
  staged?.commit();
  if (opts.report) writeJsonAtomic(opts.report, report);
  return report;
}

/**
 * compile() up to a staged output: the caller commits it (or discards it) and writes the report. The
 * written files are read back and validated before this returns; nothing is at the output path yet.
 */
export function compileStaged(input: string, opts: CompileOptions): { report: CompileReport; staged: StagedOutput | null } {
  const t0 = performance.now();
  const mode = opts.mode ?? 'default';
  if (!MODES.includes(mode)) throw new SdcError('', `unknown mode '${mode}' (choose ${MODES.join(', ')})`);
  if (mode === 'max-autotune') throw new SdcError(input, 'max-autotune times candidates on the target: call autotune() (the CLI does)');
  let target;
  try {
    target = parseTarget(opts.target ?? 'cpu');
  } catch (e) {
    throw new SdcError('', (e as Error).message);
  }
  if (opts.output === undefined && !opts.dryRun) throw new SdcError(input, 'compile needs an output path (or dryRun)');
  const output = opts.output ?? `${input}.sdc.onnx`;
  if (path.resolve(output) === path.resolve(input)) throw new SdcError(input, 'refusing to write the output over the input; choose another -o');
  if (!opts.dryRun) refuseOutput(output);
  const progress = opts.progress ?? silentProgress;
  progress.step('reading');
  const model = readModel(input);
  refuseInvalid(model, input);
  const readMs = performance.now() - t0;
  model.initializersAsConstants();
  const nodesBefore = model.graph.countNodes();
  const opsBefore = opHistogram(model.graph);
  const shapes = opts.shapes ? toShapeMap(opts.shapes, input, model) : null;
  if (mode === 'reduce-overhead' && !opts.passes && !shapes) {
    const dynamic = model.graph.inputs.filter((v) => !v.initializer && v.shape?.some((d) => typeof d !== 'number'));
    if (dynamic.length) throw new SdcError(input, `reduce-overhead specializes the model to static shapes: give --shape for ${dynamic.map((v) => `${v.name} [${(v.shape ?? []).join(', ')}]`).join(', ')}`);
  }
  // the copy starts once the mistakes a user makes at every turn are ruled out (a discarded copy still runs
  // to its end: a process exits only after it), before the slower checks and the passes
  const ahead = opts.dryRun ? null : copyAhead(model, output, opts, { mode, target, passes: opts.passes, precision: opts.precision ?? 'fp32' });
  try {
    refuseInconsistent(model, input);
    const warnings: string[] = [];
    // an output holds only ops its target runs: ops of the input it lacks (a cuda output compiled for the
    // cpu: NhwcConv, GroupNorm) become their definitions in standard ops, as the --check oracle runs them
    const lowered = withFile(input, () => lowerNodes(model, unrunnableOn(target.name), input, `${target.name} cannot run it; compile for a target that has it`));
    if (lowered.size) warnings.push(`${target.name} has no kernel for ${[...lowered].map(([op, n]) => `${op} (${n})`).join(', ')} in the input: lowered to standard ops of the same semantics`);
    if (shapes && mode === 'default' && !(opts.passes ?? []).includes('specialize-shapes')) {
      warnings.push('--shape is used by reduce-overhead and max-autotune; mode default keeps the dims symbolic');
    }

    const { passes, explanations } = withFile(input, () => runPipeline(model, {
      mode,
      target,
      passes: opts.passes,
      verifyEach: opts.verifyEach,
      shapes,
      precision: opts.precision ?? 'fp32',
      ioTypes: opts.ioTypes ?? 'fp32',
      ranges: opts.ranges ?? null,
      keepFp32: opts.keepFp32,
      onPass: (name) => progress.step(`pass ${name}`),
    }));
    const after = validate(model);
    if (after.length) throw new Error(`sdc produced an invalid graph (a bug; please report it):\n  ${after.slice(0, 10).join('\n  ')}`);
    // A fused op the target cannot run is a bug, never a result: check every op sdc introduced.
    const introduced = Object.keys(opHistogram(model.graph)).filter((op) => !(op in opsBefore));
    const unrunnable = introduced.filter((op) => { const [d, o] = op.split('::'); return !target.runs(d === 'ai.onnx' ? '' : d, o); });
    if (unrunnable.length) throw new Error(`sdc emitted ${unrunnable.join(', ')}, which ${target.name} cannot run (a bug; please report it)`);
    stampMetadata(model, mode, target.name, passes);
    model.setMetadata(SESSION_LEVEL_KEY, opts.sessionLevel ?? 'all');
    // only a provider that takes a layout option (WebGPU's preferredLayout) gets one recorded
    if (opts.preferredLayout && !target.traits.providerLayout) warnings.push(`--layout is a WebGPU provider option; it has no effect for ${target.name}`);
    const layout = target.traits.providerLayout ? opts.preferredLayout ?? defaultLayout(target.name) : null;
    if (layout) model.setMetadata(SESSION_LAYOUT_KEY, layout);

    progress.step('writing');
    const t1 = performance.now();
    const staged = opts.dryRun ? null : stage(model, output, opts, progress, ahead?.copy);
    progress.done();
    const outAbs = path.resolve(output);
    const report: CompileReport = {
      sdcVersion: SDC_VERSION,
      input: path.resolve(input),
      output: outAbs,
      dataFile: staged?.dataFile ? path.join(path.dirname(outAbs), path.basename(staged.dataFile)) : null,
      mode,
      target: target.name,
      compileMs: round(performance.now() - t0),
      readMs: round(readMs),
      writeMs: round(performance.now() - t1),
      nodesBefore,
      nodesAfter: model.graph.countNodes(),
      opsBefore,
      opsAfter: opHistogram(model.graph),
      passes,
      explanations,
      warnings,
      peakMemoryMb: Math.round(process.resourceUsage().maxRSS / 1024),
    };
    return { report, staged };
  } finally {
    ahead?.dispose();
  }
}

/**
 * Write the model into a private folder beside the output, read it back, validate it. The data file is
 * `<output>.data` when that name is free, else `<output>.sdc<id>.data`: the name is reserved at once (an
 * empty file created exclusively), so two builds to one output never share a data file, and the model,
 * renamed into place last, always sits beside its own weights whatever the interleaving. After the
 * commit, weights sdc wrote for this output that nothing in the folder reads any more are removed (see
 * sweepWeights): a file another model reads (an edited copy, the input) is never touched.
 */
function stage(model: Model, output: string, opts: CompileOptions, progress: Progress, startFrom?: WeightsCopy): StagedOutput {
  const outAbs = path.resolve(output);
  const dir = path.dirname(outAbs);
  const base = path.basename(outAbs);
  refuseOutput(output);
  try {
    fs.mkdirSync(dir, { recursive: true });
  } catch (e) {
    throw new SdcError(output, `cannot create the output folder ${dir} (${(e as NodeJS.ErrnoException).code})`);
  }
  removeStaleStages(dir);
  const previous = sdcWeightsOf(outAbs);
  const inputReads = new Set(model.externalFiles().map(realPath));
  let stageDir: string;
  try {
    stageDir = fs.mkdtempSync(path.join(dir, `.${base}.sdc-stage-${process.pid}-`));
  } catch (e) {
    throw new SdcError(output, `cannot write in ${dir} (${(e as NodeJS.ErrnoException).code}); nothing was written`);
  }
  let dataName: string;
  try {
    dataName = reserveDataName(dir, base, opts.dataFileName, output);
  } catch (e) {
    fs.rmSync(stageDir, { recursive: true, force: true });
    throw e;
  }
  const dataAbs = path.join(dir, dataName);
  const discard = () => {
    fs.rmSync(stageDir, { recursive: true, force: true });
    if (fs.existsSync(dataAbs) && fs.statSync(dataAbs).size === 0) fs.rmSync(dataAbs, { force: true });
  };
  try {
    refuseToClobber(model, outAbs, dataAbs, output);
    const stagedFile = path.join(stageDir, base);
    let written;
    try {
      written = writeModel(model, stagedFile, { externalData: opts.externalData, dataFileName: dataName, startFrom, onProgress: (d, t) => progress.update(d, t) });
    } catch (e) {
      // the private stage is sdc's business: a failed write (a full disk) is said of the output
      if (e instanceof SdcError && e.file === stagedFile) throw new SdcError(output, e.problem, e.exitCode);
      throw e;
    }
    const problems = validate(readModel(written.modelFile));
    if (problems.length) throw new Error(`sdc wrote a model it cannot read back valid (a bug; please report it):\n  ${problems.slice(0, 10).join('\n  ')}`);
    return {
      modelFile: written.modelFile,
      dataFile: written.dataFile,
      commit() {
        // one commit to this output at a time: what it reads as the replaced pair is then the pair its
        // rename replaces (two interleaved commits each missed the other's weights, leaving them unread)
        withCommitLock(dir, base, () => {
          const replaced = sdcWeightsOf(outAbs);
          if (written.dataFile) fs.renameSync(written.dataFile, dataAbs);
          else fs.rmSync(dataAbs, { force: true });
          fs.renameSync(written.modelFile, outAbs);
          fs.rmSync(stageDir, { recursive: true, force: true });
          // our own weights too: when another compile replaced our model meanwhile, nothing reads them
          sweepWeights(dir, base, new Set([...previous, ...replaced, dataAbs]), inputReads);
        });
      },
      discard,
    };
  } catch (e) {
    discard();
    throw e;
  }
}

/** Below this a weights file is copied faster than a thread starts to copy it ahead. */
const COPY_AHEAD_MIN = 64 << 20;

/**
 * Start copying the source's largest weights file beside the output while the passes run, when the
 * output will most likely start from it (write.ts baseFile): no planned pass moves weights (new layouts,
 * merged or converted weights) and the weights go to a data file. A wrong guess costs disk time, never
 * a byte of the output: the writer takes the copy only when its own choice of base file is that file.
 * The copy lives in a stage folder of this process (removed when the compile ends, or by the next
 * compile to this output once this process is gone).
 */
function copyAhead(model: Model, output: string, opts: CompileOptions, plan: Parameters<typeof plansToMoveWeights>[0]): { copy: WeightsCopy; dispose(): void } | null {
  if (opts.externalData === 'never' || plansToMoveWeights(plan)) return null;
  const sizes = model.externalFiles().map((f) => ({ f, size: fs.statSync(f, { throwIfNoEntry: false })?.size ?? 0 }));
  const largest = sizes.sort((a, b) => b.size - a.size)[0];
  if (!largest || largest.size < COPY_AHEAD_MIN) return null;
  const outAbs = path.resolve(output);
  let folder: string;
  try {
    folder = fs.mkdtempSync(path.join(path.dirname(outAbs), `.${path.basename(outAbs)}.sdc-stage-${process.pid}-`));
  } catch {
    return null; // no output folder yet, or not writable: stage() says so
  }
  let copy: WeightsCopy;
  try {
    copy = startWeightsCopy(largest.f, folder);
  } catch {
    fs.rmSync(folder, { recursive: true, force: true }); // no threads here: the writer copies it itself
    return null;
  }
  return {
    copy,
    dispose() {
      copy.discard();
      try {
        fs.rmSync(folder, { recursive: true, force: true, maxRetries: 3 });
      } catch {
        /* left for the next compile to this output, once this process is gone */
      }
    },
  };
}

/** An output that exists and is not a regular file (a folder, a device, a FIFO, a socket) is refused. */
function refuseOutput(output: string): void {
  const st = fs.statSync(output, { throwIfNoEntry: false });
  if (!st || st.isFile()) return;
  if (st.isDirectory()) throw new SdcError(output, 'is a folder; -o names the model file to write');
  throw new SdcError(output, 'exists and is not a regular file (a device, FIFO or socket); -o names the model file to write');
}

/**
 * The data file name of a new build, reserved by creating it empty and exclusively (so no other build
 * can take it): `<base>.data` when free, else `<base>.sdc<id>.data`. A name given by the caller must be free.
 */
function reserveDataName(dir: string, base: string, wanted: string | undefined, output: string): string {
  const names = wanted ? [wanted] : [`${base}.data`, ...Array.from({ length: 8 }, () => `${base}.sdc${process.pid.toString(36)}${Date.now().toString(36)}${Math.random().toString(36).slice(2, 8)}.data`)];
  for (const name of names) {
    try {
      fs.closeSync(fs.openSync(path.join(dir, name), 'wx'));
      return name;
    } catch (e) {
      const code = (e as NodeJS.ErrnoException).code;
      if (code !== 'EEXIST') throw new SdcError(output, `cannot write in ${dir} (${code}); nothing was written`);
    }
  }
  throw new SdcError(output, `the weights file name ${names[0]} is taken beside the output; choose another data file name`);
}

/**
 * The data files (named as sdc names them) that the model now at `outAbs` reads, when sdc wrote that model.
 * A model file past 256 MB holds its weights inline: it is not read (its size would be read again in
 * memory for nothing), and any data file it might name is left (garbage at worst, never a loss).
 */
function sdcWeightsOf(outAbs: string): Set<string> {
  const base = path.basename(outAbs);
  try {
    const st = fs.statSync(outAbs, { throwIfNoEntry: false });
    if (!st?.isFile() || st.size > 256 << 20) return new Set();
    const m = readModel(outAbs, { allowMissingData: true });
    if (m.getMetadata('sdc.version') === undefined) return new Set();
    return new Set(m.externalFiles().filter((f) => path.dirname(f) === path.dirname(outAbs) && path.basename(f).startsWith(`${base}.`) && f.endsWith('.data')));
  } catch {
    return new Set();
  }
}

const escapeRe = (s: string) => s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');

/**
 * Remove weights that sdc wrote for the output `base` and nothing reads any more: the files the replaced
 * output read (when sdc wrote it), `<base>.sdc<id>.data` files and an empty `<base>.data` (a reservation
 * of a killed compile), and this build's own (when a later compile replaced its model). Never removed: a
 * file in `keep` (what the input reads), a file whose name appears in any model file of the folder (a
 * model that reads it: the new output, an edited copy of an old one), and, while another compile to this
 * output is staging, anything but the replaced pair's and this build's files.
 */
function sweepWeights(dir: string, base: string, replaced: Set<string>, keep: Set<string>): void {
  try {
    const names = fs.readdirSync(dir);
    const own = new RegExp(`^${escapeRe(base)}\\.sdc[0-9a-z]+\\.data$`);
    const candidates = new Set(replaced);
    for (const n of names) {
      const f = path.join(dir, n);
      if (own.test(n) || (n === `${base}.data` && fs.statSync(f).size === 0)) candidates.add(f);
    }
    // a compile still staging may have reserved one of these names: leave the unnamed ones to the last commit
    if (liveStages(dir, base)) for (const f of [...candidates]) if (!replaced.has(f)) candidates.delete(f);
    for (const f of [...candidates]) if (keep.has(realPath(f)) || !fs.statSync(f, { throwIfNoEntry: false })?.isFile()) candidates.delete(f);
    removeUnread(dir, candidates);
  } catch {
    /* cleaning is best effort: a file left behind is garbage, never a loss */
  }
}

/** Remove the candidates (files in `dir`) whose name no model file in `dir` contains: no model there reads them. */
export function removeUnread(dir: string, candidates: Set<string>): void {
  if (!candidates.size) return;
  const models = fs.readdirSync(dir).filter((n) => n.endsWith('.onnx')).map((n) => path.join(dir, n));
  for (const f of readBy(models, candidates)) candidates.delete(f);
  for (const f of candidates) fs.rmSync(f, { force: true });
}

/** Whether a compile to `base` (of a live process) is staging in `dir`. */
function liveStages(dir: string, base: string): boolean {
  const prefix = `.${base}.sdc-stage-`;
  return fs.readdirSync(dir).some((n) => n.startsWith(prefix) && alive(Number(n.slice(prefix.length).split('-')[0])));
}

/** The candidates whose file name occurs in any of the model files (a conservative "is read by"). */
function readBy(models: string[], candidates: Set<string>): Set<string> {
  const found = new Set<string>();
  const needles = [...candidates].map((f) => ({ f, b: Buffer.from(path.basename(f)) }));
  const overlap = Math.max(...needles.map((n) => n.b.length));
  const chunk = Buffer.alloc(16 << 20);
  for (const m of models) {
    let fd: number;
    try {
      if (!fs.statSync(m).isFile()) continue;
      fd = fs.openSync(m, 'r');
    } catch {
      continue;
    }
    try {
      let pos = 0;
      let carry = Buffer.alloc(0);
      for (;;) {
        const n = fs.readSync(fd, chunk, 0, chunk.length, pos);
        if (n <= 0) break;
        pos += n;
        const hay = Buffer.concat([carry, chunk.subarray(0, n)]);
        for (const x of needles) if (!found.has(x.f) && hay.includes(x.b)) found.add(x.f);
        if (found.size === needles.length) return found;
        carry = Buffer.from(hay.subarray(Math.max(0, hay.length - overlap + 1)));
      }
    } finally {
      fs.closeSync(fd);
    }
  }
  return found;
}

/**
 * Stage folders left by a compile that was killed (its process is gone) are removed: this output's, and
 * those of any other output in the folder (a killed compile's copy of the weights made ahead is as large
 * as the weights, and the user may never compile to that output again).
 */
function removeStaleStages(dir: string): void {
  for (const name of fs.readdirSync(dir)) {
    const at = name.lastIndexOf('.sdc-stage-');
    if (!name.startsWith('.') || at < 1) continue;
    const pid = Number(name.slice(at + '.sdc-stage-'.length).split('-')[0]);
    if (!Number.isSafeInteger(pid) || pid === process.pid || alive(pid)) continue;
    fs.rmSync(path.join(dir, name), { recursive: true, force: true });
  }
}

/** How long a commit waits for another's lock (a commit is a few renames: milliseconds) before going on without. */
const COMMIT_LOCK_WAIT_MS = 30_000;

/**
 * Run `f` holding `.<base>.sdc-commit-lock` in `dir` (created exclusively, holding this pid). A lock whose
 * process is gone is taken over; one held past COMMIT_LOCK_WAIT_MS is not waited for any longer (at
 * worst an unread weights file is left, never a mismatched output: each model is renamed beside its own).
 */
function withCommitLock(dir: string, base: string, f: () => void): void {
  const lock = path.join(dir, `.${base}.sdc-commit-lock`);
  const until = Date.now() + COMMIT_LOCK_WAIT_MS;
  let held = false;
  while (!held && Date.now() < until) {
    try {
      fs.writeFileSync(lock, String(process.pid), { flag: 'wx' });
      held = true;
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'EEXIST') break; // cannot lock here: commit without
      if (staleLock(lock)) fs.rmSync(lock, { force: true });
      else Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, 5);
    }
  }
  try {
    f();
  } finally {
    if (held) fs.rmSync(lock, { force: true });
  }
}

/** A commit lock whose process is gone (or that never got its pid written, seconds ago); gone itself: not stale. */
function staleLock(lock: string): boolean {
  try {
    const owner = Number(fs.readFileSync(lock, 'utf8') || NaN);
    if (Number.isSafeInteger(owner)) return !alive(owner);
    return Date.now() - fs.statSync(lock).mtimeMs > 2000;
  } catch {
    return false;
  }
}

/** Whether process `pid` still runs (a stage folder of a dead one is garbage). */
export function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/** An SdcError raised without a file (an invalid node found by a pass) is about the input. */
function withFile<T>(input: string, f: () => T): T {
  try {
    return f();
  } catch (e) {
    if (e instanceof SdcError && !e.file) throw new SdcError(input, e.problem, e.exitCode);
    throw e;
  }
}

function stampMetadata(model: Model, mode: Mode, target: TargetName, passes: PassReport[]): void {
  model.setMetadata('sdc.version', SDC_VERSION);
  model.setMetadata('sdc.mode', mode);
  model.setMetadata('sdc.target', target);
  model.setMetadata('sdc.passes', passes.map((p) => p.name).join(','));
}

export type ShapeSpec = string | Map<string, number[]> | Record<string, number[]>;

/** Any spelling of static input dims → a map, checked against the model's inputs. */
export function toShapeMap(spec: ShapeSpec, file: string, model?: Model): Map<string, number[]> {
  if (typeof spec === 'string') return parseShapes(spec, file, model);
  const map = spec instanceof Map ? new Map(spec) : new Map(Object.entries(spec));
  for (const [name, dims] of map) {
    if (!Array.isArray(dims) || !dims.every((d) => Number.isSafeInteger(d) && d >= -1)) {
      throw new SdcError(file, `shapes['${name}'] must be an array of dims, each a whole number ≥ 0 (got ${JSON.stringify(dims)})`);
    }
    if (model && !model.graph.inputs.some((v) => v.name === name)) {
      throw new SdcError(file, `shapes names '${name}', which is not an input (inputs: ${model.graph.inputs.map((v) => v.name).join(', ')})`);
    }
  }
  return map;
}

/** `sample=2x4x64x64,timestep=2` → map; names must be graph inputs. */
export function parseShapes(spec: string, file: string, model?: Model): Map<string, number[]> {
  const out = new Map<string, number[]>();
  for (const part of spec.split(',').map((s) => s.trim()).filter(Boolean)) {
    const m = /^([^=]+)=(\d+(?:x\d+)*)?$/.exec(part);
    if (!m) throw new SdcError(file, `bad --shape entry '${part}': write name=DxDxD (for example sample=2x4x64x64)`);
    const dims = m[2] ? m[2].split('x').map(Number) : [];
    const huge = dims.find((d) => !Number.isSafeInteger(d) || d > 2 ** 31);
    if (huge !== undefined) throw new SdcError(file, `--shape '${part}': dim ${m[2].split('x')[dims.indexOf(huge)]} is too large for a tensor`);
    if (out.has(m[1])) throw new SdcError(file, `--shape gives '${m[1]}' twice`);
    if (model && !model.graph.inputs.some((v) => v.name === m[1])) {
      throw new SdcError(file, `--shape names '${m[1]}', which is not an input (inputs: ${model.graph.inputs.map((v) => v.name).join(', ')})`);
    }
    out.set(m[1], dims);
  }
  return out;
}

/**
 * The JSON report must not land on a file this compile reads or writes: the input, its weights, the
 * output or the output's weights (checked with links resolved).
 */
export function refuseReportPath(input: string, opts: CompileOptions): void {
  if (!opts.report) return;
  refuseUnwritableFile(opts.report, '--report');
  const real = realPath;
  const weights = readModel(input, { allowMissingData: true }).externalFiles();
  const taken = [input, ...weights, ...(opts.output ? [opts.output, `${opts.output}.data`] : [])].map(real);
  if (taken.includes(real(opts.report))) throw new SdcError(opts.report, '--report names a file this compile reads or writes (the model, its weights or the output); choose another path');
}

/**
 * A model whose own sizes cannot fit (a MatMul's inner dims, a Reshape's element count, a broadcast, found
 * by sdc's shape analysis with the sizes the model fixes) fails at every input: the input's problem,
 * refused naming the node before anything is compiled, rather than folded into an output onnxruntime
 * refuses (or one that fails as the original does). A declared type that disagrees is not refused:
 * onnxruntime runs such models.
 */
function refuseInconsistent(model: Model, input: string): void {
  const c = analyzeShapes(model).conflicts.find((x) => x.certain);
  if (c) throw new SdcError(input, `is inconsistent: node '${c.node.name}' (${c.node.opType}) ${c.problem}, whatever the inputs; nothing was written`);
}

/**
 * A file sdc is about to write (a report) must be writable before anything is compiled: not a folder,
 * in a folder that exists and that this process may write in.
 */
export function refuseUnwritableFile(file: string, what: string): void {
  const existing = fs.statSync(file, { throwIfNoEntry: false });
  if (existing?.isDirectory()) throw new SdcError(file, `is a folder; ${what} names the file to write; nothing was written`);
  // a device or FIFO would be replaced by the rename (or written into): never sdc's to touch
  if (existing && !existing.isFile()) throw new SdcError(file, `exists and is not a regular file (a device, FIFO or socket); ${what} names the file to write; nothing was written`);
  const dir = path.dirname(path.resolve(file));
  const st = fs.statSync(dir, { throwIfNoEntry: false });
  if (!st?.isDirectory()) throw new SdcError(file, `the folder ${dir} ${st ? 'is not a folder' : 'does not exist'}; ${what} needs an existing folder; nothing was written`);
  try {
    fs.accessSync(dir, fs.constants.W_OK);
  } catch (e) {
    throw new SdcError(file, `cannot write in ${dir} (${(e as NodeJS.ErrnoException).code}); nothing was written`);
  }
}

/** Write JSON through a temporary file renamed into place; a failed write (a full disk) leaves neither behind. */
export function writeJsonAtomic(file: string, data: unknown): void {
  const tmp = `${file}.tmp-${process.pid}`;
  try {
    fs.writeFileSync(tmp, JSON.stringify(data, null, 2) + '\n');
    fs.renameSync(tmp, file);
  } catch (e) {
    fs.rmSync(tmp, { force: true });
    throw new SdcError(file, `cannot write the report (${(e as NodeJS.ErrnoException).code ?? (e as Error).message}); the compiled output was written, the report was not`);
  }
}
