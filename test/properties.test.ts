import * as fc from 'fast-check';
import * as fs from 'fs';
import * as path from 'path';
import { compile } from '../src/compiler/compile';
import { ModelBuilder, float } from '../src/ir/builder';
import { Value } from '../src/ir/graph';
import { saveModel } from '../src/onnx/write';
import { randomFloats, relError, runModel, tensor, tmpDir } from './helpers/ort';

const dir = tmpDir();
afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));

/** The ops the passes rewrite, as steps on a [B, S, C] tensor (C stays a multiple of 4). */
const STEPS = ['matmul', 'softmax', 'heads', 'transpose', 'scale', 'bias', 'layernorm', 'groupnorm', 'gelu', 'sigmoid', 'attention', 'residual'] as const;
type Step = (typeof STEPS)[number];

interface Spec {
  batch: number;
  seq: number;
  channels: number;
  symbolic: boolean;
  steps: { kind: Step; seed: number }[];
}

/** Build the graph a spec describes; the shape is tracked so every step is valid. */
function build(spec: Spec): ModelBuilder {
  const b = new ModelBuilder(17);
  const x = b.input('x', [spec.symbolic ? 'batch' : spec.batch, spec.seq, spec.channels]);
  let cur: Value = x;
  let c = spec.channels;
  let id = 0;
  const w = (rows: number, cols: number, seed: number) => b.const(`w${id++}`, [rows, cols], Array.from(randomFloats(rows * cols, seed), (v) => v * 0.4));
  for (const { kind, seed } of spec.steps) {
    const k = `s${id++}`;
    switch (kind) {
      case 'matmul': {
        const out = seed % 2 ? 8 : 4;
        cur = b.op('MatMul', [cur, w(c, out, seed)]);
        c = out;
        break;
      }
      case 'softmax':
        cur = b.op('Softmax', [cur], { axis: -1 });
        break;
      case 'heads': {
        // split into 2 heads, swap axes, and merge back: a round trip the cleanups must see through
        const h = b.op('Transpose', [b.op('Reshape', [cur, b.ints(`${k}a`, [0, 0, 2, c / 2])])], { perm: [0, 2, 1, 3] });
        cur = b.op('Reshape', [b.op('Transpose', [h], { perm: [0, 2, 1, 3] }), b.ints(`${k}b`, [0, 0, c])]);
        break;
      }
      case 'transpose':
        cur = b.op('Transpose', [b.op('Transpose', [cur], { perm: [0, 2, 1] })], { perm: [0, 2, 1] });
        break;
      case 'scale':
        cur = b.op(seed % 2 ? 'Mul' : 'Div', [cur, b.scalar(k, 0.5 + (seed % 5))]);
        break;
      case 'bias':
        cur = b.op(seed % 2 ? 'Add' : 'Sub', [cur, b.const(k, [c], Array.from(randomFloats(c, seed)))]);
        break;
      case 'layernorm':
        cur = b.op('LayerNormalization', [cur, b.const(`${k}g`, [c], Array.from(randomFloats(c, seed))), b.const(`${k}b`, [c], Array.from(randomFloats(c, seed + 1)))], { axis: -1, epsilon: float(1e-5) });
        break;
      case 'groupnorm': {
        const g = b.op('Reshape', [cur, b.ints(`${k}r`, [0, 2, -1])]);
        const n = b.op('InstanceNormalization', [g, b.const(`${k}s`, [2], [1.5, 0.5]), b.const(`${k}t`, [2], [0.1, -0.1])], { epsilon: float(1e-5) });
        cur = b.op('Reshape', [n, b.op('Shape', [cur])]);
        break;
      }
      case 'gelu': {
        const erf = b.op('Add', [b.op('Erf', [b.op('Div', [cur, b.scalar(`${k}r2`, Math.SQRT2)])]), b.scalar(`${k}one`, 1)]);
        cur = b.op('Mul', [b.op('Mul', [cur, erf]), b.scalar(`${k}half`, 0.5)]);
        break;
      }
      case 'sigmoid':
        cur = b.op('Mul', [cur, b.op('Sigmoid', [cur])]);
        break;
      case 'residual':
        cur = b.op('Add', [cur, b.op('Relu', [cur])]);
        break;
      case 'attention': {
        const split = (t: Value, perm: number[]) => b.op('Transpose', [b.op('Reshape', [t, b.ints(`${k}${id++}`, [0, -1, 2, c / 2])])], { perm });
        const q = split(b.op('MatMul', [cur, w(c, c, seed)]), [0, 2, 1, 3]);
        const kt = split(b.op('MatMul', [cur, w(c, c, seed + 1)]), [0, 2, 3, 1]);
        const v = split(b.op('MatMul', [cur, w(c, c, seed + 2)]), [0, 2, 1, 3]);
        const scores = b.op('Mul', [b.op('MatMul', [q, kt]), b.scalar(`${k}sc`, 1 / Math.sqrt(c / 2))]);
        const o = b.op('MatMul', [b.op('Softmax', [scores], { axis: -1 }), v]);
        cur = b.op('Reshape', [b.op('Transpose', [o], { perm: [0, 2, 1, 3] }), b.ints(`${k}m`, [0, -1, c])]);
        break;
      }
    }
  }
  b.output(cur);
  return b;
}

const SPEC: fc.Arbitrary<Spec> = fc.record({
  batch: fc.integer({ min: 1, max: 2 }),
  seq: fc.integer({ min: 2, max: 5 }),
  channels: fc.constantFrom(4, 8),
  symbolic: fc.boolean(),
  steps: fc.array(fc.record({ kind: fc.constantFrom(...STEPS), seed: fc.integer({ min: 1, max: 1000 }) }), { minLength: 1, maxLength: 6 }),
});

let n = 0;
/** The property: every mode, compiled for the CPU, computes what the original computes. */
async function sameNumbers(spec: Spec): Promise<void> {
  const name = `p${n++}`;
  const src = saveModel(build(spec).model, path.join(dir, `${name}.onnx`));
  const feeds = { x: tensor([spec.batch, spec.seq, spec.channels], 3) };
  const want = await runModel(src, feeds);
  const shape = `x=${spec.batch}x${spec.seq}x${spec.channels}`;
  for (const mode of ['default', 'reduce-overhead'] as const) {
    const out = path.join(dir, `${name}.${mode}.onnx`);
    compile(src, { output: out, mode, shapes: mode === 'reduce-overhead' ? shape : undefined, verifyEach: true });
    const got = await runModel(out, feeds);
    for (const k of Object.keys(want)) {
      const err = relError(want[k], got[k]);
      if (!(err < 1e-4)) throw new Error(`${mode}: output ${k} differs by ${err} for ${JSON.stringify(spec)}`);
    }
  }
}

test('random graphs of the ops the passes touch compute the same numbers after every mode', async () => {
  await fc.assert(fc.asyncProperty(SPEC, sameNumbers), { seed: 20261126, numRuns: 200 });
}, 300000);
