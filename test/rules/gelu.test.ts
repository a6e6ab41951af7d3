import * as fs from 'fs';
import { ModelBuilder } from '../../src/ir/builder';
import { Value } from '../../src/ir/graph';
import { gelu } from '../../src/rules/gelu';
import { applyRules, worstError } from '../helpers/rules';
import { tensor, tmpDir } from '../helpers/ort';
import { erfGeluGraph } from '../helpers/graphs';

const dir = tmpDir();
afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));

test.each([0, 1, 2] as const)('erf GELU (association order %i) → one Gelu, same numbers', async (form) => {
  const b = new ModelBuilder(17);
  b.output(erfGeluGraph(b, b.input('x', [2, 5, 16]), form));
  const run = applyRules(b, [gelu], dir, `gelu${form}`);
  expect(run.ops).toEqual({ 'com.microsoft::Gelu': 1 });
  expect(await worstError(run, [{ x: tensor([2, 5, 16]) }])).toBeLessThan(1e-5);
});

test('opset 20 and later: the standard ai.onnx Gelu', () => {
  const b = new ModelBuilder(20);
  b.output(erfGeluGraph(b, b.input('x', [4]), 0));
  expect(applyRules(b, [gelu], dir, 'gelu20').ops).toEqual({ 'ai.onnx::Gelu': 1 });
});

test('look-alikes: erf(x/2), and an intermediate read by a second consumer', () => {
  const b = new ModelBuilder(17);
  const x = b.input('x', [4]);
  const erfTerm = b.op('Add', [b.op('Erf', [b.op('Div', [x, b.scalar('two', 2)])]), b.scalar('one', 1)]);
  b.output(b.op('Mul', [b.op('Mul', [x, erfTerm]), b.scalar('half', 0.5)]));
  expect(applyRules(b, [gelu], dir, 'notgelu').ops['com.microsoft::Gelu']).toBeUndefined();

  const c = new ModelBuilder(17);
  const y = c.input('y', [4]);
  const shared: Value = c.op('Add', [c.op('Erf', [c.op('Div', [y, c.scalar('s2', Math.SQRT2)])]), c.scalar('one', 1)]);
  c.output(c.op('Mul', [c.op('Mul', [y, shared]), c.scalar('half', 0.5)]));
  c.output(shared);
  expect(applyRules(c, [gelu], dir, 'gelu-shared').ops['com.microsoft::Gelu']).toBeUndefined();
});
