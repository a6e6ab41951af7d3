import { DataType, dtypeName } from '../ir/dtype';
import { SdcError } from '../ir/errors';
import { Dim, Value } from '../ir/graph';
import { Model } from '../ir/model';
import { Sym } from '../ir/symbolic';
import { analyzeShapes, ShapeAnalysis } from '../analysis/shapes';
import { OptimizationLevel, recommendedSession } from '../targets/session-options';
import { targetTraits, TargetName, TARGETS } from '../targets';
import { Message } from './model-config';

/** Triton's element type for each ONNX type it has one for. */
const TRITON_TYPE: Partial<Record<DataType, string>> = {
  [DataType.BOOL]: 'TYPE_BOOL', [DataType.UINT8]: 'TYPE_UINT8', [DataType.UINT16]: 'TYPE_UINT16', [DataType.UINT32]: 'TYPE_UINT32',
  [DataType.UINT64]: 'TYPE_UINT64', [DataType.INT8]: 'TYPE_INT8', [DataType.INT16]: 'TYPE_INT16', [DataType.INT32]: 'TYPE_INT32',
  [DataType.INT64]: 'TYPE_INT64', [DataType.FLOAT16]: 'TYPE_FP16', [DataType.FLOAT]: 'TYPE_FP32', [DataType.DOUBLE]: 'TYPE_FP64',
  [DataType.STRING]: 'TYPE_STRING', [DataType.BFLOAT16]: 'TYPE_BF16',
};

/**
 * onnxruntime's level → the onnxruntime backend's `optimization { graph { level } }` (its source maps
 * -1 to basic, 1 to extended, 2 to disable-all, and anything else, or no field, to all).
 */
const GRAPH_LEVEL: Record<OptimizationLevel, number | null> = { basic: -1, extended: 1, disabled: 2, all: null };

/** What the export does with a model's batch dim. */
export interface ServingOptions {
  /** Instances per device (GPU) or in all (CPU). */
  instances: number;
  /** GPUs to place instances on; null: every GPU (cuda models only). */
  gpus: number[] | null;
  /** max_batch_size for models whose batch dim is dynamic; 0 turns batching off. */
  maxBatch: number;
}

export interface TritonModel {
  /** The config as plain data in model-config.ts's terms (pbtxt.ts writes it). */
  config: Message;
  /** Why the model batches, or why not; what was left out; for the summary and docs. */
  notes: string[];
  /** Its instances run on GPUs (KIND_GPU). */
  gpu: boolean;
  /** Why the model's batch dim is not dynamic (so --max-batch does not apply to it); null: it is. */
  unbatchable: string | null;
  target: TargetName;
}

/**
 * The dim-0 symbol every input and output shares, or why batching cannot apply. Outputs are checked with
 * sdc's shape analysis, not by their declared names (an exporter names an output's batch dim anything,
 * `Convout_sample_dim_0`): the output's dim 0 must be computed as the inputs' batch dim.
 */
function batchDim(sa: ShapeAnalysis, seen: OutputShapes | null, inputs: Value[], outputs: Value[]): { symbol: string } | { why: string } {
  const first = inputs.map((v) => v.shape![0]);
  if (inputs.some((v) => v.shape!.length === 0)) return { why: `input '${inputs.find((v) => v.shape!.length === 0)!.name}' is a scalar (no batch dim)` };
  if (first.some((d) => typeof d !== 'string')) {
    const v = inputs.find((x) => typeof x.shape![0] !== 'string')!;
    return { why: typeof v.shape![0] === 'number' ? `input '${v.name}' has a static dim 0 (${v.shape![0]}): a specialization is served at the batch it was compiled for` : `input '${v.name}' has an unnamed dim 0` };
  }
  if (new Set(first).size !== 1) return { why: `the inputs' dim 0 are different dims (${[...new Set(first)].join(', ')})` };
  const symbol = first[0] as string;
  for (const o of outputs) {
    const fixed = seen?.get(o.name)?.[0];
    if (typeof fixed === 'number' && fixed >= 0) return { why: `onnxruntime computes output '${o.name}' dim 0 as ${fixed}` };
    const d = sa.get(o).shape?.[0];
    if (!d || !d.equals(Sym.atom(symbol))) return { why: `output '${o.name}' dim 0 is not computed as the inputs' ${symbol}` };
  }
  return { symbol };
}

/**
 * The dims onnxruntime will see: an output's declared dim that the graph computes as a constant is that
 * constant (onnxruntime's own inference does the same, and Triton's backend compares the config with it:
 * Optimum labels SDXL's `text_embeds` [batch_size, sequence_length] though it is [batch, 1280], and a
 * specialized model may keep an output's old symbolic label).
 */
function servedDims(v: Value, sa: ShapeAnalysis | null, seen: OutputShapes | null): Dim[] {
  const inferred = sa?.get(v).shape;
  const ort = seen?.get(v.name);
  return v.shape!.map((d, i) => {
    if (typeof d === 'number') return d;
    const o = ort?.length === v.shape!.length ? ort[i] : null;
    if (typeof o === 'number' && o >= 0) return o;
    return inferred?.length === v.shape!.length ? inferred[i].value ?? d : d;
  });
}

/** Output shapes as onnxruntime resolved them when it opened the model (its inference can know more than the declared dims). */
export type OutputShapes = Map<string, readonly (number | string)[]>;

