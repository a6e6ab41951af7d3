import * as fs from 'fs';
import { Value } from '../../src/ir/graph';
import { compile } from '../../src/compiler/compile';
import { float, ModelBuilder } from '../../src/ir/builder';
import { compileAndCompare } from '../helpers/check';
import { randomFloats, tensor, tmpDir } from '../helpers/ort';
import * as path from 'path';
import { saveModel } from '../../src/onnx/write';

const dir = tmpDir();
afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));

/** GroupNorm the way torch exports it, on x [N, 8, 4, 4] with 4 groups, then optional affine and SiLU. */
function groupNorm(opset: number, o: { affine?: boolean; silu?: boolean; eps?: number; flatBack?: boolean } = {}) {
  const b = new ModelBuilder(opset);
  const x = b.input('x', ['n', 8, 4, 4]);
  const r = b.op('Reshape', [x, b.ints('g', [0, 4, -1])]);
  const inorm = b.op('InstanceNormalization', [r, b.const('s', [4], [1, 1, 1, 1]), b.const('b', [4], [0, 0, 0, 0])], { epsilon: float(o.eps ?? 1e-5) });
  let y: Value = b.op('Reshape', [inorm, o.flatBack ? b.ints('back', [0, 8, 16]) : b.op('Shape', [x])]);
  if (o.affine) {
    y = b.op('Mul', [y, b.const('gamma', [8, 1, 1], Array.from(randomFloats(8, 3)))]);
    y = b.op('Add', [y, b.const('beta', [8, 1, 1], Array.from(randomFloats(8, 4)))]);
  }
  if (o.silu) y = b.op('Mul', [y, b.op('Sigmoid', [y])]);
  b.output(y);
  return b;
}

const FUSE = ['fold-constants', 'simplify-shapes', 'eliminate-dead', 'fuse-group-norm', 'fuse-layer-norm', 'fuse-gelu', 'eliminate-dead'];

describe('fuse-group-norm', () => {
  test('cuda: com.microsoft GroupNorm in NHWC with the affine and SiLU folded in (structure; no CUDA provider here)', () => {
    const src = saveModel(groupNorm(17, { affine: true, silu: true }).model, path.join(dir, 'gncuda.onnx'));
    const r = compile(src, { output: path.join(dir, 'gncuda.out.onnx'), target: 'cuda' });
    expect(r.opsAfter).toEqual({ 'ai.onnx::Transpose': 2, 'com.microsoft::GroupNorm': 1 });
    expect(r.explanations.find((e) => e.rule === 'group-norm')!.reason).toMatch(/groups=4 channels=8/);
    expect(r.explanations.find((e) => e.rule === 'group-norm-silu')!.reason).toMatch(/GroupNorm \+ SiLU/);
  });

  test('cpu and webgpu keep the InstanceNormalization form (no kernel there for a fused GroupNorm)', async () => {
    for (const target of ['cpu', 'webgpu'] as const) {
      const r = await compileAndCompare(groupNorm(21, { affine: true }), dir, `gn-${target}`, [{ x: tensor([2, 8, 4, 4]) }], { target });
      expect(r.ops['ai.onnx::InstanceNormalization']).toBe(1);
      expect(r.ops['ai.onnx::GroupNormalization']).toBeUndefined();
      expect(r.worst).toBe(0);
    }
  });

  test('look-alike: normalized groups not reshaped back to the input shape', () => {
    const src = saveModel(groupNorm(17, { flatBack: true }).model, path.join(dir, 'gnflat.onnx'));
    const r = compile(src, { output: path.join(dir, 'gnflat.out.onnx'), target: 'cuda' });
    expect(r.opsAfter['com.microsoft::GroupNorm']).toBeUndefined();
    expect(r.explanations.find((e) => e.pass === 'fuse-group-norm')!.reason).toMatch(/not reshaped back|not \[N, C, H, W\]/);
  });
});

/** y = x · ½ · (1 + erf(x/√2)) in one of the exporters' association orders. */
function gelu(b: ModelBuilder, x: Value, form: 0 | 1) {
  const erfTerm = b.op('Add', [b.op('Erf', [b.op('Div', [x, b.scalar(`sqrt2_${form}`, Math.SQRT2)])]), b.scalar(`one_${form}`, 1)]);
  return form === 0 ? b.op('Mul', [b.op('Mul', [x, erfTerm]), b.scalar(`half_${form}`, 0.5)]) : b.op('Mul', [x, b.op('Mul', [b.scalar(`half_${form}`, 0.5), erfTerm])]);
}

