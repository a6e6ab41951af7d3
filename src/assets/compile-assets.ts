import * as fs from 'fs';
import * as path from 'path';
import { SdcError } from '../ir/errors';
import { weightsBeside } from '../onnx/read';
import { removeUnread } from '../compiler/compile';
import { AssetCompiler, defaultAssetCacheDir } from './asset-compiler';
import { ModelOptions, ModelRule, optionsFor, ResolvedModelOptions, validateModelOptions } from './model-rules';

export interface AssetOptions extends ModelOptions {
  /** Folder searched (recursively) for models. */
  srcDir: string;
  /** Where compiled models go, mirroring their paths under srcDir. */
  outDir: string;
  /** Which files are models (default: *.onnx). */
  include?: RegExp;
  /** Options per model, by pattern over the path relative to srcDir (see ModelRule); the top-level options are the defaults. */
  models?: ModelRule[];
  /** Compiled models by content hash (default node_modules/.cache/sdc). */
  cacheDir?: string;
  log?: (msg: string) => void;
}

export interface AssetResult {
  source: string;
  output: string;
  cached: boolean;
  options: ResolvedModelOptions;
}

/**
 * Compile every model under srcDir into outDir, each with its own options (defaults, then the rules
 * that match it), reusing earlier results by content hash: an unchanged model costs a hash and a link.
 */
export async function compileAssets(o: AssetOptions, compiler?: AssetCompiler): Promise<AssetResult[]> {
  if (!fs.existsSync(o.srcDir) || !fs.statSync(o.srcDir).isDirectory()) throw new SdcError(o.srcDir, 'model folder not found (srcDir)');
  refuseOverlap(o.srcDir, o.outDir);
  const include = o.include ?? /\.onnx$/;
  const log = o.log ?? (() => {});
  const { srcDir: _s, outDir: _o, include: _i, models, cacheDir, log: _l, ...defaults } = o;
  validateModelOptions(defaults, o.srcDir);
  for (const rule of models ?? []) validateModelOptions(rule, `${o.srcDir} (rule ${String(rule.include)})`);
  const assets = compiler ?? new AssetCompiler(cacheDir ?? defaultAssetCacheDir(), log);
  const results: AssetResult[] = [];
  for (const source of walk(o.srcDir).filter((f) => include.test(f))) {
    const rel = path.relative(o.srcDir, source);
    const output = path.join(o.outDir, rel);
    const options = optionsFor(rel, models, defaults);
    const asset = await assets.compile(source, options);
    place(asset.model, asset.data, output);
    results.push({ source, output, cached: asset.cached, options });
    log(`sdc: ${rel} ${asset.cached ? 'unchanged (cache)' : 'compiled'} -> ${path.relative(process.cwd(), output)}`);
  }
  return results;
}

/**
 * Put a cached model (and its data file, under the name the model refers to) at `output`, data first and
 * model last; the weights of the model that was there before, if they are not the new ones, are removed
 * (only the file that model itself read, beside it, and only when no other model in that folder names
 it), so the folder never ships stale weights and never loses weights another model reads.
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
  // the old weights go unless a model beside them still reads them (one the user saved there, say)
  removeUnread(path.dirname(output), new Set(old.filter((f) => !pairs.some(([, to]) => path.resolve(to) === f))));
}

/**
 * Source and output folders must not overlap: with outDir equal to srcDir every source would be replaced
 * by its output (and its weights removed); with one inside the other each build would compile the last
 * build's outputs again, or place outputs among the sources.
 */
function refuseOverlap(srcDir: string, outDir: string): void {
  const s = resolved(srcDir);
  const t = resolved(outDir);
  const within = (a: string, b: string) => a === b || a.startsWith(b.endsWith(path.sep) ? b : b + path.sep);
  if (within(t, s) || within(s, t)) {
    throw new SdcError(outDir, `overlaps the model folder ${srcDir} (srcDir): ${s === t ? 'the outputs would replace the sources' : within(t, s) ? 'outDir is inside srcDir, so each build would compile the last one\'s outputs' : 'srcDir is inside outDir, so outputs would land among the sources'}; choose an outDir outside srcDir`);
  }
}

/** A path with links resolved as far as it exists (the rest appended): an outDir not created yet still compares. */
function resolved(p: string): string {
  const abs = path.resolve(p);
  let head = abs;
  const rest: string[] = [];
  for (;;) {
    try {
      return path.join(fs.realpathSync(head), ...rest);
    } catch {
      const up = path.dirname(head);
      if (up === head) return abs;
      rest.unshift(path.basename(head));
      head = up;
    }
  }
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
