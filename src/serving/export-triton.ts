import * as fs from 'fs';
import * as path from 'path';
import { isDeepStrictEqual } from 'util';
import * as ort from 'onnxruntime-node';
import { SdcError } from '../ir/errors';
import { Model } from '../ir/model';
import { readModel } from '../onnx/read';
import { realPath } from '../onnx/write';
import { SDC_VERSION } from '../compiler/version';
import { OptimizationLevel, recommendedSession } from '../targets/session-options';
import { readPipeline } from '../pipeline/layout';
import { commitFolder, firstForeignFile, inside, makeStage, resolvedTarget } from '../pipeline/stage-folder';
import { readText, writeText } from './pbtxt';
import { OutputShapes, ServingOptions, tritonConfig, TritonModel } from './triton-config';
import { KSERVE_FILE, KSERVE_HEADER, kserveManifest } from './kserve';

export interface TritonExportOptions {
  /** The repository folder to write (replaced whole when it holds an earlier export). */
  output: string;
  /** One model: its name in the repository; a pipeline: the prefix of its components' names. */
  name?: string;
  /** Instances per GPU (cuda models) or in all (cpu models); default 1. */
  instances?: number;
  /** GPUs to place the instances of cuda models on (default: every GPU). */
  gpus?: number[];
  /** max_batch_size of models whose batch dim is dynamic (default 4, onnxruntime backend's own default); 0: no batching. */
  maxBatch?: number;
  /** Also write a KServe InferenceService manifest (inferenceservice.yaml) at the repository's root. */
  kserve?: boolean;
}

export interface ExportedModel {
  /** The model's folder name and `name` in its config. */
  name: string;
  source: string;
  /** The pipeline component it came from. */
  component: string | null;
  target: string;
  maxBatchSize: number;
  warmup: boolean;
  /** Files under REPO/<name>/1/ (the model and its weights). */
  files: string[];
  notes: string[];
}

export interface TritonExportReport {
  output: string;
  models: ExportedModel[];
  /** The KServe manifest written, relative to the repository. */
  kserve: string | null;
}

/** The first line of every config.pbtxt sdc writes: how a later export knows the folder is its own. */
const CONFIG_HEADER = '# Written by sdc export triton';
/** The version folder: one version per model (several shape specializations are separately named models). */
const VERSION = '1';
const MODEL_FILE = 'model.onnx';
const DEFAULT_MAX_BATCH = 4;

interface Source {
  name: string;
  file: string;
  component: string | null;
  model: Model;
}

/**
 * Write a Triton Inference Server model repository from sdc's compiled output: one or more compiled
 * models, or one compiled pipeline folder (a model per component). Each model gets REPO/<name>/config.pbtxt
 * and REPO/<name>/1/model.onnx with its weights beside it. The repository is staged beside REPO, every
 * config read back and every model re-read before it is moved into place whole.
 */
export async function exportTriton(inputs: string[], opts: TritonExportOptions): Promise<TritonExportReport> {
  const serving = servingOptions(opts);
  const sources = readSources(inputs, opts.name);
  const out = path.resolve(opts.output);
  const given = opts.output;
  refuseRepository(sources, inputs, out, given);

  const built: { s: Source; t: TritonModel }[] = [];
  for (const s of sources) {
    const level = recommendedSession((k) => s.model.getMetadata(k)).options.graphOptimizationLevel;
    built.push({ s, t: tritonConfig(s.model, s.name, serving, s.file, await outputShapes(s.file, level)) });
  }
  if (opts.maxBatch !== undefined && opts.maxBatch > 0 && built.every((b) => b.t.unbatchable)) {
    throw new SdcError('', `--max-batch ${opts.maxBatch}: no model here has a dynamic batch dim (${built[0].s.name}: ${built[0].t.unbatchable})`);
  }

  const stage = makeStage(out);
  try {
    const models = built.map(({ s, t }) => writeModel(stage, s, t));
    let kserve: string | null = null;
    if (opts.kserve) {
      const gpu = built.some((b) => b.t.gpu);
      const name = opts.name ?? (sources[0].component ? path.basename(path.resolve(inputs[0])) : sources.length === 1 ? sources[0].name : 'sdc-models');
      fs.writeFileSync(path.join(stage, KSERVE_FILE), kserveManifest(name, gpu ? serving.gpus?.length ?? 1 : 0));
      kserve = KSERVE_FILE;
    }
    commitFolder(stage, out, given, () => refuseRepository(sources, inputs, out, given));
    return { output: out, models, kserve };
  } catch (e) {
    fs.rmSync(stage, { recursive: true, force: true });
    throw e;
  }
}

/**
 * The output shapes onnxruntime resolves when it opens the model on the CPU (what Triton's backend
 * compares the config with), or null when it cannot open it here (a cuda model's GPU-only ops): the
 * config then has sdc's own shape analysis, and a dim neither knows stays -1.
 */
