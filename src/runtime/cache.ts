import { createHash } from 'crypto';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { readModel } from '../onnx/read';

/** Where compiled specializations live: --cache-dir / SDC_CACHE_DIR, else the user's cache folder. */
export function defaultCacheDir(): string {
  return process.env.SDC_CACHE_DIR ?? path.join(process.env.XDG_CACHE_HOME ?? path.join(os.homedir(), '.cache'), 'sdc');
}

/**
 * Identity of a source model: a hash of the model file, plus name, size and modification time of each
 * external data file it uses. (Hashing 3.4 GB of weights on every load would cost seconds; a changed
 * weight file changes its size or time.)
 */
export function sourceFingerprint(modelPath: string, weights = weightFiles(modelPath)): string {
  const h = createHash('sha256');
  h.update(fs.readFileSync(modelPath));
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

interface Manifest {
  key: string;
  modelSha256: string;
  dataBytes: number | null;
  created: string;
  describe: unknown;
}

const sha256File = (f: string) => createHash('sha256').update(fs.readFileSync(f)).digest('hex');

/**
 * On-disk cache of compiled models: `<key>.onnx` (+ `<key>.onnx.data`) and `<key>.json`, the manifest,
 * written last. An entry counts only when its manifest matches the files: the model's SHA-256 and the
 * data file's size (SDC_CACHE_VERIFY=full also hashes the data). Files are written under temporary names
 * and renamed, so two processes building the same key leave one valid entry (compilation is
 * deterministic, so either writer's files are the same bytes).
 */
export class DiskCache {
  private constructor(readonly dir: string, readonly persistent: boolean) {}

  /** Opens `dir`, or falls back to a private temporary folder (with a warning) when it is not writable. */
  static open(dir: string | null, warn: (msg: string) => void): DiskCache {
    if (dir === null) return new DiskCache(fs.mkdtempSync(path.join(os.tmpdir(), 'sdc-cache-')), false);
    try {
      fs.mkdirSync(dir, { recursive: true });
      const probe = path.join(dir, `.probe-${process.pid}-${Math.random().toString(36).slice(2)}`);
      fs.writeFileSync(probe, '');
      fs.rmSync(probe);
      return new DiskCache(dir, true);
    } catch (e) {
      warn(`sdc: cache folder ${dir} is not writable (${(e as NodeJS.ErrnoException).code ?? (e as Error).message}); compiled models are kept for this process only`);
      return new DiskCache(fs.mkdtempSync(path.join(os.tmpdir(), 'sdc-cache-')), false);
    }
  }

  modelPath(key: string): string {
    return path.join(this.dir, `${key}.onnx`);
  }

  private manifestPath(key: string): string {
    return path.join(this.dir, `${key}.json`);
  }

  /** The model path of a complete, intact entry; a damaged entry is removed (and reported) and null returned. */
  lookup(key: string, warn: (msg: string) => void): string | null {
    const mf = this.manifestPath(key);
    if (!fs.existsSync(mf)) return null;
    const model = this.modelPath(key);
    try {
      const m: Manifest = JSON.parse(fs.readFileSync(mf, 'utf8'));
      const data = m.dataBytes === null ? null : this.dataFileOf(model);
      const dataOk = m.dataBytes === null ? true : !!data && fs.existsSync(data) && fs.statSync(data).size === m.dataBytes;
      const fullOk = process.env.SDC_CACHE_VERIFY !== 'full' || !data || (m as Manifest & { dataSha256?: string }).dataSha256 === sha256File(data);
      if (m.key === key && fs.existsSync(model) && sha256File(model) === m.modelSha256 && dataOk && fullOk) return model;
    } catch {
      /* unreadable manifest: treat as damaged */
    }
    warn(`sdc: cache entry ${key} in ${this.dir} is damaged (hash or size mismatch); rebuilding it`);
    this.remove(key);
    return null;
  }

  /**
   * Build an entry: `build(folder)` writes `model.onnx` (and any data files it names) into a private
   * folder inside the cache; the files move into place, the model last, then the manifest seals it.
   * Data files carry a per-build name, so a model always sits beside the data it was written with.
   */
  async store(key: string, describe: unknown, build: (folder: string, dataName: string) => Promise<void>): Promise<string> {
    const work = fs.mkdtempSync(path.join(this.dir, `${key}.tmp-`));
    const dataName = `${key}.${path.basename(work).slice(-6)}.data`;
    try {
      await build(work, dataName);
      const built = path.join(work, 'model.onnx');
      const data = path.join(work, dataName);
      if (fs.existsSync(data)) fs.renameSync(data, path.join(this.dir, dataName));
      fs.renameSync(built, this.modelPath(key));
    } finally {
      fs.rmSync(work, { recursive: true, force: true });
    }
    const model = this.modelPath(key);
    const data = this.dataFileOf(model);
    const hasData = data !== null && fs.existsSync(data);
    const manifest: Manifest & { dataSha256?: string } = {
      key,
      modelSha256: sha256File(model),
      dataBytes: hasData ? fs.statSync(data!).size : null,
      created: new Date().toISOString(),
      describe,
    };
    if (hasData && process.env.SDC_CACHE_VERIFY === 'full') manifest.dataSha256 = sha256File(data!);
    const tmp = `${this.manifestPath(key)}.tmp-${process.pid}-${Math.random().toString(36).slice(2)}`;
    fs.writeFileSync(tmp, JSON.stringify(manifest, null, 2));
    fs.renameSync(tmp, this.manifestPath(key));
    return model;
  }

  /** The one external data file a cached model names (read from its graph; no weight is read). */
  dataFileOf(model: string): string | null {
    if (!fs.existsSync(model)) return null;
    const m = readModel(model, { allowMissingData: true });
    for (const g of m.graph.allGraphs()) for (const v of g.initializers()) if (v.initializer!.data.kind === 'external') return (v.initializer!.data as { file: string }).file;
    return null;
  }

  remove(key: string): void {
    for (const f of fs.readdirSync(this.dir)) if (f.startsWith(`${key}.`)) fs.rmSync(path.join(this.dir, f), { recursive: true, force: true });
  }

  /** Number of sealed entries (for tests and `stats()`). */
  entries(): string[] {
    return fs.existsSync(this.dir) ? fs.readdirSync(this.dir).filter((f) => f.endsWith('.json')).map((f) => f.slice(0, -5)) : [];
  }

  dispose(): void {
    if (!this.persistent) fs.rmSync(this.dir, { recursive: true, force: true });
  }
}
