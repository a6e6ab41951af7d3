/**
 * sdc as a build step for Vite, Rollup, webpack and esbuild (one unplugin):
 *
 *   // vite.config.js
 *   import sdc from 'sdc-compiler/plugin';
 *   export default { plugins: [sdc.vite({ models: [{ include: 'unet*.onnx', target: 'webgpu', mode: 'reduce-overhead', shapes: 'sample=1x4x64x64,...' }] })] };
 *
 *   // app code
 *   import unet from './models/unet.onnx?sdc';          // or ?sdc&target=webgpu&mode=reduce-overhead&shape=...
 *   const session = await ort.InferenceSession.create(unet.url, { ...unet.sessionOptions, externalData: unet.externalData });
 *
 *   // a whole pipeline folder (Optimum's layout): every component, with dims from the images it makes
 *   import sd from './sd15/model_index.json?sdc&target=webgpu&mode=reduce-overhead&height=512&width=512';
 *   sd.components.unet.url, sd.components.text_encoder.sessionOptions, ...
 *
 * The doors are thin: compiling, caching and the facts in the import object come from src/assets.
 */
import * as fs from 'fs';
import * as path from 'path';
import { createUnplugin, UnpluginContextMeta, UnpluginOptions } from 'unplugin';
import { AssetCompiler, AssetResult, CompiledAsset, compileAssets, compilePipelineAssets, defaultAssetCacheDir, ModelOptions, ModelRule, optionsFor, SdcError, validateModelOptions } from '../src/index';
import { DevFiles } from './dev-server';
import { isSdcImport, parseSdcImport, resolveSdcImport } from './import-query';
import { moduleCode, pipelineModuleCode } from './module-code';

export type { SdcModelAsset, SdcPipelineAsset } from '../src/index';

export interface SdcPluginOptions extends ModelOptions {
  /** Model paths in rules, `/`-imports and the cache are relative to this (default: Vite's root, webpack's context, else the working folder). */
  root?: string;
  /** Options per model by pattern (path relative to the project root, or file name); the top-level options are the defaults. */
  models?: ModelRule[];
  /** The folder form: every model under `srcDir` compiled into `outDir` when the build starts (compileAssets). */
  folders?: { srcDir: string; outDir: string; include?: RegExp }[];
  /** Persistent cache of compiled models (default `<root>/node_modules/.cache/sdc`). */
  cacheDir?: string;
  /** Folder of the output where compiled models go (default Vite's `build.assetsDir`, else `assets`). */
  assetsDir?: string;
  /** URL prefix of the emitted models, instead of the bundler's own public path. */
  publicPath?: string;
  /** Where messages go (default: the bundler's console); false for none. */
  log?: ((msg: string) => void) | false;
}

/** What one build did, reported at its end (and to `onBuildEnd` for tools and tests). */
export interface SdcBuildStats {
  models: { source: string; options: string; compiled: boolean; file: string | null }[];
  compiled: number;
  fromCache: number;
  cacheDir: string;
}

interface BuildState {
  /** Data files to copy into the output once the bundler has written it: output-relative name → cached file. */
  data: Map<string, string>;
  /** Rollup reference ids of emitted models, so that one model imported twice is emitted once. */
  refs: Map<string, string>;
  models: Map<string, SdcBuildStats['models'][number]>;
}

