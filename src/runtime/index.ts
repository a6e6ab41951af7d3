import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import * as ort from 'onnxruntime-node';
import { compile, CompileReport } from '../compiler/compile';
import { ORT_TYPE } from '../ir/dtype';
import { SdcError } from '../ir/errors';
import { Dim } from '../ir/graph';
import { readModel } from '../onnx/read';
import { refuseInvalid } from '../ir/validate';
import { Mode, Precision, ValueRange } from '../rewrite/pass';
import { TARGETS, TargetName, targetTraits } from '../targets';
import { RecommendedSession, recommendedSession } from '../targets/session-options';
import { SDC_VERSION, sdcBuildHash } from '../compiler/version';
import { log } from '../compiler/log';
import { DiskCache, cacheBudget, defaultCacheDir, hashKey, sourceFingerprint, weightFiles } from './cache';
import { ORT_VERSION, createSession, fp16Unavailable, openSession, providerUnavailable, runFailure } from './session';
import { calibrate, CalibrationReport } from './calibrate';

export interface LoadOptions {
  target?: TargetName;
  /** 'reduce-overhead' (default): one static specialization per input shape; 'default': one generic model. */
  mode?: Exclude<Mode, 'max-autotune'>;
  /** Folder of compiled models (default SDC_CACHE_DIR or ~/.cache/sdc); null keeps them for this process only. */
  cacheDir?: string | null;
  /**
   * Byte budget of the cache folder (default SDC_CACHE_BYTES, else 20 GiB; `20G`, `512M` or a number):
   * after each compile the least recently used entries are evicted until it fits.
   */
  cacheBytes?: number | string;
  /** Distinct shape keys that get their own specialization; later keys run the generic model. */
  maxSpecializations?: number;
  /** Sessions kept open at once (least recently used are released; their models stay on disk). */
  maxSessions?: number;
  /** Dim names (as the model declares them, e.g. 'sequence') left dynamic: not part of the shape key. */
  dynamic?: string[];
  /** fp16: specializations compiled to float16 with float32 islands (inputs and outputs stay float32). */
  precision?: Precision;
  /**
   * With fp16: before the first compile, run the fp32 model once on the CPU (calibrate()) and keep in
   * float32 every node whose tensors leave fp16's safe range (default true; false: the rules' islands only).
   */
  calibrate?: boolean;
  /** With fp16: op types or node names kept in float32 whatever the rules and the calibration say. */
  keepFp32?: string[];
  /** Where warnings go (default stderr). */
  warn?: (msg: string) => void;
  sessionOptions?: ort.InferenceSession.SessionOptions;
}

export interface RuntimeStats {
  calls: number;
  memoryHits: number;
  diskHits: number;
  compiles: number;
  genericRuns: number;
  specializations: number;
  openSessions: number;
  provider: string | null;
}

interface Entry {
  session: ort.InferenceSession;
  provider: string;
  lastUsed: number;
  /** run() calls using the session now: an evicted session is released when the last one ends. */
  busy: number;
  evicted: boolean;
}

/** What a compiled model's metadata says about opening it and capturing it. */
interface ModelMeta {
  session: RecommendedSession;
  capture: { capturable: boolean; blockers: string[] } | null;
}

interface InputSpec {
  name: string;
  dims: Dim[] | null;
  /** onnxruntime's name for the element type, when the model declares one sdc knows. */
  type: string | null;
}

type Event = { key: string; outcome: 'compiled' | 'disk' | 'generic'; why: string };

/** One input of a shape key, kept apart so that names holding ',' ':' '[' or a newline compare right. */
type KeyPart = { name: string; type: string; dims: string[] };

const GENERIC = 'generic';

/**
 * A model that compiles itself on demand. Each distinct input shape (the shape key) gets a static
 * specialization — every shape computation folded, capturable — stored on disk and kept in a bounded
 * set of open sessions. Every miss is explained; past `maxSpecializations` keys run on the generic model
 * with one warning, never silently.
 */
