import { analyzeShapes, Conflict } from '../analysis/shapes';
import { SdcError } from '../ir/errors';
import { Sym } from '../ir/symbolic';
import { DataType } from '../ir/dtype';
import { Graph } from '../ir/graph';
import { replaceOutput } from '../ir/edit';
import { Tensor } from '../ir/tensor';
import { Pass } from '../rewrite/pass';
import { isDefaultDomain } from '../ir/query';

/**
 * Shape bookkeeping becomes constants. Exporters compute reshape targets at run time
 * (Shape→Gather→Unsqueeze→Concat); with symbolic shape analysis:
 *  - an integer value whose contents are known numbers becomes an initializer;
 *  - a Reshape target known symbolically becomes a constant using 0 (copy that input dim) and -1 (infer);
 *  - an Expand to the shape its input already has is dropped.
 * With static input dims (reduce-overhead) every shape computation ends up constant.
 */
export const simplifyShapes: Pass = {
  name: 'simplify-shapes',
  description: 'replace shape computations by constants (numbers, or 0/-1 reshape targets for symbolic dims)',
  run(graph, ctx) {
    const sa = analyzeShapes(ctx.model, graph);
    if (ctx.shapes) refuseConflicts(sa.conflicts, ctx.shapes, ctx.model.source);
    let materialized = 0;
    let reshapes = 0;
    let expands = 0;
    for (const n of [...graph.nodes]) {
      if (n.opType === 'Constant' || !graph.contains(n)) continue;
      for (const o of [...n.outputs]) {
        const info = sa.get(o);
        if (o.omitted || !info.content || !info.shape || (info.dtype !== DataType.INT64 && info.dtype !== DataType.INT32)) continue;
        const dims = info.shape.map((d) => d.value);
        const values = info.content.map((c) => c.value);
        if (dims.some((d) => d === null) || values.some((v) => v === null)) continue;
        if (o.uses.length === 0 && !o.isGraphOutput) continue;
        const typed = info.dtype === DataType.INT64 ? BigInt64Array.from(values, (v) => BigInt(v!)) : Int32Array.from(values, (v) => v!);
        graph.makeConstant(o, Tensor.fromValues(o.name, info.dtype, dims as number[], typed));
        materialized++;
      }
    }
    for (const n of [...graph.nodes]) {
      if (n.opType === 'Reshape' && isDefaultDomain(n) && n.inputs[1] && !n.inputs[1].constant) {
        const target = reshapeTarget(sa.get(n.inputs[0]).shape, sa.get(n.inputs[1]).content, n.int('allowzero', 0) === 1);
        if (target) {
          const c = graph.addInitializer(`${n.name}_shape`, Tensor.fromValues(`${n.name}_shape`, DataType.INT64, [target.length], target.map(BigInt)));
          graph.setInput(n, 1, c);
          reshapes++;
        }
      }
      if (n.opType === 'Expand' && isDefaultDomain(n)) {
        const x = sa.get(n.inputs[0]).shape;
        const target = sa.get(n.inputs[1]).content;
        if (x && target && target.length <= x.length && sameAfterBroadcast(x, target) && replaceOutput(graph, n, n.inputs[0]!)) expands++;
      }
    }
    if (ctx.shapes) stampStaticTypes(graph, sa);
    return { changed: materialized + reshapes + expands > 0, counts: { shapeValuesFolded: materialized, reshapeTargets: reshapes, expandsDropped: expands } };
  },
};


/** [0 | -1 | n ...] equal to `content` for an input of shape `input`, or null when it cannot be said. */
function reshapeTarget(input: Sym[] | null, content: Sym[] | null, allowzero: boolean): number[] | null {
  if (!content) return null;
  const out: number[] = [];
  let minus = 0;
  for (let i = 0; i < content.length; i++) {
    const c = content[i];
    const v = c.value;
    if (v !== null) {
      if (v === 0 && !allowzero) return null; // a literal 0 would mean "copy": not what the content says
      if (v === -1) minus++;
      out.push(v);
    } else if (!allowzero && input && i < input.length && input[i].equals(c)) {
      out.push(0);
    } else {
      out.push(-1);
      minus++;
    }
  }
  return minus <= 1 ? out : null;
}

function sameAfterBroadcast(x: Sym[], target: Sym[]): boolean {
  const off = x.length - target.length;
  return target.every((t, i) => t.value === 1 || t.equals(x[off + i]));
}

/**
 * Specialized dims must hold everywhere, not only at the inputs: a size the graph cannot compute with (an
 * odd latent through a stride-2 down/up path) is the user's mistake, said here, naming the node, rather
 * than by onnxruntime when it loads the output. Checked once the shape computations have folded.
 */
function refuseConflicts(conflicts: Conflict[], shapes: Map<string, number[]>, file: string): void {
  const c = conflicts[0];
  if (!c) return;
  const given = [...shapes].map(([k, d]) => `${k}=${d.join('x')}`).join(',');
  throw new SdcError(file, `--shape ${given} contradicts the model at node '${c.node.name}' (${c.node.opType}): ${c.problem}`);
}

/** With static inputs, outputs get their numeric shapes and stale symbolic value_info is dropped. */
function stampStaticTypes(graph: Graph, sa: ReturnType<typeof analyzeShapes>): void {
  for (const v of graph.values.values()) {
    if (!v.producer || v.type?.kind !== 'tensor') continue;
    const shape = sa.get(v).shape;
    const numeric = shape && shape.every((d) => d.value !== null) ? shape.map((d) => d.value!) : null;
    if (v.isGraphOutput) {
      if (numeric) v.type = { ...v.type, shape: numeric };
    } else {
      v.type = null;
    }
  }
}
