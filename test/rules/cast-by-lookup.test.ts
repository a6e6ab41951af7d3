import * as fs from 'fs';
import * as ort from 'onnxruntime-node';
import { DataType } from '../../src/ir/dtype';
import { ModelBuilder } from '../../src/ir/builder';
import { castByLookup } from '../../src/rules/cast-by-lookup';
import { applyRules } from '../helpers/rules';
import { bitEqual, runModel, tmpDir } from '../helpers/ort';

const dir = tmpDir();
afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));

const VOCAB = 50;

/**
 * CLIP's shape of the problem: int64 ids [2, 7] index a token table [V, 8], and the same ids, cast to
 * `to`, pick the pooled token (ArgMax of the cast ids, as transformers' CLIPTextModel does).
 */
function textEncoder(to: DataType, indexed = true) {
  const b = new ModelBuilder(17);
  const ids = b.input('input_ids', [2, 7], DataType.INT64);
  const table = b.const('token_embedding', [VOCAB, 8], Array.from({ length: VOCAB * 8 }, (_, i) => Math.sin(i)));
  if (indexed) b.output(b.op('Gather', [table, ids]), [2, 7, 8]);
  const cast = b.op('Cast', [ids], { to });
  b.output(b.op('ArgMax', [cast], { axis: -1, keepdims: 0 }), [2], DataType.INT64);
  return b;
}

const idsTensor = (values: number[]) => new ort.Tensor('int64', BigInt64Array.from(values.map(BigInt)), [2, 7]);

test('webgpu: the int64 Cast of token ids becomes a Gather from a table, same values for every id the model accepts', async () => {
  const run = applyRules(textEncoder(DataType.INT32), [castByLookup], dir, 'ids', 'webgpu');
  expect(run.ops['ai.onnx::Cast']).toBeUndefined();
  expect(run.ops['ai.onnx::Gather']).toBe(2);
  expect(run.counts).toMatchObject({ castByLookup: 1 });
  // every id in [-V, V), the negative ones included (Gather counts them from the end)
  const all = Array.from({ length: 2 * VOCAB }, (_, i) => i - VOCAB);
  for (let at = 0; at < all.length; at += 14) {
    const ids = idsTensor(Array.from({ length: 14 }, (_, i) => all[(at + i * 7) % all.length]));
    const [a, c] = [await runModel(run.before, { input_ids: ids }), await runModel(run.after, { input_ids: ids })];
    for (const k of Object.keys(a)) expect([k, bitEqual(a[k], c[k])]).toEqual([k, true]);
  }
  // an id outside [-V, V) fails the original's own embedding Gather, and the rewrite's too
  const bad = idsTensor([0, 1, 2, VOCAB, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12]);
  await expect(runModel(run.before, { input_ids: bad })).rejects.toThrow(/out of range|out of bounds|indices/i);
  await expect(runModel(run.after, { input_ids: bad })).rejects.toThrow(/out of range|out of bounds|indices/i);
});

test('a cast to float32 takes a float table', async () => {
  const run = applyRules(textEncoder(DataType.FLOAT), [castByLookup], dir, 'ids-float', 'webgpu');
  expect(run.counts).toMatchObject({ castByLookup: 1 });
  const ids = idsTensor([3, -1, 49, 0, -50, 7, 7, 1, 2, 3, 4, 5, 6, 48]);
  const [a, c] = [await runModel(run.before, { input_ids: ids }), await runModel(run.after, { input_ids: ids })];
  for (const k of Object.keys(a)) expect([k, bitEqual(a[k], c[k])]).toEqual([k, true]);
});

test('not applied: ids that index no table (nothing bounds them), a cast to float16, a target whose Cast takes int64', () => {
  const unbounded = applyRules(textEncoder(DataType.INT32, false), [castByLookup], dir, 'unbounded', 'webgpu');
  expect(unbounded.ops['ai.onnx::Cast']).toBe(1);
  expect(unbounded.explanations.find((e) => e.rule === 'cast-by-lookup')!.reason).toBe('its input does not also index a constant table (nothing bounds its values)');
  const half = applyRules(textEncoder(DataType.FLOAT16), [castByLookup], dir, 'half', 'webgpu');
  expect(half.explanations.find((e) => e.rule === 'cast-by-lookup')!.reason).toBe('it casts to float16, not int32 or float32');
  const cpu = applyRules(textEncoder(DataType.INT32), [castByLookup], dir, 'cpu', 'cpu');
  expect(cpu.ops['ai.onnx::Cast']).toBe(1);
  expect(cpu.explanations.find((e) => e.rule === 'cast-by-lookup')!.reason).toBe("cpu's Cast takes int64");
});
