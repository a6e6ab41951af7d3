import * as fs from 'fs';
import * as path from 'path';
import * as ort from 'onnxruntime-node';
import { Target } from '../../src/targets';
import { lowerToCpu } from '../../src/verify/lower';
import { Value } from '../../src/ir/graph';
import { ModelBuilder } from '../../src/ir/builder';
import { compileAndCompare } from '../helpers/check';
import { randomFloats, relError, runModel, tensor, tmpDir } from '../helpers/ort';

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
  /** 3d: the mask added before the scale (so the kernel's bias must be scaled too) */
  maskBeforeScale?: boolean;
  /** a second mask (a padding mask beside the causal one) */
  secondMask?: boolean;
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
    const qk = b.op('MatMul', [qh, kt]);
    scores = b.op('Mul', [o.maskBeforeScale ? b.op('Add', [qk, b.input('mask', [6, T])]) : qk, runtime ?? b.scalar('scale', scale)]);
    vh = heads3(v, T);
  }
  if (o.mask && !o.maskBeforeScale) scores = b.op('Add', [scores, b.input('mask', [6, T])]);
  if (o.secondMask) scores = b.op('Add', [scores, b.input('mask2', [2, 1, 1, T].slice(o.style === '4d' ? 0 : 2).map((d, i, a) => (i === a.length - 2 ? 6 : d)))]);
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
  if (o.secondMask) feeds.mask2 = tensor(o.style === '4d' ? [2, 1, 6, T] : [6, T], 12);
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

