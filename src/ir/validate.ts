import { Graph, Value } from './graph';
import { Model } from './model';

/**
 * Structural checks: every value read is defined (by a node, a graph input, an initializer, or an
 * enclosing graph), no cycles, use lists agree with node inputs, and every node's domain is imported.
 * Returns the problems found, empty when the model is sound.
 */
export function validate(model: Model): string[] {
  const problems: string[] = [];
  const functionDomains = new Set(
    (model.functions as { domain?: string }[]).map((f) => f.domain ?? ''),
  );
  const defined = (v: Value) => v.producer !== null || v.initializer !== null || v.graph.inputs.includes(v);
  for (const g of model.graph.allGraphs()) {
    const where = g === model.graph ? '' : ` (in subgraph '${g.name}')`;
    for (const n of g.nodes) {
      const label = `node '${n.name || '(unnamed)'}' (${n.opType})`;
      n.inputs.forEach((v, i) => {
        if (!v) return;
        if (!defined(v)) problems.push(`${label}${where} reads '${v.name}', which no node, input or initializer defines`);
        if (!v.uses.some((u) => u.node === n && u.index === i)) problems.push(`internal: ${label} input ${i} missing from the use list of '${v.name}'`);
      });
      for (const o of n.outputs) if (o.producer !== n) problems.push(`internal: ${label} output '${o.name}' names another producer`);
      const domain = n.domain === 'ai.onnx' ? '' : n.domain;
      if (!model.opsets.has(domain) && !(domain === '' && model.opsets.has('ai.onnx')) && !functionDomains.has(domain)) {
        problems.push(`${label}${where} uses domain '${domain || 'ai.onnx'}', which the model does not import (opset_import)`);
      }
    }
    for (const v of g.values.values()) {
      for (const u of v.uses) {
        if (u.node.inputs[u.index] !== v) problems.push(`internal: stale use of '${v.name}' by node '${u.node.name}'`);
      }
    }
    for (const o of g.outputs) if (!defined(o) && !g.lookup(o.name)?.producer) problems.push(`graph output '${o.name}'${where} is never computed`);
    problems.push(...cycles(g));
  }
  return problems;
}

function cycles(g: Graph): string[] {
  const saved = g.nodes;
  try {
    g.topoSort();
    return [];
  } catch (e) {
    return [`graph '${g.name}' has a ${(e as Error).message}`];
  } finally {
    g.nodes = saved;
  }
}
