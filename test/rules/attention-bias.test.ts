import * as fs from 'fs';
import * as path from 'path';
import { ModelBuilder } from '../../src/ir/builder';
import { Value } from '../../src/ir/graph';
import { lowerToCpu } from '../../src/verify/lower';
import { compileAndCompare } from '../helpers/check';
import { randomFloats, relError, runModel, tensor, tmpDir } from '../helpers/ort';

const dir = tmpDir();
afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));

const H = 2;
const D = 8;
const C = H * D;

/** Self-attention whose q, k, v projections have biases (CLIP's, the VAE's), 4-D heads, on x [batch, seq, C]. */
function biased(o: { biasShape?: number[]; vWithoutBias?: boolean } = {}): ModelBuilder {
  const b = new ModelBuilder();
  const x = b.input('x', ['batch', 'seq', C]);
  const proj = (r: string, seed: number, bias = true) => {
    const y = b.op('MatMul', [x, b.const(`w${r}`, [C, C], Array.from(randomFloats(C * C, seed), (v) => v * 0.3))]);
    const shape = o.biasShape ?? [C];
    return bias ? b.op('Add', [y, b.const(`b${r}`, shape, Array.from(randomFloats(C, seed + 10)))]) : y;
  };
  const heads = (t: Value, perm: number[]) => b.op('Transpose', [b.op('Reshape', [t, b.ints(`r${t.name}`, [0, -1, H, D])])], { perm });
  const q = heads(proj('q', 1), [0, 2, 1, 3]);
  const kt = heads(proj('k', 2), [0, 2, 3, 1]);
  const v = heads(proj('v', 3, !o.vWithoutBias), [0, 2, 1, 3]);
  const probs = b.op('Softmax', [b.op('Mul', [b.op('MatMul', [q, kt]), b.scalar('scale', 1 / Math.sqrt(D))])], { axis: -1 });
  b.output(b.op('Reshape', [b.op('Transpose', [b.op('MatMul', [probs, v])], { perm: [0, 2, 1, 3] }), b.ints('merge', [0, 0, C])]), ['batch', 'seq', C]);
  return b;
}

const feeds = [{ x: tensor([2, 5, C], 4) }, { x: tensor([1, 9, C], 5) }];
const PASSES = ['cleanup', 'fuse-attention', 'eliminate-dead'];
const site = (r: Awaited<ReturnType<typeof compileAndCompare>>) => r.report.explanations.find((e) => e.rule === 'attention-bias');

test('the projections\' biases move into MultiHeadAttention\'s bias input, same numbers (and through its lowering)', async () => {
  const r = await compileAndCompare(biased(), dir, 'biased', feeds, { passes: PASSES });
  expect(r.ops['com.microsoft::MultiHeadAttention']).toBe(1);
  expect(r.ops['ai.onnx::Add']).toBeUndefined();
  expect(site(r)).toMatchObject({ status: 'applied', reason: `bias [${3 * C}] into MultiHeadAttention` });
  expect(r.worst).toBeLessThan(1e-5);
  const out = path.join(dir, 'biased.out.onnx');
  const lowered = path.join(dir, 'biased.lowered.onnx');
  lowerToCpu(out, lowered, ['MultiHeadAttention']);
  for (const f of feeds) {
    const [a, c] = [await runModel(out, f), await runModel(lowered, f)];
    expect(relError(Object.values(a)[0], Object.values(c)[0])).toBeLessThan(1e-5);
  }
});

test('webgpu: the biased self-attention packs into one com.microsoft Attention carrying that bias', async () => {
  const r = await compileAndCompare(biased(), dir, 'biased-packed', feeds, { passes: [...PASSES, 'fuse-packed-attention', 'eliminate-dead'], target: 'webgpu' });
  expect(r.ops).toMatchObject({ 'com.microsoft::Attention': 1 });
  expect(r.ops['com.microsoft::MultiHeadAttention']).toBeUndefined();
  expect(r.ops['ai.onnx::MatMul']).toBeUndefined();
  expect(r.worst).toBeLessThan(1e-5);
});

test('look-alikes: a projection without bias, a bias that is not one value per channel', async () => {
  const partial = await compileAndCompare(biased({ vWithoutBias: true }), dir, 'partial', feeds, { passes: PASSES });
  expect(partial.ops['com.microsoft::MultiHeadAttention']).toBe(1);
  expect(partial.ops['ai.onnx::Add']).toBe(2);
  expect(site(partial)).toBeUndefined();
  expect(partial.worst).toBeLessThan(1e-5);
  const rowBias = await compileAndCompare(biased({ biasShape: [1, C] }), dir, 'row-bias', feeds, { passes: PASSES });
  expect(rowBias.ops['ai.onnx::Add']).toBe(3);
  expect(rowBias.worst).toBeLessThan(1e-5);
});
