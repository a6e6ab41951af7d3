import * as fs from 'fs';
import { ModelBuilder } from '../../src/ir/builder';
import { AttrType, Graph } from '../../src/ir/graph';
import { p } from '../../src/rewrite/match';
import { defineRule } from '../../src/rewrite/rule';
import { applyRules } from '../helpers/rules';
import { REGISTRY } from '../../src/passes';
import { Target } from '../../src/targets';
import { tmpDir } from '../helpers/ort';

const dir = tmpDir();
afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));

/** Neg(Neg(x)) → x: a rule small enough to watch the driver with. */
const doubleNeg = defineRule<null>({
  name: 'double-neg', description: 'Neg(Neg(x)) → Identity(x)', priority: 0, site: 'outer', counter: 'doubleNeg',
  pattern: p.op('Neg', [p.op('Neg', [p.any('x')])], { capture: 'outer' }),
  emits: () => ['ai.onnx::Identity'],
  check: (m) => (m.values.x.name === 'keep' ? 'told to keep it' : null),
  rewrite(m, _f, rw) {
    rw.replace(m.values.outer, rw.add({ op: 'Identity', inputs: [m.values.x], outputs: ['id'] }).outputs[0]);
    return 'removed';
  },
});

/** A rule that would match the same root but ranks lower. */
const negToAbs = defineRule<null>({
  name: 'neg-to-abs', description: 'test only', priority: -1, site: 'n', counter: 'negToAbs',
  pattern: p.op('Neg', [p.any()], { capture: 'n' }),
  emits: () => ['com.microsoft::NhwcConv'],
  check: () => null,
  rewrite: () => 'never',
});

test('rewrites, erases what died, and explains each site once', () => {
  const b = new ModelBuilder();
  const x = b.input('x', [4]);
  b.output(b.op('Neg', [b.op('Neg', [x])]));
  b.output(b.op('Neg', [b.op('Neg', [b.input('keep', [4])])]));
  const run = applyRules(b, [doubleNeg], dir, 'neg');
  expect(run.ops).toEqual({ 'ai.onnx::Identity': 1, 'ai.onnx::Neg': 2 });
  expect(run.counts.doubleNeg).toBe(1);
  expect(run.explanations.map((e) => e.status).sort()).toEqual(['applied', 'skipped']);
  expect(run.skipped).toBe('told to keep it');
});

test('a rule whose ops the target lacks is skipped once, with the reason', () => {
  const b = new ModelBuilder();
  b.output(b.op('Neg', [b.input('x', [4])]));
  const run = applyRules(b, [negToAbs], dir, 'lacking', 'cpu');
  expect(run.explanations).toEqual([expect.objectContaining({ rule: 'neg-to-abs', status: 'skipped', reason: 'cpu has no kernel for com.microsoft::NhwcConv' })]);
  expect(run.ops).toEqual({ 'ai.onnx::Neg': 1 });
});

test('rules reach into subgraphs (an If branch)', () => {
  const b = new ModelBuilder();
  const x = b.input('x', [4]);
  const cond = b.input('c', [], 9);
  const branch = (name: string) => {
    const g = new Graph(name, b.graph);
    const y = g.addNode({ op: 'Neg', inputs: [g.addNode({ op: 'Neg', inputs: [x], outputs: [`${name}_n1`] }).outputs[0]], outputs: [`${name}_n2`] }).outputs[0];
    y.type = { kind: 'tensor', elemType: 1, shape: [4] };
    g.outputs.push(y);
    return g;
  };
  const out = b.graph.addNode({ op: 'If', inputs: [cond], outputs: ['out'], attrs: [{ name: 'then_branch', type: AttrType.GRAPH, value: branch('then') }, { name: 'else_branch', type: AttrType.GRAPH, value: branch('else') }] });
  b.output(out.outputs[0], [4]);
  const run = applyRules(b, [doubleNeg], dir, 'if');
  expect(run.counts.doubleNeg).toBe(2);
  expect(run.ops['ai.onnx::Neg']).toBeUndefined();
});

test('--explain names where the pattern failed at an anchor it could not fuse (Softmax input is Relu, not MatMul)', () => {
  const b = new ModelBuilder();
  const scores = b.op('Relu', [b.input('s', [1, 2, 4, 4])], {}, { name: 'relu' });
  const probs = b.op('Softmax', [scores], { axis: -1 }, { name: 'softmax' });
  b.output(b.op('MatMul', [probs, b.input('v', [1, 2, 4, 8])], {}, { name: 'pv' }));
  const explanations: { site: string; reason?: string }[] = [];
  const ctx = {
    model: b.model, target: new Target('cpu'), mode: 'default' as const, shapes: null,
    explain: (site: unknown, _s: string, reason?: string) => explanations.push({ site: typeof site === 'string' ? site : (site as { name: string }).name, reason }),
  };
  const set = REGISTRY.find((e) => e.pass.name === 'fuse-attention')!.pass;
  set.run(b.model.graph, ctx);
  expect(explanations).toContainEqual({ site: 'softmax', reason: "not softmax(scale·QKᵀ [+ mask]) V with a single reader at each step: Softmax 'softmax' input 0 is Relu, not MatMul" });
});