function factory(userOptions: SdcPluginOptions & { onBuildEnd?: (s: SdcBuildStats) => void } = {}, meta: UnpluginContextMeta): UnpluginOptions {
  const { root: userRoot, models, folders, cacheDir, assetsDir, publicPath, log: logOption, onBuildEnd, ...defaults } = userOptions;
  validateModelOptions(defaults, 'sdc plugin options');
  for (const rule of models ?? []) validateModelOptions(rule, `sdc plugin options (models rule ${String(rule.include)})`);
  const framework = meta.framework ?? 'rollup';
  let root = userRoot ?? process.cwd();
  let log: (msg: string) => void = logOption === false ? () => {} : logOption ?? ((m) => console.log(m));
  let serving = false;
  /** Vite's server.fs rules while serving: a `?sdc` request for a file outside them is refused. */
  let serveRules: { strict: boolean; allow: string[] } | null = null;
  let devFiles: DevFiles | null = null;
  let assets = assetsDir ?? 'assets';
  let outputDir: string | null = null;
  let esbuildFormat: string | undefined;
  let webpackCompiler: { outputPath: string } | null = null;
  let esbuildPublicPath: string | undefined;
  let compiler: AssetCompiler | null = null;
  let build: BuildState = fresh();

  function fresh(): BuildState {
    return { data: new Map(), refs: new Map(), models: new Map() };
  }

  function assetCompiler(): AssetCompiler {
    compiler ??= new AssetCompiler(cacheDir ? path.resolve(root, cacheDir) : defaultAssetCacheDir(root), log);
    return compiler;
  }

  function urlExpr(fileName: string, ref: string | null): string {
    if (publicPath !== undefined) return JSON.stringify(publicPath.replace(/\/?$/, '/') + fileName);
    if (ref) return `import.meta.ROLLUP_FILE_URL_${ref}`;
    if (framework === 'webpack' || framework === 'rspack') return `__webpack_public_path__ + ${JSON.stringify(fileName)}`;
    if (framework === 'esbuild' && esbuildPublicPath) return JSON.stringify(esbuildPublicPath.replace(/\/?$/, '/') + fileName);
    if (framework === 'esbuild' && esbuildFormat === 'esm') return `new URL(${JSON.stringify(`./${fileName}`)}, import.meta.url).href`;
    return JSON.stringify(`./${fileName}`);
  }

  function record(asset: CompiledAsset, fileName: string | null): void {
    const label = `${path.relative(root, asset.source)} (${asset.options.mode}, ${asset.options.target}, ${asset.options.precision}${asset.options.shapes ? `, ${asset.options.shapes}` : ''})`;
    build.models.set(asset.key, { source: asset.source, options: label, compiled: !asset.cached, file: fileName });
    log(`sdc: ${label} ${asset.cached ? 'unchanged (cache)' : 'compiled'}${fileName ? ` -> ${fileName}` : ''}`);
  }

  function copyData(dir: string): void {
    for (const [name, from] of build.data) {
      const to = path.join(dir, name);
      fs.mkdirSync(path.dirname(to), { recursive: true });
      fs.rmSync(to, { force: true });
      try {
        fs.linkSync(from, to); // same file system: no copy of gigabytes
      } catch {
        fs.copyFileSync(from, to);
      }
    }
  }


  /**
   * Serve (dev) or emit (build) one compiled model and its weights; the URL expression and weight names
   * its import object needs. A component folder's `model.onnx` is named after its folder.
   */
  function emit(ctx: { emitFile(f: { type: 'asset'; fileName: string; source: Buffer }): unknown; addWatchFile(f: string): void }, asset: CompiledAsset, source: string) {
    // new weights under an unchanged graph (a fine-tune) are a change to the model too
    for (const w of asset.weights) ctx.addWatchFile(w);
    const stem = path.basename(source, '.onnx');
    const base = stem === 'model' ? path.basename(path.dirname(source)) : stem;
    const modelName = `${base}.${asset.hash}.onnx`;
    const dataName = asset.data ? `${base}.${asset.hash}.data` : null;
    if (serving) {
      devFiles ??= new DevFiles('/');
      const url = devFiles.add(asset.hash, modelName, asset.model);
      if (asset.data && dataName) devFiles.add(asset.hash, dataName, asset.data);
      record(asset, null);
      return { urlExpr: JSON.stringify(url), dataFile: dataName, dataLocation: asset.dataLocation, info: asset.info };
    }
    const fileName = `${assets}/${modelName}`;
    let ref = build.refs.get(fileName) ?? null;
    if (!build.refs.has(fileName)) {
      // the graph file is small next to its weights (which are copied beside it after the bundler writes)
      const emitted = ctx.emitFile({ type: 'asset', fileName, source: fs.readFileSync(asset.model) });
      ref = typeof emitted === 'string' && (framework === 'rollup' || framework === 'vite' || framework === 'rolldown') ? emitted : null;
      build.refs.set(fileName, ref ?? '');
    }
    if (asset.data && dataName) build.data.set(`${assets}/${dataName}`, asset.data);
    record(asset, fileName);
    return { urlExpr: urlExpr(fileName, ref || null), dataFile: dataName, dataLocation: asset.dataLocation, info: asset.info };
  }

  /** A `?sdc` import compiled (or taken from the cache) and emitted: its module code. */
  async function loadImport(ctx: { emitFile(f: { type: 'asset'; fileName: string; source: Buffer }): unknown; addWatchFile(f: string): void }, id: string): Promise<string> {
    const imp = parseSdcImport(id);
    ctx.addWatchFile(imp.file);
    if (imp.pipeline) {
      const p = await compilePipelineAssets(imp.file, imp.pipeline, (file) => optionsFor(path.relative(root, file), models, defaults, imp.options), assetCompiler());
      const parts = [];
      for (const c of p.components) {
        ctx.addWatchFile(c.asset.source);
        parts.push({ name: c.name, role: c.role, ...emit(ctx, c.asset, c.asset.source) });
      }
      return pipelineModuleCode({ className: p.className, shape: p.shape }, parts);
    }
    const rel = path.relative(root, imp.file);
    const asset = await assetCompiler().compile(imp.file, optionsFor(rel, models, defaults, imp.options));
    const e = emit(ctx, asset, imp.file);
    return moduleCode(e.urlExpr, e.dataFile, e.dataLocation, e.info);
  }

  return {
    name: 'sdc',
    enforce: 'pre',

    async buildStart() {
      build = fresh();
      for (const f of folders ?? []) {
        const results: AssetResult[] = await compileAssets({ ...defaults, models, srcDir: path.resolve(root, f.srcDir), outDir: path.resolve(root, f.outDir), include: f.include, log }, assetCompiler());
        for (const r of results) build.models.set(`${r.source}\0${JSON.stringify(r.options)}`, { source: r.source, options: JSON.stringify(r.options), compiled: !r.cached, file: r.output });
      }
    },

    resolveId(id, importer) {
      if (!isSdcImport(id)) return null;
      try {
        const resolved = resolveSdcImport(id, importer, root);
        if (serving && serveRules) refuseOutsideAllow(resolved.slice(0, resolved.indexOf('?')), serveRules);
        return resolved;
      } catch (e) {
        throw e instanceof SdcError ? oneLineError(e, id, root) : e;
      }
    },

    loadInclude(id) {
      return isSdcImport(id);
    },

    async load(id) {
      if (!isSdcImport(id)) return null;
      try {
        return await loadImport(this, id);
      } catch (e) {
        throw e instanceof SdcError ? oneLineError(e, id, root) : e;
      }
    },

    buildEnd() {
      const list = [...build.models.values()];
      const stats: SdcBuildStats = {
        models: list,
        compiled: list.filter((m) => m.compiled).length,
        fromCache: list.filter((m) => !m.compiled).length,
        cacheDir: compiler?.cache.dir ?? (cacheDir ? path.resolve(root, cacheDir) : defaultAssetCacheDir(root)),
      };
      if (list.length) log(`sdc: ${list.length} model${list.length === 1 ? '' : 's'}: ${stats.compiled} compiled, ${stats.fromCache} from cache (${path.relative(root, stats.cacheDir) || stats.cacheDir})`);
      onBuildEnd?.(stats);
    },

    writeBundle(...args: unknown[]) {
      const opts = args[0] as { dir?: string; file?: string } | undefined;
      const dir = opts?.dir ?? (opts?.file ? path.dirname(opts.file) : webpackCompiler?.outputPath || outputDir);
      if (build.data.size && !dir) throw new Error('sdc: cannot tell where the bundler wrote its output, so the models\' weights were not copied; set the output folder (outdir / output.path)');
      if (dir) copyData(dir);
    },

    vite: {
      configResolved(config: { root: string; base: string; command: string; build: { assetsDir: string; outDir: string }; logger: { info(m: string): void }; server?: { fs?: { strict?: boolean; allow?: string[] } } }) {
        root = userRoot ?? config.root;
        serving = config.command === 'serve';
        // Vite resolves fs.allow (default: the workspace root); without it, only the root is allowed
        serveRules = { strict: config.server?.fs?.strict ?? true, allow: config.server?.fs?.allow ?? [config.root] };
        assets = assetsDir ?? config.build.assetsDir ?? 'assets';
        outputDir = path.resolve(config.root, config.build.outDir);
        if (logOption === undefined) log = (m) => config.logger.info(m);
        devFiles = new DevFiles(config.base.endsWith('/') ? config.base : `${config.base}/`);
      },
      configureServer(server: { middlewares: { use(fn: unknown): void } }) {
        server.middlewares.use((req: never, res: never, next: () => void) => (devFiles ? devFiles.middleware()(req, res, next) : next()));
      },
    },

    webpack(compiler: { outputPath: string; context: string }) {
      root = userRoot ?? compiler.context ?? root;
      // webpack sets outputPath after applying plugins: it is read when the bundle is written
      webpackCompiler = compiler;
    },

    esbuild: {
      config(options: { outdir?: string; outfile?: string; format?: string; publicPath?: string; absWorkingDir?: string }) {
        root = userRoot ?? options.absWorkingDir ?? root;
        outputDir = options.outdir ? path.resolve(root, options.outdir) : options.outfile ? path.dirname(path.resolve(root, options.outfile)) : null;
        esbuildFormat = options.format;
        esbuildPublicPath = options.publicPath;
      },
    },
  };
}

