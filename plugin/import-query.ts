import * as fs from 'fs';
import * as path from 'path';
import { ModelOptions, PipelineShape, SdcError, validateModelOptions } from '../src/index';

/** `model.onnx?sdc`, `model.onnx?sdc&mode=reduce-overhead`, `model.onnx?target=webgpu&sdc`. */
const SDC_QUERY = /\?(?:.*&)?sdc(?:=[^&]*)?(?:&|$)/;

export function isSdcImport(id: string): boolean {
  return SDC_QUERY.test(id);
}

export interface SdcImport {
  /** Absolute path of the model. */
  file: string;
  /** The query string without its `?`, as written (kept in the module id so two option sets are two modules). */
  query: string;
  options: ModelOptions;
  /** A pipeline import (`model_index.json?sdc&height=512&width=512`): the images it makes. */
  pipeline: PipelineShape | null;
}

const KEYS = new Set(['sdc', 'mode', 'target', 'precision', 'shape', 'shapes', 'check']);
/** Keys of a pipeline import (its model_index.json): one description of the images every component's dims follow. */
const PIPELINE_KEYS = new Set(['height', 'width', 'batch', 'cfg']);
/** Keys bundlers add to an import's query themselves (Vite's dev server: import, t, v, direct). */
const BUNDLER_KEYS = new Set(['import', 't', 'v', 'direct', 'used', 'url']);

/**
 * Reads an import's query. `shape=sample=1x4x8x8,timestep=1` takes the CLI's `--shape` form (the first
 * `=` separates key and value). An unknown key is an error: a misspelt option must not be ignored.
 */
export function parseSdcImport(id: string): SdcImport {
  const q = id.indexOf('?');
  const file = id.slice(0, q);
  const query = id.slice(q + 1);
  const params = new URLSearchParams(query);
  const options: ModelOptions = {};
  const isPipeline = path.basename(file) === 'model_index.json';
  const pipeline: PipelineShape | null = isPipeline ? {} : null;
  const known = isPipeline ? [...KEYS].filter((k) => !k.startsWith('shape')).concat([...PIPELINE_KEYS]) : [...KEYS];
  for (const [key, value] of params) {
    if (BUNDLER_KEYS.has(key)) continue;
    if (!known.includes(key)) throw new SdcError(file, `unknown option '${key}' in the import query '?${query}' (known: ${known.filter((k) => k !== 'sdc').join(', ')})`);
    if (pipeline && PIPELINE_KEYS.has(key)) {
      if (key === 'cfg') {
        if (value !== 'true' && value !== 'false') throw new SdcError(file, `cfg takes true or false (got '${value}')`);
        pipeline.cfg = value === 'true';
      } else {
        const n = Number(value);
        if (!/^\d+$/.test(value) || !Number.isSafeInteger(n) || n < 1) throw new SdcError(file, `${key} takes a whole number of ${key === 'batch' ? 'images' : 'pixels'} (got '${value}')`);
        pipeline[key as 'height' | 'width' | 'batch'] = n;
      }
      continue;
    }
    if (key === 'mode') options.mode = value as ModelOptions['mode'];
    else if (key === 'target') options.target = value as ModelOptions['target'];
    else if (key === 'precision') options.precision = value as ModelOptions['precision'];
    else if (key === 'shape' || key === 'shapes') options.shapes = value;
    else if (key === 'check') options.check = Number(value);
  }
  validateModelOptions(options, file);
  return { file, query, options, pipeline };
}

/**
 * The absolute model path an import names: relative to the importing file, or (a leading `/` that is
 * not an existing absolute path, as Vite writes them) relative to the project root.
 */
export function resolveSdcImport(id: string, importer: string | undefined, root: string): string {
  const q = id.indexOf('?');
  const spec = id.slice(0, q);
  const query = id.slice(q);
  let file: string;
  if (path.isAbsolute(spec) && fs.existsSync(spec)) file = spec;
  else if (spec.startsWith('/')) file = path.join(root, spec);
  else file = path.resolve(importer ? path.dirname(importer) : root, spec);
  if (!fs.existsSync(file)) {
    throw new SdcError(file, `model not found (imported as '${spec}'${importer ? ` from ${path.relative(root, importer) || importer}` : ''})`);
  }
  return `${file}${query}`;
}
