import * as fs from 'fs';
import { ModelBuilder, float } from '../../src/ir/builder';
import { Dim, Value } from '../../src/ir/graph';
import { skipLayerNorm } from '../../src/rules/skip-layer-norm';
import { applyRules, worstError } from '../helpers/rules';
import { randomFloats, tensor, tmpDir } from '../helpers/ort';

const dir = tmpDir();
afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));

function residual(o: { yShape?: Dim[]; sumReadAgain?: boolean; axis?: number; statsUsed?: boolean } = {}) {
  const b = new ModelBuilder(17);
  const x = b.input('x', [2, 5, 16]);
  const y = b.input('y', o.yShape ?? [2, 5, 16]);
  const sum = b.op('Add', [x, y]);
  const outs = b.opN('LayerNormalization', [sum, b.const('g', [16], Array.from(randomFloats(16, 5))), b.const('bb', [16], Array.from(randomFloats(16, 6)))],
    { axis: o.axis ?? -1, epsilon: float(1e-5) }, { outputs: o.statsUsed ? 2 : 1 });
  const ln: Value = outs[0];
  b.output(o.sumReadAgain ? b.op('Add', [ln, sum]) : ln);
  if (o.statsUsed) b.output(outs[1]);
  return b;
}

test('residual Add + LayerNormalization → SkipLayerNormalization, the sum passed on, same numbers', async () => {
  const run = applyRules(residual({ sumReadAgain: true }), [skipLayerNorm], dir, 'skip');
  expect(run.ops).toEqual({ 'com.microsoft::SkipLayerNormalization': 1, 'ai.onnx::Add': 1 });
  expect(run.explanations[0]).toMatchObject({ rule: 'skip-layer-norm', status: 'applied', reason: 'SkipLayerNormalization (sum passed on)' });
  expect(await worstError(run, [{ x: tensor([2, 5, 16], 1), y: tensor([2, 5, 16], 2) }])).toBeLessThan(1e-5);
});

test.each([
  ['a broadcast residual', { yShape: [1, 5, 16] }, 'the residual operands do not have the same shape'],
  ['a norm over another axis', { axis: 1 }, 'SkipLayerNormalization normalizes the last axis of 3-D input'],
  ['its mean output read', { statsUsed: true }, 'mean/inv_std outputs are used'],
] as const)('look-alike: %s', (_name, o, reason) => {
  const run = applyRules(residual(o as never), [skipLayerNorm], dir, `skip-${reason.length}`);
  expect(run.ops['com.microsoft::SkipLayerNormalization']).toBeUndefined();
  expect(run.skipped).toBe(reason);
});
