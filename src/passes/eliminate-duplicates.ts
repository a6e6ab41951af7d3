import { createHash } from 'crypto';
import { AttrType, Attribute, Graph, Value } from '../ir/graph';
import { Tensor } from '../ir/tensor';
import { Pass } from '../rewrite/pass';
import { isNondeterministic } from '../ir/query';

/** Constants at most this large are compared by content (big weights are never read for this). */
const CONST_LIMIT = 64 * 1024;

/**
 * Common subexpressions: identical small constants merge, then nodes with the same op, attributes and
 * inputs compute the same thing once. Exporters repeat Shape/Gather chains and scale constants per layer.
 */
export const eliminateDuplicates: Pass = {
  name: 'eliminate-duplicates',
  description: 'merge identical small constants and nodes computing the same thing (CSE)',
  run(graph) {
    let constants = 0;
    let nodes = 0;
    for (const g of graph.allGraphs()) {
      constants += mergeConstants(g);
      nodes += mergeNodes(g);
    }
    return { changed: constants + nodes > 0, counts: { constants, nodes } };
  },
};

function tensorKey(t: Tensor): string | null {
  if (t.byteLength > CONST_LIMIT || t.data.kind === 'external' || t.data.kind === 'lazy') return null;
  const h = createHash('sha1');
  h.update(`${t.dtype}|${t.dims.join(',')}|`);
  if (t.data.kind === 'strings') for (const s of t.data.strings) h.update(s).update('\0');
  else h.update(t.bytes());
  return h.digest('base64');
}

function mergeConstants(g: Graph): number {
  const seen = new Map<string, Value>();
  let merged = 0;
  for (const v of g.initializers()) {
    if (v.isGraphInput || v.isGraphOutput) continue;
    const key = tensorKey(v.initializer!);
    if (!key) continue;
    const first = seen.get(key);
    if (!first) {
      seen.set(key, v);
      continue;
    }
    for (const u of [...v.uses]) u.node.graph.setInput(u.node, u.index, first);
    merged++;
  }
  return merged;
}

function attrKey(a: Attribute): string {
  switch (a.type) {
    case AttrType.TENSOR: return `${a.name}:t:${tensorKey(a.value) ?? Math.random()}`;
    case AttrType.TENSORS: return `${a.name}:ts:${a.value.map((t) => tensorKey(t) ?? Math.random()).join(',')}`;
    case AttrType.STRING: return `${a.name}:s:${Buffer.from(a.value).toString('base64')}`;
    case AttrType.STRINGS: return `${a.name}:ss:${a.value.map((s) => Buffer.from(s).toString('base64')).join(',')}`;
    case AttrType.INT: case AttrType.FLOAT: return `${a.name}:${a.type}:${String(a.value)}`;
    case AttrType.INTS: case AttrType.FLOATS: return `${a.name}:${a.type}:${a.value.map(String).join(',')}`;
    default: return `${a.name}:unique:${Math.random()}`; // graphs and the rest: never merged
  }
}

function mergeNodes(g: Graph): number {
  g.topoSort();
  const seen = new Map<string, Graph['nodes'][number]>();
  const dead: Graph['nodes'][number][] = [];
  for (const n of g.nodes) {
    if (isNondeterministic(n) || n.subgraphs().length || n.outputs.some((o) => o.isGraphOutput)) continue;
    const key = [n.domain, n.opType, n.overload, n.inputs.map((v) => (v ? v.name : '')).join(','), [...n.attrs.values()].map(attrKey).sort().join(';'), n.outputs.length].join('|');
    const first = seen.get(key);
    if (!first) {
      seen.set(key, n);
      continue;
    }
    n.outputs.forEach((o, i) => {
      for (const u of [...o.uses]) u.node.graph.setInput(u.node, u.index, first.outputs[i]);
    });
    dead.push(n);
  }
  g.removeNodes(dead);
  return dead.length;
}
