import { AttrType, Graph, Node, Value } from './graph';
import { Model } from './model';
import { ONNX_OPS } from './onnx-ops';
import { SdcError } from './errors';

/** The newest opset of the default domain this sdc knows (ONNX 1.19); a newer one is refused, not guessed. */
const MAX_ONNX_OPSET = 25;

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
  for (const [domain, version] of model.opsets) {
    const d = domain || 'ai.onnx';
    if (!Number.isSafeInteger(version) || version < 1) problems.push(`imports opset ${version} of '${d}', which is not a version`);
    else if ((domain === '' || domain === 'ai.onnx') && version > MAX_ONNX_OPSET) problems.push(`imports ai.onnx opset ${version}; sdc knows opsets up to ${MAX_ONNX_OPSET}`);
  }
  // model-local functions of the default domain are ops too
  const functionOps = new Set((model.functions as { domain?: string; name?: string }[]).filter((f) => !f.domain || f.domain === 'ai.onnx').map((f) => f.name ?? ''));
  const graphInputs = new Set<Value>();
  for (const g of model.graph.allGraphs()) for (const v of g.inputs) graphInputs.add(v);
  const defined = (v: Value) => v.producer !== null || v.initializer !== null || graphInputs.has(v);
  // Every recorded use, once: checking node inputs against it stays linear in the model's size even
  // when one value has hundreds of thousands of readers.
  const recorded = new Map<Node, Map<number, Value>>();
  for (const g of model.graph.allGraphs()) {
    for (const v of g.values.values()) {
      for (const u of v.uses) {
        let m = recorded.get(u.node);
        if (!m) recorded.set(u.node, (m = new Map()));
        m.set(u.index, v);
      }
    }
  }
  for (const g of model.graph.allGraphs()) {
    const where = g === model.graph ? '' : ` (in subgraph '${g.name}')`;
    for (const n of g.nodes) {
      const label = `node '${n.name || '(unnamed)'}' (${n.opType || 'no op type'})`;
      if (!n.opType) problems.push(`${label}${where} has no op type`);
      else if ((n.domain === '' || n.domain === 'ai.onnx') && !ONNX_OPS.has(n.opType) && !functionOps.has(n.opType)) {
        problems.push(`${label}${where} is not an ONNX operator (ai.onnx); a custom op needs a domain of its own`);
      }
      // A Transpose's perm must reorder 0..n-1 whatever the rank: passes index shapes with it.
      const perm = n.opType === 'Transpose' && n.attr('perm');
      if (perm && (perm.type !== AttrType.INTS || ![...perm.value].map(Number).sort((a, b) => a - b).every((p, i) => p === i))) {
        problems.push(`${label}${where} has perm ${perm.type === AttrType.INTS ? `[${perm.value.join(', ')}]` : 'of the wrong type'}, which is not a permutation`);
      }
      const axisProblem = badAxis(n);
      if (axisProblem) problems.push(`${label}${where} has ${axisProblem}`);
      n.inputs.forEach((v, i) => {
        if (!v) return;
        if (!defined(v)) problems.push(`${label}${where} reads '${v.name}', which no node, input or initializer defines`);
        if (recorded.get(n)?.get(i) !== v) problems.push(`internal: ${label} input ${i} missing from the use list of '${v.name}'`);
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
    // a caller feeds and reads values by these names (onnxruntime passes them as C strings)
    for (const [what, list] of [['input', g.inputs], ['output', g.outputs]] as const) {
      list.forEach((v, i) => {
        if (!v.name) problems.push(`graph ${what} ${i}${where} has an empty name; a caller cannot name it`);
        else if (v.name.includes('\0')) problems.push(`graph ${what} ${i} '${v.name.replace(/\0/g, '\\0')}'${where} has a NUL character in its name; a caller cannot name it`);
      });
    }
    problems.push(...cycles(g));
  }
  return problems;
}

/** No tensor has 2^31 dims: an axis past that is garbage whatever the rank (onnxruntime has crashed reading one). */
const AXIS_LIMIT = 2 ** 31;

/**
 * An `axis` / `axes` attribute onnxruntime would index dims with, out of range: past the first input's
 * declared rank r (allowed -r..r; Flatten and Unsqueeze-like ops reach r), or past any rank at all.
 */
function badAxis(n: Node): string | null {
  // ai.onnx ops whose axis indexes their first input (OneHot's indexes its output, one rank more)
  const rank = (n.domain === '' || n.domain === 'ai.onnx') && n.opType !== 'OneHot' ? n.inputs[0]?.shape?.length : undefined;
  for (const name of ['axis', 'axes']) {
    const a = n.attr(name);
    if (!a || (a.type !== AttrType.INT && a.type !== AttrType.INTS)) continue;
    const values: (number | bigint)[] = a.type === AttrType.INT ? [a.value as number | bigint] : [...(a.value as (number | bigint)[])];
    for (const v of values.map(Number)) {
      if (Math.abs(v) >= AXIS_LIMIT) return `${name} ${String(a.type === AttrType.INT ? a.value : v)}, which no tensor has`;
      // only `axis` ranges over the input's dims (an Unsqueeze's axes range over its output's)
      if (name === 'axis' && rank !== undefined && (v < -rank || v > rank)) return `axis ${v}, out of range for its input of rank ${rank}`;
    }
  }
  return null;
}

/** validate(), with the problems (the first ten) as the SdcError every door reports for an invalid input. */
export function refuseInvalid(model: Model, file: string): void {
  const problems = validate(model);
  if (problems.length) throw new SdcError(file, `is not a valid model:\n  ${problems.slice(0, 10).join('\n  ')}${problems.length > 10 ? `\n  ... and ${problems.length - 10} more` : ''}`);
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
