import { traceBack } from '../src/analysis/layout';
import * as fs from 'fs';
import * as path from 'path';
import { AttrType, Graph } from '../src/ir/graph';
import { validate } from '../src/ir/validate';
import { readModel } from '../src/onnx/read';
import { ModelBuilder } from '../src/ir/builder';
import { tinyPath, tmpDir } from './helpers/ort';
import { saveModel } from '../src/onnx/write';

const dir = tmpDir();
afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));

test('use lists and producers match the file', () => {
  const m = readModel(tinyPath('unet_sdpa_op17'));
  const g = m.graph;
  expect(g.nodes.length).toBe(1860);
  let uses = 0;
  for (const n of g.nodes) {
    n.inputs.forEach((v, i) => {
      if (!v) return;
      uses++;
      expect(v.uses).toContainEqual({ node: n, index: i });
    });
    for (const o of n.outputs) expect(o.producer).toBe(n);
  }
  expect([...g.values.values()].reduce((s, v) => s + v.uses.length, 0)).toBe(uses);
  expect(validate(m)).toEqual([]);
});

test('inline tensors are views of the file buffer, not copies', () => {
  const m = readModel(tinyPath('unet_sdpa_op17'));
  const w = m.graph.initializers().find((v) => v.initializer!.byteLength > 4096)!.initializer!;
  expect(w.data.kind).toBe('bytes');
  const bytes = w.bytes();
  expect(bytes.buffer.byteLength).toBeGreaterThan(6_000_000); // the whole file's buffer
});

test('the validator finds a cycle and a dangling read', () => {
  const b = new ModelBuilder();
  const x = b.input('x', [2]);
  const a = b.op('Relu', [x], {}, { name: 'a' });
  const c = b.op('Neg', [a], {}, { name: 'c' });
  b.output(c, [2]);
  expect(validate(b.model)).toEqual([]);
  b.graph.setInput(a.producer!, 0, c); // a reads c, c reads a
  expect(validate(b.model).join('\n')).toMatch(/cycle/);
  b.graph.setInput(a.producer!, 0, x);
  const ghost = b.graph.newValue('ghost');
  b.graph.setInput(c.producer!, 0, ghost);
  expect(validate(b.model).join('\n')).toMatch(/reads 'ghost'/);
});

test('topoSort orders nodes after their producers', () => {
  const b = new ModelBuilder();
  const x = b.input('x', [2]);
  const a = b.op('Relu', [x], {}, { name: 'a' });
  const c = b.op('Neg', [a], {}, { name: 'c' });
  b.output(c, [2]);
  b.graph.nodes.reverse();
  b.graph.topoSort();
  expect(b.graph.nodes.map((n) => n.name)).toEqual(['a', 'c']);
});

// A hang guard, not a speed claim: topoSort listed a node's producers again on every revisit, so one
// Sum of k inputs cost O(k²) (10k inputs: over a minute a compile); a sorted graph is now recognized in one walk.
test('topoSort of a Sum with 20k inputs, out of order and then in order, is linear', () => {
  const b = new ModelBuilder();
  const x = b.input('x', [1]);
  const ins = Array.from({ length: 20_000 }, (_, i) => b.op('Neg', [x], {}, { name: `n${i}` }));
  b.output(b.op('Sum', ins, {}, { name: 'sum' }), [1]);
  b.graph.nodes.reverse();
  b.graph.topoSort();
  expect(b.graph.nodes.at(-1)!.name).toBe('sum');
  expect(b.graph.nodes.slice(0, 3).map((n) => n.name)).toEqual(['n0', 'n1', 'n2']);
  const before = b.graph.nodes;
  b.graph.topoSort(); // already in order: nothing moves
  expect(b.graph.nodes).toBe(before);
}, 4000);