/** One tensor's config entry: dims (batch dim dropped when batching), a reshape for a scalar. */
function tensorEntry(v: Value, batching: boolean, sa: ShapeAnalysis | null, seen: OutputShapes | null, file: string): Message {
  const dt = v.type?.kind === 'tensor' ? v.type.elemType : null;
  const type = dt === null ? undefined : TRITON_TYPE[dt];
  if (!type) throw new SdcError(file, `'${v.name}' is ${dt === null ? 'not a tensor' : `a ${dtypeName(dt)} tensor`}: Triton has no data type for it`);
  const shape = servedDims(v, sa, seen);
  const dims = (batching ? shape.slice(1) : shape).map((d) => (typeof d === 'number' ? d : -1));
  if (dims.length) return { name: v.name, data_type: type, dims };
  // Triton cannot declare an empty dims. Batching, a [batch] vector is [1] per request reshaped to []; not
  // batching, Triton's core refuses an empty reshape ("cannot have empty reshape for non-batching model")
  // and the onnxruntime backend takes dims of all 1 for a scalar input or output (onnxruntime.cc)
  return batching ? { name: v.name, data_type: type, dims: [1], reshape: { shape: [] } } : { name: v.name, data_type: type, dims: [1] };
}

/**
 * A Triton model configuration from sdc's own description of a compiled model: its inputs and outputs,
 * the target and session options sdc recorded, its capture report.
 */
export function tritonConfig(model: Model, name: string, opts: ServingOptions, file: string, seen: OutputShapes | null): TritonModel {
  const meta = (k: string) => model.getMetadata(k);
  const target = meta('sdc.target') as TargetName;
  if (!TARGETS.includes(target)) throw new SdcError(file, `was compiled for '${target}', a target this sdc does not know`);
  const traits = targetTraits(target);
  // Triton's onnxruntime backend has the CPU and CUDA providers; a WebGPU model's layout and kernels are not theirs
  const kind = traits.tritonKind;
  if (!kind) throw new SdcError(file, `was compiled for ${target}; Triton's onnxruntime backend runs the CPU and CUDA providers: compile it with --target cuda (or cpu) and export that`);
  const gpu = kind === 'KIND_GPU';
  if (opts.gpus && !gpu) throw new SdcError(file, `--gpus places instances on GPUs, but this model was compiled for ${target} (KIND_CPU); compile it with --target cuda to serve it on GPUs`);
  const g = model.graph;
  const inputs = g.inputs.filter((v) => !v.initializer);
  const unshaped = [...inputs, ...g.outputs].find((v) => !v.shape);
  if (unshaped) throw new SdcError(file, `'${unshaped.name}' has no declared shape; Triton's config needs every input's and output's rank`);

  const notes: string[] = [];
  const sa = analyzeShapes(model);
  const batch = batchDim(sa, seen, inputs, g.outputs);
  const batchable = 'symbol' in batch;
  const batching = batchable && opts.maxBatch > 0;
  if (batching) notes.push(`batches up to ${opts.maxBatch} along '${(batch as { symbol: string }).symbol}' (dynamic_batching)`);
  else notes.push(`max_batch_size 0: ${'why' in batch ? batch.why : '--max-batch 0'}`);

  const config: Message = {
    name,
    platform: 'onnxruntime_onnx',
    backend: 'onnxruntime',
    max_batch_size: batching ? opts.maxBatch : 0,
    input: inputs.map((v) => tensorEntry(v, batching, null, null, file)),
    output: g.outputs.map((v) => tensorEntry(v, batching, sa, seen, file)),
    instance_group: [{ count: opts.instances, kind, ...(gpu && opts.gpus ? { gpus: opts.gpus } : {}) }],
  };
  if (batching) config.dynamic_batching = {};

  const session = recommendedSession(meta);
  const level = GRAPH_LEVEL[session.options.graphOptimizationLevel];
  if (level !== null) config.optimization = { graph: { level } };

  const parameters: Record<string, Message> = {};
  for (const k of ['sdc.version', 'sdc.mode', 'sdc.target', 'sdc.precision']) {
    const v = meta(k);
    if (v !== undefined) parameters[k] = { string_value: v };
  }
  parameters['sdc.session.graphOptimizationLevel'] = { string_value: session.options.graphOptimizationLevel };
  const capture = captureOf(meta('sdc.capture'));
  if (capture) parameters['sdc.capture'] = { string_value: capture };
  config.parameters = parameters;

  // warm up at the compiled shapes: only when every dim but the batch is known
  const entries = config.input as Message[];
  if (entries.every((e) => (e.dims as number[]).every((d) => d >= 0))) {
    config.model_warmup = [{
      name: 'sdc_compiled_shapes',
      batch_size: batching ? opts.maxBatch : 1,
      inputs: Object.fromEntries(entries.map((e) => [e.name as string, { data_type: e.data_type, dims: e.dims, zero_data: true }])),
    }];
  } else {
    notes.push('no model_warmup: some dims are dynamic, so there is no compiled shape to warm up at');
  }
  return { config, notes, unbatchable: 'why' in batch ? batch.why : null, target, gpu };
}

/** The capture report in one line: whether CUDA graphs / WebGPU capture could take the graph. */
function captureOf(raw: string | undefined): string | null {
  if (!raw) return null;
  try {
    const c = JSON.parse(raw) as { capturable: boolean; blockers: string[] };
    return c.capturable ? 'capturable' : `not capturable: ${c.blockers.length} blocker${c.blockers.length === 1 ? '' : 's'}, first: ${c.blockers[0] ?? '?'}`;
  } catch {
    return null;
  }
}
