import { createHash } from 'crypto';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { SdcError } from '../ir/errors';
import { readModel } from '../onnx/read';

/** Where compiled specializations live: --cache-dir / SDC_CACHE_DIR, else the user's cache folder. */
export function defaultCacheDir(): string {
  return process.env.SDC_CACHE_DIR ?? path.join(process.env.XDG_CACHE_HOME ?? path.join(os.homedir(), '.cache'), 'sdc');
}

/** The default byte budget of a cache folder: 20 GiB (SD1.5's weights are 3.4 GB a specialization). */
const DEFAULT_CACHE_BYTES = 20 * 2 ** 30;

/** `20G`, `512M`, `1.5GiB`, `1000000` → bytes. */
export function parseBytes(spec: string | number, what: string): number {
  if (typeof spec === 'number') {
    if (!(spec >= 0)) throw new SdcError('', `${what} must be a number of bytes ≥ 0 (got ${spec})`);
    return spec;
  }
  const m = /^\s*(\d+(?:\.\d+)?)\s*([kmgt]?)(?:i?b)?\s*$/i.exec(spec);
  if (!m) throw new SdcError('', `${what} '${spec}' is not a size: write bytes, or a number with K, M, G or T (for example 20G)`);
  return Math.floor(Number(m[1]) * 1024 ** ' kmgt'.indexOf((m[2] || ' ').toLowerCase()));
}

/** The budget from the caller, else SDC_CACHE_BYTES, else the default. */
export function cacheBudget(bytes?: number | string, what = 'cacheBytes'): number {
  if (bytes !== undefined) return parseBytes(bytes, what);
  const env = process.env.SDC_CACHE_BYTES;
  return env ? parseBytes(env, 'SDC_CACHE_BYTES') : DEFAULT_CACHE_BYTES;
}

/**
 * Identity of a source model: a hash of the model file, plus name, size and modification time of each
 * external data file it uses. (Hashing 3.4 GB of weights on every load would cost seconds; a changed
 * weight file changes its size or time.)
 */
export function sourceFingerprint(modelPath: string, weights = weightFiles(modelPath)): string {
  const h = createHash('sha256');
  hashInto(h, modelPath);
  for (const f of weights) {
    const st = fs.statSync(f, { throwIfNoEntry: false });
    h.update(`\n${path.basename(f)}:${st?.size ?? -1}:${st?.mtimeMs ?? -1}`);
  }
  return h.digest('hex');
}

/** The external data files a model names (existing or not): a change to one is a change to the model. */
export function weightFiles(modelPath: string): string[] {
  return readModel(modelPath, { allowMissingData: true }).externalFiles();
}

export function hashKey(parts: unknown): string {
  return createHash('sha256').update(JSON.stringify(parts)).digest('hex').slice(0, 32);
}

/** A file's bytes into a hash, 16 MB at a time (weights files are larger than a Buffer may be). */
function hashInto(h: ReturnType<typeof createHash>, file: string): void {
  const fd = fs.openSync(file, 'r');
  const buf = Buffer.alloc(16 << 20);
  try {
    for (let pos = 0; ; ) {
      const n = fs.readSync(fd, buf, 0, buf.length, pos);
      if (n <= 0) break;
      h.update(buf.subarray(0, n));
      pos += n;
    }
  } finally {
    fs.closeSync(fd);
  }
}

const sha256File = (f: string) => {
  const h = createHash('sha256');
  hashInto(h, f);
  return h.digest('hex');
};

const SAMPLES = 64;
const SAMPLE_BYTES = 16 << 10;

/** SHA-256 of 64 blocks of 16 KB spread evenly over the file, its first and last included (≤ 1 MB read). */
function sampledHash(file: string): string {
  const size = fs.statSync(file).size;
  const h = createHash('sha256').update(String(size));
  const fd = fs.openSync(file, 'r');
  const buf = Buffer.alloc(SAMPLE_BYTES);
  try {
    const span = Math.max(0, size - SAMPLE_BYTES);
    for (let i = 0; i < SAMPLES; i++) {
      const n = fs.readSync(fd, buf, 0, SAMPLE_BYTES, Math.floor((span * i) / (SAMPLES - 1)));
      h.update(buf.subarray(0, n));
    }
  } finally {
    fs.closeSync(fd);
  }
  return h.digest('hex');
}

