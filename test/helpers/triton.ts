import * as fs from 'fs';
import * as path from 'path';
import * as ort from 'onnxruntime-node';
import { readText, writeText } from '../../src/serving/pbtxt';
import { Message } from '../../src/serving/model-config';
import { readModel } from '../../src/onnx/read';

/** onnxruntime-node's tensor types → Triton's (written out here, not taken from the code under test). */
const TRITON_OF_ORT: Record<string, string> = {
  float32: 'TYPE_FP32', float16: 'TYPE_FP16', float64: 'TYPE_FP64', int64: 'TYPE_INT64', int32: 'TYPE_INT32',
  int8: 'TYPE_INT8', uint8: 'TYPE_UINT8', bool: 'TYPE_BOOL',
};

const comments = (text: string) => text.split('\n').filter((l) => !l.startsWith('#')).join('\n');

/** A config.pbtxt parsed, after checking that it reads back to the same structure and the same text. */
export function readConfig(file: string): Message {
  const text = fs.readFileSync(file, 'utf8');
  const config = readText('ModelConfig', text);
  expect(writeText('ModelConfig', config)).toBe(comments(text));
  expect(readText('ModelConfig', writeText('ModelConfig', config))).toEqual(config);
  return config;
}

/** What a config's dims must be for one tensor as onnxruntime describes it. */
function expectedEntry(meta: ort.InferenceSession.ValueMetadata, batching: boolean): Message {
  if (!meta.isTensor) throw new Error(`${meta.name} is not a tensor`);
  const shape = batching ? meta.shape.slice(1) : meta.shape;
  const dims = shape.map((d) => (typeof d === 'number' && d >= 0 ? d : -1));
  const type = TRITON_OF_ORT[meta.type];
  if (dims.length) return { name: meta.name, data_type: type, dims };
  // Triton's core refuses an empty reshape in a model that does not batch: there a scalar is dims [1] alone
  return batching ? { name: meta.name, data_type: type, dims: [1], reshape: { shape: [] } } : { name: meta.name, data_type: type, dims: [1] };
}

export interface RepositoryModel {
  name: string;
  config: Message;
  /** onnxruntime's view of REPO/<name>/1/model.onnx (null when its ops have no CPU kernels: cuda models). */
  session: { inputs: readonly ort.InferenceSession.ValueMetadata[]; outputs: readonly ort.InferenceSession.ValueMetadata[] } | null;
}

/**
 * Check a repository sdc wrote: the documented layout (REPO/<name>/config.pbtxt, REPO/<name>/1/model.onnx
 * and its weights, nothing else), each config reading back to itself, and each config's inputs, outputs,
 * dims and types agreeing with the model as onnxruntime opens it, under the batch and scalar rules.
 */
export async function expectRepository(repo: string, names: string[], o: { kserve?: boolean; openable?: boolean } = {}): Promise<RepositoryModel[]> {
  expect(fs.readdirSync(repo).sort()).toEqual([...names, ...(o.kserve ? ['inferenceservice.yaml'] : [])].sort());
  const out: RepositoryModel[] = [];
  for (const name of names) {
    expect(fs.readdirSync(path.join(repo, name)).sort()).toEqual(['1', 'config.pbtxt']);
    const modelFile = path.join(repo, name, '1', 'model.onnx');
    const model = readModel(modelFile); // the weights are beside it, every range inside them
    const weights = model.externalFiles().map((f) => path.relative(path.dirname(modelFile), f));
    expect(fs.readdirSync(path.dirname(modelFile)).sort()).toEqual(['model.onnx', ...new Set(weights)].sort());
    const config = readConfig(path.join(repo, name, 'config.pbtxt'));
    expect(config).toMatchObject({ name, platform: 'onnxruntime_onnx', backend: 'onnxruntime' });
    expect((config.parameters as Record<string, Message>)['sdc.target']).toEqual({ string_value: model.getMetadata('sdc.target') });
    const maxBatch = config.max_batch_size as number;
    const batching = maxBatch > 0;
    expect('dynamic_batching' in config).toBe(batching);
    let session: RepositoryModel['session'] = null;
    if (o.openable !== false) {
      // opened as the backend opens it: at the config's graph level (-1 basic, 1 extended, 2 none, absent all)
      const level = ((config.optimization as Message | undefined)?.graph as Message | undefined)?.level;
      const levels: Record<string, 'basic' | 'extended' | 'disabled'> = { '-1': 'basic', 1: 'extended', 2: 'disabled' };
      const s = await ort.InferenceSession.create(modelFile, { graphOptimizationLevel: level === undefined ? 'all' : levels[String(level)] });
      session = { inputs: s.inputMetadata, outputs: s.outputMetadata };
      await s.release();
      expect((config.input as Message[]).map((e) => e.name)).toEqual(session.inputs.map((m) => m.name));
      expect((config.output as Message[]).map((e) => e.name)).toEqual(session.outputs.map((m) => m.name));
      expect(config.input).toEqual(session.inputs.map((m) => expectedEntry(m, batching)));
      expect(config.output).toEqual(session.outputs.map((m) => expectedEntry(m, batching)));
      const all = [...session.inputs, ...session.outputs] as ort.InferenceSession.TensorValueMetadata[];
      // batching only where every dim 0 is dynamic; a static specialization is served exactly at its shapes
      if (batching) for (const m of all) expect(typeof m.shape[0]).toBe('string');
      if (all.every((m) => m.shape.every((d) => typeof d === 'number'))) expect(maxBatch).toBe(0);
      if (all.some((m) => m.shape.length === 0)) expect(maxBatch).toBe(0);
    }
    // warm-up at the compiled shapes: every input, its declared dims and type, zeros
    const warm = config.model_warmup as Message[] | undefined;
    const entries = config.input as Message[];
    if (entries.every((e) => (e.dims as number[]).every((d) => d >= 0))) {
      expect(warm).toEqual([{
        name: 'sdc_compiled_shapes',
        batch_size: batching ? maxBatch : 1,
        inputs: Object.fromEntries(entries.map((e) => [e.name, { data_type: e.data_type, dims: e.dims, zero_data: true }])),
      }]);
    } else {
      expect(warm).toBeUndefined();
    }
    out.push({ name, config, session });
  }
  return out;
}

/** The block YAML sdc writes (maps, JSON-quoted scalars) as nested objects: enough to read the manifest back. */
export function readSimpleYaml(text: string): Record<string, unknown> {
  const root: Record<string, unknown> = {};
  const stack: { indent: number; obj: Record<string, unknown> }[] = [{ indent: -1, obj: root }];
  for (const line of text.split('\n')) {
    if (!line.trim() || line.trimStart().startsWith('#')) continue;
    const indent = line.length - line.trimStart().length;
    const m = /^\s*([^:]+):(?: (.*))?$/.exec(line);
    if (!m) throw new Error(`not a map entry: ${line}`);
    while (stack[stack.length - 1].indent >= indent) stack.pop();
    const parent = stack[stack.length - 1].obj;
    if (m[2] === undefined) {
      const child: Record<string, unknown> = {};
      parent[m[1]] = child;
      stack.push({ indent, obj: child });
    } else {
      parent[m[1]] = JSON.parse(m[2]);
    }
  }
  return root;
}