/**
 * Vite's dev server serves only files under `server.fs.allow` (when `server.fs.strict`, its default): a
 * `?sdc` import is compiled and served only where Vite would serve the file itself, links resolved (a
 * request for `/../elsewhere/x.onnx?import&sdc` or an absolute path outside is refused, as Vite answers 403).
 */
function refuseOutsideAllow(file: string, rules: { strict: boolean; allow: string[] }): void {
  if (!rules.strict) return;
  const real = (p: string) => {
    try {
      return fs.realpathSync(p);
    } catch {
      return path.resolve(p);
    }
  };
  const f = real(file);
  if (rules.allow.some((dir) => { const d = real(dir); return f === d || f.startsWith(d.endsWith(path.sep) ? d : d + path.sep); })) return;
  throw new SdcError(file, `is outside Vite's server.fs.allow (${rules.allow.join(', ')}): sdc compiles and serves only files the dev server may serve (add its folder to server.fs.allow)`);
}

/** The options each bundler's entry takes. */
export type SdcPluginEntryOptions = SdcPluginOptions & { onBuildEnd?: (s: SdcBuildStats) => void };

/*
 * The entries' types are written here, structurally, rather than taken from unplugin: its types import
 * every bundler's (rollup, webpack, esbuild, rspack, ...), so an app with one bundler installed could not
 * compile them without skipLibCheck. Each shape is what its bundler's plugin list accepts.
 */
