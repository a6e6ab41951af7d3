import * as fs from 'fs';
import { DataType } from '../../src/ir/dtype';
import { Tensor } from '../../src/ir/tensor';
import { ModelBuilder } from '../../src/ir/builder';
import { compileAndCompare } from '../helpers/check';
import { tensor, tmpDir } from '../helpers/ort';

const dir = tmpDir();
afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));
const CLEANUP = ['fold-constants', 'simplify-shapes', 'eliminate-noops', 'eliminate-duplicates', 'eliminate-dead'];

/** x [batch, seq, 64] → reshape to [batch, seq, 8, 8] with the target computed the way TorchScript does. */
function headSplit(b: ModelBuilder, x: ReturnType<ModelBuilder['input']>) {
  const shape = b.op('Shape', [x]);
  const bs = b.op('Unsqueeze', [b.op('Gather', [shape, b.scalar('i0', 0, DataType.INT64)], { axis: 0 }), b.ints('ax0', [0])]);
  const seq = b.op('Unsqueeze', [b.op('Gather', [shape, b.scalar('i1', 1, DataType.INT64)], { axis: 0 }), b.ints('ax0b', [0])]);
  const target = b.op('Concat', [bs, seq, b.ints('h', [8]), b.ints('d', [8])], { axis: 0 });
  return b.op('Reshape', [x, target]);
}

describe('fold-constants', () => {
  test('folds a chain of constant arithmetic and Constant nodes', async () => {
    const b = new ModelBuilder();
    const x = b.input('x', [2, 3]);
    const k = b.op('Constant', [], { value: Tensor.fromValues('k', DataType.FLOAT, [3], [1, 2, 3]) });
    const scale = b.op('Sqrt', [b.op('Div', [b.scalar('one', 1), b.scalar('c40', 40)])]);
    b.output(b.op('Add', [b.op('Mul', [x, scale]), k]), [2, 3]);
    const r = await compileAndCompare(b, dir, 'fold', [{ x: tensor([2, 3]) }], { passes: CLEANUP });
    expect(r.ops).toEqual({ 'ai.onnx::Mul': 1, 'ai.onnx::Add': 1 });
    expect(r.worst).toBe(0);
  });

  test('does not fold a node with a runtime input', async () => {
    const b = new ModelBuilder();
    const x = b.input('x', [4]);
    b.output(b.op('Sqrt', [b.op('Abs', [x])]), [4]);
    const r = await compileAndCompare(b, dir, 'nofold', [{ x: tensor([4]) }], { passes: ['fold-constants'] });
    expect(r.ops).toEqual({ 'ai.onnx::Abs': 1, 'ai.onnx::Sqrt': 1 });
  });

  test('does not create a constant above the size limit, nor grow through Expand past 64 KB; a 77×77 mask folds', async () => {
    const b = new ModelBuilder();
    const x = b.input('x', [512, 1024]);
    const big = b.op('ConstantOfShape', [b.ints('s', [512, 1024])], { value: Tensor.fromValues('v', DataType.FLOAT, [1], [2]) });
    const grown = b.op('Expand', [b.scalar('three', 3), b.ints('s2', [256, 256])]);
    b.output(b.op('Add', [b.op('Mul', [x, big]), b.op('ReduceSum', [grown], { keepdims: 0 })]), [512, 1024]);
    const r = await compileAndCompare(b, dir, 'toobig', [{ x: tensor([512, 1024]) }], { passes: ['fold-constants'] });
    expect(r.ops['ai.onnx::ConstantOfShape']).toBe(1);
    expect(r.ops['ai.onnx::Expand']).toBe(1);
    expect(r.report.passes[0].counts!.leftTooBig).toBe(2);
    expect(r.worst).toBe(0);
    // a causal mask's size (CLIP, 77 tokens: 23 KB) folds: no int64 mask arithmetic left for the CPU
    const m = new ModelBuilder();
    const y = m.input('y', [77, 77]);
    const mask = m.op('Where', [m.op('Less', [m.op('Range', [m.scalar('z', 0, DataType.INT64), m.scalar('n', 77, DataType.INT64), m.scalar('one', 1, DataType.INT64)]), m.ints('col', [40])]), m.scalar('neg', -1e4), m.op('ConstantOfShape', [m.ints('s3', [77, 77])], { value: Tensor.fromValues('zv', DataType.FLOAT, [1], [0]) })]);
    m.output(m.op('Add', [y, mask]), [77, 77]);
    const small = await compileAndCompare(m, dir, 'mask', [{ y: tensor([77, 77]) }], { passes: ['fold-constants'] });
    expect(small.ops).toEqual({ 'ai.onnx::Add': 1 });
    expect(small.worst).toBe(0);
  });
});