async function outputShapes(file: string, level: OptimizationLevel): Promise<OutputShapes | null> {
  let session: ort.InferenceSession;
  try {
    // at the level the backend will open it with: its constant folding resolves dims the declared shapes leave open
    session = await ort.InferenceSession.create(file, { graphOptimizationLevel: level, logSeverityLevel: 4 });
  } catch {
    return null;
  }
  const shapes: OutputShapes = new Map();
  for (const m of session.outputMetadata) if (m.isTensor) shapes.set(m.name, m.shape);
  await session.release();
  return shapes;
}

function servingOptions(opts: TritonExportOptions): ServingOptions {
  const instances = opts.instances ?? 1;
  if (!Number.isInteger(instances) || instances < 1 || instances > 2 ** 31 - 1) throw new SdcError('', `--instances takes a number of model instances, at least 1 (got ${opts.instances})`);
  const maxBatch = opts.maxBatch ?? DEFAULT_MAX_BATCH;
  if (!Number.isInteger(maxBatch) || maxBatch < 0 || maxBatch > 2 ** 31 - 1) throw new SdcError('', `--max-batch takes a batch size, 0 (no batching) or more (got ${opts.maxBatch})`);
  const gpus = opts.gpus ?? null;
  if (gpus) {
    const bad = gpus.find((g) => !Number.isInteger(g) || g < 0 || g > 2 ** 31 - 1);
    if (!gpus.length || bad !== undefined) throw new SdcError('', `--gpus takes GPU indices, e.g. 0,1 (got ${bad ?? 'none'})`);
    if (new Set(gpus).size !== gpus.length) throw new SdcError('', `--gpus names a GPU twice (${gpus.join(',')})`);
    // a pod sees the GPUs it requests as 0..N-1: a config naming GPU 3 in a 1-GPU pod fails to load in Triton
    const outside = gpus.find((g) => g >= gpus.length);
    if (opts.kserve && outside !== undefined) throw new SdcError('', `--kserve with --gpus ${gpus.join(',')}: a KServe pod that requests ${gpus.length} GPU${gpus.length > 1 ? 's' : ''} sees ${gpus.length > 1 ? `them as 0..${gpus.length - 1}` : 'it as 0'}, so GPU ${outside} is not there; give --gpus ${gpus.map((_, i) => i).join(',')}`);
  }
  return { instances, gpus, maxBatch };
}

const NAME = /^[A-Za-z0-9_][A-Za-z0-9_.-]*$/;

/** A model name from a file name: the extension dropped, anything Triton's folder names should not hold replaced. */
function nameOf(file: string): string {
  return path.basename(file).replace(/\.onnx$/i, '').replace(/[^A-Za-z0-9_.-]/g, '_').replace(/^[.-]+/, '') || 'model';
}

function readSources(inputs: string[], name: string | undefined): Source[] {
  if (!inputs.length) throw new SdcError('', 'export triton needs a compiled model or a compiled pipeline folder');
  if (name !== undefined && !NAME.test(name)) throw new SdcError('', `--name '${name}': a model name is letters, digits, '_', '.' and '-', not starting with '.' or '-'`);
  const folders = inputs.filter((i) => isDir(i));
  if (folders.length && inputs.length > 1) throw new SdcError(folders[0], 'is a folder: a pipeline folder is exported alone (one repository per pipeline)');
  if (inputs.length > 1 && name !== undefined) throw new SdcError('', '--name names one model; with several inputs each is named after its file');
  let sources: Source[];
  if (folders.length) {
    const p = readPipeline(folders[0]);
    sources = p.components.map((c) => ({ name: name ? `${name}_${c.name}` : c.name, file: c.modelFile, component: c.name, model: readCompiled(c.modelFile, `${folders[0]} is not a compiled pipeline: compile it with sdc compile ${folders[0]} -o OUTDIR and export OUTDIR`) }));
  } else {
    sources = inputs.map((f) => ({ name: name ?? nameOf(f), file: path.resolve(f), component: null, model: readCompiled(f, `compile it first (sdc compile ${f} -o OUT) and export OUT`) }));
  }
  const seen = new Map<string, string>();
  for (const s of sources) {
    const other = seen.get(s.name);
    if (other) throw new SdcError(s.file, `would be model '${s.name}', like ${other}; rename one of the files (model names come from file names)`);
    seen.set(s.name, s.file);
  }
  return sources;
}

/** A model sdc compiled, with its weights present (a repository without its weights is not servable). */
function readCompiled(file: string, hint: string): Model {
  const model = readModel(file);
  if (model.getMetadata('sdc.version') === undefined) throw new SdcError(file, `is not an sdc output (no sdc.version in its metadata); ${hint}`);
  return model;
}

function isDir(p: string): boolean {
  try {
    return fs.statSync(p).isDirectory();
  } catch {
    return false;
  }
}

