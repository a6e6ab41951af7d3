import * as fs from 'fs';
import * as path from 'path';
import * as ort from 'onnxruntime-node';
import { analyzeShapes } from '../src/analysis/shapes';
import { DataType } from '../src/ir/dtype';
import { ModelBuilder } from '../src/ir/builder';
import { Value } from '../src/ir/graph';
import { readModel } from '../src/onnx/read';
import { encodeReferencingWeights, saveModel } from '../src/onnx/write';
import { ValueRange } from '../src/rewrite/pass';
import { calibrate } from '../src/runtime/calibrate';
import { measureTensor } from '../src/runtime/calibrate-segment';
import { modelInputSpecs, syntheticInputs } from '../src/runtime/feeds';
import { tinyPath, tmpDir } from './helpers/ort';

const dir = tmpDir();
afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));

/**
 * What calibration measured before it ran models in pieces: one session of the whole model whose graph
 * outputs are every float tensor its nodes compute, run once per input set, each tensor measured in JS.
 */
async function wholeRun(file: string, dims: Record<string, number[]>, timesteps: number[]): Promise<Record<string, ValueRange>> {
  const model = readModel(file);
  const sa = analyzeShapes(model);
  const measured = model.graph.nodes.flatMap((n) => n.outputs).filter((v) => !v.omitted && sa.get(v).dtype === DataType.FLOAT);
  for (const v of measured) if (!v.isGraphOutput) v.type = { kind: 'tensor', elemType: DataType.FLOAT, shape: null };
  model.graph.outputs = measured;
  const folder = path.dirname(file);
  const session = await ort.InferenceSession.create(encodeReferencingWeights(model, folder), {
    graphOptimizationLevel: 'disabled',
    extra: { session: { model_external_initializers_file_folder_path: folder } },
  } as ort.InferenceSession.SessionOptions);
  const specs = modelInputSpecs(model, new Map(Object.entries(dims)), 'test');
  const ranges: Record<string, ValueRange> = {};
  for (const [set, t] of timesteps.entries()) {
    const out = await session.run(syntheticInputs(specs, { set, floats: 'gaussian', timestep: t }));
    for (const v of measured) {
      const r = measureTensor(out[v.name].data as Float32Array);
      const prev = ranges[v.name];
      ranges[v.name] = prev ? { maxAbs: Math.max(prev.maxAbs, r.maxAbs), tinyFraction: Math.max(prev.tinyFraction, r.tinyFraction) } : r;
    }
  }
  await session.release();
  return ranges;
}

test.each(['unet_sdpa_op17', 'unet_dynamo_op18'])('tiny %s calibrated in pieces measures exactly what one run of the whole model measures', async (name) => {
  const file = tinyPath(name);
  const pieces = await calibrate(file);
  const small = await calibrate(file, { segment: { bytes: 4 << 20 } });
  // many pieces, each fed what the earlier ones computed
  expect(small.report.segments).toBeGreaterThan(pieces.report.segments);
  expect(small.report.segments).toBeGreaterThan(10);
  const want = await wholeRun(file, pieces.report.dims, pieces.report.timesteps);
  expect(Object.keys(want).length).toBe(pieces.report.values);
  expect(Object.fromEntries(pieces.ranges)).toEqual(want);
  expect(Object.fromEntries(small.ranges)).toEqual(want);
});

test('a tensor holding a NaN, an Inf or nothing is measured whole, without them', async () => {
  const b = new ModelBuilder();
  const x = b.input('x', [64]);
  // 3e-5·x: most values below fp16's smallest normal (2^-14), so the tiny fraction is neither 0 nor 1
  const a = b.op('Mul', [x, b.scalar('k', 3e-5)], {}, { name: 'a' });
  const withInf = b.op('Concat', [a, b.op('Div', [a, b.scalar('zero', 0)])], { axis: 0 }, { name: 'with_inf' });
  const withNaN = b.op('Concat', [a, b.op('Sqrt', [b.op('Neg', [b.op('Abs', [a])])])], { axis: 0 }, { name: 'with_nan' });
  const empty = b.op('Slice', [a, b.ints('s', [0]), b.ints('e', [0])], {}, { name: 'empty' });
  b.output(b.op('Add', [b.op('ReduceSum', [withInf], { keepdims: 0 }), b.op('ReduceSum', [withNaN], { keepdims: 0 })]), []);
  b.output(empty, [0]);
  const file = saveModel(b.model, path.join(dir, 'non-finite.onnx'));
  const { ranges, report } = await calibrate(file);

  // a's range from the inputs calibration draws, computed here (float32 products, as onnxruntime's)
  const specs = [{ name: 'x', type: 'float32', dims: [64] }];
  const want = report.timesteps
    .map((t, set) => measureTensor(Float32Array.from(syntheticInputs(specs, { set, floats: 'gaussian', timestep: t }).x.data as Float32Array, (v) => Math.fround(v * Math.fround(3e-5)))))
    .reduce((p, r) => ({ maxAbs: Math.max(p.maxAbs, r.maxAbs), tinyFraction: Math.max(p.tinyFraction, r.tinyFraction) }));
  const byName = (v: Value) => ranges.get(v.name);
  expect(want.tinyFraction).toBeGreaterThan(0.5);
  expect(want.tinyFraction).toBeLessThan(1);
  expect(byName(a)).toEqual(want);
  // Inf and NaN left out: the rest is a's values
  expect(byName(withInf)).toEqual(want);
  expect(byName(withNaN)).toEqual(want);
  expect(byName(empty)).toEqual({ maxAbs: 0, tinyFraction: 0 });
  // the segment ran again once per input set to fetch those tensors
  expect(report.runs).toBe(2 * report.timesteps.length * report.segments);
});
