import * as fs from 'fs';
import * as path from 'path';
import { SdcError } from '../ir/errors';
import { Model } from '../ir/model';
import { readModel } from '../onnx/read';

/**
 * What a component does in a Stable Diffusion pipeline. The folder name proposes a role; the model's
 * inputs and outputs confirm it (an exporter may put anything in a folder called `unet/`).
 */
export type Role = 'text-encoder' | 'unet' | 'controlnet' | 'vae-encoder' | 'vae-decoder' | 'other';

export interface Component {
  /** The folder name inside the pipeline (`text_encoder`, `unet`, ...). */
  name: string;
  /** The model file, absolute. */
  modelFile: string;
  role: Role;
  /** Why the role is 'other' (the folder is unknown, or its inputs and outputs contradict its name). */
  unrecognized?: string;
  /** The files this model reads: the model and its external data, relative to the pipeline folder. */
  files: string[];
}

export interface Pipeline {
  dir: string;
  /** `model_index.json`'s `_class_name` (e.g. StableDiffusionXLPipeline), when there is one. */
  className: string | null;
  components: Component[];
  /** Every other file (configs, tokenizer, scheduler, ...), relative to `dir`: copied byte for byte. */
  otherFiles: string[];
}

/** The model file Optimum writes in each component folder. */
export const MODEL_FILE = 'model.onnx';
/** The external-data name Optimum (and onnxruntime's own SD loaders) expect beside `model.onnx`. */
export const DATA_FILE = 'model.onnx_data';

/** Folder names Optimum's exporter uses, and the role each should have. */
const ROLE_BY_FOLDER: Record<string, Role> = {
  text_encoder: 'text-encoder',
  text_encoder_2: 'text-encoder',
  text_encoder_3: 'text-encoder',
  unet: 'unet',
  controlnet: 'controlnet',
  vae_encoder: 'vae-encoder',
  vae_decoder: 'vae-decoder',
};

/** Whether `dir` looks like a pipeline folder (a model_index.json, or some `<name>/model.onnx`). */
export function isPipelineDir(dir: string): boolean {
  if (!isDir(dir)) return false;
  if (fs.existsSync(path.join(dir, 'model_index.json'))) return true;
  return fs.readdirSync(dir, { withFileTypes: true }).some((e) => e.isDirectory() && fs.existsSync(path.join(dir, e.name, MODEL_FILE)));
}

function isDir(p: string): boolean {
  try {
    return fs.statSync(p).isDirectory();
  } catch {
    return false;
  }
}

/**
 * Read a pipeline folder in Optimum's layout: one component per `<name>/model.onnx`, each given a role
 * from its folder name and confirmed by its inputs and outputs. Reads graphs only, never weights.
 */
export function readPipeline(dir: string): Pipeline {
  const abs = path.resolve(dir);
  if (!isDir(abs)) throw new SdcError(dir, 'is not a folder');
  let className: string | null = null;
  const index = path.join(abs, 'model_index.json');
  if (fs.existsSync(index)) {
    let parsed: unknown;
    try {
      parsed = JSON.parse(fs.readFileSync(index, 'utf8'));
    } catch (e) {
      throw new SdcError(index, `is not valid JSON (${(e as Error).message})`);
    }
    if (!parsed || typeof parsed !== 'object' || Array.isArray(parsed)) throw new SdcError(index, 'is not a JSON object');
    const c = (parsed as Record<string, unknown>)._class_name;
    className = typeof c === 'string' ? c : null;
    refuseMissingModels(abs, index, parsed as Record<string, unknown>);
  }
  const components: Component[] = [];
  for (const e of fs.readdirSync(abs, { withFileTypes: true }).sort((a, b) => a.name.localeCompare(b.name))) {
    const modelFile = path.join(abs, e.name, MODEL_FILE);
    if (!e.isDirectory() || !fs.existsSync(modelFile)) continue;
    let model: Model;
    try {
      model = readModel(modelFile, { allowMissingData: true });
    } catch (err) {
      if (err instanceof SdcError) throw err;
      throw new SdcError(modelFile, `cannot be read as an ONNX model (${(err as Error).message})`);
    }
    const files = [modelFile, ...model.externalFiles()].map((f) => path.relative(abs, f));
    const outside = files.find((f) => f.startsWith('..') || path.isAbsolute(f));
    if (outside) throw new SdcError(modelFile, `reads weights outside the pipeline folder (${outside}); a pipeline's components keep their files inside it`);
    components.push({ name: e.name, modelFile, files, ...classify(e.name, model) });
  }
  if (!components.length) {
    throw new SdcError(dir, `is a folder without a pipeline in it: no <component>/${MODEL_FILE} (the layout Hugging Face Optimum exports: text_encoder/, unet/, vae_decoder/, ...)`);
  }
  const taken = new Set(components.flatMap((c) => c.files));
  const otherFiles = listFiles(abs).filter((f) => !taken.has(f));
  return { dir: abs, className, components, otherFiles };
}

