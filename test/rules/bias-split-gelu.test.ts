import * as fs from 'fs';
import { ModelBuilder } from '../../src/ir/builder';
import { biasSplitGelu } from '../../src/rules/bias-split-gelu';
import { gelu } from '../../src/rules/gelu';
import { applyRules, worstError } from '../helpers/rules';
import { randomFloats, tensor, tmpDir } from '../helpers/ort';
import { erfGeluGraph } from '../helpers/graphs';

const dir = tmpDir();
afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));

/** GEGLU on x [1, 3, 8]: h = x·W + bias of width `hidden`, split in halves, left · gelu(right). */
function geglu(hidden: number, by: 'split' | 'slice', swap = false) {
  const b = new ModelBuilder(18);
  const x = b.input('x', [1, 3, 8]);
  const h = b.op('Add', [b.op('MatMul', [x, b.const('w', [8, hidden], Array.from(randomFloats(8 * hidden, 1), (v) => v * 0.3))]), b.const('bias', [hidden], Array.from(randomFloats(hidden, 2)))]);
  let left;
  let right;
  if (by === 'split') [left, right] = b.opN('Split', [h], { axis: -1, num_outputs: 2 }, { outputs: 2 });
  else {
    const half = hidden / 2;
    left = b.op('Slice', [h, b.ints('s0', [0]), b.ints('e0', [half]), b.ints('a0', [-1])]);
    right = b.op('Slice', [h, b.ints('s1', [half]), b.ints('e1', [hidden]), b.ints('a1', [-1])]);
  }
  if (swap) [left, right] = [right, left];
  b.output(b.op('Mul', [left, erfGeluGraph(b, right, 1)]));
  return b;
}

test.each(['split', 'slice'] as const)('GEGLU by %s → BiasSplitGelu on webgpu at hidden 2560, same numbers', async (by) => {
  const run = applyRules(geglu(2560, by), [biasSplitGelu, gelu], dir, `bsg-${by}`, 'webgpu');
  expect(run.ops).toEqual({ 'ai.onnx::MatMul': 1, 'com.microsoft::BiasSplitGelu': 1 });
  expect(run.counts).toMatchObject({ biasSplitGelu: 1, gelu: 0 });
  expect(await worstError(run, [{ x: tensor([1, 3, 8]) }])).toBeLessThan(1e-5);
});

test('a hidden size the kernel does not take: plain Gelu, and the reason', () => {
  const run = applyRules(geglu(64, 'split'), [biasSplitGelu, gelu], dir, 'bsg-64', 'cuda');
  expect(run.ops['com.microsoft::BiasSplitGelu']).toBeUndefined();
  expect(run.ops['com.microsoft::Gelu']).toBe(1); // opset 18: the contrib Gelu
  expect(run.explanations.find((e) => e.rule === 'bias-split-gelu')!.reason).toBe("cuda's BiasSplitGelu kernel takes hidden 2560/5120/10240 (got 64)");
});

test('look-alike: the halves swapped (gelu of the first half) is not BiasSplitGelu', () => {
  const run = applyRules(geglu(2560, 'slice', true), [biasSplitGelu, gelu], dir, 'bsg-swap', 'webgpu');
  expect(run.ops['com.microsoft::BiasSplitGelu']).toBeUndefined();
  expect(run.explanations.find((e) => e.rule === 'bias-split-gelu')!.reason).toBe('the slices are not the two halves of the last axis');
});

test('cpu has no kernel: the rule is skipped and says so once', () => {
  const run = applyRules(geglu(2560, 'split'), [biasSplitGelu, gelu], dir, 'bsg-cpu', 'cpu');
  expect(run.ops['com.microsoft::BiasSplitGelu']).toBeUndefined();
  expect(run.explanations.filter((e) => e.rule === 'bias-split-gelu')).toEqual([expect.objectContaining({ status: 'skipped', reason: 'cpu has no kernel for com.microsoft::BiasSplitGelu' })]);
});