/** A Vite or Rollup plugin: a name and hooks (Vite's and Rollup's own Plugin types accept it). */
export type SdcRollupPlugin = { name: string } & Record<string, any>;
/** A webpack plugin: `apply(compiler)`. */
export type SdcWebpackPlugin = { apply(compiler: any): void };
/** An esbuild plugin: a name and `setup(build)`. */
export type SdcEsbuildPlugin = { name: string; setup(build: any): void | Promise<void> };

export interface SdcPlugins {
  vite(options?: SdcPluginEntryOptions): SdcRollupPlugin;
  rollup(options?: SdcPluginEntryOptions): SdcRollupPlugin;
  webpack(options?: SdcPluginEntryOptions): SdcWebpackPlugin;
  esbuild(options?: SdcPluginEntryOptions): SdcEsbuildPlugin;
}

const plugins = createUnplugin(factory);
export const sdc: SdcPlugins = {
  vite: plugins.vite as SdcPlugins['vite'],
  rollup: plugins.rollup as SdcPlugins['rollup'],
  webpack: plugins.webpack as unknown as SdcPlugins['webpack'],
  esbuild: plugins.esbuild as unknown as SdcPlugins['esbuild'],
};
export const vite = sdc.vite;
export const rollup = sdc.rollup;
export const webpack = sdc.webpack;
export const esbuild = sdc.esbuild;
export default sdc;

/**
 * A user's mistake in an import (a shape the model cannot take, an unknown query key) as the one line the
 * CLI would print, naming the import: bundlers print an error's stack, which here would be a trace through
 * sdc and the bundler, so the stack is that line too. Still an SdcError, for code that tells them apart.
 */
function oneLineError(e: SdcError, id: string, root: string): SdcError {
  const q = id.indexOf('?');
  const rel = path.relative(root, q < 0 ? id : id.slice(0, q));
  const spelled = `${rel.startsWith('..') ? path.basename(id.slice(0, q < 0 ? undefined : q)) : rel}${q < 0 ? '' : id.slice(q)}`;
  const err = new SdcError(e.file, `${e.problem} (import '${spelled}')`, e.exitCode);
  err.stack = `sdc: ${err.message}`;
  return err;
}