export class SdcModel {
  private sessions = new Map<string, Entry>();
  /** Sessions being opened (compiled first if need be), by key: one per key at a time. */
  private opening = new Map<string, Promise<Entry>>();
  /** The parts of every shape key computed so far (for whyMiss). */
  private keyParts = new Map<string, KeyPart[]>();
  private warnedChanged = false;
  private fingerprintMemo: { modelId: string; weights: string[]; id: string; fingerprint: string } | null = null;
  private specialized = new Set<string>();
  private events: Event[] = [];
  private counters = { calls: 0, memoryHits: 0, diskHits: 0, compiles: 0, genericRuns: 0 };
  private warnedLimit = false;
  private captures = new Map<string, ModelMeta['capture']>();
  private lastProvider: string | null = null;
  private clock = 0;
  private calibration: Promise<Map<string, ValueRange> | null> | null = null;
  /** What the compiles so far kept in float32 and why (fp16), by shape key. */
  private islands = new Map<string, string[]>();
  /** What load() could not honour here, said first by explain(). */
  private readonly fallbacks: string[] = [];
  private calibrationDone: CalibrationReport | null = null;
  private calibrationFailure: string | null = null;

  private constructor(
    readonly source: string,
    private readonly fingerprint: string,
    private readonly inputs: InputSpec[],
    private readonly opts: Required<Omit<LoadOptions, 'cacheDir' | 'cacheBytes' | 'sessionOptions'>> & { sessionOptions: ort.InferenceSession.SessionOptions },
    private readonly cache: DiskCache,
  ) {}

  static async load(modelPath: string, o: LoadOptions = {}): Promise<SdcModel> {
    const warn = o.warn ?? ((m: string) => process.stderr.write(`${m}\n`));
    const source = path.resolve(modelPath);
    // a name from the caller's code, not from our CLI's choices: refused here rather than probed as a provider
    if (o.target !== undefined && !(TARGETS as string[]).includes(o.target)) throw new SdcError(modelPath, `unknown target '${o.target}' (choose ${TARGETS.join(', ')})`);
    refuseOptions(o, modelPath);
    const model = readModel(source);
    // a model onnxruntime would refuse (or a caller could not feed: an input named '' or with a NUL) is refused now, not at the first run
    refuseInvalid(model, modelPath);
    const inputs = model.graph.inputs.filter((v) => !v.initializer).map((v) => ({ name: v.name, dims: v.shape, type: v.elemType !== null ? ORT_TYPE[v.elemType] ?? null : null }));
    const cache = DiskCache.open(o.cacheDir === null ? null : o.cacheDir ?? defaultCacheDir(), warn, cacheBudget(o.cacheBytes));
    let target: TargetName = o.target ?? 'cpu';
    let precision = o.precision ?? 'fp32';
    const fallbacks: string[] = [];
    // Decide once, before anything is compiled: a GPU model can hold ops the CPU cannot run
    // (BiasSplitGelu, NhwcConv), so without the provider the model is compiled for the CPU.
    const why = await providerUnavailable(target);
    if (why) {
      fallbacks.push(`the ${targetTraits(target).label} provider cannot start here (${why}); compiling for and running on the CPU instead`);
      target = 'cpu';
    }
    // WebGPU computes float16 only where the adapter has shader-f16 (software adapters and some GPUs lack
    // it): there the GPU in float32 beats giving the GPU up
    const f16 = precision === 'fp16' ? await fp16Unavailable(target) : null;
    if (f16) {
      fallbacks.push(`fp16 was asked for, but ${f16}: compiling float32 for ${targetTraits(target).label} instead`);
      precision = 'fp32';
    }
    for (const f of fallbacks) warn(`sdc: ${f}`);
    const opts = {
      target,
      mode: o.mode ?? 'reduce-overhead',
      maxSpecializations: o.maxSpecializations ?? 8,
      maxSessions: o.maxSessions ?? 4,
      dynamic: o.dynamic ?? [],
      precision,
      calibrate: o.calibrate ?? true,
      keepFp32: o.keepFp32 ?? [],
      warn,
      sessionOptions: o.sessionOptions ?? {},
    };
    const m = new SdcModel(source, sourceFingerprint(source), inputs, opts, cache);
    m.fallbacks.push(...fallbacks);
    return m;
  }

