/**
 * The part of Triton Inference Server's model configuration schema that sdc writes, described in our own
 * words: message `ModelConfig` of `model_config.proto` (triton-inference-server/common, checked field by
 * field, number by number, against protobuf/model_config.proto at commit 83adf7cf, July 2026). The text
 * writer and reader (pbtxt.ts) work from this table only, so a field or enum name sdc writes is one that
 * the table names, and the reader refuses any other. Field numbers are kept so that a check against a
 * newer proto is a comparison of two lists.
 */

type Scalar = 'string' | 'int32' | 'int64' | 'uint32' | 'uint64' | 'bool';

export interface FieldSpec {
  number: number;
  /** A scalar type, an enum (`enum:Name`) or a message (`msg:Name`). */
  type: Scalar | `enum:${string}` | `msg:${string}`;
  /** `map`: a map<string, type> (text format: repeated `{ key: ... value ... }` entries). */
  label: 'single' | 'repeated' | 'map';
  /** What the field means to Triton, and so why sdc sets it (docs/serving.md says the same at length). */
  about: string;
}

export const ENUMS: Record<string, readonly string[]> = {
  /** Element types of tensors (TYPE_INVALID = 0 is never written). */
  DataType: ['TYPE_INVALID', 'TYPE_BOOL', 'TYPE_UINT8', 'TYPE_UINT16', 'TYPE_UINT32', 'TYPE_UINT64', 'TYPE_INT8', 'TYPE_INT16', 'TYPE_INT32', 'TYPE_INT64', 'TYPE_FP16', 'TYPE_FP32', 'TYPE_FP64', 'TYPE_STRING', 'TYPE_BF16'],
  /** Where the instances of a group run (ModelInstanceGroup.Kind). */
  Kind: ['KIND_AUTO', 'KIND_GPU', 'KIND_CPU', 'KIND_MODEL'],
};

export const MESSAGES: Record<string, Record<string, FieldSpec>> = {
  ModelConfig: {
    name: { number: 1, type: 'string', label: 'single', about: 'the model name; must equal its folder name in the repository' },
    platform: { number: 2, type: 'string', label: 'single', about: '"onnxruntime_onnx": an ONNX model' },
    backend: { number: 17, type: 'string', label: 'single', about: '"onnxruntime": the backend that runs it' },
    max_batch_size: { number: 4, type: 'int32', label: 'single', about: '0: no batching, dims are the exact shapes; N > 0: Triton adds a batch dim of up to N in front of every dims' },
    input: { number: 5, type: 'msg:ModelInput', label: 'repeated', about: 'the model inputs' },
    output: { number: 6, type: 'msg:ModelOutput', label: 'repeated', about: 'the model outputs' },
    instance_group: { number: 7, type: 'msg:ModelInstanceGroup', label: 'repeated', about: 'how many copies of the model run, and on which devices' },
    dynamic_batching: { number: 11, type: 'msg:ModelDynamicBatching', label: 'single', about: 'present: the scheduler joins requests into batches of up to max_batch_size' },
    optimization: { number: 12, type: 'msg:ModelOptimizationPolicy', label: 'single', about: 'backend optimization settings' },
    parameters: { number: 14, type: 'msg:ModelParameter', label: 'map', about: 'free key/value pairs; the backend reads the keys it knows, the rest are carried for clients' },
    model_warmup: { number: 16, type: 'msg:ModelWarmup', label: 'repeated', about: 'requests Triton runs before it reports the model ready' },
  },
  ModelInput: {
    name: { number: 1, type: 'string', label: 'single', about: 'the graph input name' },
    data_type: { number: 2, type: 'enum:DataType', label: 'single', about: 'element type' },
    dims: { number: 4, type: 'int64', label: 'repeated', about: 'shape without the batch dim when max_batch_size > 0; -1 for a dynamic dim' },
    reshape: { number: 5, type: 'msg:ModelTensorReshape', label: 'single', about: 'the shape the model gets when it differs from dims (a scalar declared as [1])' },
  },
  ModelOutput: {
    name: { number: 1, type: 'string', label: 'single', about: 'the graph output name' },
    data_type: { number: 2, type: 'enum:DataType', label: 'single', about: 'element type' },
    dims: { number: 3, type: 'int64', label: 'repeated', about: 'as for inputs' },
    reshape: { number: 5, type: 'msg:ModelTensorReshape', label: 'single', about: 'as for inputs' },
  },
  ModelTensorReshape: {
    shape: { number: 1, type: 'int64', label: 'repeated', about: 'the shape the model sees; empty for a scalar' },
  },
  ModelInstanceGroup: {
    name: { number: 1, type: 'string', label: 'single', about: 'the group name' },
    count: { number: 2, type: 'int32', label: 'single', about: 'instances per device (GPU) or in all (CPU)' },
    gpus: { number: 3, type: 'int32', label: 'repeated', about: 'the GPUs to place instances on; absent: every GPU' },
    kind: { number: 4, type: 'enum:Kind', label: 'single', about: 'KIND_GPU or KIND_CPU: which provider onnxruntime runs the model with' },
  },
  ModelDynamicBatching: {
    preferred_batch_size: { number: 1, type: 'int32', label: 'repeated', about: 'batch sizes the scheduler aims for' },
    max_queue_delay_microseconds: { number: 2, type: 'uint64', label: 'single', about: 'how long a request may wait for others to join its batch' },
  },
  ModelOptimizationPolicy: {
    graph: { number: 1, type: 'msg:ModelOptimizationPolicy.Graph', label: 'single', about: 'graph optimization' },
  },
  'ModelOptimizationPolicy.Graph': {
    level: { number: 1, type: 'int32', label: 'single', about: 'onnxruntime graph optimization level: -1 basic, 1 extended, 2 none; absent (or 0): all' },
  },
  ModelParameter: {
    string_value: { number: 1, type: 'string', label: 'single', about: 'the value' },
  },
  ModelWarmup: {
    name: { number: 1, type: 'string', label: 'single', about: 'the sample name' },
    batch_size: { number: 2, type: 'uint32', label: 'single', about: 'the request batch (1 for a model without batching)' },
    inputs: { number: 3, type: 'msg:ModelWarmup.Input', label: 'map', about: 'one entry per model input' },
    count: { number: 4, type: 'uint32', label: 'single', about: 'how many times the sample runs' },
  },
  'ModelWarmup.Input': {
    data_type: { number: 1, type: 'enum:DataType', label: 'single', about: 'element type' },
    dims: { number: 2, type: 'int64', label: 'repeated', about: 'shape without the batch dim' },
    zero_data: { number: 3, type: 'bool', label: 'single', about: 'fill with zeros (valid for every input: token ids, timesteps)' },
    random_data: { number: 4, type: 'bool', label: 'single', about: 'fill with random values' },
  },
};

/** A message as plain data: field name → scalar, enum name, nested message, array, or map (a record). */
export type Message = { [field: string]: MessageValue };
export type MessageValue = string | number | boolean | Message | MessageValue[] | { [key: string]: MessageValue };