/** What identifies a file on disk without reading it: a rename or copy of another file changes it. */
type FileId = { ino: number; size: number; mtimeMs: number };
const identity = (st: fs.Stats): FileId => ({ ino: st.ino, size: st.size, mtimeMs: st.mtimeMs });
/** Same file: inode and size equal, modification time within 2 ms (utimes rounds through float seconds). */
const sameFile = (a: FileId | null, b: FileId) => !!a && a.ino === b.ino && a.size === b.size && Math.abs(a.mtimeMs - b.mtimeMs) < 2;

interface Manifest {
  key: string;
  /** The entry's folder (`<key>.b-<pid>-<id>`), relative to the cache. */
  folder: string;
  /** The model file's name in the folder, and its SHA-256. */
  model: string;
  modelSha256: string;
  /** The one data file the model names (in the folder), or null. */
  data: string | null;
  dataBytes: number | null;
  /** Full SHA-256 of the data (checked under SDC_CACHE_VERIFY=full, or when the file's identity changed). */
  dataSha256: string | null;
  /** sampledHash() of the data, checked on every lookup. */
  dataSample: string | null;
  /** Inode, size and modification time of the data file when sealed. */
  dataId: FileId | null;
  /** Bytes of the entry (model + data), for the budget. */
  bytes: number;
  created: string;
  describe: unknown;
}

export interface CacheEntryInfo {
  key: string;
  bytes: number;
  created: string;
  lastUsed: Date;
  describe: unknown;
}

/**
 * On-disk cache of compiled models. An entry is a folder `<key>.b-<pid>-<id>/` (the model and its data
 * file) and the manifest `<key>.json` that names it, written last. Guarantees:
 * - Write-once: the manifest is published with link(2), which never replaces; a second process that built
 *   the same key keeps the first's entry and removes its own folder. Only a damaged entry is replaced.
 * - Readers never delete: a lookup that finds an entry damaged (model hash, data size, sampled hash, or
 *   data identity changed with a different full hash) reports it and returns null; the next store for
 *   that key replaces it and removes the damaged folder. A folder being built (its pid alive) is never
 *   touched by another process.
 * - Garbage: build folders of dead processes (or untouched for a day) and folders no manifest names are
 *   removed by the next open/store.
 * - Budget: after each store, least recently used entries are evicted until the folder holds at most `budget` bytes; the entry just stored stays.
 * The last use is the manifest's modification time (set on each hit; the manifest's content never changes).
 */
/** A write that failed for want of space (from node's fs or from onnxruntime saving a model), said as such; else null. */
function diskFull(e: unknown, dir: string): SdcError | null {
  const code = (e as NodeJS.ErrnoException).code;
  const text = (e as Error).message ?? '';
  if (!(code === 'ENOSPC' || code === 'EDQUOT' || /no space left on (the )?device|disk quota exceeded/i.test(text))) return null;
  return new SdcError(dir, `the cache folder is full (${code ?? 'no space left on device'}): nothing was cached; free space, lower cacheBytes / SDC_CACHE_BYTES, or give another cache folder`);
}

export class DiskCache {
  private constructor(readonly dir: string, readonly persistent: boolean, readonly budget: number) {}

  /** Opens `dir`, or falls back to a private temporary folder (with a warning) when it is not writable. */
  static open(dir: string | null, warn: (msg: string) => void, budget = cacheBudget()): DiskCache {
    if (dir === null) return new DiskCache(fs.mkdtempSync(path.join(os.tmpdir(), 'sdc-cache-')), false, budget);
    try {
      fs.mkdirSync(dir, { recursive: true });
      const probe = path.join(dir, `.probe-${process.pid}-${Math.random().toString(36).slice(2)}`);
      fs.writeFileSync(probe, '');
      fs.rmSync(probe);
      const cache = new DiskCache(dir, true, budget);
      cache.collectGarbage();
      return cache;
    } catch (e) {
      warn(`sdc: cache folder ${dir} is not writable (${(e as NodeJS.ErrnoException).code ?? (e as Error).message}); compiled models are kept for this process only`);
      return new DiskCache(fs.mkdtempSync(path.join(os.tmpdir(), 'sdc-cache-')), false, budget);
    }
  }