/**
 * model_index.json entries that are networks, and the folders Optimum exports each to (`vae` is split in
 * two; the encoder is optional: txt2img exports may leave it out).
 */
const NETWORK_FOLDERS: Record<string, string[]> = {
  text_encoder: ['text_encoder'], text_encoder_2: ['text_encoder_2'], text_encoder_3: ['text_encoder_3'],
  unet: ['unet'], transformer: ['transformer'], controlnet: ['controlnet'], vae: ['vae_decoder'],
};

/**
 * A network model_index.json names (a [library, class] pair, not null) whose exported model is missing
 * would compile into a pipeline that cannot run: refused, naming the file that is missing.
 */
function refuseMissingModels(dir: string, index: string, entries: Record<string, unknown>): void {
  for (const [key, folders] of Object.entries(NETWORK_FOLDERS)) {
    const v = entries[key];
    if (!Array.isArray(v) || v.length < 2 || v[1] === null) continue;
    for (const f of folders) {
      if (!fs.existsSync(path.join(dir, f, MODEL_FILE))) throw new SdcError(index, `names '${key}' (${String(v[1])}), but ${path.join(f, MODEL_FILE)} is missing from ${dir}: a pipeline without it cannot run`);
    }
  }
}

/** Every regular file under `root` (following no folder links), relative, sorted; sdc's own leftovers skipped. */
function listFiles(root: string): string[] {
  const out: string[] = [];
  const walk = (rel: string) => {
    for (const e of fs.readdirSync(path.join(root, rel), { withFileTypes: true })) {
      const r = rel ? path.join(rel, e.name) : e.name;
      if (e.name.includes('.sdc-stage-')) continue;
      if (e.isDirectory()) walk(r);
      else if (e.isFile() || (e.isSymbolicLink() && fs.statSync(path.join(root, r)).isFile())) out.push(r);
    }
  };
  walk('');
  return out.sort();
}

/** The role the folder name proposes, confirmed by the model's inputs and outputs. */
function classify(folder: string, model: Model): { role: Role; unrecognized?: string } {
  const inputs = new Set(model.graph.inputs.filter((v) => !v.initializer).map((v) => v.name));
  const outputs = new Set(model.graph.outputs.map((v) => v.name));
  const byIo = roleByIo(inputs);
  const proposed = ROLE_BY_FOLDER[folder];
  if (!proposed) {
    return { role: 'other', unrecognized: `sdc does not know a '${folder}' component${byIo ? ` (its inputs look like a ${byIo})` : ''}; compiled with the default pipeline for its target` };
  }
  if (byIo !== proposed) {
    const io = `inputs ${[...inputs].join(', ') || 'none'}; outputs ${[...outputs].join(', ')}`;
    return { role: 'other', unrecognized: `'${folder}' should be a ${proposed}, but its ${io} are not one's; compiled with the default pipeline for its target` };
  }
  return { role: proposed };
}

/** The role a model's input and output names say (Optimum's names, and ControlNet's of the unmerged Optimum PR). */
function roleByIo(inputs: Set<string>): Role | null {
  if (inputs.has('input_ids')) return 'text-encoder';
  if (inputs.has('latent_sample')) return 'vae-decoder';
  if (inputs.has('controlnet_cond')) return 'controlnet';
  if (inputs.has('sample') && inputs.has('timestep')) return 'unet';
  if (inputs.has('sample') && inputs.size === 1) return 'vae-encoder';
  return null;
}

/** A JSON object file (a component's config.json, the scheduler's), or null when absent or not an object. */
export function readJsonObject(file: string): Record<string, unknown> | null {
  try {
    const v = JSON.parse(fs.readFileSync(file, 'utf8'));
    return v && typeof v === 'object' && !Array.isArray(v) ? v : null;
  } catch {
    return null;
  }
}
