import * as fs from 'fs';
import * as path from 'path';
import { compile } from '../../src/compiler/compile';
import { AttrInput, ModelBuilder } from '../../src/ir/builder';
import { saveModel } from '../../src/onnx/write';
import { randomFloats, relError, runModel, tensor, tmpDir } from '../helpers/ort';

const dir = tmpDir();
afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));

interface Case {
  conv: Record<string, AttrInput>;
  /** Input dims (NCHW); its channel count may differ from the Conv's (a broadcasting affine). */
  x?: number[];
  cin?: number;
  group?: number;
  bias?: boolean;
  /** γ, β as [1,C,1,1] and written β + x·γ instead of [C,1,1] and x·γ + β. */
  rank4?: boolean;
}

/** x·γ + β per input channel (γ, β far from 1 and 0, so a wrong fold shows), then a 3×3 Conv. */
function model(name: string, c: Case): { src: string; dims: number[] } {
  const b = new ModelBuilder();
  const cin = c.cin ?? 4;
  const dims = c.x ?? [2, cin, 9, 8];
  const x = b.input('x', dims);
  const per = (n: string, seed: number, shift: number) => b.const(n, c.rank4 ? [1, cin, 1, 1] : [cin, 1, 1], Array.from(randomFloats(cin, seed), (v) => v + shift));
  const mul = b.op('Mul', [x, per('gamma', 3, 1.5)]);
  const beta = per('beta', 4, 2);
  const affine = c.rank4 ? b.op('Add', [beta, mul]) : b.op('Add', [mul, beta]);
  const group = c.group ?? 1;
  const wDims = [6, cin / group, 3, 3];
  const inputs = [affine, b.const('w', wDims, Array.from(randomFloats(wDims.reduce((a, d) => a * d, 1), 5)))];
  if (c.bias !== false) inputs.push(b.const('b', [6], Array.from(randomFloats(6, 6))));
  b.output(b.op('Conv', inputs, { kernel_shape: [3, 3], ...(group > 1 ? { group } : {}), ...c.conv }));
  return { src: saveModel(b.model, path.join(dir, `${name}.onnx`)), dims };
}

async function worst(src: string, out: string, dims: number[]): Promise<number> {
  let w = 0;
  for (const seed of [1, 2]) {
    const feeds = { x: tensor(dims, 40 + seed) };
    w = Math.max(w, relError(Object.values(await runModel(src, feeds))[0], Object.values(await runModel(out, feeds))[0]));
  }
  return w;
}

const foldCases: [string, Case][] = [
  ['3×3, bias', { conv: {} }],
  ['3×3, no bias, γ/β [1,C,1,1], β + x·γ', { conv: {}, bias: false, rank4: true }],
  ['3×3, stride 2, dilation 2, auto_pad VALID', { conv: { strides: [2, 2], dilations: [2, 2], auto_pad: 'VALID' } }],
];

test.each(foldCases)('webgpu folds the affine into an unpadded Conv (%s): β shifts the bias by Σ W·β over the 3×3 window', async (name, c) => {
  const { src, dims } = model(`fold-${name.replace(/\W+/g, '-')}`, c);
  const out = src.replace(/\.onnx$/, '.webgpu.onnx');
  const r = compile(src, { output: out, target: 'webgpu' });
  expect(r.opsAfter).toEqual({ 'ai.onnx::Conv': 1 });
  expect(r.explanations).toContainEqual(expect.objectContaining({ rule: 'affine-into-conv', status: 'applied', reason: 'γ, β folded into a 3×3 Conv (4 input channels)' }));
  expect(await worst(src, out, dims)).toBeLessThan(1e-5);
});

const refusals: [string, Case, RegExp][] = [
  ['pads 1 on every side', { conv: { pads: [1, 1, 1, 1] } }, /^the Conv pads: the border would see zeros, not β$/],
  ['one pad only (the bottom)', { conv: { pads: [0, 0, 1, 0] } }, /^the Conv pads: the border would see zeros, not β$/],
  ['auto_pad SAME_UPPER', { conv: { auto_pad: 'SAME_UPPER' } }, /^the Conv pads \(auto_pad SAME_UPPER\)$/],
  ['group 2', { conv: {}, group: 2 }, /^a grouped Conv$/],
  // γ broadcasts x's single channel to the Conv's 4: folding would hand the Conv a 1-channel input
  ['an x of 1 channel broadcast by γ to 4', { conv: {}, x: [2, 1, 9, 8] }, /^x has 1 channel where the Conv takes 4 \(γ, β broadcast it\)$/],
];

test.each(refusals)('webgpu does not fold into a Conv with %s, says why, and keeps the numbers (BatchNormalization or Mul/Add)', async (name, c, why) => {
  const { src, dims } = model(`keep-${name.replace(/\W+/g, '-')}`, c);
  const out = src.replace(/\.onnx$/, '.webgpu.onnx');
  const r = compile(src, { output: out, target: 'webgpu', passes: ['fuse-channel-affine'] });
  const refused = r.explanations.find((e) => e.rule === 'affine-into-conv');
  expect(refused).toEqual(expect.objectContaining({ status: 'skipped' }));
  expect(refused!.reason).toMatch(why);
  expect(r.opsAfter['ai.onnx::Conv']).toBe(1);
  expect(await worst(src, out, dims)).toBeLessThan(1e-5);
});