  private manifestPath(key: string): string {
    return path.join(this.dir, `${key}.json`);
  }

  private readManifest(key: string): Manifest | null {
    try {
      const m = JSON.parse(fs.readFileSync(this.manifestPath(key), 'utf8')) as Manifest;
      return m && typeof m === 'object' && typeof m.folder === 'string' && typeof m.model === 'string' ? m : null;
    } catch {
      return null;
    }
  }

  /** Why the entry a manifest describes is not intact, or null when it is. Never deletes anything. */
  private damage(key: string, m: Manifest | null): string | null {
    if (!m || m.key !== key) return 'unreadable manifest';
    if (m.folder.includes('/') || m.folder.includes('\\') || !m.folder.startsWith(`${key}.b-`)) return 'manifest names a folder outside the entry';
    const folder = path.join(this.dir, m.folder);
    const model = path.join(folder, path.basename(m.model));
    if (!fs.existsSync(model)) return 'model file missing';
    if (sha256File(model) !== m.modelSha256) return 'model hash mismatch';
    if (m.data === null) return null;
    const data = path.join(folder, path.basename(m.data));
    const st = fs.statSync(data, { throwIfNoEntry: false });
    if (!st?.isFile()) return 'data file missing';
    if (st.size !== m.dataBytes) return 'data size mismatch';
    if (process.env.SDC_CACHE_VERIFY === 'full') return sha256File(data) === m.dataSha256 ? null : 'data hash mismatch';
    if (sampledHash(data) !== m.dataSample) return 'data sampled hash mismatch';
    // another file put in its place (a swap of two entries' weights, a copy): only the full hash tells
    if (!sameFile(m.dataId, identity(st)) && sha256File(data) !== m.dataSha256) return 'data replaced by another file';
    return null;
  }

  /** The model path of a complete, intact entry (its last use recorded), or null (a damaged one is reported, not removed). */
  lookup(key: string, warn: (msg: string) => void): string | null {
    if (!fs.existsSync(this.manifestPath(key))) return null;
    const m = this.readManifest(key);
    let why: string | null;
    try {
      why = this.damage(key, m);
    } catch (e) {
      why = `unreadable (${(e as NodeJS.ErrnoException).code ?? (e as Error).message})`;
    }
    if (why) {
      warn(`sdc: cache entry ${key} in ${this.dir} is damaged (${why}); rebuilding it`);
      return null;
    }
    this.touch(key);
    return path.join(this.dir, m!.folder, path.basename(m!.model));
  }

  /** Record a use: the manifest's modification time is the entry's last use (LRU; its content never changes). */
  private touch(key: string): void {
    try {
      const now = new Date();
      fs.utimesSync(this.manifestPath(key), now, now);
    } catch {
      /* a read-only cache still serves */
    }
  }

