import * as fs from 'fs';
import * as path from 'path';
import { compile } from '../../src/compiler/compile';
import { ModelBuilder } from '../../src/ir/builder';
import { readModel } from '../../src/onnx/read';
import { saveModel } from '../../src/onnx/write';
import { lowerToCpu } from '../../src/verify/lower';
import { randomFloats, relError, runModel, tensor, tmpDir } from '../helpers/ort';

const dir = tmpDir();
afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));

const w = (b: ModelBuilder, name: string, dims: number[], seed: number) => b.const(name, dims, Array.from(randomFloats(dims.reduce((a, d) => a * d, 1), seed)));

/**
 * A resnet-like block with everything channels-last has to carry a layout through: Conv (3×3, padded,
 * bias) → + time embedding [1,C,1,1] (a graph input: gets the inverse transpose) → Sub with the tensor on
 * the right (operand order) → · scalar → SiLU → Concat on channels (negative axis) with a second Conv
 * branch → Conv (3×3, stride 2, unpadded, non-square input so H and W cannot be confused).
 */
function block(): string {
  const b = new ModelBuilder();
  const x = b.input('x', [1, 3, 7, 5]);
  const temb = b.input('temb', [1, 6, 1, 1]);
  const c1 = b.op('Conv', [x, w(b, 'w1', [6, 3, 3, 3], 1), w(b, 'b1', [6], 2)], { kernel_shape: [3, 3], pads: [1, 1, 1, 1] });
  const h = b.op('Sub', [w(b, 'shift', [1, 6, 1, 1], 3), b.op('Add', [c1, temb])]);
  const scaled = b.op('Mul', [h, b.scalar('k', 0.75)]);
  const act = b.op('Mul', [scaled, b.op('Sigmoid', [scaled])]);
  const side = b.op('Conv', [x, w(b, 'w2', [2, 3, 1, 1], 4)], { kernel_shape: [1, 1] });
  const cat = b.op('Concat', [act, side], { axis: -3 });
  b.output(b.op('Conv', [cat, w(b, 'w3', [4, 8, 3, 3], 5), w(b, 'b3', [4], 6)], { kernel_shape: [3, 3], strides: [2, 2] }));
  return saveModel(b.model, path.join(dir, 'block.onnx'));
}

test('cuda: Conv → Add/Sub/Mul/SiLU → channel Concat → Conv in NHWC computes the original numbers (lowering oracle)', async () => {
  const src = block();
  const out = path.join(dir, 'block.cuda.onnx');
  const r = compile(src, { output: out, target: 'cuda' });
  expect(r.opsAfter['com.microsoft::NhwcConv']).toBe(3);
  expect(r.opsAfter['ai.onnx::Conv']).toBeUndefined();
  const m = readModel(out);
  // the elementwise ops and the Concat run in NHWC: the Concat's axis is the last one
  expect(m.graph.nodes.find((n) => n.opType === 'Concat')!.int('axis')).toBe(3);
  // x goes in once (both convolutions read one transpose of it) and the result comes out once
  expect(r.opsAfter['ai.onnx::Transpose']).toBe(2);
  const lowered = path.join(dir, 'block.cuda.lowered.onnx');
  expect(lowerToCpu(out, lowered)).toBe(3);
  for (const seed of [1, 2]) {
    const feeds = { x: tensor([1, 3, 7, 5], 10 + seed), temb: tensor([1, 6, 1, 1], 20 + seed) };
    const [want, got] = [await runModel(src, feeds), await runModel(lowered, feeds)];
    expect(got[m.graph.outputs[0].name].dims).toEqual(want[m.graph.outputs[0].name].dims);
    expect(relError(Object.values(want)[0], Object.values(got)[0])).toBeLessThan(1e-5);
  }
});