test('topoSort still finds a cycle in a graph that was in order before an edit', () => {
  const b = new ModelBuilder();
  const x = b.input('x', [2]);
  const a = b.op('Relu', [x], {}, { name: 'a' });
  const c = b.op('Neg', [a], {}, { name: 'c' });
  b.output(c, [2]);
  b.graph.topoSort();
  b.graph.setInput(a.producer!, 0, c);
  expect(() => b.graph.topoSort()).toThrow(/cycle/);
});

test('subgraphs keep outer-scope reads as uses, and survive a write', () => {
  const b = new ModelBuilder();
  const x = b.input('x', [2]);
  const cond = b.input('cond', [], 9 /* BOOL */);
  const outer = b.op('Relu', [x], {}, { name: 'outer' });
  const mk = (op: string) => {
    const g = new Graph(`${op}_branch`, b.graph);
    const n = g.addNode({ op, inputs: [outer], outputs: [`${op}_y`] });
    g.outputs.push(n.outputs[0]);
    n.outputs[0].type = { kind: 'tensor', elemType: 1, shape: [2] };
    return g;
  };
  const y = b.op('If', [cond], {}, { name: 'if' });
  y.producer!.setAttr({ name: 'then_branch', type: AttrType.GRAPH, value: mk('Neg') });
  y.producer!.setAttr({ name: 'else_branch', type: AttrType.GRAPH, value: mk('Abs') });
  b.output(y, [2]);
  expect(outer.uses.map((u) => u.node.opType).sort()).toEqual(['Abs', 'Neg']);
  expect(y.producer!.implicitInputs()).toEqual([outer]);
  b.graph.nodes.reverse();
  b.graph.topoSort();
  expect(b.graph.nodes.map((n) => n.name)).toEqual(['outer', 'if']);
  expect(validate(b.model)).toEqual([]);
  const file = saveModel(b.model, path.join(dir, 'if.onnx'));
  const back = readModel(file);
  expect(back.graph.countNodes()).toBe(4);
  expect(validate(back)).toEqual([]);
});

test('traceBack stops at a Reshape or Mul whose traced input is omitted (a damaged graph), found by the fuzzer', () => {
  const b = new ModelBuilder();
  const x = b.input('x', [2, 4]);
  const broken = b.op('Reshape', [null, b.ints('shape', [4, 2])]);
  const y = b.op('Transpose', [broken], { perm: [1, 0] });
  const t = traceBack(y);
  expect(t.source).toBe(broken);
  expect(t.steps.map((s) => s.node.opType)).toEqual(['Transpose']);
  const scaled = b.op('Mul', [null, b.const('c', [1], [2])]);
  expect(traceBack(b.op('Transpose', [scaled], { perm: [1, 0] })).source).toBe(scaled);
  expect(traceBack(x).steps).toEqual([]);
});

test('removeNode detaches at once and leaves `nodes` at its next read, keeping the order of the rest', () => {
  const g = new Graph('chain');
  const x = g.newValue('x');
  g.inputs.push(x);
  let v = x;
  const chain = [];
  for (let i = 0; i < 6; i++) {
    const n = g.addNode({ op: 'Relu', inputs: [v], outputs: [`r${i}`] });
    chain.push(n);
    v = n.outputs[0];
  }
  const walked = g.nodes;
  g.removeNode(chain[1]);
  g.removeNodes([chain[3], chain[4]]);
  // the producer link and the use are gone at once; a walk over the old array still sees the node
  expect(chain[1].outputs[0].producer).toBeNull();
  expect(chain[0].outputs[0].uses).toEqual([]);
  expect(g.contains(chain[1])).toBe(false);
  expect(walked).toContain(chain[1]);
  expect(g.nodes.map((n) => n.name)).toEqual([chain[0], chain[2], chain[5]].map((n) => n.name));
  // a node added after removals lands after the survivors
  const tail = g.addNode({ op: 'Relu', inputs: [v], outputs: ['tail'] });
  g.removeNode(chain[0]);
  expect(g.nodes).toEqual([chain[2], chain[5], tail]);
});