  /**
   * Build an entry: `build(folder, dataName)` writes `model.onnx` (and the data file `dataName` it names)
   * into the entry's folder; the manifest then seals it. When another process sealed the key meanwhile,
   * its entry is kept and this build removed.
   */
  async store(key: string, describe: unknown, build: (folder: string, dataName: string) => Promise<void>): Promise<string> {
    this.collectGarbage();
    const folder = fs.mkdtempSync(path.join(this.dir, `${key}.b-${process.pid}-`));
    const dataName = `${key}.${path.basename(folder).slice(-6)}.data`;
    let published = false;
    try {
      await build(folder, dataName).catch((e) => {
        throw diskFull(e, this.dir) ?? e;
      });
      for (const f of fs.readdirSync(folder)) if (f !== 'model.onnx' && f !== dataName) fs.rmSync(path.join(folder, f), { recursive: true, force: true });
      const model = path.join(folder, 'model.onnx');
      const data = path.join(folder, dataName);
      const dataSt = fs.statSync(data, { throwIfNoEntry: false }) ?? null;
      const manifest: Manifest = {
        key,
        folder: path.basename(folder),
        model: 'model.onnx',
        modelSha256: sha256File(model),
        data: dataSt ? dataName : null,
        dataBytes: dataSt ? dataSt.size : null,
        dataSha256: dataSt ? sha256File(data) : null,
        dataSample: dataSt ? sampledHash(data) : null,
        dataId: dataSt ? identity(dataSt) : null,
        bytes: fs.statSync(model).size + (dataSt?.size ?? 0),
        created: new Date().toISOString(),
        describe,
      };
      const tmp = `${this.manifestPath(key)}.tmp-${process.pid}-${Math.random().toString(36).slice(2)}`;
      try {
        fs.writeFileSync(tmp, JSON.stringify(manifest, null, 2));
      } catch (e) {
        fs.rmSync(tmp, { force: true });
        throw diskFull(e, this.dir) ?? e;
      }
      try {
        for (;;) {
          try {
            fs.linkSync(tmp, this.manifestPath(key)); // never replaces: the first sealed entry wins
            published = true;
            break;
          } catch (e) {
            if ((e as NodeJS.ErrnoException).code !== 'EEXIST') throw e;
          }
          const existing = this.readManifest(key);
          if (!this.damage(key, existing)) break; // another process sealed an intact entry: use it
          // a damaged entry: replace it, then remove its folder (no reader uses a damaged entry)
          fs.renameSync(tmp, this.manifestPath(key));
          published = true;
          if (existing && existing.folder !== manifest.folder && existing.folder.startsWith(`${key}.b-`) && !existing.folder.includes('/')) {
            fs.rmSync(path.join(this.dir, existing.folder), { recursive: true, force: true });
          }
          break;
        }
      } finally {
        fs.rmSync(tmp, { force: true });
      }
    } finally {
      if (!published) fs.rmSync(folder, { recursive: true, force: true });
    }
    const m = this.readManifest(key)!;
    this.touch(key);
    this.enforceBudget(key);
    return path.join(this.dir, m.folder, path.basename(m.model));
  }

  /** What the entry's store recorded about it (`describe`), or null. */
  describeOf(key: string): unknown {
    return this.readManifest(key)?.describe ?? null;
  }

  /** The one external data file a cached model names (read from its graph; no weight is read). */
  dataFileOf(model: string): string | null {
    if (!fs.existsSync(model)) return null;
    const m = readModel(model, { allowMissingData: true });
    for (const g of m.graph.allGraphs()) for (const v of g.initializers()) if (v.initializer!.data.kind === 'external') return (v.initializer!.data as { file: string }).file;
    return null;
  }

  /** The sealed entries, least recently used first. */
  list(): CacheEntryInfo[] {
    if (!fs.existsSync(this.dir)) return [];
    const out: CacheEntryInfo[] = [];
    for (const f of fs.readdirSync(this.dir)) {
      if (!/^[0-9a-f]{32}\.json$/.test(f)) continue;
      const key = f.slice(0, -5);
      const st = fs.statSync(path.join(this.dir, f), { throwIfNoEntry: false });
      if (!st) continue;
      const m = this.readManifest(key);
      const bytes = m?.bytes ?? this.legacyFiles(key).reduce((t, x) => t + (fs.statSync(x, { throwIfNoEntry: false })?.size ?? 0), 0);
      out.push({ key, bytes, created: m?.created ?? '', lastUsed: st.mtime, describe: m?.describe ?? null });
    }
    return out.sort((a, b) => a.lastUsed.getTime() - b.lastUsed.getTime());
  }

  /** Keys of the sealed entries (for tests and `stats()`). */
  entries(): string[] {
    return this.list().map((e) => e.key);
  }

