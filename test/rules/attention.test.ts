import * as fs from 'fs';
import { Value } from '../../src/ir/graph';
import { ModelBuilder } from '../../src/ir/builder';
import { compileAndCompare } from '../helpers/check';
import { randomFloats, tensor, tmpDir } from '../helpers/ort';

const dir = tmpDir();
afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));

const H = 4;
const D = 8;
const C = H * D;

interface Opts {
  style: '4d' | '3d';
  /** scale applied as sqrt(scale) on q and k (4d, torch-2) or once on the scores (3d, baddbmm) */
  scale?: number;
  softmaxAxis?: number;
  mask?: boolean;
  cross?: boolean;
  runtimeScale?: boolean;
  scoresAlsoOutput?: boolean;
}

/** One attention block the way the exporters write it, on x [2, 6, C] (and context [2, 5, C] for cross). */
function attention(o: Opts): { b: ModelBuilder; feeds: Record<string, ReturnType<typeof tensor>> } {
  const b = new ModelBuilder();
  const x = b.input('x', [2, 6, C]);
  const ctxv = o.cross ? b.input('context', [2, 5, C]) : x;
  const T = o.cross ? 5 : 6;
  const w = (name: string, seed: number) => b.const(name, [C, C], Array.from(randomFloats(C * C, seed), (v) => v * 0.3));
  const q = b.op('MatMul', [x, w('wq', 1)]);
  const k = b.op('MatMul', [ctxv, w('wk', 2)]);
  const v = b.op('MatMul', [ctxv, w('wv', 3)]);
  const scale = o.scale ?? 1 / Math.sqrt(D);
  const runtime = o.runtimeScale ? b.input('s', [1]) : null;
  let scores: Value;
  let vh: Value;
  if (o.style === '4d') {
    const heads = (t: Value, perm: number[]) => b.op('Transpose', [b.op('Reshape', [t, b.ints(`r${t.name}`, [0, -1, H, D])])], { perm });
    const c = Math.sqrt(scale);
    const qh = b.op('Mul', [heads(q, [0, 2, 1, 3]), runtime ?? b.const('cq', [1], [c])]);
    const kt = b.op('Mul', [heads(k, [0, 2, 3, 1]), b.const('ck', [1], [c])]);
    scores = b.op('MatMul', [qh, kt]);
    vh = heads(v, [0, 2, 1, 3]);
  } else {
    const heads3 = (t: Value, len: number) => b.op('Reshape', [b.op('Transpose', [b.op('Reshape', [t, b.ints(`a${t.name}`, [2, len, H, D])])], { perm: [0, 2, 1, 3] }), b.ints(`b${t.name}`, [2 * H, len, D])]);
    const qh = heads3(q, 6);
    const kt = b.op('Transpose', [heads3(k, T)], { perm: [0, 2, 1] });
    scores = b.op('Mul', [b.op('MatMul', [qh, kt]), runtime ?? b.scalar('scale', scale)]);
    vh = heads3(v, T);
  }
  if (o.mask) scores = b.op('Add', [scores, b.input('mask', [6, T])]);
  const probs = b.op('Softmax', [scores], { axis: o.softmaxAxis ?? -1 });
  const out = b.op('MatMul', [probs, vh]);
  const merged = o.style === '4d'
    ? b.op('Reshape', [b.op('Transpose', [out], { perm: [0, 2, 1, 3] }), b.ints('rout', [0, -1, C])])
    : b.op('Reshape', [b.op('Transpose', [b.op('Reshape', [out, b.ints('o1', [2, H, 6, D])])], { perm: [0, 2, 1, 3] }), b.ints('o2', [2, 6, C])]);
  b.output(merged, [2, 6, C]);
  if (o.scoresAlsoOutput) b.output(scores);
  const feeds: Record<string, ReturnType<typeof tensor>> = { x: tensor([2, 6, C], 5) };
  if (o.cross) feeds.context = tensor([2, 5, C], 6);
  if (o.mask) feeds.mask = tensor([6, T], 7);
  if (o.runtimeScale) feeds.s = tensor([1], 8);
  return { b, feeds };
}

const PASSES = ['fold-constants', 'simplify-shapes', 'eliminate-noops', 'fuse-attention', 'eliminate-dead'];

async function run(name: string, o: Opts) {
  const { b, feeds } = attention(o);
  const r = await compileAndCompare(b, dir, name, [feeds], { passes: PASSES });
  const site = r.report.explanations.find((e) => e.pass === 'fuse-attention')!;
  return { ...r, site, mha: r.ops['com.microsoft::MultiHeadAttention'] ?? 0 };
}

describe('fuses every exporter style', () => {
  test.each([
    ['torch-2 SDPA (4-D heads, sqrt scale on q and k)', { style: '4d' as const }],
    ['torch-1 (3-D batched heads, scale on the scores)', { style: '3d' as const }],
    ['cross-attention, 4-D', { style: '4d' as const, cross: true }],
    ['cross-attention, 3-D', { style: '3d' as const, cross: true }],
  ])('%s', async (_label, o) => {
    const r = await run(`attn-${o.style}-${o.cross ? 'x' : 's'}`, o);
    expect(r.site.status).toBe('applied');
    expect(r.mha).toBe(1);
    expect(r.ops['ai.onnx::Softmax']).toBeUndefined();
    expect(r.worst).toBeLessThan(1e-5);
  });
});

test('a non-default scale is written into the fused op', async () => {
  const r = await run('attn-scale', { style: '3d', scale: 0.05 });
  expect(r.mha).toBe(1);
  expect(r.site.reason).toMatch(/scale=0\.0500000/);
  expect(r.worst).toBeLessThan(1e-5);
});

test('an additive mask becomes the attention bias', async () => {
  const r = await run('attn-mask', { style: '4d', mask: true });
  expect(r.mha).toBe(1);
  expect(r.site.reason).toMatch(/with mask/);
  expect(r.worst).toBeLessThan(1e-5);
});

describe('look-alikes that must not fuse', () => {
  test('softmax over another axis', async () => {
    const r = await run('attn-axis', { style: '4d', softmaxAxis: 2 });
    expect(r.mha).toBe(0);
    expect(r.site.reason).toMatch(/not the last/);
    expect(r.worst).toBe(0);
  });

  test('a scale known only at run time', async () => {
    const r = await run('attn-runtime-scale', { style: '3d', runtimeScale: true });
    expect(r.mha).toBe(0);
    expect(r.site.status).toBe('skipped');
    expect(r.worst).toBe(0);
  });

  test('scores read by another consumer', async () => {
    const r = await run('attn-extra', { style: '4d', scoresAlsoOutput: true });
    expect(r.mha).toBe(0);
    expect(r.site.status).toBe('skipped');
    expect(r.worst).toBe(0);
  });
});

test('targets: cpu gets MultiHeadAttention; an opset-23 model gets ai.onnx Attention', async () => {
  const { b, feeds } = attention({ style: '4d' });
  b.model.opsets.set('', 23);
  b.model.irVersion = 10;
  const r = await compileAndCompare(b, dir, 'attn-23', [feeds], { passes: PASSES });
  expect(r.ops['ai.onnx::Attention']).toBe(1);
  expect(r.ops['com.microsoft::MultiHeadAttention']).toBeUndefined();
  expect(r.worst).toBeLessThan(1e-5);
});
