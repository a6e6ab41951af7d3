import * as fs from 'fs';
import * as path from 'path';
import { compile } from '../../src/compiler/compile';
import { ModelBuilder } from '../../src/ir/builder';
import { Value } from '../../src/ir/graph';
import { saveModel } from '../../src/onnx/write';
import { randomFloats, relError, runModel, tensor, tmpDir } from '../helpers/ort';

const dir = tmpDir();
afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));

const B = 2;
const S = 5;
const C = 8;

interface Case {
  /** Which input each of q, k, v projects (x, or ctx [B, S, C], the same length, so a wrong packing still runs). */
  from?: ['x' | 'ctx', 'x' | 'ctx', 'x' | 'ctx'];
  /** A projection whose weight is a graph input, not a constant. */
  inputWeight?: 'q' | 'k' | 'v';
  /** Width of v's projection (q and k: C). */
  vWidth?: number;
  /** A (constant) q/k/v bias input on the MultiHeadAttention. */
  bias?: boolean;
  /** An attention bias (mask) input on the MultiHeadAttention. */
  mask?: boolean;
  /** A second MultiHeadAttention, with this head count, reading the same projections. */
  twin?: number;
  /** q's projection is also a graph output. */
  qOut?: boolean;
}

/** com.microsoft MultiHeadAttention (2 heads) of MatMul projections, as fuse-attention leaves a site. */
function model(name: string, c: Case): { src: string; feeds: Record<string, ReturnType<typeof tensor>> } {
  const b = new ModelBuilder(17, { 'com.microsoft': 1 });
  const x = b.input('x', [B, S, C]);
  const feeds: Record<string, ReturnType<typeof tensor>> = { x: tensor([B, S, C], 31) };
  const from = c.from ?? ['x', 'x', 'x'];
  let ctx: Value | null = null;
  if (from.includes('ctx')) {
    ctx = b.input('ctx', [B, S, C]);
    feeds.ctx = tensor([B, S, C], 32);
  }
  const proj = (which: 'q' | 'k' | 'v', i: number, width: number) => {
    const dims = [C, width];
    let w: Value;
    if (c.inputWeight === which) {
      w = b.input(`w${which}`, dims);
      feeds[`w${which}`] = tensor(dims, 40 + i);
    } else {
      w = b.const(`w${which}`, dims, Array.from(randomFloats(C * width, 40 + i)));
    }
    return b.op('MatMul', [from[i] === 'x' ? x : ctx!, w], {}, { name: `proj_${which}` });
  };
  const [q, k, v] = [proj('q', 0, C), proj('k', 1, C), proj('v', 2, c.vWidth ?? C)];
  const bias = c.bias ? b.const('bias', [3 * C], Array.from(randomFloats(3 * C, 50))) : null;
  const mask = c.mask ? b.const('mask', [1, 1, S, S], Array.from(randomFloats(S * S, 51))) : null;
  b.output(b.op('MultiHeadAttention', mask ? [q, k, v, bias, null, mask] : bias ? [q, k, v, bias] : [q, k, v], { num_heads: 2 }, { domain: 'com.microsoft', name: 'mha' }));
  if (c.twin) b.output(b.op('MultiHeadAttention', [q, k, v], { num_heads: c.twin }, { domain: 'com.microsoft', name: 'mha_twin' }));
  if (c.qOut) b.output(q);
  return { src: saveModel(b.model, path.join(dir, `${name}.onnx`)), feeds };
}

async function compileAndCompare(name: string, c: Case) {
  const { src, feeds } = model(name, c);
  const out = path.join(dir, `${name}.webgpu.onnx`);
  const r = compile(src, { output: out, target: 'webgpu', passes: ['fuse-packed-attention'] });
  const [want, got] = [await runModel(src, feeds), await runModel(out, feeds)];
  let worst = 0;
  for (const k of Object.keys(want)) worst = Math.max(worst, relError(want[k], got[k]));
  const verdicts = r.explanations.filter((e) => e.rule === 'packed-attention');
  return { r, worst, verdicts };
}

test.each([
  ['q, k, v of one tensor', {}, 'Attention (2 heads, qkv 8/8/8)'],
  ['a wider v', { vWidth: 12 }, 'Attention (2 heads, qkv 8/8/12)'],
  ['a constant q/k/v bias, carried as the packed bias', { bias: true }, 'Attention (2 heads, qkv 8/8/8)'],
] as [string, Case, string][])('webgpu packs self-attention (%s) into one com.microsoft Attention with the same numbers', async (name, c, what) => {
  const { r, worst, verdicts } = await compileAndCompare(`packs-${name.replace(/\W+/g, '-')}`, c);
  expect(r.opsAfter).toEqual({ 'com.microsoft::Attention': 1 });
  expect(verdicts).toEqual([expect.objectContaining({ site: 'mha', status: 'applied', reason: what })]);
  expect(worst).toBeLessThan(1e-5);
});

/** Each look-alike keeps its MatMuls and MultiHeadAttention; the numbers stay the original's. */
test.each([
  ['k and v from another tensor (cross-attention)', { from: ['x', 'ctx', 'ctx'] }, 'q, k and v do not project one tensor (cross-attention)'],
  ['only v from another tensor', { from: ['x', 'x', 'ctx'] }, 'q, k and v do not project one tensor (cross-attention)'],
  ['an attention bias (mask) input', { mask: true }, 'has a mask or past input'],
] as [string, Case, string][])('webgpu does not pack %s, and says why', async (name, c, why) => {
  const { r, worst, verdicts } = await compileAndCompare(`refused-${name.replace(/\W+/g, '-')}`, c);
  expect(r.opsAfter).toEqual({ 'ai.onnx::MatMul': 3, 'com.microsoft::MultiHeadAttention': 1 });
  expect(verdicts).toEqual([expect.objectContaining({ site: 'mha', status: 'skipped', reason: why })]);
  expect(worst).toBeLessThan(1e-6);
});

/**
 * Look-alikes the pattern itself rejects (a weight that is not a constant; projections another reader
 * needs: a second attention with a different head count, or a graph output). The set has no anchor for a
 * com.microsoft op, so --explain says nothing about them: not packed, numbers unchanged.
 */
test.each([
  ['k projected by a weight that is a graph input', { inputWeight: 'k' }, 1],
  ['projections shared with a 4-head attention', { twin: 4 }, 2],
  ['q also a graph output', { qOut: true }, 1],
] as [string, Case, number][])('webgpu does not pack %s', async (name, c, attentions) => {
  const { r, worst, verdicts } = await compileAndCompare(`unmatched-${name.replace(/\W+/g, '-')}`, c);
  expect(r.opsAfter).toEqual({ 'ai.onnx::MatMul': 3, 'com.microsoft::MultiHeadAttention': attentions });
  expect(verdicts).toEqual([]);
  expect(worst).toBeLessThan(1e-6);
});
