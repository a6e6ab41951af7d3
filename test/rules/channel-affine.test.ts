import * as fs from 'fs';
import * as path from 'path';
import { compile } from '../../src/compiler/compile';
import { ModelBuilder } from '../../src/ir/builder';
import { saveModel } from '../../src/onnx/write';
import { randomFloats, relError, runModel, tensor, tmpDir } from '../helpers/ort';

const dir = tmpDir();
afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));

/** x·γ + β per channel on [1, 4, 5, 5], then (optionally) a Conv reading it. */
function affine(conv: 'none' | '1x1' | '3x3 padded') {
  const b = new ModelBuilder();
  const x = b.input('x', [1, 4, 5, 5]);
  const per = (name: string, seed: number) => b.const(name, [4, 1, 1], Array.from(randomFloats(4, seed)));
  let y = b.op('Add', [b.op('Mul', [b.op('Relu', [x]), per('gamma', 3)]), per('beta', 4)]);
  if (conv === '1x1') y = b.op('Conv', [y, b.const('w', [6, 4, 1, 1], Array.from(randomFloats(24, 5))), b.const('b', [6], Array.from(randomFloats(6, 6)))]);
  if (conv === '3x3 padded') y = b.op('Conv', [y, b.const('w', [6, 4, 3, 3], Array.from(randomFloats(216, 5)))], { pads: [1, 1, 1, 1] });
  b.output(y);
  return saveModel(b.model, path.join(dir, `affine-${conv.replace(/\W/g, '')}.onnx`));
}

async function sameNumbers(src: string, out: string): Promise<number> {
  const feeds = { x: tensor([1, 4, 5, 5], 9) };
  return relError(Object.values(await runModel(src, feeds))[0], Object.values(await runModel(out, feeds))[0]);
}

test('webgpu: a per-channel affine becomes one BatchNormalization with the same numbers', async () => {
  const src = affine('none');
  const out = path.join(dir, 'a.out.onnx');
  const r = compile(src, { output: out, target: 'webgpu' });
  expect(r.opsAfter).toEqual({ 'ai.onnx::Relu': 1, 'ai.onnx::BatchNormalization': 1 });
  expect(await sameNumbers(src, out)).toBeLessThan(1e-6);
});

test('webgpu: an affine read by an unpadded Conv folds into its weights; a padded Conv keeps it as BatchNormalization', async () => {
  const src = affine('1x1');
  const out = path.join(dir, 'b.out.onnx');
  const r = compile(src, { output: out, target: 'webgpu' });
  expect(r.opsAfter).toEqual({ 'ai.onnx::Relu': 1, 'ai.onnx::Conv': 1 });
  expect(await sameNumbers(src, out)).toBeLessThan(1e-5);
  const padded = affine('3x3 padded');
  const out2 = path.join(dir, 'c.out.onnx');
  const r2 = compile(padded, { output: out2, target: 'webgpu', passes: ['fuse-channel-affine'] });
  expect(r2.opsAfter).toEqual({ 'ai.onnx::Relu': 1, 'ai.onnx::BatchNormalization': 1, 'ai.onnx::Conv': 1 });
  expect(r2.explanations.some((e) => /the Conv pads/.test(e.reason ?? ''))).toBe(true);
  expect(await sameNumbers(padded, out2)).toBeLessThan(1e-5);
});

test('cpu and cuda keep the Mul and Add, and say why', () => {
  for (const target of ['cpu', 'cuda'] as const) {
    const r = compile(affine('none'), { output: path.join(dir, `d-${target}.onnx`), target, dryRun: true });
    expect(r.opsAfter['ai.onnx::BatchNormalization']).toBeUndefined();
    expect(r.explanations.some((e) => e.pass === 'fuse-channel-affine' && /not worth a rewrite/.test(e.reason ?? ''))).toBe(true);
  }
});