test.each([
  ['a mask added before the scale is scaled into the bias', { style: '3d' as const, mask: true, maskBeforeScale: true, scale: 0.05 }],
  ['two masks (causal and padding) are summed into one bias', { style: '4d' as const, mask: true, secondMask: true }],
])('%s', async (label, o) => {
  const r = await run(`attn-${label.split(' ')[1]}`, o);
  expect(r.mha).toBe(1);
  expect(r.site.reason).toMatch(o.secondMask ? /with masks \(2, summed\)/ : /with mask/);
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

/**
 * transformers' eager CLIP attention on symbolic [batch, seq]: q scaled before the head split, 3-D batched
 * heads, the causal mask added to a [B, H, S, S] view of the [B·H, S, S] scores between two reshapes.
 */
function clipAttention(maskShape: (string | number)[] = ['batch', 1, 'seq', 'seq']): ModelBuilder {
  const b = new ModelBuilder();
  const x = b.input('x', ['batch', 'seq', C]);
  const mask = b.input('mask', maskShape);
  const w = (name: string, seed: number) => b.const(name, [C, C], Array.from(randomFloats(C * C, seed), (v) => v * 0.3));
  const seqDim = b.op('Slice', [b.op('Shape', [x]), b.ints('s1', [1]), b.ints('s2', [2])]);
  const batchDim = b.op('Slice', [b.op('Shape', [x]), b.ints('b0', [0]), b.ints('b1', [1])]);
  const shape = (...parts: Value[]) => b.op('Concat', parts, { axis: 0 });
  const heads3 = (t: Value, name: string) => b.op('Reshape', [b.op('Transpose', [b.op('Reshape', [t, b.ints(`${name}a`, [0, -1, H, D])])], { perm: [0, 2, 1, 3] }), shape(b.ints(`${name}b`, [-1]), seqDim, b.ints(`${name}d`, [D]))]);
  const q = heads3(b.op('Mul', [b.op('MatMul', [x, w('wq', 1)]), b.scalar('scale', 1 / Math.sqrt(D))]), 'q');
  const k = heads3(b.op('MatMul', [x, w('wk', 2)]), 'k');
  const v = heads3(b.op('MatMul', [x, w('wv', 3)]), 'v');
  const scores4 = b.op('Add', [b.op('Reshape', [b.op('MatMul', [q, b.op('Transpose', [k], { perm: [0, 2, 1] })]), shape(batchDim, b.ints('h', [H]), seqDim, seqDim)]), mask]);
  const probs = b.op('Softmax', [b.op('Reshape', [scores4, shape(b.ints('m1', [-1]), seqDim, seqDim)])], { axis: -1 });
  const out = b.op('Reshape', [b.op('Transpose', [b.op('Reshape', [b.op('MatMul', [probs, v]), shape(b.ints('o1', [-1, H]), seqDim, b.ints('od', [D]))])], { perm: [0, 2, 1, 3] }), b.ints('o2', [0, 0, C])]);
  b.output(out, ['batch', 'seq', C]);
  return b;
}

/** A causal mask as transformers builds it: 0 on and below the diagonal, float32's lowest above. */
function causal(batch: number, seq: number) {
  const data = new Float32Array(batch * seq * seq);
  for (let i = 0; i < data.length; i++) if (i % seq > Math.floor(i / seq) % seq) data[i] = -3.4028234663852886e38;
  return new ort.Tensor('float32', data, [batch, 1, seq, seq]);
}

describe('masks and single heads', () => {
  test('CLIP: a causal mask on a 4-D view of 3-D scores becomes the attention bias, at any batch and length', async () => {
    const feeds = [[1, 7], [2, 5]].map(([bt, s]) => ({ x: tensor([bt, s, C], 9), mask: causal(bt, s) }));
    const r = await compileAndCompare(clipAttention(), dir, 'attn-clip', feeds, { passes: PASSES });
    const site = r.report.explanations.find((e) => e.pass === 'fuse-attention')!;
    expect(site.status).toBe('applied');
    expect(site.reason).toMatch(/3d heads=4 .*with mask/);
    expect(r.ops['com.microsoft::MultiHeadAttention']).toBe(1);
    expect(r.ops['ai.onnx::Softmax']).toBeUndefined();
    expect(r.worst).toBeLessThan(1e-5);
    // the oracle's lowering (used where a provider's kernel is in doubt) adds the bias as the kernel does
    const out = path.join(dir, 'attn-clip.out.onnx');
    const lowered = path.join(dir, 'attn-clip.lowered.onnx');
    expect(lowerToCpu(out, lowered, ['MultiHeadAttention'])).toBe(1);
    for (const f of feeds) {
      const [a, c] = [await runModel(out, f), await runModel(lowered, f)];
      for (const key of Object.keys(a)) expect(relError(a[key], c[key])).toBeLessThan(1e-5);
    }
  });

  test('opset 23: the causal mask becomes ai.onnx Attention\'s attn_mask', async () => {
    const b = clipAttention();
    b.model.opsets.set('', 23);
    b.model.irVersion = 10;
    const r = await compileAndCompare(b, dir, 'attn-clip-23', [{ x: tensor([2, 6, C], 9), mask: causal(2, 6) }], { passes: PASSES });
    expect(r.ops['ai.onnx::Attention']).toBe(1);
    expect(r.worst).toBeLessThan(1e-5);
  });

  test('a mask that broadcasts over the queries is not a bias the kernels take', async () => {
    const r = await compileAndCompare(clipAttention(['batch', 1, 1, 'seq']), dir, 'attn-clip-row', [{ x: tensor([1, 5, C], 9), mask: tensor([1, 1, 1, 5], 3) }], { passes: PASSES });
    const site = r.report.explanations.find((e) => e.pass === 'fuse-attention')!;
    expect(site.status).toBe('skipped');
    expect(site.reason).toMatch(/kernels do not broadcast those/);
    expect(r.worst).toBe(0);
  });

  test.each(['3d', '4d'] as const)('one head (diffusers VAE attention, %s): no head split is written, yet it fuses with num_heads 1', async (style) => {
    const b = new ModelBuilder();
    const x = b.input('x', ['batch', 'hw', C]);
    const w = (name: string, seed: number) => b.const(name, [C, C], Array.from(randomFloats(C * C, seed), (v) => v * 0.3));
    // [B, S, C] → [B, S, 1, C] → [B, 1, S, C] (→ [B, S, C] for 3d)
    const head = (t: Value, name: string, perm = [0, 2, 1, 3]) => {
      const four = b.op('Transpose', [b.op('Reshape', [t, b.ints(`${name}a`, [0, 0, 1, C])])], { perm });
      return style === '4d' ? four : b.op('Reshape', [four, b.ints(`${name}b`, [0, -1, C])]);
    };
    const q = head(b.op('MatMul', [x, w('wq', 1)]), 'q');
    const k = head(b.op('MatMul', [x, w('wk', 2)]), 'k');
    const v = head(b.op('MatMul', [x, w('wv', 3)]), 'v');
    const kt = b.op('Transpose', [k], { perm: style === '4d' ? [0, 1, 3, 2] : [0, 2, 1] });
    const probs = b.op('Softmax', [b.op('Mul', [b.op('MatMul', [q, kt]), b.scalar('scale', 1 / Math.sqrt(C))])], { axis: -1 });
    const pv = b.op('MatMul', [probs, v]);
    const merged = style === '4d'
      ? b.op('Reshape', [b.op('Transpose', [pv], { perm: [0, 2, 1, 3] }), b.ints('o', [0, 0, C])])
      : b.op('Reshape', [b.op('Transpose', [b.op('Reshape', [pv, b.ints('o1', [0, 1, -1, C])])], { perm: [0, 2, 1, 3] }), b.ints('o2', [0, 0, C])]);
    b.output(merged, ['batch', 'hw', C]);
    const r = await compileAndCompare(b, dir, `attn-single-${style}`, [{ x: tensor([2, 12, C], 4) }, { x: tensor([1, 40, C], 5) }], { passes: PASSES });
    const site = r.report.explanations.find((e) => e.pass === 'fuse-attention')!;
    expect(site.reason).toMatch(new RegExp(`${style} heads=1 head_dim=${C}`));
    expect(r.ops['com.microsoft::MultiHeadAttention']).toBe(1);
    expect(r.worst).toBeLessThan(1e-5);
  });

  test('the kernel table says which targets take an attention bias or a causal flag', () => {
    for (const t of ['cpu', 'webgpu', 'cuda'] as const) expect(new Target(t).accepts('com.microsoft', 'MultiHeadAttention', { options: ['attention_bias'] })).toBeNull();
    expect(new Target('cpu').accepts('com.microsoft', 'MultiHeadAttention', { options: ['unidirectional'] })).toBeNull();
    expect(new Target('webgpu').accepts('com.microsoft', 'MultiHeadAttention', { options: ['unidirectional'] })).toMatch(/does not take unidirectional/);
  });
});
