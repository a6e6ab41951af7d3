import { DataType } from '../ir/dtype';
import { SdcError } from '../ir/errors';
import { Node } from '../ir/graph';
import { fromHalfBits } from '../ir/half';
import { Model } from '../ir/model';
import { analyzeShapes, ShapeLookup } from '../analysis/shapes';
import { Emitter, LowerContext, LowerFn, LoweringError, OpRecord, opRecord, TargetName } from '../ops';

/**
 * Rewrite the nodes `select` picks into ops of the same semantics by each op record's lowering (src/ops),
 * in memory. The `--check` oracle lowers GPU-only ops so the CPU can run them (verify/lower.ts); compile
 * lowers the ops of its input that its target has no kernel for (an output holds only ops its target
 * runs). A float16 op (--precision fp16) is lowered as its float32 definition between casts. Returns the
 * nodes lowered, by op type. A node it cannot lower is an SdcError naming `file` and saying `why`.
 */
export function lowerNodes(model: Model, select: (node: Node, record: OpRecord) => boolean, file: string, why: string): Map<string, number> {
  const g = model.graph;
  let facts: ShapeLookup | null = null;
  const analysis = () => (facts ??= analyzeShapes(model));
  const ctx: LowerContext = { opset: model.opset('') ?? 17, shapeOf: (v) => analysis().get(v).shape };
  const nodes = g.nodes.filter((node) => {
    const record = opRecord(node.domain, node.opType);
    return !!record && typeof record.lower === 'function' && select(node, record);
  });
  // element types, read before anything changes (a lowered op's result is a value the analysis never saw)
  const inputTypes = new Map(nodes.map((node) => [node, node.inputs.map((v) => (v && !v.omitted ? v.constant?.dtype ?? analysis().get(v).dtype : null))]));
  const lowered = new Map<string, number>();
  for (const node of nodes) {
    const e = new Emitter(g, node);
    // fp16: the lowering computes in float32 (its constants are float32) between casts
    const types = inputTypes.get(node)!;
    const half = types[0] === DataType.FLOAT16;
    if (half) {
      node.inputs.forEach((v, i) => {
        if (!v || types[i] !== DataType.FLOAT16) return;
        const t = v.constant;
        g.setInput(node, i, t ? e.constant(`${t.name}_fp32`, DataType.FLOAT, t.dims, Array.from(t.values() as Uint16Array, fromHalfBits)) : e.one('Cast', [v], [{ name: 'to', type: 2, value: DataType.FLOAT }]));
      });
    }
    let results;
    try {
      results = (opRecord(node.domain, node.opType)!.lower as LowerFn)(g, node, ctx);
    } catch (err) {
      if (err instanceof LoweringError) throw new SdcError(file, `${err.message}, so ${why}`);
      throw err;
    }
    node.outputs.forEach((o, i) => {
      const r = results[i];
      if (!r) {
        if (o.uses.length || o.isGraphOutput) throw new SdcError(file, `cannot lower ${node.opType} '${node.name}': its output ${i} is read, and the lowering computes only the first; so ${why}`);
        return;
      }
      const result = half ? e.one('Cast', [r], [{ name: 'to', type: 2, value: DataType.FLOAT16 }]) : r;
      result.type = o.type;
      g.replaceAllUsesWith(o, result);
    });
    g.removeNode(node);
    lowered.set(node.opType, (lowered.get(node.opType) ?? 0) + 1);
  }
  if (nodes.length) g.topoSort();
  return lowered;
}

/** A node whose op the target has no kernel for, and whose record knows its definition in standard ops. */
export const unrunnableOn = (target: TargetName) => (_node: Node, record: OpRecord): boolean => !!record.kernels && !record.kernels[target];