describe('simplify-shapes', () => {
  test('a symbolic reshape target becomes [0, 0, 8, 8]: no Shape op left, right at any batch and length', async () => {
    const b = new ModelBuilder();
    const x = b.input('x', ['batch', 'seq', 64]);
    b.output(b.op('Transpose', [headSplit(b, x)], { perm: [0, 2, 1, 3] }));
    const feeds = [{ x: tensor([1, 5, 64]) }, { x: tensor([3, 17, 64]) }];
    const r = await compileAndCompare(b, dir, 'headsplit', feeds, { passes: CLEANUP });
    expect(r.ops).toEqual({ 'ai.onnx::Reshape': 1, 'ai.onnx::Transpose': 1 });
    expect(r.worst).toBe(0);
  });

  test('a genuinely dynamic target stays computed: [batch*8, seq, 8] from [batch, 8, seq, 8]', async () => {
    const b = new ModelBuilder();
    const x = b.input('x', ['batch', 8, 'seq', 8]);
    const shape = b.op('Shape', [x]);
    const bs = b.op('Gather', [shape, b.scalar('i0', 0, DataType.INT64)], { axis: 0 });
    const seq = b.op('Gather', [shape, b.scalar('i2', 2, DataType.INT64)], { axis: 0 });
    const b8 = b.op('Unsqueeze', [b.op('Mul', [bs, b.scalar('eight', 8, DataType.INT64)]), b.ints('a0', [0])]);
    const target = b.op('Concat', [b8, b.op('Unsqueeze', [seq, b.ints('a1', [0])]), b.ints('d', [8])], { axis: 0 });
    b.output(b.op('Reshape', [x, target]));
    const feeds = [{ x: tensor([2, 8, 3, 8]) }, { x: tensor([1, 8, 7, 8]) }];
    const r = await compileAndCompare(b, dir, 'dynamic', feeds, { passes: CLEANUP });
    expect(r.ops['ai.onnx::Shape']).toBe(1);
    expect(r.worst).toBe(0);
    // with a static shape key, the same graph folds completely
    const s = await compileAndCompare(b, dir, 'dynamic-static', [{ x: tensor([2, 8, 3, 8]) }], { mode: 'reduce-overhead', shapes: 'x=2x8x3x8' });
    expect(s.ops).toEqual({ 'ai.onnx::Reshape': 1 });
    expect(s.worst).toBe(0);
  });
});