  /** Remove an entry: the manifest first (no reader finds it any more), then its folder. */
  remove(key: string): void {
    const m = this.readManifest(key);
    fs.rmSync(this.manifestPath(key), { force: true });
    if (m && m.folder.startsWith(`${key}.b-`) && !m.folder.includes('/') && !m.folder.includes('\\')) fs.rmSync(path.join(this.dir, m.folder), { recursive: true, force: true });
    if (!m) for (const f of this.legacyFiles(key)) fs.rmSync(f, { force: true });
  }

  /** An entry written by sdc before entries had folders: `<key>.onnx` and its data file beside it. */
  private legacyFiles(key: string): string[] {
    const legacy = new RegExp(`^${key}\\.(?:onnx|onnx\\.data|[0-9a-zA-Z_]{6}\\.data)$`);
    return fs.readdirSync(this.dir).filter((f) => legacy.test(f)).map((f) => path.join(this.dir, f));
  }

  /** Evict least recently used entries until the sealed entries fit the budget; `keep` is never evicted. Returns the keys evicted. */
  enforceBudget(keep?: string, budget = this.budget): string[] {
    const entries = this.list();
    let total = entries.reduce((s, e) => s + e.bytes, 0);
    const evicted: string[] = [];
    for (const e of entries) {
      if (total <= budget) break;
      if (e.key === keep) continue;
      this.remove(e.key);
      total -= e.bytes;
      evicted.push(e.key);
    }
    return evicted;
  }

  /**
   * Remove what is provably dead: build folders whose process is gone (or untouched for a day), entry
   * folders no manifest names (a build that lost the race, a killed seal), and stale manifest temporaries.
   * Returns the paths removed.
   */
  collectGarbage(): string[] {
    const removed: string[] = [];
    let names: string[];
    try {
      names = fs.readdirSync(this.dir);
    } catch {
      return removed;
    }
    const named = new Set<string>();
    for (const n of names) {
      if (!/^[0-9a-f]{32}\.json$/.test(n)) continue;
      const m = this.readManifest(n.slice(0, -5));
      if (m) named.add(m.folder);
    }
    const dayAgo = Date.now() - 24 * 3600 * 1000;
    const hourAgo = Date.now() - 3600 * 1000;
    for (const n of names) {
      // a build folder of an sdc before this layout (`<key>.tmp-XXXXXX`, no pid): dead once an hour old
      if (/^[0-9a-f]{32}\.tmp-[0-9A-Za-z_]{6}$/.test(n)) {
        const st = fs.statSync(path.join(this.dir, n), { throwIfNoEntry: false });
        if (st?.isDirectory() && st.mtimeMs < hourAgo) {
          fs.rmSync(path.join(this.dir, n), { recursive: true, force: true });
          removed.push(path.join(this.dir, n));
        }
        continue;
      }
      const m = /^[0-9a-f]{32}\.(?:b|tmp)-(\d+)-|^[0-9a-f]{32}\.json\.tmp-(\d+)-/.exec(n);
      if (!m || named.has(n)) continue;
      const pid = Number(m[1] ?? m[2]);
      const p = path.join(this.dir, n);
      const st = fs.statSync(p, { throwIfNoEntry: false });
      if (!st) continue;
      if (pid !== process.pid && alive(pid) && st.mtimeMs > dayAgo) continue;
      if (pid === process.pid && st.mtimeMs > dayAgo) continue; // this process may be building it
      // sealed since the manifests were read (its process then exited): a sealed folder is never garbage
      if (this.readManifest(n.slice(0, 32))?.folder === n) continue;
      fs.rmSync(p, { recursive: true, force: true });
      removed.push(p);
    }
    return removed;
  }

  /** Remove every sealed entry and the garbage (folders being built by live processes stay). */
  clear(): number {
    let n = 0;
    for (const e of this.list()) {
      this.remove(e.key);
      n++;
    }
    this.collectGarbage();
    return n;
  }

  dispose(): void {
    if (!this.persistent) fs.rmSync(this.dir, { recursive: true, force: true });
  }
}

function alive(pid: number): boolean {
  if (!Number.isSafeInteger(pid) || pid <= 0) return false;
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === 'EPERM';
  }
}
