import * as fs from 'fs';
import { ModelBuilder } from '../../src/ir/builder';
import { Value } from '../../src/ir/graph';
import { layerNorm } from '../../src/rules/layer-norm';
import { applyRules, worstError } from '../helpers/rules';
import { randomFloats, tensor, tmpDir } from '../helpers/ort';

const dir = tmpDir();
afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));

/** LayerNorm over the last axis written out as exporters do (ReduceMean, Sub, Pow, Sqrt, Div, affine). */
function decomposed(o: { axis?: number; pow?: number } = {}) {
  const b = new ModelBuilder(18); // ReduceMean takes its axes as an input from opset 18
  const x = b.input('x', [2, 5, 16]);
  const axes = b.ints('axes', [o.axis ?? -1]);
  const mean = (v: Value) => b.op('ReduceMean', [v, axes], { keepdims: 1 });
  const d = b.op('Sub', [x, mean(x)]);
  const varc = mean(b.op('Pow', [d, b.scalar('two', o.pow ?? 2)]));
  const norm = b.op('Div', [d, b.op('Sqrt', [b.op('Add', [varc, b.scalar('eps', 1e-5)])])]);
  b.output(b.op('Add', [b.op('Mul', [norm, b.const('g', [16], Array.from(randomFloats(16, 3)))]), b.const('bb', [16], Array.from(randomFloats(16, 4)))]));
  return b;
}

test('decomposed LayerNorm → LayerNormalization, same numbers', async () => {
  const run = applyRules(decomposed(), [layerNorm], dir, 'ln');
  expect(run.ops).toEqual({ 'ai.onnx::LayerNormalization': 1 });
  expect(run.counts.layerNorm).toBe(1);
  expect(await worstError(run, [{ x: tensor([2, 5, 16]) }])).toBeLessThan(1e-5);
});

test('look-alikes: a mean over another axis, a cube instead of a square', () => {
  expect(applyRules(decomposed({ axis: 1 }), [layerNorm], dir, 'ln-axis').ops['ai.onnx::LayerNormalization']).toBeUndefined();
  expect(applyRules(decomposed({ pow: 3 }), [layerNorm], dir, 'ln-pow').ops['ai.onnx::LayerNormalization']).toBeUndefined();
});
