import * as fs from 'fs';
import * as path from 'path';
import * as ort from 'onnxruntime-node';
import { compile } from '../../src/compiler/compile';
import { ModelBuilder } from '../../src/ir/builder';
import { DataType } from '../../src/ir/dtype';
import { Graph, Value } from '../../src/ir/graph';
import { SdcError } from '../../src/ir/errors';
import { readModel } from '../../src/onnx/read';
import { saveModel } from '../../src/onnx/write';
import { lowerToCpu } from '../../src/verify/lower';
import { erfGeluGraph } from '../helpers/graphs';
import { randomFloats, relError, runModel, tensor, tmpDir } from '../helpers/ort';

const dir = tmpDir();
afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));

/** A builder whose nodes and constants go into a subgraph of `b` (so the helpers that take a builder work there). */
function subgraph(b: ModelBuilder, name: string, body: (sb: ModelBuilder, g: Graph) => Value[]): Graph {
  const g = new Graph(name, b.graph);
  const sb = Object.assign(Object.create(ModelBuilder.prototype), { graph: g, model: b.model }) as ModelBuilder;
  for (const v of body(sb, g)) {
    v.type ??= { kind: 'tensor', elemType: DataType.FLOAT, shape: [2, 3] };
    g.outputs.push(v);
  }
  return g;
}

const cond = (c: boolean) => new ort.Tensor('bool', [c], []);

async function worst(src: string, out: string, feeds: Record<string, ort.Tensor>[]): Promise<number> {
  let w = 0;
  for (const f of feeds) {
    const [a, b] = [await runModel(src, f), await runModel(out, f)];
    for (const k of Object.keys(a)) w = Math.max(w, relError(a[k], b[k]));
  }
  return w;
}

/**
 * An If whose branches each hold an erf GELU of a value from the enclosing scope, and read more outer
 * values the cleanup passes rewrite: y = x·1 (a no-op: readers must move to x, the branches included),
 * k = 2 + 3 (folds into a constant only a branch reads: dead-code elimination must keep it), and two
 * identical Negs, one per branch (merged: both branches must read the survivor).
 */
function ifModel(): string {
  const b = new ModelBuilder();
  const x = b.input('x', [2, 3]);
  const c = b.input('c', [], DataType.BOOL);
  const y = b.op('Mul', [x, b.scalar('one', 1)], {}, { name: 'times_one' });
  const k = b.op('Add', [b.scalar('two', 2), b.scalar('three', 3)], {}, { name: 'k' });
  const d1 = b.op('Neg', [x], {}, { name: 'neg1' });
  const d2 = b.op('Neg', [x], {}, { name: 'neg2' });
  const thenBranch = subgraph(b, 'then', (sb) => [sb.op('Add', [sb.op('Mul', [erfGeluGraph(sb, y, 0, '_t'), k]), d1])]);
  const elseBranch = subgraph(b, 'else', (sb) => [sb.op('Sub', [erfGeluGraph(sb, y, 2, '_e'), d2])]);
  b.output(b.op('If', [c], { then_branch: thenBranch, else_branch: elseBranch }), [2, 3]);
  return saveModel(b.model, path.join(dir, 'if.onnx'));
}

test('If: the GELU in each branch fuses, outer values the branches read survive cleanup (no-op, folded, merged), numbers equal on both branches', async () => {
  const src = ifModel();
  const out = path.join(dir, 'if.out.onnx');
  const r = compile(src, { output: out, target: 'cpu', verifyEach: true });
  expect(r.opsAfter['com.microsoft::Gelu']).toBe(2);
  expect(r.opsAfter['ai.onnx::Erf']).toBeUndefined();
  expect(r.opsAfter['ai.onnx::Neg']).toBe(1);
  const m = readModel(out);
  const ifNode = m.graph.nodes.find((n) => n.opType === 'If')!;
  // the outer scope now holds only the Neg and the If; what the branches read from it is x, the Neg and k
  expect(m.graph.nodes.map((n) => n.opType).sort()).toEqual(['If', 'Neg']);
  expect(ifNode.implicitInputs().map((v) => v.constant ? `const ${v.constant.values()[0]}` : v.name).sort()).toEqual(['const 5', 'neg1_out0', 'x']);
  const feeds = [true, false].flatMap((c) => [1, 2].map((s) => ({ x: tensor([2, 3], s), c: cond(c) })));
  expect(await worst(src, out, feeds)).toBeLessThan(1e-6);
});

