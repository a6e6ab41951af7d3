import { Graph, Node, Value } from './graph';

/**
 * Bypass a node: readers of its first output read `to` instead, and the node goes once unused. Returns
 * false (and changes nothing) when that output is a graph output that would have to be renamed onto an
 * input, another output or a constant.
 */
export function replaceOutput(graph: Graph, n: Node, to: Value): boolean {
  const out = n.outputs[0];
  if (out.isGraphOutput && (to.isGraphInput || to.isGraphOutput || to.initializer || to.graph !== graph)) return false;
  graph.replaceAllUsesWith(out, to);
  if (out.uses.length === 0 && !out.isGraphOutput && graph.contains(n) && n.outputs.every((o) => o.uses.length === 0 && !o.isGraphOutput)) graph.removeNode(n);
  return true;
}