  /** The shape key of a call: dtype and dims of every input, with dims named in `dynamic` left as '*'. */
  shapeKey(feeds: Record<string, ort.Tensor>): string {
    const parts = this.inputs.map((i) => {
      const t = feeds[i.name];
      if (!t) throw new SdcError(this.source, `missing input '${i.name}' (inputs: ${this.inputs.map((x) => x.name).join(', ')})`);
      const dims = t.dims.map((d, k) => (typeof i.dims?.[k] === 'string' && this.opts.dynamic.includes(i.dims[k] as string) ? '*' : String(d)));
      return { name: i.name, type: t.type, dims };
    });
    const key = parts.map((p) => `${p.name}:${p.type}[${p.dims.join('x')}]`).join(',');
    if (!this.keyParts.has(key)) this.keyParts.set(key, parts);
    return key;
  }

  async run(feeds: Record<string, ort.Tensor>): Promise<Record<string, ort.Tensor>> {
    if (this.released) throw new SdcError(this.source, 'run() after release(): load() the model again');
    this.checkFeeds(feeds);
    this.counters.calls++;
    const key = this.opts.mode === 'default' ? GENERIC : this.shapeKey(feeds);
    const entry = await this.sessionFor(key, feeds);
    entry.busy++;
    try {
      return (await entry.session.run(feeds)) as Record<string, ort.Tensor>;
    } finally {
      entry.busy--;
      if (entry.evicted && entry.busy === 0) await entry.session.release();
    }
  }

  /** A feed the model cannot take is the caller's mistake: say which input and why, before any compile. */
  private checkFeeds(feeds: Record<string, ort.Tensor>): void {
    if (!feeds || typeof feeds !== 'object') throw new SdcError(this.source, `run() takes an object of onnxruntime tensors by input name (got ${feeds === null ? 'null' : typeof feeds})`);
    const names = this.inputs.map((i) => i.name);
    for (const [name, t] of Object.entries(feeds)) {
      if (!(t instanceof ort.Tensor)) throw new SdcError(this.source, `input '${name}' is ${t === null ? 'null' : Array.isArray(t) ? 'an array' : typeof t === 'object' ? 'a plain object' : typeof t}, not an onnxruntime Tensor (new ort.Tensor('float32', data, dims) from onnxruntime-node)`);
    }
    for (const name of Object.keys(feeds)) {
      if (!names.includes(name)) throw new SdcError(this.source, `'${name}' is not an input of the model (inputs: ${names.join(', ')})`);
    }
    for (const i of this.inputs) {
      const t = feeds[i.name];
      if (!t) throw new SdcError(this.source, `missing input '${i.name}' (inputs: ${names.join(', ')})`);
      if (i.type && t.type !== i.type) throw new SdcError(this.source, `input '${i.name}' is ${t.type}, but the model takes ${i.type}`);
      if (!i.dims) continue;
      const want = i.dims.map((d) => d ?? '?').join('x');
      if (t.dims.length !== i.dims.length) throw new SdcError(this.source, `input '${i.name}' has ${t.dims.length} dims [${t.dims.join('x')}], but the model takes ${i.dims.length} [${want}]`);
      const k = i.dims.findIndex((d, j) => typeof d === 'number' && d !== t.dims[j]);
      if (k >= 0) throw new SdcError(this.source, `input '${i.name}' is [${t.dims.join('x')}], but the model fixes dim ${k} at ${i.dims[k]} [${want}]`);
    }
  }

  private async sessionFor(key: string, feeds: Record<string, ort.Tensor>): Promise<Entry> {
    const open = this.sessions.get(key);
    if (open) {
      this.counters.memoryHits++;
      open.lastUsed = ++this.clock;
      return open;
    }
    // a call for a key already being compiled or opened waits for it (one compile, one session per key)
    const pending = this.opening.get(key);
    if (pending) {
      this.counters.memoryHits++;
      const e = await pending;
      e.lastUsed = ++this.clock;
      return e;
    }
    const job = this.openKey(key, feeds).finally(() => this.opening.delete(key));
    this.opening.set(key, job);
    return job;
  }

