import * as fs from 'fs';
import * as path from 'path';
import { compile } from '../../src/compiler/compile';
import { readModel } from '../../src/onnx/read';
import { ModelBuilder } from '../../src/ir/builder';
import { randomFloats, tmpDir } from '../helpers/ort';
import { saveModel } from '../../src/onnx/write';

const dir = tmpDir();
afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));

/** conv → SiLU → conv → + residual: the resnet shape channels-last has to handle. */
function block() {
  const b = new ModelBuilder();
  const x = b.input('x', [1, 4, 6, 6]);
  const w1 = Array.from(randomFloats(8 * 4 * 3 * 3, 1));
  const c1 = b.op('Conv', [x, b.const('w1', [8, 4, 3, 3], w1), b.const('b1', [8], Array.from(randomFloats(8, 2)))], { kernel_shape: [3, 3], pads: [1, 1, 1, 1] });
  const act = b.op('Mul', [c1, b.op('Sigmoid', [c1])]);
  const c2 = b.op('Conv', [act, b.const('w2', [8, 8, 1, 1], Array.from(randomFloats(64, 3)))], { kernel_shape: [1, 1] });
  b.output(b.op('Add', [c2, c1]));
  return { b, w1 };
}

test('cuda: convolutions become NhwcConv with OHWI weights; inner transposes cancel', () => {
  const { b, w1 } = block();
  const src = saveModel(b.model, path.join(dir, 'block.onnx'));
  const out = path.join(dir, 'block.cuda.onnx');
  const r = compile(src, { output: out, target: 'cuda' });
  expect(r.opsAfter['com.microsoft::NhwcConv']).toBe(2);
  expect(r.opsAfter['ai.onnx::Conv']).toBeUndefined();
  // one transpose in at the graph input, one out at the graph output: everything between is NHWC
  expect(r.opsAfter['ai.onnx::Transpose']).toBe(2);
  const m = readModel(out);
  const conv = m.graph.nodes.find((n) => n.opType === 'NhwcConv')!;
  const w = conv.inputs[1]!.constant!;
  expect(w.dims).toEqual([8, 3, 3, 4]);
  const got = w.values() as Float32Array;
  for (const [o, i, y, x] of [[0, 0, 0, 0], [7, 3, 2, 1], [3, 1, 0, 2]]) {
    expect(got[((o * 3 + y) * 3 + x) * 4 + i]).toBe(Math.fround(w1[((o * 4 + i) * 3 + y) * 3 + x]));
  }
});

test('cpu and webgpu keep NCHW convolutions', () => {
  const { b } = block();
  const src = saveModel(b.model, path.join(dir, 'block2.onnx'));
  for (const target of ['cpu', 'webgpu'] as const) {
    const r = compile(src, { output: path.join(dir, `block2.${target}.onnx`), target });
    expect(r.opsAfter['ai.onnx::Conv']).toBe(2);
    expect(r.opsAfter['ai.onnx::Transpose']).toBeUndefined();
  }
});

test('a channel Concat of two NHWC results stays NHWC (its axis remapped)', () => {
  const b = new ModelBuilder();
  const x = b.input('x', [1, 4, 6, 6]);
  const conv = (name: string, seed: number) => b.op('Conv', [x, b.const(name, [4, 4, 1, 1], Array.from(randomFloats(16, seed)))], { kernel_shape: [1, 1] });
  const cat = b.op('Concat', [conv('wa', 1), conv('wb', 2)], { axis: 1 });
  b.output(b.op('Conv', [cat, b.const('wc', [2, 8, 1, 1], Array.from(randomFloats(16, 3)))], { kernel_shape: [1, 1] }));
  const src = saveModel(b.model, path.join(dir, 'cat.onnx'));
  const out = path.join(dir, 'cat.cuda.onnx');
  const r = compile(src, { output: out, target: 'cuda' });
  expect(r.opsAfter['ai.onnx::Transpose']).toBe(2);
  const m = readModel(out);
  expect(m.graph.nodes.find((n) => n.opType === 'Concat')!.int('axis')).toBe(3);
});
