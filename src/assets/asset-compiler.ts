import { createHash } from 'crypto';
import * as fs from 'fs';
import * as path from 'path';
import { inspect, IoInfo } from '../compiler/inspect';
import { SDC_VERSION, sdcBuildHash } from '../compiler/version';
import { SdcError } from '../ir/errors';
import { readModel } from '../onnx/read';
import { DiskCache, hashKey, sourceFingerprint, weightFiles } from '../runtime/cache';
import { ORT_VERSION, webSessionOptions } from '../runtime/session';
import { targetTraits } from '../targets';
import { recommendedSession } from '../targets/session-options';
import { checkCompiled, compileChecked, refuseFailedCheck } from '../verify/check';
import { ResolvedModelOptions } from './model-rules';

/** What an app needs to open a compiled model, without reading it: the plugin's import object is made from this. */
export interface AssetInfo {
  inputs: IoInfo[];
  outputs: IoInfo[];
  mode: string;
  target: string;
  precision: string;
  sdcVersion: string;
  /** onnxruntime-web session options for this model's target (provider, WebGPU layout, optimization level). */
  sessionOptions: Record<string, unknown>;
  /** The options to add when the app keeps inputs and outputs on the GPU and the graph can be captured; null if it cannot. */
  captureOptions: Record<string, unknown> | null;
  /** Why each recommended option was chosen. */
  reasons: string[];
  /**
   * WebGPU adapter features the model cannot run without (`shader-f16` for float16 on WebGPU): an app
   * checks `adapter.features.has(f)` before opening it, and opens an fp32 build where one is missing.
   */
  gpuFeatures: string[];
}

/** What a bundled app gets from importing a model with `?sdc` (types: `sdc-compiler/client`). */
export interface SdcModelAsset extends Omit<AssetInfo, 'sdcVersion'> {
  /** The compiled model's URL. */
  url: string;
  /** For onnxruntime-web's `externalData` session option: the weights' name in the model, and their URL. */
  externalData: { path: string; data: string }[];
  sdcVersion: string;
}

export interface CompiledAsset {
  source: string;
  /** The source's external weight files: a build step watches them with the model. */
  weights: string[];
  key: string;
  /** Found in the cache (true) or compiled by this call. */
  cached: boolean;
  /** The compiled model in the cache. */
  model: string;
  /** Its external weights in the cache, or null when they are inline. */
  data: string | null;
  /** The name the model refers to its weights by (onnxruntime-web's `externalData[].path`). */
  dataLocation: string | null;
  /** First 16 hex digits of the compiled model's SHA-256, for content-hashed asset names. */
  hash: string;
  options: ResolvedModelOptions;
  info: AssetInfo;
}

export interface AssetCompilerStats {
  compiled: number;
  reused: number;
  /** Requests answered by a compile already running for the same key in this process. */
  joined: number;
}

/** The default persistent cache of compiled assets, inside the project's node_modules. */
export function defaultAssetCacheDir(root: string = process.cwd()): string {
  return path.resolve(root, 'node_modules', '.cache', 'sdc');
}

/**
 * Compiles models for a build step through a persistent cache keyed by the source's content, the
 * options, the sdc version and code and the onnxruntime version; a second request for the same key while the first is
 * compiling waits for it instead of compiling again.
 */
export class AssetCompiler {
  readonly cache: DiskCache;
  readonly stats: AssetCompilerStats = { compiled: 0, reused: 0, joined: 0 };
  private readonly running = new Map<string, Promise<CompiledAsset>>();

  constructor(cacheDir: string, private readonly log: (msg: string) => void = () => {}) {
    this.cache = DiskCache.open(cacheDir, log);
  }

  /**
   * `check` is left out: it decides whether an output is kept, not what it is. The entry records the check
   * it passed (`describe.check`); a request for more input sets checks the cached model before using it.
   */
  keyOf(source: string, options: ResolvedModelOptions, weights = weightFiles(source)): string {
    const { check: _check, ...what } = options;
    return hashKey({ fingerprint: sourceFingerprint(source, weights), ...what, sdc: SDC_VERSION, build: sdcBuildHash(), onnxruntime: ORT_VERSION });
  }