  private async openKey(key: string, feeds: Record<string, ort.Tensor>): Promise<Entry> {
    if (key !== GENERIC && !this.specialized.has(key) && this.specialized.size >= this.opts.maxSpecializations) {
      if (!this.warnedLimit) {
        this.warnedLimit = true;
        this.opts.warn(`sdc: shape key ${key} would be specialization ${this.specialized.size + 1}, over the limit of ${this.opts.maxSpecializations} (maxSpecializations); this and later new keys run on the generic model`);
      }
      this.counters.genericRuns++;
      this.events.push({ key, outcome: 'generic', why: `over maxSpecializations=${this.opts.maxSpecializations}` });
      return this.sessionFor(GENERIC, feeds);
    }
    let file = '';
    const open = async () => {
      file = await this.ensureCompiled(key, feeds);
      // The model says how to open it: CPU entries were finalized by onnxruntime when cached ("disabled").
      const meta = modelMeta(file);
      // the model says how to open it (level, WebGPU layout); the caller's sessionOptions win
      return { meta, ...(await openSession(file, this.opts.target, { ...meta.session.options, ...this.opts.sessionOptions } as ort.InferenceSession.SessionOptions, this.opts.warn)) };
    };
    let opened;
    try {
      opened = await open();
    } catch (e) {
      // another process sharing the cache evicted the entry between the lookup and the open: once more
      if (!file || fs.existsSync(file)) throw e;
      opened = await open();
    }
    const { meta, session, provider } = opened;
    if (key !== GENERIC) this.specialized.add(key);
    this.captures.set(key, meta.capture);
    this.lastProvider = provider;
    const entry: Entry = { session, provider, lastUsed: ++this.clock, busy: 0, evicted: false };
    this.sessions.set(key, entry);
    await this.evict(entry);
    return entry;
  }

  /** The cached model file that serves these inputs (compiling it if needed), e.g. for benchmarks. */
  async modelFileFor(feeds: Record<string, ort.Tensor>): Promise<string> {
    return this.ensureCompiled(this.opts.mode === 'default' ? GENERIC : this.shapeKey(feeds), feeds);
  }

  /** The compiled model for a key, from the disk cache or compiled now. */
  private async ensureCompiled(key: string, feeds: Record<string, ort.Tensor>): Promise<string> {
    const shapes = key === GENERIC ? null : this.staticShapes(feeds);
    // keyed by the file as it is now, which is what a compile reads (not as it was at load())
    const fingerprint = this.currentFingerprint();
    if (fingerprint !== this.fingerprint && !this.warnedChanged) {
      this.warnedChanged = true;
      this.opts.warn(`sdc: ${this.source} changed since load(); new shapes are compiled from the file as it is now (sessions already open keep the model they opened): load() it again to use one model throughout`);
    }
    const describe = { source: this.source, mode: key === GENERIC ? 'default' : 'reduce-overhead', target: this.opts.target, precision: this.opts.precision, shapeKey: key };
    // The CPU entry holds onnxruntime's own layout rewrites, which are specific to this processor.
    const fp16 = this.opts.precision === 'fp16' ? { calibrate: this.opts.calibrate, keepFp32: this.opts.keepFp32 } : undefined;
    const cacheKey = hashKey({ fingerprint, ...describe, source: undefined, fp16, dynamic: this.opts.dynamic, sdc: SDC_VERSION, build: sdcBuildHash(), ort: ORT_VERSION, cpu: os.cpus()[0]?.model });
    let hit = this.cache.lookup(cacheKey, this.opts.warn);
    const unfit = hit ? this.inputsProblem(hit) : null;
    if (hit && unfit) {
      // an entry that cannot be fed what the source takes is never served: rebuilt
      this.opts.warn(`sdc: the cached model for ${key} ${unfit}; compiling it again`);
      this.cache.remove(cacheKey);
      hit = null;
    }
    const why = this.whyMiss(key);
    if (hit) {
      this.counters.diskHits++;
      this.events.push({ key, outcome: 'disk', why });
      return hit;
    }
    this.counters.compiles++;
    this.events.push({ key, outcome: 'compiled', why });
    log('recompiles', `compiling ${key}: ${why}`);
    return this.cache.store(cacheKey, describe, (folder, dataName) => this.build(key, feeds, shapes, fingerprint, folder, dataName).catch(async (e) => {
      // onnxruntime refusing the specialization is the caller's dims, not sdc's bug, when the source refuses them too
      const why = e instanceof SdcError || key === GENERIC ? null : await runFailure(this.source, feeds);
      throw why ? new SdcError(this.source, `the model does not run at these input dims (${key}): ${why}`) : e;
    }));
  }

