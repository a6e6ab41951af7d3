import * as fs from 'fs';
import * as path from 'path';
import { CompileOptions, ShapeSpec } from '../compiler/compile';
import { compileChecked } from '../verify/check';
import { weightsBeside } from '../onnx/read';
import { DiskCache, hashKey, sourceFingerprint } from '../runtime/cache';
import { SDC_VERSION } from '../compiler/version';

export interface AssetOptions {
  /** Folder searched (recursively) for models. */
  srcDir: string;
  /** Where compiled models go, mirroring their paths under srcDir. */
  outDir: string;
  /** Which files are models (default: *.onnx). */
  include?: RegExp;
  mode?: CompileOptions['mode'];
  target?: CompileOptions['target'];
  shapes?: ShapeSpec;
  /** fp16: float16 weights and computation with float32 islands (half the download). */
  precision?: CompileOptions['precision'];
  /** Compare each newly compiled model with its source on this many input sets before keeping it (0: no). */
  check?: number;
  /** Compiled models by content hash (default node_modules/.cache/sdc-assets). */
  cacheDir?: string;
  log?: (msg: string) => void;
}

export interface AssetResult {
  source: string;
  output: string;
  cached: boolean;
}

/**
 * Compile every model under srcDir into outDir, reusing earlier results by content hash (model bytes,
 * its data files' size and time, options, sdc version): an unchanged model costs a hash and a link.
 */
export async function compileAssets(o: AssetOptions): Promise<AssetResult[]> {
  const include = o.include ?? /\.onnx$/;
  const cache = DiskCache.open(o.cacheDir ?? path.resolve('node_modules', '.cache', 'sdc-assets'), o.log ?? (() => {}));
  const results: AssetResult[] = [];
  for (const source of walk(o.srcDir).filter((f) => include.test(f))) {
    const rel = path.relative(o.srcDir, source);
    const output = path.join(o.outDir, rel);
    const options = { mode: o.mode ?? 'default', target: o.target ?? 'cpu', shapes: o.shapes ?? null, precision: o.precision ?? 'fp32' };
    const key = hashKey({ fingerprint: sourceFingerprint(source), ...options, sdc: SDC_VERSION });
    let file = cache.lookup(key, o.log ?? (() => {}));
    const cached = file !== null;
    if (!file) {
      file = await cache.store(key, { source: rel, ...options }, async (folder, dataName) => {
        await compileChecked(source, { output: path.join(folder, 'model.onnx'), ...options, dataFileName: dataName, check: o.check ?? 0 });
      });
    }
    place(file, cache.dataFileOf(file), output);
    results.push({ source, output, cached });
    o.log?.(`sdc: ${rel} ${cached ? 'unchanged (cache)' : 'compiled'} -> ${path.relative(process.cwd(), output)}`);
  }
  return results;
}

/**
 * Put a cached model (and its data file, under the name the model refers to) at `output`, data first and
 * model last; the weights of the model that was there before, if they are not the new ones, are removed
 * (only the file that model itself read, beside it), so the folder never ships stale weights.
 */
function place(file: string, data: string | null, output: string): void {
  fs.mkdirSync(path.dirname(output), { recursive: true });
  const old = weightsBeside(output);
  const pairs: [string, string][] = [[file, output]];
  if (data) pairs.unshift([data, path.join(path.dirname(output), path.basename(data))]);
  for (const [from, to] of pairs) {
    fs.rmSync(to, { force: true });
    try {
      fs.linkSync(from, to); // same file system: no copy of gigabytes
    } catch {
      fs.copyFileSync(from, to);
    }
  }
  for (const f of old) if (!pairs.some(([, to]) => path.resolve(to) === f)) fs.rmSync(f, { force: true });
}

function walk(dir: string): string[] {
  const out: string[] = [];
  for (const e of fs.readdirSync(dir, { withFileTypes: true })) {
    const p = path.join(dir, e.name);
    if (e.isDirectory()) out.push(...walk(p));
    else out.push(p);
  }
  return out.sort();
}

/**
 * The same as a bundler plugin (Vite / Rollup shape): models are compiled when the build starts.
 *   // vite.config.ts
 *   import { sdcPlugin } from 'sdc';
 *   export default { plugins: [sdcPlugin({ srcDir: 'models', outDir: 'public/models', target: 'webgpu' })] };
 */
export function sdcPlugin(o: AssetOptions): { name: string; buildStart: () => Promise<void> } {
  return {
    name: 'sdc',
    async buildStart() {
      await compileAssets({ log: (m) => process.stdout.write(`${m}\n`), ...o });
    },
  };
}
