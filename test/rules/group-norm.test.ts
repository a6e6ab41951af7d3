import * as fs from 'fs';
import { groupNorm } from '../../src/rules/group-norm';
import { applyRules, worstError } from '../helpers/rules';
import { tensor, tmpDir } from '../helpers/ort';
import { exportedGroupNorm } from '../helpers/graphs';

const dir = tmpDir();
afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));

test('Reshape → InstanceNorm → Reshape with its affine → one NHWC GroupNorm between Transposes, same numbers', async () => {
  const { b, y } = exportedGroupNorm({ affine: true });
  b.output(y);
  const run = applyRules(b, [groupNorm], dir, 'gn', 'cuda');
  expect(run.ops).toEqual({ 'ai.onnx::Transpose': 2, 'com.microsoft::GroupNorm': 1 });
  expect(run.counts.groupNorm).toBe(1);
  expect(run.explanations.find((e) => e.status === 'applied')!.reason).toBe('GroupNorm groups=4 channels=8');
  expect(await worstError(run, [{ x: tensor([2, 8, 4, 4]) }])).toBeLessThan(1e-5);
});

test('look-alike: groups not reshaped back to the input shape', () => {
  const { b, y } = exportedGroupNorm({ back: 'flat' });
  b.output(y);
  const run = applyRules(b, [groupNorm], dir, 'gn-flat', 'cuda');
  expect(run.ops['com.microsoft::GroupNorm']).toBeUndefined();
  expect(run.skipped).toBe('the result is not reshaped back to the input shape');
});

test('an affine that is not per channel stays outside: the core alone is fused', async () => {
  const { b, y } = exportedGroupNorm({ affine: true, channelsConst: 1 });
  b.output(y);
  const run = applyRules(b, [groupNorm], dir, 'gn-scalar-affine', 'cuda');
  expect(run.ops['com.microsoft::GroupNorm']).toBe(1);
  expect(run.ops['ai.onnx::Mul']).toBe(1);
  expect(run.explanations.filter((e) => e.rule === 'group-norm').map((e) => e.status)).toEqual(['applied']);
  expect(await worstError(run, [{ x: tensor([2, 8, 4, 4]) }])).toBeLessThan(1e-5);
});

test('targets without a GroupNorm kernel: the rule is skipped, and says why', () => {
  for (const target of ['cpu', 'webgpu'] as const) {
    const { b, y } = exportedGroupNorm();
    b.output(y);
    const run = applyRules(b, [groupNorm], dir, `gn-${target}`, target);
    expect(run.ops['ai.onnx::InstanceNormalization']).toBe(1);
    expect(run.skipped).toBe(`${target} has no kernel for com.microsoft::GroupNorm`);
  }
});
