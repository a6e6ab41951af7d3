import * as fs from 'fs';
import * as path from 'path';
import { compile } from '../../src/compiler/compile';
import { ModelBuilder } from '../../src/ir/builder';
import { readModel } from '../../src/onnx/read';
import { saveModel } from '../../src/onnx/write';
import { randomFloats, relError, runModel, tensor, tmpDir } from '../helpers/ort';

const dir = tmpDir();
afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));

/** `n` projections of one [2, 5, 8] tensor: MatMuls, or Gemms on [2, 8] with transB and a bias. */
function siblings(n: number, op: 'MatMul' | 'Gemm') {
  const b = new ModelBuilder();
  const x = b.input('x', op === 'MatMul' ? [2, 5, 8] : [2, 8]);
  const y = b.op('Relu', [x]);
  for (let i = 0; i < n; i++) {
    const width = 3 + i;
    const out = op === 'MatMul'
      ? b.op('MatMul', [y, b.const(`w${i}`, [8, width], Array.from(randomFloats(8 * width, i + 1)))])
      : b.op('Gemm', [y, b.const(`w${i}`, [width, 8], Array.from(randomFloats(8 * width, i + 1))), b.const(`b${i}`, [width], Array.from(randomFloats(width, i + 50)))], { transB: 1 });
    b.output(b.op('Relu', [out]));
  }
  return saveModel(b.model, path.join(dir, `${op}${n}.onnx`));
}

test.each([['MatMul', 3], ['Gemm', 3], ['MatMul', 9]] as const)('webgpu: %s ×%i reading one tensor → one %s and Splits of at most 7, same numbers', async (op, n) => {
  const src = siblings(n, op);
  const out = path.join(dir, `${op}${n}.out.onnx`);
  const r = compile(src, { output: out, target: 'webgpu' });
  const groups = n === 9 ? 2 : 1; // 7 + 2
  expect(r.opsAfter[`ai.onnx::${op}`]).toBe(groups);
  expect(r.opsAfter['ai.onnx::Split']).toBe(groups);
  for (const s of readModel(out).graph.nodes.filter((x) => x.opType === 'Split')) expect(s.outputs.length).toBeLessThanOrEqual(7);
  const feeds = { x: tensor(op === 'MatMul' ? [2, 5, 8] : [2, 8], 7) };
  const [a, b] = [await runModel(src, feeds), await runModel(out, feeds)];
  for (const k of Object.keys(a)) expect(relError(a[k], b[k])).toBeLessThan(1e-6);
});

test('not on cpu, and not for projections with other inputs', () => {
  const cpu = compile(siblings(3, 'MatMul'), { output: path.join(dir, 'cpu.onnx'), target: 'cpu', dryRun: true });
  expect(cpu.opsAfter['ai.onnx::MatMul']).toBe(3);
  const b = new ModelBuilder();
  const [x, z] = [b.input('x', [2, 8]), b.input('z', [2, 8])];
  b.output(b.op('MatMul', [x, b.const('w0', [8, 4], Array.from(randomFloats(32, 1)))]));
  b.output(b.op('MatMul', [z, b.const('w1', [8, 4], Array.from(randomFloats(32, 2)))]));
  const apart = compile(saveModel(b.model, path.join(dir, 'apart.onnx')), { output: path.join(dir, 'apart.out.onnx'), target: 'webgpu', dryRun: true });
  expect(apart.opsAfter['ai.onnx::MatMul']).toBe(2);
});