  /** Compile (and on the CPU finalize) the model for one key into the cache's folder. */
  private async build(key: string, feeds: Record<string, ort.Tensor>, shapes: Map<string, number[]> | null, fingerprint: string, folder: string, dataName: string): Promise<void> {
    const mode = key === GENERIC ? 'default' : 'reduce-overhead';
    const fp16 = this.opts.precision === 'fp16' ? { ranges: await this.measureRanges(feeds), keepFp32: this.opts.keepFp32 } : {};
    const common = { mode, target: this.opts.target, precision: this.opts.precision, shapes, ...fp16 } as const;
    // a device model is cached as sdc wrote it; finalizeForCpu's rewrites are for this host's CPU provider
    if (!targetTraits(this.opts.target).hostCpu) {
      this.noteIslands(key, compile(this.source, { ...common, output: path.join(folder, 'model.onnx'), dataFileName: dataName }));
      this.unchangedSince(fingerprint);
      this.refuseUnfit(path.join(folder, 'model.onnx'));
      return;
    }
    const sdcOut = path.join(folder, 'sdc.onnx');
    this.noteIslands(key, compile(this.source, { ...common, output: sdcOut, sessionLevel: 'disabled' }));
    this.unchangedSince(fingerprint);
    await finalizeForCpu(sdcOut, path.join(folder, 'model.onnx'), dataName, this.source);
    for (const f of fs.readdirSync(folder)) if (f.startsWith('sdc.onnx')) fs.rmSync(path.join(folder, f));
    this.refuseUnfit(path.join(folder, 'model.onnx'));
  }


  /** Why a compiled model cannot serve this source's calls (it takes an input the source's callers never feed), or null. */
  private inputsProblem(file: string): string | null {
    const names = new Set(this.inputs.map((i) => i.name));
    const extra = readModel(file, { allowMissingData: true }).graph.inputs.filter((v) => !v.initializer && !names.has(v.name));
    return extra.length ? `takes input${extra.length > 1 ? 's' : ''} ${extra.map((v) => `'${v.name}'`).join(', ')}, which the source's callers do not feed` : null;
  }

  /** A build that could not serve a call is not cached (the store discards its folder when this throws). */
  private refuseUnfit(file: string): void {
    const why = this.inputsProblem(file);
    if (why) throw new Error(`the model sdc compiled from ${this.source} ${why} (a bug in sdc; nothing was cached)`);
  }

  /**
   * The source's fingerprint now. The model file is hashed again only when its inode, size or
   * modification time moved since the last hash (an inline 1.9 GB model is not re-read for every key).
   */
  private currentFingerprint(): string {
    const stamp = (f: string) => {
      const st = fs.statSync(f, { throwIfNoEntry: false });
      return st ? `${st.ino}:${st.size}:${st.mtimeMs}:${st.ctimeMs}` : 'missing';
    };
    const modelId = stamp(this.source);
    // the weights files the model names change only with the model file
    if (this.fingerprintMemo?.modelId !== modelId) this.fingerprintMemo = { modelId, weights: weightFiles(this.source), id: '', fingerprint: '' };
    const memo = this.fingerprintMemo;
    const id = [modelId, ...memo.weights.map(stamp)].join('|');
    if (memo.id !== id) {
      memo.id = id;
      memo.fingerprint = sourceFingerprint(this.source, memo.weights);
    }
    return memo.fingerprint;
  }

  /** A source changed while it was compiled gives a model of neither version: it is not cached. */
  private unchangedSince(fingerprint: string): void {
    if (this.currentFingerprint() !== fingerprint) throw new SdcError(this.source, 'changed on disk while it was being compiled; nothing was cached: run again');
  }

  /**
   * The fp32 model's value ranges, measured once per loaded model (not per shape key: ranges barely move
   * with batch or resolution, and calibrate() runs free dims small). A model it cannot measure (a string
   * input) still compiles, with the rules' islands only, and says so.
   */
  private measureRanges(feeds: Record<string, ort.Tensor>): Promise<Map<string, ValueRange> | null> {
    if (!this.opts.calibrate) return Promise.resolve(null);
    this.calibration ??= (async () => {
      const undeclared = this.inputs.some((i) => !i.dims);
      try {
        const { ranges, report } = await calibrate(this.source, { shapes: undeclared ? new Map(this.inputs.map((i) => [i.name, [...feeds[i.name].dims]])) : null });
        this.calibrationDone = report;
        return ranges;
      } catch (e) {
        this.calibrationFailure = (e as Error).message;
        this.opts.warn(`sdc: fp16 calibration failed (${this.calibrationFailure}); float32 islands come from the rules only`);
        return null;
      }
    })();
    return this.calibration;
  }

