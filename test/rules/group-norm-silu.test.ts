import * as fs from 'fs';
import { groupNorm } from '../../src/rules/group-norm';
import { groupNormSilu } from '../../src/rules/group-norm-silu';
import { applyRules, worstError } from '../helpers/rules';
import { tensor, tmpDir } from '../helpers/ort';
import { exportedGroupNorm } from '../helpers/graphs';

const dir = tmpDir();
afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));

test('GroupNorm then SiLU → GroupNorm activation=1 (the SiLU runs in the kernel), same numbers', async () => {
  const { b, y } = exportedGroupNorm({ affine: true });
  b.output(b.op('Mul', [y, b.op('Sigmoid', [y])]));
  const run = applyRules(b, [groupNorm, groupNormSilu], dir, 'silu', 'cuda');
  expect(run.ops).toEqual({ 'ai.onnx::Transpose': 2, 'com.microsoft::GroupNorm': 1 });
  expect(run.counts).toMatchObject({ groupNorm: 1, withSilu: 1 });
  expect(await worstError(run, [{ x: tensor([2, 8, 4, 4]) }])).toBeLessThan(1e-5);
});

test('look-alike: the normalized value is also read elsewhere, so the SiLU stays outside', async () => {
  const { b, y } = exportedGroupNorm();
  b.output(b.op('Mul', [y, b.op('Sigmoid', [y])]));
  b.output(b.op('Relu', [y]));
  const run = applyRules(b, [groupNorm, groupNormSilu], dir, 'silu-shared', 'cuda');
  expect(run.ops['ai.onnx::Sigmoid']).toBe(1);
  expect(run.counts.withSilu).toBe(0);
  expect(run.explanations.find((e) => e.rule === 'group-norm-silu')!.reason).toBe('the GroupNorm result has readers besides the SiLU');
  expect(await worstError(run, [{ x: tensor([2, 8, 4, 4]) }])).toBeLessThan(1e-5);
});

test('look-alike: x · sigmoid(y) with x ≠ y is not a SiLU', () => {
  const { b, x, y } = exportedGroupNorm();
  b.output(b.op('Mul', [b.op('Relu', [x]), b.op('Sigmoid', [y])]));
  const run = applyRules(b, [groupNorm, groupNormSilu], dir, 'not-silu', 'cuda');
  expect(run.counts.withSilu).toBe(0);
  expect(run.ops['ai.onnx::Sigmoid']).toBe(1);
});
