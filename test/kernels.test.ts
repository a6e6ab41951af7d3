import * as fs from 'fs';
import * as path from 'path';
import * as ort from 'onnxruntime-node';
import { DataType } from '../src/ir/dtype';
import { ModelBuilder } from '../src/ir/builder';
import { Value } from '../src/ir/graph';
import { saveModel } from '../src/onnx/write';
import { KERNELS } from '../src/targets';
import { tmpDir } from './helpers/ort';

const dir = tmpDir();
afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));

type Make = (b: ModelBuilder, dt: DataType) => Value;

/** A one-node model per table entry, with inputs of the sizes the kernels take. */
const SINGLE_OP: Record<string, { opset?: number; make: Make }> = {
  'com.microsoft::MultiHeadAttention': { make: (b, dt) => b.op('MultiHeadAttention', [b.input('q', [1, 2, 8], dt), b.input('k', [1, 2, 8], dt), b.input('v', [1, 2, 8], dt)], { num_heads: 2 }, { domain: 'com.microsoft' }) },
  'ai.onnx::Attention': { opset: 23, make: (b, dt) => b.op('Attention', [b.input('q', [1, 2, 8], dt), b.input('k', [1, 2, 8], dt), b.input('v', [1, 2, 8], dt)], { q_num_heads: 2, kv_num_heads: 2 }) },
  'com.microsoft::Attention': { make: (b, dt) => b.op('Attention', [b.input('x', [1, 2, 8], dt), b.const('w', [8, 24], new Float32Array(192), dt), b.const('bias', [24], new Float32Array(24), dt)], { num_heads: 2 }, { domain: 'com.microsoft' }) },
  'com.microsoft::GroupNorm': { make: (b, dt) => b.op('GroupNorm', [b.input('x', [1, 4, 4, 8], dt), b.const('g', [8], new Float32Array(8), DataType.FLOAT), b.const('bt', [8], new Float32Array(8), DataType.FLOAT)], { groups: 2, epsilon: 1e-5, activation: 0, channels_last: 1 }, { domain: 'com.microsoft' }) },
  'com.microsoft::SkipGroupNorm': { make: (b, dt) => b.op('SkipGroupNorm', [b.input('x', [1, 4, 4, 8], dt), b.const('g', [8], new Float32Array(8), DataType.FLOAT), b.const('bt', [8], new Float32Array(8), DataType.FLOAT), b.input('s', [1, 4, 4, 8], dt)], { groups: 2, epsilon: 1e-5, activation: 0, channels_last: 1 }, { domain: 'com.microsoft' }) },
  'com.microsoft::NhwcConv': { make: (b, dt) => b.op('NhwcConv', [b.input('x', [1, 4, 4, 3], dt), b.const('w', [8, 3, 3, 3], new Float32Array(216), dt)], { kernel_shape: [3, 3] }, { domain: 'com.microsoft' }) },
  'com.microsoft::BiasSplitGelu': { make: (b, dt) => b.op('BiasSplitGelu', [b.input('x', [1, 2, 2560], dt), b.const('bias', [2560], new Float32Array(2560), dt)], {}, { domain: 'com.microsoft' }) },
  'com.microsoft::BiasAdd': { make: (b, dt) => b.op('BiasAdd', [b.input('x', [1, 2, 320], dt), b.const('bias', [320], new Float32Array(320), dt), b.input('s', [1, 2, 320], dt)], {}, { domain: 'com.microsoft' }) },
  'ai.onnx::Split': { make: (b, dt) => b.op('Split', [b.input('x', [8], dt), b.ints('sizes', [4, 4])], { axis: 0 }, { outputs: 2 }) },
  'ai.onnx::LayerNormalization': { make: (b, dt) => b.op('LayerNormalization', [b.input('x', [1, 2, 8], dt), b.const('g', [8], new Float32Array(8), dt), b.const('bt', [8], new Float32Array(8), dt)], { axis: -1 }) },
  'com.microsoft::SkipLayerNormalization': { make: (b, dt) => b.op('SkipLayerNormalization', [b.input('x', [1, 2, 8], dt), b.input('s', [1, 2, 8], dt), b.const('g', [8], new Float32Array(8), dt), b.const('bt', [8], new Float32Array(8), dt)], {}, { domain: 'com.microsoft' }) },
  'ai.onnx::Gelu': { opset: 20, make: (b, dt) => b.op('Gelu', [b.input('x', [4], dt)]) },
  'com.microsoft::Gelu': { make: (b, dt) => b.op('Gelu', [b.input('x', [4], dt)], {}, { domain: 'com.microsoft' }) },
  'com.microsoft::FastGelu': { make: (b, dt) => b.op('FastGelu', [b.input('x', [4], dt)], {}, { domain: 'com.microsoft' }) },
  'com.microsoft::QuickGelu': { make: (b, dt) => b.op('QuickGelu', [b.input('x', [4], dt)], { alpha: 1.5 }, { domain: 'com.microsoft' }) },
  'ai.onnx::Cast': { make: (b, dt) => b.op('Cast', [b.input('x', [4], dt)], { to: dt }) },
  'ai.onnx::Gather': { make: (b, dt) => b.op('Gather', [b.input('x', [4, 2], dt), b.input('i', [3], DataType.INT64)]) },
};

/** Ops the CPU provider runs by expanding their function body: a session opens, yet there is no kernel. */
const FUNCTION_BODY = new Set(['ai.onnx::GroupNormalization']);

async function opens(op: string, dt: DataType): Promise<string | null> {
  const spec = SINGLE_OP[op];
  const b = new ModelBuilder(spec.opset ?? 17, { 'com.microsoft': 1 });
  b.output(spec.make(b, dt), null, dt);
  const file = saveModel(b.model, path.join(dir, `${op.replace('::', '_')}.${dt}.onnx`));
  try {
    const s = await ort.InferenceSession.create(file, { executionProviders: ['cpu'], graphOptimizationLevel: 'disabled', logSeverityLevel: 4 });
    await s.release();
    return null;
  } catch (e) {
    return (e as Error).message.split('\n')[0];
  }
}

test('every fused op in the table has a single-op check here', () => {
  expect(Object.keys(KERNELS).filter((op) => !SINGLE_OP[op] && !FUNCTION_BODY.has(op))).toEqual([]);
});

/**
 * The table's CPU column against onnxruntime itself: a float32 single-op model opens on the CPU provider
 * exactly when the table lists a CPU kernel. (float16 cannot be told apart this way: the CPU provider
 * opens any float16 model by inserting casts around ops without a float16 kernel, REFERENCE §8.)
 */
test.each(Object.keys(SINGLE_OP))('%s: the CPU provider opens it exactly where the table says', async (op) => {
  const listed = !!KERNELS[op].targets.cpu?.dtypes.includes(DataType.FLOAT);
  const why = await opens(op, DataType.FLOAT);
  expect({ op, opens: why === null, why: listed ? why : null }).toEqual({ op, opens: listed, why: null });
  if (!listed) expect(why).toMatch(/Could not find an implementation|not a registered function\/op|No opset import|unknown/i);
});