  private noteIslands(key: string, report: CompileReport): void {
    if (this.opts.precision !== 'fp16') return;
    this.islands.set(
      key,
      report.explanations.filter((e) => e.pass === 'convert-fp16' && e.status === 'skipped' && e.reason?.startsWith('kept float32')).map((e) => `${e.site} (${e.reason!.replace(/^kept float32: /, '')})`),
    );
  }

  private staticShapes(feeds: Record<string, ort.Tensor>): Map<string, number[]> {
    return new Map(
      this.inputs.map((i) => [
        i.name,
        feeds[i.name].dims.map((d, k) => (typeof i.dims?.[k] === 'string' && this.opts.dynamic.includes(i.dims[k] as string) ? -1 : d)),
      ]),
    );
  }

  /** Which dims differ from the nearest key seen before (torch.compile's "why did this recompile"). */
  private whyMiss(key: string): string {
    if (key === GENERIC) return 'generic model (symbolic shapes)';
    const seen = [...new Set(this.events.map((e) => e.key))].filter((k) => k !== key && k !== GENERIC);
    if (!seen.length) return 'first call';
    const parse = (k: string) => new Map((this.keyParts.get(k) ?? []).map((p) => [p.name, { type: p.type, dims: p.dims }]));
    const cur = parse(key);
    let best = '';
    let bestCount = Infinity;
    for (const k of seen) {
      const prev = parse(k);
      const diffs: string[] = [];
      for (const [name, c] of cur) {
        const p = prev.get(name);
        if (!p) continue;
        if (p.type !== c.type) diffs.push(`${name} dtype ${p.type}→${c.type}`);
        const decl = this.inputs.find((i) => i.name === name)?.dims;
        c.dims.forEach((d, i) => {
          if (p.dims[i] !== d) diffs.push(`${name}[${i}]${typeof decl?.[i] === 'string' ? ` (${decl[i]})` : ''} ${p.dims[i]}→${d}`);
        });
        if (p.dims.length !== c.dims.length) diffs.push(`${name} rank ${p.dims.length}→${c.dims.length}`);
      }
      if (diffs.length < bestCount) {
        bestCount = diffs.length;
        best = diffs.join(', ');
      }
    }
    return `new shape: ${best}`;
  }

  /** Release the least recently used sessions past maxSessions (never `keep`); one in use is released when its run ends. */
  private async evict(keep: Entry): Promise<void> {
    while (this.sessions.size > this.opts.maxSessions) {
      const [oldest, e] = [...this.sessions].filter(([, x]) => x !== keep).sort((a, b) => a[1].lastUsed - b[1].lastUsed)[0];
      this.sessions.delete(oldest);
      e.evicted = true;
      if (e.busy === 0) await e.session.release();
    }
  }

  /** Every miss and fallback so far, and what graph capture can do here, as sentences. */
  explain(): string[] {
    const lines = [...this.fallbacks];
    lines.push(...this.events.map((e) =>
      e.outcome === 'generic' ? `${e.key}: ran on the generic model (${e.why})` : `${e.key}: ${e.outcome === 'disk' ? 'loaded from the disk cache' : 'compiled'} (${e.why})`,
    ));
    if (this.opts.precision === 'fp16') lines.push(...this.precisionSentences());
    lines.push(this.captureSentence());
    return lines;
  }

  private precisionSentences(): string[] {
    const lines: string[] = [];
    if (!this.opts.calibrate) lines.push('fp16: not calibrated (calibrate: false): float32 islands come from the rules only');
    else if (this.calibrationReport) {
      const r = this.calibrationReport;
      lines.push(`fp16: value ranges measured on the CPU in fp32 (${r.values} tensors, timesteps ${r.timesteps.join('/')}, ${Object.entries(r.dims).map(([k, d]) => `${k}=${d.join('x')}`).join(' ')}; ${r.ms} ms)`);
    } else if (this.calibrationFailure) lines.push(`fp16: calibration failed (${this.calibrationFailure}): float32 islands come from the rules only`);
    for (const [key, kept] of this.islands) {
      const measured = kept.filter((k) => k.includes('calibration:')).length;
      lines.push(`${key === GENERIC ? 'generic model' : key}: ${kept.length} node(s) kept float32 (${measured} by measurement)${kept.length ? `: ${kept.slice(0, 3).join('; ')}${kept.length > 3 ? `; +${kept.length - 3} more` : ''}` : ''}`);
    }
    return lines;
  }

