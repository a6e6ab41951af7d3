import * as fs from 'fs';
import * as path from 'path';
import { compile } from '../../src/compiler/compile';
import { ModelBuilder } from '../../src/ir/builder';
import { randomFloats, tensor, tmpDir } from '../helpers/ort';
import { applyRules, worstError } from '../helpers/rules';
import { biasAdd } from '../../src/rules/bias-add';
import { saveModel } from '../../src/onnx/write';

const dir = tmpDir();
afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));

/** MatMul + bias + residual on [1, 4, C]. */
function projection(c: number, skipShape: number[] = [1, 4, c]) {
  const b = new ModelBuilder();
  const x = b.input('x', [1, 4, 8]);
  const skip = b.input('skip', skipShape);
  const h = b.op('MatMul', [x, b.const('w', [8, c], Array.from(randomFloats(8 * c, 1)))]);
  b.output(b.op('Add', [skip, b.op('Add', [h, b.const('bias', [c], Array.from(randomFloats(c, 2)))])]));
  return b;
}

test.each(['webgpu', 'cuda'] as const)('%s: x + bias + residual → BiasAdd at 320 channels', (target) => {
  const src = saveModel(projection(320).model, path.join(dir, `p320-${target}.onnx`));
  const r = compile(src, { output: path.join(dir, `p320-${target}.out.onnx`), target, dryRun: true });
  expect(r.opsAfter).toEqual({ 'ai.onnx::MatMul': 1, 'com.microsoft::BiasAdd': 1 });
  expect(fs.existsSync(path.join(dir, `p320-${target}.out.onnx`))).toBe(false); // dry run writes nothing
});

test('not at a channel count the kernel rejects, not with a broadcast residual, never on cpu', () => {
  const odd = compile(saveModel(projection(96).model, path.join(dir, 'p96.onnx')), { output: path.join(dir, 'p96.out.onnx'), target: 'cuda', dryRun: true });
  expect(odd.opsAfter['com.microsoft::BiasAdd']).toBeUndefined();
  expect(odd.explanations.find((e) => e.pass === 'fuse-bias-add')!.reason).toMatch(/channels 320\/640\/1280 \(got 96\)/);
  const bcast = compile(saveModel(projection(320, [1, 1, 320]).model, path.join(dir, 'pb.onnx')), { output: path.join(dir, 'pb.out.onnx'), target: 'cuda', dryRun: true });
  expect(bcast.opsAfter['com.microsoft::BiasAdd']).toBeUndefined();
  const cpu = compile(saveModel(projection(320).model, path.join(dir, 'pc.onnx')), { output: path.join(dir, 'pc.out.onnx'), target: 'cpu', dryRun: true });
  expect(cpu.opsAfter['com.microsoft::BiasAdd']).toBeUndefined();
});

test('the BiasAdd rule alone, at 320 channels: the same numbers (BiasAdd lowered to CPU ops)', async () => {
  const run = applyRules(projection(320), [biasAdd], dir, 'rule-320', 'webgpu');
  expect(run.ops).toEqual({ 'ai.onnx::MatMul': 1, 'com.microsoft::BiasAdd': 1 });
  expect(run.explanations[0]).toMatchObject({ rule: 'bias-add', status: 'applied', reason: 'BiasAdd (320 channels)' });
  expect(await worstError(run, [{ x: tensor([1, 4, 8], 1), skip: tensor([1, 4, 320], 2) }])).toBeLessThan(1e-5);
});
