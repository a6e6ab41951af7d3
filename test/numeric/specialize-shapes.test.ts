import * as fs from 'fs';
import * as path from 'path';
import { compile } from '../../src/compiler/compile';
import { ModelBuilder } from '../../src/ir/builder';
import { SdcError } from '../../src/ir/errors';
import { readModel } from '../../src/onnx/read';
import { saveModel } from '../../src/onnx/write';
import { relError, runModel, tensor, tmpDir } from '../helpers/ort';

const dir = tmpDir();
afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));

/**
 * a [batch, 4] and b [batch, len] share the symbol batch; the output reshapes a + b·w to Shape(a) (a shape
 * computation reduce-overhead folds), and n [m, m] repeats a symbol within one input.
 */
function model(): string {
  const b = new ModelBuilder();
  const a = b.input('a', ['batch', 4]);
  const bb = b.input('b', ['batch', 'len']);
  const n = b.input('n', ['m', 'm']);
  const proj = b.op('ReduceSum', [bb, b.ints('axes', [1])], { keepdims: 1 });
  const sum = b.op('Add', [a, proj]);
  b.output(b.op('Reshape', [b.op('Flatten', [sum], { axis: 0 }), b.op('Shape', [a])]), ['batch', 4]);
  b.output(b.op('MatMul', [n, n]), ['m', 'm']);
  return saveModel(b.model, path.join(dir, 'shared.onnx'));
}

function refusal(shapes: string, name: string): SdcError {
  const out = path.join(dir, `${name}.onnx`);
  try {
    compile(model(), { output: out, mode: 'reduce-overhead', shapes });
  } catch (e) {
    expect(fs.existsSync(out)).toBe(false);
    expect(e).toBeInstanceOf(SdcError);
    return e as SdcError;
  }
  throw new Error(`--shape ${shapes} was accepted`);
}

test('a symbol two inputs share, given two sizes, is refused (exit 2) naming the symbol and both inputs', () => {
  const e = refusal('a=2x4,b=3x5,n=6x6', 'conflict');
  expect(e.exitCode).toBe(2);
  expect(e.problem).toBe("dim 'batch' is 2 in 'a' but 3 in 'b'");
  expect(e.file).toBe(path.join(dir, 'shared.onnx')); // the CLI prints sdc: FILE: problem
});

test('a symbol repeated within one input, given two sizes, is refused too', () => {
  const e = refusal('a=2x4,b=2x5,n=6x7', 'square');
  expect(e.exitCode).toBe(2);
  expect(e.problem).toBe("dim 'm' is 6 in 'n' but 7 in 'n'");
});

test('consistent sizes are accepted: inputs static, no Shape op left, numbers equal', async () => {
  const src = model();
  const out = path.join(dir, 'ok.onnx');
  const r = compile(src, { output: out, mode: 'reduce-overhead', shapes: 'a=2x4,b=2x5,n=3x3' });
  expect(r.opsAfter['ai.onnx::Shape']).toBeUndefined();
  const m = readModel(out);
  expect(Object.fromEntries(m.graph.inputs.map((v) => [v.name, v.shape]))).toEqual({ a: [2, 4], b: [2, 5], n: [3, 3] });
  const feeds = { a: tensor([2, 4], 1), b: tensor([2, 5], 2), n: tensor([3, 3], 3) };
  const [want, got] = [await runModel(src, feeds), await runModel(out, feeds)];
  for (const k of Object.keys(want)) {
    expect(got[k].dims).toEqual(want[k].dims);
    expect(relError(want[k], got[k])).toBeLessThan(1e-6);
  }
});
