import * as fs from 'fs';
import { ModelBuilder, float } from '../../src/ir/builder';
import { Value } from '../../src/ir/graph';
import { groupNorm } from '../../src/rules/group-norm';
import { groupNormSilu } from '../../src/rules/group-norm-silu';
import { skipGroupNorm } from '../../src/rules/skip-group-norm';
import { applyRules, worstError } from '../helpers/rules';
import { tensor, tmpDir } from '../helpers/ort';

const dir = tmpDir();
afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));

/** GroupNorm (4 groups) of a + b, the sum optionally read again (the next residual). */
function residual(o: { bShape?: number[]; sumReadAgain?: boolean; silu?: boolean }) {
  const b = new ModelBuilder(17);
  const x = b.input('a', [2, 8, 4, 4]);
  const y = b.input('b', o.bShape ?? [2, 8, 4, 4]);
  const sum = b.op('Add', [x, y]);
  const r = b.op('Reshape', [sum, b.ints('g', [0, 4, -1])]);
  const inorm = b.op('InstanceNormalization', [r, b.const('s', [4], [1, 2, 1, 0.5]), b.const('t', [4], [0, 0.1, 0, -0.1])], { epsilon: float(1e-5) });
  let out: Value = b.op('Reshape', [inorm, b.ints('back', [2, 8, 4, 4])]);
  if (o.silu) out = b.op('Mul', [out, b.op('Sigmoid', [out])]);
  b.output(o.sumReadAgain ? b.op('Add', [out, sum]) : out);
  return b;
}
const feeds = (bShape = [2, 8, 4, 4]) => [{ a: tensor([2, 8, 4, 4], 1), b: tensor(bShape, 2) }];
const RULES = [groupNorm, groupNormSilu, skipGroupNorm];

test('GroupNorm of a residual sum → SkipGroupNorm, the sum handed on to its other reader; with SiLU; same numbers', async () => {
  const run = applyRules(residual({ sumReadAgain: true, silu: true }), RULES, dir, 'skip', 'cuda');
  expect(run.ops['com.microsoft::SkipGroupNorm']).toBe(1);
  expect(run.ops['com.microsoft::GroupNorm']).toBeUndefined();
  expect(run.ops['ai.onnx::Add']).toBe(1); // the final Add; the residual sum is computed in the kernel
  expect(run.counts).toMatchObject({ groupNorm: 1, withSilu: 1, skipGroupNorm: 1 });
  expect(run.explanations.find((e) => e.rule === 'skip-group-norm')!.reason).toBe('SkipGroupNorm (sum passed on)');
  expect(await worstError(run, feeds())).toBeLessThan(1e-5);
});

test('the sum read by nothing else: no second output', async () => {
  const run = applyRules(residual({}), RULES, dir, 'skip-alone', 'cuda');
  expect(run.ops['com.microsoft::SkipGroupNorm']).toBe(1);
  expect(run.ops['ai.onnx::Add']).toBeUndefined();
  expect(await worstError(run, feeds())).toBeLessThan(1e-5);
});

test('look-alike: a broadcast operand (time embedding [2, 8, 1, 1]) keeps the Add outside', async () => {
  const run = applyRules(residual({ bShape: [2, 8, 1, 1] }), RULES, dir, 'skip-bcast', 'cuda');
  expect(run.ops['com.microsoft::SkipGroupNorm']).toBeUndefined();
  expect(run.ops['com.microsoft::GroupNorm']).toBe(1);
  expect(run.explanations.find((e) => e.rule === 'skip-group-norm')!.reason).toBe('the residual operands do not both have the input\'s full shape');
  expect(await worstError(run, feeds([2, 8, 1, 1]))).toBeLessThan(1e-5);
});
