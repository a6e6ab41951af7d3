import * as fs from 'fs';
import * as path from 'path';
import { compile } from '../src/compiler/compile';
import { SdcError } from '../src/ir/errors';
import { ModelBuilder } from '../src/ir/builder';
import { saveModel } from '../src/onnx/write';
import { tmpDir } from './helpers/ort';

const dir = tmpDir();
afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));

/** Compile a model built in code in every mode and for every target: each ends in a model or an SdcError. */
function outcomes(name: string, b: ModelBuilder, shapes?: string): string[] {
  const file = saveModel(b.model, path.join(dir, `${name}.onnx`));
  const seen: string[] = [];
  for (const target of ['cpu', 'webgpu', 'cuda'] as const) {
    for (const mode of ['default', 'reduce-overhead'] as const) {
      try {
        compile(file, { dryRun: true, target, mode, shapes: mode === 'reduce-overhead' ? shapes : undefined });
        seen.push('ok');
      } catch (e) {
        if (!(e instanceof SdcError)) throw e;
        expect(e.file).toBe(file);
        seen.push(e.problem);
      }
    }
  }
  return seen;
}

/** An attention block (4 heads of 8) whose key transpose has an invalid perm. */
function attentionWithPerm(perm: number[]): ModelBuilder {
  const b = new ModelBuilder();
  const x = b.input('x', [2, 6, 32]);
  const heads = (t: ReturnType<typeof b.input>, p: number[]) => b.op('Transpose', [b.op('Reshape', [t, b.ints(`r${t.name}`, [0, -1, 4, 8])])], { perm: p });
  const q = heads(b.op('MatMul', [x, b.const('wq', [32, 32], new Float32Array(1024).fill(0.01))]), [0, 2, 1, 3]);
  const k = heads(b.op('MatMul', [x, b.const('wk', [32, 32], new Float32Array(1024).fill(0.02))]), perm);
  const v = heads(b.op('MatMul', [x, b.const('wv', [32, 32], new Float32Array(1024).fill(0.03))]), [0, 2, 1, 3]);
  const o = b.op('MatMul', [b.op('Softmax', [b.op('MatMul', [q, k])], { axis: -1 }), v]);
  b.output(b.op('Reshape', [b.op('Transpose', [o], { perm: [0, 2, 1, 3] }), b.ints('ro', [0, -1, 32])]));
  return b;
}

test.each([
  ['a perm past the rank', [0, 2, 3, 9]],
  ['a perm repeating an axis', [0, 2, 2, 1]],
  ['a perm too short', [0, 2, 1]],
])('attention with %s on the keys: refused or left alone, never a crash', (_what, perm) => {
  for (const r of outcomes(`att-${perm.join('')}`, attentionWithPerm(perm), 'x=2x6x32')) expect(r === 'ok' || /perm|axes|rank|contradicts/.test(r)).toBe(true);
});

test('a Gather past the end of a Shape is an invalid model, named', () => {
  const b = new ModelBuilder();
  const x = b.input('x', ['n', 4]);
  const d = b.op('Gather', [b.op('Shape', [x]), b.ints('idx', [5])], { axis: 0 }, { name: 'bad_gather' });
  b.output(b.op('Reshape', [x, b.op('Concat', [b.ints('m1', [-1]), d], { axis: 0 })]));
  const r = outcomes('gather-shape', b, 'x=2x4');
  expect(r.some((p) => /bad_gather/.test(p))).toBe(true);
  for (const p of r) expect(p === 'ok' || /bad_gather|contradicts/.test(p)).toBe(true);
});

test.each([
  ['Concat of mismatched ranks', (b: ModelBuilder) => b.op('Concat', [b.ints('a', [1, 2]), b.const('m', [1, 2], [1, 2], 7)], { axis: 0 }, { name: 'bad' }), /bad.*rank 1 and 2/],
  ['Gather on an out-of-range axis', (b: ModelBuilder) => b.op('Gather', [b.ints('a', [1, 2]), b.ints('i', [0])], { axis: 3 }, { name: 'bad' }), /node 'bad' \(Gather\) has axis 3, out of range for its input of rank 1/],
  ['Squeeze of a non-1 axis', (b: ModelBuilder) => b.op('Squeeze', [b.ints('a', [1, 2]), b.ints('ax', [0])], {}, { name: 'bad' }), /bad.*squeezes axis 0 of size 2/],
  ['Transpose with a perm past the rank', (b: ModelBuilder) => b.op('Transpose', [b.const('m', [1, 2], [1, 2], 7)], { perm: [0, 5] }, { name: 'bad' }), /node 'bad' \(Transpose\) has perm \[0, 5\], which is not a permutation/],
  ['Slice on an axis past the rank', (b: ModelBuilder) => b.op('Slice', [b.ints('a', [1, 2, 3]), b.ints('st', [0]), b.ints('en', [2]), b.ints('ax', [4])], {}, { name: 'bad' }), /bad.*axis 4 for a tensor of rank 1/],
  ['Unsqueeze with a repeated axis', (b: ModelBuilder) => b.op('Unsqueeze', [b.ints('a', [1, 2]), b.ints('ax', [0, 0])], {}, { name: 'bad' }), /bad.*repeats an axis/],
  ['ConstantOfShape of a negative dim', (b: ModelBuilder) => b.op('ConstantOfShape', [b.ints('s', [-3])], {}, { name: 'bad' }), /bad.*negative dims/],
])('constant folding refuses %s, naming the node', (_what, make, message) => {
  const b = new ModelBuilder();
  const x = b.input('x', [2]);
  b.output(b.op('Add', [x, b.op('Cast', [b.op('ReduceSum', [make(b)], { keepdims: 0 })], { to: 1 })]));
  const file = saveModel(b.model, path.join(dir, `fold-${String(message).length}.onnx`));
  expect(() => compile(file, { dryRun: true })).toThrow(message);
});

test('ConstantOfShape, Range, Tile and Expand of absurd sizes are left unfolded, not allocated', () => {
  const b = new ModelBuilder();
  const x = b.input('x', [1]);
  const big = b.op('ConstantOfShape', [b.ints('s', [2 ** 20, 2 ** 20])]);
  const r = b.op('Range', [b.scalar('s0', 0), b.scalar('s1', 1e12), b.scalar('s2', 1)]);
  b.output(b.op('Add', [x, b.op('ReduceSum', [b.op('Cast', [big], { to: 1 })], { keepdims: 0 })]));
  b.output(r);
  const file = saveModel(b.model, path.join(dir, 'absurd.onnx'));
  const report = compile(file, { dryRun: true });
  expect(report.opsAfter['ai.onnx::ConstantOfShape']).toBe(1);
  expect(report.opsAfter['ai.onnx::Range']).toBe(1);
});