/**
 * REPO must not overlap what it is made from (replacing it would delete the input, or the input folder
 * would hold its own export), must be a folder, and when it exists hold only an earlier export of sdc's.
 */
function refuseRepository(sources: Source[], inputs: string[], out: string, given: string): void {
  const exists = fs.existsSync(out);
  if (exists && !fs.lstatSync(out).isDirectory()) throw new SdcError(given, 'exists and is not a folder; -o names the model repository folder to write');
  const target = resolvedTarget(out);
  for (const i of inputs.filter(isDir)) {
    const dir = realPath(path.resolve(i));
    if (inside(target, dir) || inside(dir, target)) throw new SdcError(given, `overlaps the pipeline folder ${i}; write the repository to a folder outside it`);
  }
  for (const s of sources) {
    for (const f of [s.file, ...s.model.externalFiles()]) {
      if (inside(realPath(f), target)) throw new SdcError(given, `holds ${f}, which the repository is made from; write the repository to another folder`);
    }
  }
  if (!exists) return;
  const ours = sdcRepositoryFiles(out);
  const foreign = firstForeignFile(out, (r) => ours.has(r));
  if (foreign) throw new SdcError(given, `exists and holds ${foreign}, which sdc did not write; choose a new or empty folder (sdc replaces only a repository it exported)`);
}

/** The files of an earlier export at `out`: configs with sdc's header, stamped models and their weights, the manifest. */
function sdcRepositoryFiles(out: string): Set<string> {
  const ours = new Set<string>();
  const startsWith = (file: string, header: string) => {
    try {
      const fd = fs.openSync(file, 'r');
      try {
        const buf = Buffer.alloc(header.length);
        return fs.readSync(fd, buf, 0, buf.length, 0) === buf.length && buf.toString('utf8') === header;
      } finally {
        fs.closeSync(fd);
      }
    } catch {
      return false;
    }
  };
  if (startsWith(path.join(out, KSERVE_FILE), KSERVE_HEADER)) ours.add(KSERVE_FILE);
  for (const m of fs.readdirSync(out, { withFileTypes: true })) {
    if (!m.isDirectory()) continue;
    if (startsWith(path.join(out, m.name, 'config.pbtxt'), CONFIG_HEADER)) ours.add(path.join(m.name, 'config.pbtxt'));
    for (const v of fs.readdirSync(path.join(out, m.name), { withFileTypes: true })) {
      const model = path.join(out, m.name, v.name, MODEL_FILE);
      if (!v.isDirectory() || !/^[0-9]+$/.test(v.name) || !fs.existsSync(model)) continue;
      try {
        const read = readModel(model, { allowMissingData: true });
        if (read.getMetadata('sdc.version') === undefined) continue;
        ours.add(path.relative(out, model));
        for (const f of read.externalFiles()) ours.add(path.relative(out, f));
      } catch {
        // not a model sdc can read: not ours
      }
    }
  }
  return ours;
}

/** REPO/<name>/config.pbtxt and REPO/<name>/1/ (model and weights), checked after writing. */
function writeModel(stage: string, s: Source, t: TritonModel): ExportedModel {
  const dir = path.join(stage, s.name, VERSION);
  fs.mkdirSync(dir, { recursive: true });
  const srcDir = path.dirname(s.file);
  const files = [MODEL_FILE];
  fs.copyFileSync(s.file, path.join(dir, MODEL_FILE), fs.constants.COPYFILE_FICLONE);
  for (const f of s.model.externalFiles()) {
    const rel = path.relative(srcDir, f);
    if (rel === MODEL_FILE) throw new SdcError(s.file, `reads its weights from a file named ${MODEL_FILE}, the name Triton loads the model from; recompile it to another output name`);
    fs.mkdirSync(path.dirname(path.join(dir, rel)), { recursive: true });
    fs.copyFileSync(f, path.join(dir, rel), fs.constants.COPYFILE_FICLONE);
    files.push(rel);
  }
  const header = [
    `${CONFIG_HEADER} from ${s.component ? `${s.component}/${path.basename(s.file)}` : path.basename(s.file)} (sdc ${SDC_VERSION}); docs/serving.md explains each field.`,
    ...t.notes.map((n) => `# ${n}`),
  ].join('\n');
  const text = `${header}\n${writeText('ModelConfig', t.config)}`;
  // read back before committing: the text parses under the schema to exactly what was meant
  if (!isDeepStrictEqual(readText('ModelConfig', text), t.config)) throw new Error(`the config written for ${s.name} does not read back the same (a bug; please report it)`);
  fs.writeFileSync(path.join(stage, s.name, 'config.pbtxt'), text);
  readModel(path.join(dir, MODEL_FILE)); // the copy sits beside its weights, every range inside them
  return {
    name: s.name,
    source: s.file,
    component: s.component,
    target: t.target,
    maxBatchSize: t.config.max_batch_size as number,
    warmup: 'model_warmup' in t.config,
    files,
    notes: t.notes,
  };
}
