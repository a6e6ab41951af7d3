import { createHash } from 'crypto';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { readModel } from '../compiler/onnx/read';

/** Where compiled specializations live: --cache-dir / SDC_CACHE_DIR, else the user's cache folder. */
export function defaultCacheDir(): string {
  return process.env.SDC_CACHE_DIR ?? path.join(process.env.XDG_CACHE_HOME ?? path.join(os.homedir(), '.cache'), 'sdc');
}

/**
 * Identity of a source model: a hash of the model file, plus name, size and modification time of each
 * external data file it uses. (Hashing 3.4 GB of weights on every load would cost seconds; a changed
 * weight file changes its size or time.)
 */
export function sourceFingerprint(modelPath: string): string {
  const h = createHash('sha256');
  h.update(fs.readFileSync(modelPath));
  const model = readModel(modelPath, { allowMissingData: true });
  const files = new Set<string>();
  for (const g of model.graph.allGraphs()) for (const v of g.initializers()) if (v.initializer!.data.kind === 'external') files.add((v.initializer!.data as { file: string }).file);
  for (const f of [...files].sort()) {
    const st = fs.statSync(f, { throwIfNoEntry: false });
    h.update(`\n${path.basename(f)}:${st?.size ?? -1}:${st?.mtimeMs ?? -1}`);
  }
  return h.digest('hex');
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
      const data = `${model}.data`;
      const dataOk = m.dataBytes === null ? true : fs.existsSync(data) && fs.statSync(data).size === m.dataBytes;
      const fullOk = process.env.SDC_CACHE_VERIFY !== 'full' || m.dataBytes === null || (m as Manifest & { dataSha256?: string }).dataSha256 === sha256File(data);
      if (m.key === key && fs.existsSync(model) && sha256File(model) === m.modelSha256 && dataOk && fullOk) return model;
    } catch {
      /* unreadable manifest: treat as damaged */
    }
    warn(`sdc: cache entry ${key} in ${this.dir} is damaged (hash or size mismatch); rebuilding it`);
    this.remove(key);
    return null;
  }

  /** Build an entry with `build(modelPath)` (which writes the model and its data file), then seal it. */
  store(key: string, describe: unknown, build: (modelPath: string) => void): string {
    const model = this.modelPath(key);
    build(model);
    const data = `${model}.data`;
    const hasData = fs.existsSync(data);
    const manifest: Manifest & { dataSha256?: string } = {
      key,
      modelSha256: sha256File(model),
      dataBytes: hasData ? fs.statSync(data).size : null,
      created: new Date().toISOString(),
      describe,
    };
    if (hasData && process.env.SDC_CACHE_VERIFY === 'full') manifest.dataSha256 = sha256File(data);
    const tmp = `${this.manifestPath(key)}.tmp-${process.pid}-${Math.random().toString(36).slice(2)}`;
    fs.writeFileSync(tmp, JSON.stringify(manifest, null, 2));
    fs.renameSync(tmp, this.manifestPath(key));
    return model;
  }

  remove(key: string): void {
    for (const f of [this.manifestPath(key), this.modelPath(key), `${this.modelPath(key)}.data`]) fs.rmSync(f, { force: true });
  }

  /** Number of sealed entries (for tests and `stats()`). */
  entries(): string[] {
    return fs.existsSync(this.dir) ? fs.readdirSync(this.dir).filter((f) => f.endsWith('.json')).map((f) => f.slice(0, -5)) : [];
  }

  dispose(): void {
    if (!this.persistent) fs.rmSync(this.dir, { recursive: true, force: true });
  }
}
