import * as fs from 'fs';
import * as path from 'path';
import { lowerToCpu } from '../../src/verify/lower';
import { ModelBuilder } from '../../src/ir/builder';
import { quickGelu } from '../../src/rules/quick-gelu';
import { applyRules, worstError } from '../helpers/rules';
import { relError, runModel, tensor, tmpDir } from '../helpers/ort';

const dir = tmpDir();
afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));

/** CLIP's MLP activation as the TorchScript exporter writes it: Mul(x, 1.702) → Sigmoid → Mul(x, ·). */
function quick(b: ModelBuilder, alphaFirst = false, alpha = 1.702) {
  const x = b.input('x', ['batch', 'seq', 12]);
  const a = b.scalar('alpha', alpha);
  const s = b.op('Sigmoid', [b.op('Mul', alphaFirst ? [a, x] : [x, a])]);
  b.output(b.op('Mul', alphaFirst ? [s, x] : [x, s]));
}

test.each([false, true])('x·sigmoid(1.702·x) (operands swapped: %s) → one QuickGelu, same numbers', async (swapped) => {
  const b = new ModelBuilder(17);
  quick(b, swapped);
  const run = applyRules(b, [quickGelu], dir, `quick-${swapped}`);
  expect(run.ops).toEqual({ 'com.microsoft::QuickGelu': 1 });
  expect(run.counts.quickGelu).toBe(1);
  // the CPU runs QuickGelu itself: the compiled model against the original, at two sizes
  expect(await worstError(run, [{ x: tensor([1, 5, 12], 3) }, { x: tensor([2, 3, 12], 4) }])).toBeLessThan(1e-6);
});

test('another constant is carried as alpha, and the webgpu and cuda targets fuse it too', async () => {
  for (const target of ['webgpu', 'cuda'] as const) {
    const b = new ModelBuilder(17);
    quick(b, false, 1.5);
    const run = applyRules(b, [quickGelu], dir, `quick-${target}`, target);
    expect(run.ops).toEqual({ 'com.microsoft::QuickGelu': 1 });
    expect(run.explanations[0].reason).toMatch(/alpha 1\.5000/);
    expect(await worstError(run, [{ x: tensor([1, 4, 12], 5) }])).toBeLessThan(1e-6);
  }
  // the oracle's lowering (x·sigmoid(alpha·x)) gives the kernel's numbers
  const b = new ModelBuilder(17);
  quick(b, false, 1.5);
  const run = applyRules(b, [quickGelu], dir, 'quick-lowered');
  const lowered = path.join(dir, 'quick-lowered.lowered.onnx');
  expect(lowerToCpu(run.after, lowered, ['QuickGelu'])).toBe(1);
  const f = { x: tensor([2, 4, 12], 6) };
  const [a, c] = [await runModel(run.after, f), await runModel(lowered, f)];
  expect(relError(Object.values(a)[0], Object.values(c)[0])).toBeLessThan(1e-6);
});

test('look-alikes: SiLU x·sigmoid(x), a sigmoid of another tensor, a per-channel α, a product read twice', () => {
  const silu = new ModelBuilder(17);
  const x = silu.input('x', [2, 8]);
  silu.output(silu.op('Mul', [x, silu.op('Sigmoid', [x])]));
  expect(applyRules(silu, [quickGelu], dir, 'silu').ops['com.microsoft::QuickGelu']).toBeUndefined();

  const other = new ModelBuilder(17);
  const [a, y] = [other.input('a', [2, 8]), other.input('y', [2, 8])];
  other.output(other.op('Mul', [a, other.op('Sigmoid', [other.op('Mul', [y, other.scalar('k', 1.702)])])]));
  expect(applyRules(other, [quickGelu], dir, 'gate').ops['com.microsoft::QuickGelu']).toBeUndefined();

  const perChannel = new ModelBuilder(17);
  const z = perChannel.input('z', [2, 8]);
  perChannel.output(perChannel.op('Mul', [z, perChannel.op('Sigmoid', [perChannel.op('Mul', [z, perChannel.const('k8', [8], new Array(8).fill(1.702))])])]));
  expect(applyRules(perChannel, [quickGelu], dir, 'per-channel').ops['com.microsoft::QuickGelu']).toBeUndefined();

  const shared = new ModelBuilder(17);
  const w = shared.input('w', [2, 8]);
  const inner = shared.op('Mul', [w, shared.scalar('k', 1.702)]);
  shared.output(shared.op('Mul', [w, shared.op('Sigmoid', [inner])]));
  shared.output(inner);
  expect(applyRules(shared, [quickGelu], dir, 'shared').ops['com.microsoft::QuickGelu']).toBeUndefined();
});