test.each([true, false])('If: a GELU split across scopes (Div and Erf outside, the rest in a branch; both branches read the Erf: %s) fuses only when one branch reads it; numbers equal', async (shared) => {
  const b = new ModelBuilder();
  const x = b.input('x', [2, 3]);
  const c = b.input('c', [], DataType.BOOL);
  const e = b.op('Erf', [b.op('Div', [x, b.scalar('sqrt2', Math.SQRT2)])], {}, { name: 'outer_erf' });
  const gelu = (sb: ModelBuilder, tag: string) => sb.op('Mul', [sb.op('Mul', [x, sb.op('Add', [e, sb.scalar(`one${tag}`, 1)])]), sb.scalar(`half${tag}`, 0.5)]);
  const thenBranch = subgraph(b, 'then', (sb) => [gelu(sb, '_t')]);
  const elseBranch = subgraph(b, 'else', (sb) => [sb.op('Neg', [shared ? gelu(sb, '_e') : x])]);
  b.output(b.op('If', [c], { then_branch: thenBranch, else_branch: elseBranch }), [2, 3]);
  const src = saveModel(b.model, path.join(dir, `split-${shared}.onnx`));
  const out = path.join(dir, `split-${shared}.out.onnx`);
  const r = compile(src, { output: out, target: 'cpu', verifyEach: true });
  if (shared) {
    // the Erf has two readers (one per branch): no single match covers it, and its anchor says so
    expect(r.opsAfter['ai.onnx::Erf']).toBe(1);
    expect(r.opsAfter['com.microsoft::Gelu']).toBeUndefined();
    expect(r.explanations).toContainEqual(expect.objectContaining({ pass: 'fuse-gelu', site: 'outer_erf', status: 'skipped', reason: 'Erf is not part of x·½·(1+erf(x/√2)) (no pattern reached it)' }));
  } else {
    // read by one branch only, the whole GELU moves into it (computed only when that branch runs)
    expect(r.opsAfter).toEqual({ 'ai.onnx::If': 1, 'ai.onnx::Neg': 1, 'com.microsoft::Gelu': 1 });
  }
  const feeds = [true, false].map((c) => ({ x: tensor([2, 3], 3), c: cond(c) }));
  expect(await worst(src, out, feeds)).toBeLessThan(1e-6);
});

/** Loop (3 trips): v ← gelu(v)·s, s = 0.5 + 0.25 from the enclosing scope; the body's cond passes through an Identity. */
function loopModel(): string {
  const b = new ModelBuilder();
  const x = b.input('x', [2, 3]);
  const s = b.op('Add', [b.scalar('half', 0.5), b.scalar('quarter', 0.25)], {}, { name: 's' });
  const body = new Graph('body', b.graph);
  const sb = Object.assign(Object.create(ModelBuilder.prototype), { graph: body, model: b.model }) as ModelBuilder;
  const iter = body.newValue('iter');
  iter.type = { kind: 'tensor', elemType: DataType.INT64, shape: [] };
  const condIn = body.newValue('cond_in');
  condIn.type = { kind: 'tensor', elemType: DataType.BOOL, shape: [] };
  const v = body.newValue('v');
  v.type = { kind: 'tensor', elemType: DataType.FLOAT, shape: [2, 3] };
  body.inputs.push(iter, condIn, v);
  const condOut = sb.op('Identity', [condIn]);
  condOut.type = { kind: 'tensor', elemType: DataType.BOOL, shape: [] };
  const next = sb.op('Mul', [erfGeluGraph(sb, v, 1, '_l'), s]);
  next.type = { kind: 'tensor', elemType: DataType.FLOAT, shape: [2, 3] };
  body.outputs.push(condOut, next);
  const trips = b.const('trips', [], [3], DataType.INT64);
  const keepGoing = b.const('go', [], [1], DataType.BOOL);
  b.output(b.op('Loop', [trips, keepGoing, x], { body }), [2, 3]);
  return saveModel(b.model, path.join(dir, 'loop.onnx'));
}

