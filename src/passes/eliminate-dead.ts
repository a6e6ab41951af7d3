import { Graph } from '../ir/graph';
import { Pass } from '../rewrite/pass';

/** Remove nodes nothing reads, initializers nothing uses, and values left behind by other passes. */
export const eliminateDead: Pass = {
  name: 'eliminate-dead',
  description: 'remove nodes whose outputs nobody reads and unused initializers',
  run(graph) {
    let nodes = 0;
    let inits = 0;
    for (const g of graph.allGraphs()) {
      const r = sweep(g);
      nodes += r.nodes;
      inits += r.inits;
    }
    return { changed: nodes + inits > 0, counts: { nodes, initializers: inits } };
  },
};

function sweep(g: Graph): { nodes: number; inits: number } {
  g.topoSort();
  const live = (n: Graph['nodes'][number]) => n.outputs.some((o) => o.uses.length > 0 || o.isGraphOutput);
  const dead = new Set<Graph['nodes'][number]>();
  // Reverse order: removing a reader can make its producer dead in the same sweep.
  for (let i = g.nodes.length - 1; i >= 0; i--) {
    const n = g.nodes[i];
    if (!live(n)) {
      dead.add(n);
      n.inputs.forEach((v, k) => {
        if (v) v.uses = v.uses.filter((u) => !(u.node === n && u.index === k));
      });
      n.inputs = n.inputs.map(() => null);
    }
  }
  g.removeNodes(dead);
  let inits = 0;
  const io = new Set([...g.inputs, ...g.outputs]);
  for (const [name, v] of [...g.values]) {
    if (io.has(v) || v.uses.length > 0 || v.producer) continue;
    if (v.initializer) inits++;
    g.values.delete(name);
  }
  return { nodes: dead.size, inits };
}