  /** The calibration of this model, once one has run (fp16 with calibrate, after the first compile). */
  get calibrationReport(): CalibrationReport | null {
    return this.calibrationDone;
  }

  private captureSentence(): string {
    const models = [...this.captures].map(([key, c]) => `${key === GENERIC ? 'generic model' : key}: ${!c ? 'no capture report' : c.capturable ? 'capturable' : `not capturable (${c.blockers[0]}${c.blockers.length > 1 ? `, +${c.blockers.length - 1} more` : ''})`}`);
    return `graph capture: not enabled: onnxruntime-node ${ORT_VERSION} ignores enableGraphCapture; onnxruntime-web with WebGPU and GPU-resident inputs/outputs honors it (webCaptureOptions() gives its session options from a model's capture report).${models.length ? ` ${models.join('; ')}.` : ''}`;
  }

  /** The capture report of the model serving each key opened so far. */
  captureReports(): Map<string, ModelMeta['capture']> {
    return new Map(this.captures);
  }

  stats(): RuntimeStats {
    return { ...this.counters, specializations: this.specialized.size, openSessions: this.sessions.size, provider: this.lastProvider };
  }

  private released = false;

  async release(): Promise<void> {
    this.released = true;
    await Promise.allSettled([...this.opening.values()]);
    for (const e of this.sessions.values()) await e.session.release();
    this.sessions.clear();
    this.cache.dispose();
  }
}

/** Options a caller's code got wrong (a mode or precision sdc lacks, a count that is not one) are named before anything loads. */
function refuseOptions(o: LoadOptions, file: string): void {
  const choice = (name: string, v: unknown, choices: readonly string[]) => {
    if (v !== undefined && !choices.includes(v as string)) throw new SdcError(file, `load() option ${name}: '${String(v)}' is not one of ${choices.join(', ')}`);
  };
  choice('mode', o.mode, ['reduce-overhead', 'default']);
  choice('precision', o.precision, ['fp32', 'fp16']);
  for (const name of ['maxSpecializations', 'maxSessions'] as const) {
    const v = o[name];
    if (v !== undefined && !(Number.isInteger(v) && v >= (name === 'maxSessions' ? 1 : 0))) throw new SdcError(file, `load() option ${name}: ${String(v)} is not a whole number${name === 'maxSessions' ? ' ≥ 1' : ' ≥ 0'}`);
  }
  if (o.dynamic !== undefined && !(Array.isArray(o.dynamic) && o.dynamic.every((d) => typeof d === 'string'))) throw new SdcError(file, 'load() option dynamic: a list of dim names (strings)');
  const known = ['target', 'mode', 'cacheDir', 'cacheBytes', 'maxSpecializations', 'maxSessions', 'dynamic', 'precision', 'calibrate', 'keepFp32', 'warn', 'sessionOptions'];
  const unknown = Object.keys(o).filter((k) => !known.includes(k));
  if (unknown.length) throw new SdcError(file, `load() has no option ${unknown.map((k) => `'${k}'`).join(', ')} (options: ${known.join(', ')})`);
}

function modelMeta(file: string): ModelMeta {
  const model = readModel(file, { allowMissingData: true });
  let capture: ModelMeta['capture'] = null;
  try {
    capture = JSON.parse(model.getMetadata('sdc.capture') ?? 'null');
  } catch {
    capture = null;
  }
  return { session: recommendedSession((k) => model.getMetadata(k)), capture };
}

/**
 * Let onnxruntime apply its level-"all" rewrites (NCHWc layouts and fusions for this CPU) once, and
 * save the result: opening it later with optimizations disabled skips the slowest part of session
 * creation (about 9 of 11 s for SD1.5 here) and keeps the speed.
 */
async function finalizeForCpu(input: string, output: string, dataName: string, source: string): Promise<void> {
  const s = await createSession(input, {
    graphOptimizationLevel: 'all',
    optimizedModelFilePath: output,
    logSeverityLevel: 3,
    extra: { session: { optimized_model_external_initializers_file_name: dataName, optimized_model_external_initializers_min_size_in_bytes: '1024' } },
  }, 'cpu', source);
  await s.release();
}

export const load = SdcModel.load;