test('Loop: the GELU in the body fuses, the outer constant it reads survives, numbers equal', async () => {
  const src = loopModel();
  const out = path.join(dir, 'loop.out.onnx');
  const r = compile(src, { output: out, target: 'cpu', verifyEach: true });
  expect(r.opsAfter['com.microsoft::Gelu']).toBe(1);
  expect(r.opsAfter['ai.onnx::Erf']).toBeUndefined();
  const feeds = [1, 2].map((seed) => ({ x: tensor([2, 3], seed) }));
  expect(await worst(src, out, feeds)).toBeLessThan(1e-6);
});

/**
 * cuda: Conv → SiLU outside, read by an If whose then-branch convolves it again (and adds it back). channels-last
 * converts the outer Conv (NHWC, transposes sunk through the SiLU) but must hand the branches the NCHW
 * value they read; the branch's Conv is left as it is.
 */
test('If on cuda: channels-last converts the outer Conv and leaves the branch reading NCHW; lowered, numbers equal', async () => {
  const b = new ModelBuilder();
  const x = b.input('x', [1, 4, 5, 5]);
  const c = b.input('c', [], DataType.BOOL);
  const w = (name: string, seed: number) => b.const(name, [4, 4, 3, 3], Array.from(randomFloats(144, seed)));
  const conv = b.op('Conv', [x, w('w_outer', 1)], { kernel_shape: [3, 3], pads: [1, 1, 1, 1] });
  const act = b.op('Mul', [conv, b.op('Sigmoid', [conv])]);
  const wInner = w('w_inner', 2);
  const thenBranch = subgraph(b, 'then', (sb) => [sb.op('Add', [sb.op('Conv', [act, wInner], { kernel_shape: [3, 3], pads: [1, 1, 1, 1] }), act])]);
  const elseBranch = subgraph(b, 'else', (sb) => [sb.op('Neg', [act])]);
  for (const g of [thenBranch, elseBranch]) g.outputs[0].type = { kind: 'tensor', elemType: DataType.FLOAT, shape: [1, 4, 5, 5] };
  b.output(b.op('If', [c], { then_branch: thenBranch, else_branch: elseBranch }), [1, 4, 5, 5]);
  const src = saveModel(b.model, path.join(dir, 'if-cuda.onnx'));
  const out = path.join(dir, 'if-cuda.out.onnx');
  const r = compile(src, { output: out, target: 'cuda', verifyEach: true });
  expect(r.opsAfter['com.microsoft::NhwcConv']).toBe(1);
  expect(r.opsAfter['ai.onnx::Conv']).toBe(1);
  const lowered = path.join(dir, 'if-cuda.lowered.onnx');
  expect(lowerToCpu(out, lowered)).toBe(1);
  const feeds = [true, false].map((cv) => ({ x: tensor([1, 4, 5, 5], 5), c: cond(cv) }));
  expect(await worst(src, lowered, feeds)).toBeLessThan(1e-5);
});

test('fp16 refuses a model with control flow (SdcError, exit 2), and writes nothing', () => {
  const src = ifModel();
  const out = path.join(dir, 'if.fp16.onnx');
  let err: unknown = null;
  try {
    compile(src, { output: out, target: 'cpu', precision: 'fp16' });
  } catch (e) {
    err = e;
  }
  expect(err).toBeInstanceOf(SdcError);
  expect((err as SdcError).exitCode).toBe(2);
  expect((err as Error).message).toMatch(/control flow \(If\/Loop\/Scan subgraphs\)/);
  expect(fs.existsSync(out)).toBe(false);
});