describe('fuse-gelu', () => {
  test.each([0, 1] as const)('erf GELU (form %i) → com.microsoft Gelu on cpu', async (form) => {
    const b = new ModelBuilder();
    const x = b.input('x', [2, 5, 16]);
    b.output(gelu(b, x, form));
    const r = await compileAndCompare(b, dir, `gelu${form}`, [{ x: tensor([2, 5, 16]) }], { passes: FUSE });
    expect(r.ops).toEqual({ 'com.microsoft::Gelu': 1 });
    expect(r.worst).toBeLessThan(1e-5);
  });

  test('look-alike: x · ½ · (1 + erf(x/2)) is not GELU', async () => {
    const b = new ModelBuilder();
    const x = b.input('x', [4]);
    const erfTerm = b.op('Add', [b.op('Erf', [b.op('Div', [x, b.scalar('two', 2)])]), b.scalar('one', 1)]);
    b.output(b.op('Mul', [b.op('Mul', [x, erfTerm]), b.scalar('half', 0.5)]));
    const r = await compileAndCompare(b, dir, 'notgelu', [{ x: tensor([4]) }], { passes: FUSE });
    expect(r.ops['com.microsoft::Gelu']).toBeUndefined();
  });

  test('look-alike: an intermediate of the GELU read by a second consumer', async () => {
    const b = new ModelBuilder();
    const x = b.input('x', [4]);
    const erfTerm = b.op('Add', [b.op('Erf', [b.op('Div', [x, b.scalar('sqrt2', Math.SQRT2)])]), b.scalar('one', 1)]);
    b.output(b.op('Mul', [b.op('Mul', [x, erfTerm]), b.scalar('half', 0.5)]));
    b.output(erfTerm);
    const r = await compileAndCompare(b, dir, 'gelu-shared', [{ x: tensor([4]) }], { passes: FUSE });
    expect(r.ops['com.microsoft::Gelu']).toBeUndefined();
    expect(r.worst).toBe(0);
  });

  test('GEGLU → BiasSplitGelu on webgpu at a supported size, plain Gelu on cpu', () => {
    const b = new ModelBuilder();
    const x = b.input('x', [1, 3, 64]);
    const h = b.op('Add', [b.op('MatMul', [x, b.const('w', [64, 2560], new Float32Array(64 * 2560).fill(0.01))]), b.const('bias', [2560], new Float32Array(2560).fill(0.1))]);
    const [left, right] = b.opN('Split', [h], { axis: -1, num_outputs: 2 }, { outputs: 2 });
    b.output(b.op('Mul', [left, gelu(b, right, 1)]));
    b.model.opsets.set('', 18);
    const src = saveModel(b.model, path.join(dir, 'geglu.onnx'));
    const web = compile(src, { output: path.join(dir, 'geglu.web.onnx'), target: 'webgpu' });
    expect(web.opsAfter['com.microsoft::BiasSplitGelu']).toBe(1);
    expect(web.opsAfter['ai.onnx::Split']).toBeUndefined();
    const cpu = compile(src, { output: path.join(dir, 'geglu.cpu.onnx'), target: 'cpu' });
    expect(cpu.opsAfter['com.microsoft::BiasSplitGelu']).toBeUndefined();
    expect(cpu.opsAfter['com.microsoft::Gelu']).toBe(1);
  });
});