  /**
   * `checkShapes`: the dims `check` runs at when `options.shapes` leaves the model dynamic (a pipeline
   * component in mode default); like `check`, not part of what the output is.
   */
  async compile(source: string, options: ResolvedModelOptions, checkShapes: string | null = null): Promise<CompiledAsset> {
    if (!fs.existsSync(source)) throw new SdcError(source, 'model not found');
    if (!fs.statSync(source).isFile()) throw new SdcError(source, 'not a file');
    const weights = weightFiles(source);
    const key = this.keyOf(source, options, weights);
    const pending = this.running.get(key);
    if (pending) {
      this.stats.joined++;
      return pending;
    }
    const job = this.compileKey(source, weights, key, options, checkShapes).finally(() => this.running.delete(key));
    this.running.set(key, job);
    return job;
  }

  private async compileKey(source: string, weights: string[], key: string, options: ResolvedModelOptions, checkShapes: string | null): Promise<CompiledAsset> {
    let model = this.cache.lookup(key, this.log);
    const cached = model !== null;
    if (!model) {
      model = await this.cache.store(key, { source, ...options }, async (folder, dataName) => {
        await compileChecked(source, {
          output: path.join(folder, 'model.onnx'),
          mode: options.mode,
          target: options.target,
          precision: options.precision,
          shapes: options.shapes,
          check: options.check,
          checkShapes,
          dataFileName: dataName,
        });
      });
      this.stats.compiled++;
    } else {
      const recorded = Number((this.cache.describeOf(key) as { check?: unknown } | null)?.check ?? 0) || 0;
      if (options.check > recorded) {
        const c = await checkCompiled(source, model, { check: options.check, shapes: options.shapes, checkShapes, target: options.target, precision: options.precision });
        refuseFailedCheck(source, c, `the cached build (${model}) was not used`);
      }
      this.stats.reused++;
    }
    const data = this.cache.dataFileOf(model);
    return {
      source,
      weights,
      key,
      cached,
      model,
      data,
      dataLocation: data ? path.basename(data) : null,
      hash: createHash('sha256').update(fs.readFileSync(model)).digest('hex').slice(0, 16),
      options,
      info: assetInfo(model, options),
    };
  }
}

/** Reads the compiled graph (not its weights) for the facts an app opens it with. */
export function assetInfo(model: string, options: ResolvedModelOptions): AssetInfo {
  const report = inspect(readModel(model, { allowMissingData: true }));
  let sessionOptions: Record<string, unknown>;
  let captureOptions: Record<string, unknown> | null = null;
  let reasons: string[];
  const traits = targetTraits(options.target);
  // a provider onnxruntime-web can capture gets webSessionOptions: its layout and, where the graph allows, capture
  if (traits.webCapture) {
    const web = webSessionOptions(report.metadata);
    const { enableGraphCapture, preferredOutputLocation, ...plain } = web.options;
    sessionOptions = plain;
    if (enableGraphCapture) captureOptions = { enableGraphCapture, preferredOutputLocation };
    reasons = web.reasons;
  } else {
    const rec = recommendedSession((k) => report.metadata[k], options.target);
    // onnxruntime-web's CPU provider is called wasm; cuda output has no browser provider and keeps its name
    const providers = traits.webProviders ?? rec.options.executionProviders;
    sessionOptions = { executionProviders: providers, graphOptimizationLevel: rec.options.graphOptimizationLevel };
    reasons = rec.reasons;
  }
  return {
    inputs: report.inputs,
    outputs: report.outputs,
    mode: options.mode,
    target: options.target,
    precision: options.precision,
    sdcVersion: SDC_VERSION,
    sessionOptions,
    captureOptions,
    reasons,
    gpuFeatures: traits.fp16Feature && report.metadata['sdc.precision'] === 'fp16' ? [traits.fp16Feature] : [],
  };
}