describe('eliminate-noops', () => {
  test('drops Identity, same-type Cast, x*1, x+0, and an identity Transpose pair', async () => {
    const b = new ModelBuilder();
    const x = b.input('x', ['n', 4]);
    let y = b.op('Identity', [x]);
    y = b.op('Cast', [y], { to: DataType.FLOAT });
    y = b.op('Mul', [y, b.scalar('one', 1)]);
    y = b.op('Add', [b.const('zeros', [4], [0, 0, 0, 0]), y]);
    y = b.op('Transpose', [b.op('Transpose', [y], { perm: [1, 0] })], { perm: [1, 0] });
    b.output(b.op('Relu', [y]));
    const r = await compileAndCompare(b, dir, 'noops', [{ x: tensor([3, 4]) }], { passes: CLEANUP });
    expect(r.ops).toEqual({ 'ai.onnx::Relu': 1 });
    expect(r.worst).toBe(0);
  });

  test('keeps x*1 when the constant broadcasts x to a larger shape, and Cast that changes type', async () => {
    const b = new ModelBuilder();
    const x = b.input('x', [4]);
    const y = b.op('Mul', [x, b.const('ones', [3, 4], Array(12).fill(1))]);
    b.output(b.op('Cast', [y], { to: DataType.DOUBLE }), [3, 4], DataType.DOUBLE);
    const r = await compileAndCompare(b, dir, 'keepnoops', [{ x: tensor([4]) }], { passes: CLEANUP });
    expect(r.ops).toEqual({ 'ai.onnx::Mul': 1, 'ai.onnx::Cast': 1 });
    expect(r.worst).toBe(0);
  });

  test('merges two Transposes into one with the composed permutation', async () => {
    const b = new ModelBuilder();
    const x = b.input('x', [2, 3, 4]);
    b.output(b.op('Transpose', [b.op('Transpose', [x], { perm: [1, 0, 2] })], { perm: [2, 0, 1] }));
    const r = await compileAndCompare(b, dir, 'tchain', [{ x: tensor([2, 3, 4]) }], { passes: CLEANUP });
    expect(r.ops).toEqual({ 'ai.onnx::Transpose': 1 });
    expect(r.worst).toBe(0);
  });
});

describe('eliminate-duplicates and eliminate-dead', () => {
  test('computes a repeated expression once and drops unused nodes', async () => {
    const b = new ModelBuilder();
    const x = b.input('x', [4]);
    const a1 = b.op('Sigmoid', [x]);
    const a2 = b.op('Sigmoid', [x]);
    b.op('Exp', [x]); // read by nobody
    b.output(b.op('Add', [b.op('Mul', [x, a1]), b.op('Mul', [x, a2])]));
    const r = await compileAndCompare(b, dir, 'cse', [{ x: tensor([4]) }], { passes: CLEANUP });
    expect(r.ops).toEqual({ 'ai.onnx::Sigmoid': 1, 'ai.onnx::Mul': 1, 'ai.onnx::Add': 1 });
    expect(r.worst).toBe(0);
  });

  test('keeps a graph output even when it is only an input passed through', async () => {
    const b = new ModelBuilder();
    const x = b.input('x', [2]);
    b.output(b.op('Identity', [x]), [2]);
    const r = await compileAndCompare(b, dir, 'passthrough', [{ x: tensor([2]) }], { passes: CLEANUP });
    expect(r.ops).toEqual({ 'ai.onnx::Identity': 1 });
    expect(r.worst).toBe(0);
  });
});

test('Slice(Concat(a, b)) selecting exactly one input is that input (the sin/cos flip of a timestep embedding)', async () => {
  const { ModelBuilder } = await import('../../src/ir/builder');
  const { saveModel } = await import('../../src/onnx/write');
  const { compile } = await import('../../src/compiler/compile');
  const { tensor, runModel, bitEqual, tmpDir } = await import('../helpers/ort');
  const d = tmpDir();
  const b = new ModelBuilder();
  const t = b.input('t', [2, 4]);
  const cat = b.op('Concat', [b.op('Sin', [t]), b.op('Cos', [t])], { axis: -1 });
  const slice = (from: number, to: number, n: string) => b.op('Slice', [cat, b.ints(`${n}s`, [from]), b.ints(`${n}e`, [to]), b.ints(`${n}a`, [1])]);
  b.output(b.op('Concat', [slice(4, 8, 'hi'), slice(0, 4, 'lo')], { axis: -1 }));
  b.output(slice(2, 6, 'mid')); // spans both inputs: stays
  const src = saveModel(b.model, `${d}/flip.onnx`);
  const r = compile(src, { output: `${d}/flip.out.onnx`, target: 'cpu' });
  expect(r.opsAfter['ai.onnx::Slice']).toBe(1);
  const feeds = { t: tensor([2, 4], 3) };
  const [x, y] = [await runModel(src, feeds), await runModel(`${d}/flip.out.onnx`, feeds)];
  for (const k of Object.keys(x)) expect(bitEqual(x[k], y[k])).toBe(true);
});