describe('fuse-layer-norm', () => {
  function residualLN(b: ModelBuilder, a: Value, c: Value) {
    const sum = b.op('Add', [a, c]);
    const ln = b.op('LayerNormalization', [sum, b.const('lg', [16], Array.from(randomFloats(16, 5))), b.const('lb', [16], Array.from(randomFloats(16, 6)))], { axis: -1, epsilon: float(1e-5) });
    return { sum, ln };
  }

  test('residual Add + LayerNormalization → SkipLayerNormalization, the sum passed on', async () => {
    const b = new ModelBuilder();
    const x = b.input('x', ['n', 5, 16]);
    const y = b.input('y', ['n', 5, 16]);
    const { sum, ln } = residualLN(b, x, y);
    b.output(b.op('Add', [ln, sum]));
    const r = await compileAndCompare(b, dir, 'skipln', [{ x: tensor([2, 5, 16], 1), y: tensor([2, 5, 16], 2) }], { passes: FUSE });
    expect(r.ops).toEqual({ 'com.microsoft::SkipLayerNormalization': 1, 'ai.onnx::Add': 1 });
    expect(r.worst).toBeLessThan(1e-5);
  });

  test('look-alike: a broadcast residual (different shapes) stays unfused', async () => {
    const b = new ModelBuilder();
    const x = b.input('x', [2, 5, 16]);
    const y = b.input('y', [1, 5, 16]);
    b.output(residualLN(b, x, y).ln);
    const r = await compileAndCompare(b, dir, 'skipln-bcast', [{ x: tensor([2, 5, 16], 1), y: tensor([1, 5, 16], 2) }], { passes: FUSE });
    expect(r.ops['com.microsoft::SkipLayerNormalization']).toBeUndefined();
    expect(r.worst).toBe(0);
  });

  test('look-alike: a LayerNormalization over another axis keeps its residual Add', async () => {
    const b = new ModelBuilder();
    const x = b.input('x', [2, 16, 5]);
    const y = b.input('y', [2, 16, 5]);
    const sum = b.op('Add', [x, y]);
    b.output(b.op('LayerNormalization', [sum, b.const('g1', [16, 5], Array.from(randomFloats(80, 5)))], { axis: 1, epsilon: float(1e-5) }));
    const r = await compileAndCompare(b, dir, 'ln-axis1', [{ x: tensor([2, 16, 5], 1), y: tensor([2, 16, 5], 2) }], { passes: FUSE });
    expect(r.ops['com.microsoft::SkipLayerNormalization']).toBeUndefined();
    expect(r.report.explanations.find((e) => e.pass === 'fuse-layer-norm')!.reason).toMatch(/last axis/);
    expect(r.worst).toBe(0);
  });

  test('decomposed LayerNorm (ReduceMean form) → LayerNormalization', async () => {
    const b = new ModelBuilder();
    const x = b.input('x', [2, 5, 16]);
    const mean = b.op('ReduceMean', [x], { axes: [-1], keepdims: 1 });
    const d = b.op('Sub', [x, mean]);
    const v = b.op('ReduceMean', [b.op('Pow', [d, b.scalar('two', 2)])], { axes: [-1], keepdims: 1 });
    const n = b.op('Div', [d, b.op('Sqrt', [b.op('Add', [v, b.scalar('eps', 1e-5)])])]);
    b.output(b.op('Add', [b.op('Mul', [n, b.const('g', [16], Array.from(randomFloats(16, 7)))]), b.const('bb', [16], Array.from(randomFloats(16, 8)))]));
    const r = await compileAndCompare(b, dir, 'ln', [{ x: tensor([2, 5, 16]) }], { passes: FUSE });
    expect(r.ops).toEqual({ 'ai.onnx::LayerNormalization': 1 });
    expect(r.worst).toBeLessThan(1e-5);
  });

  test('look-alike: epsilon outside the square root is not a LayerNorm', async () => {
    const b = new ModelBuilder();
    const x = b.input('x', [2, 5, 16]);
    const mean = b.op('ReduceMean', [x], { axes: [-1], keepdims: 1 });
    const d = b.op('Sub', [x, mean]);
    const v = b.op('ReduceMean', [b.op('Pow', [d, b.scalar('two', 2)])], { axes: [-1], keepdims: 1 });
    const n = b.op('Div', [d, b.op('Add', [b.op('Sqrt', [v]), b.scalar('eps', 1e-5)])]);
    b.output(b.op('Add', [b.op('Mul', [n, b.const('g', [16], Array.from(randomFloats(16, 7)))]), b.const('bb', [16], Array.from(randomFloats(16, 8)))]));
    const r = await compileAndCompare(b, dir, 'notln', [{ x: tensor([2, 5, 16]) }], { passes: FUSE });
    expect(r.ops['ai.onnx::LayerNormalization']).toBeUndefined();
    expect(r.worst).toBe(0);
  });
});

