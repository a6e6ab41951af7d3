import { DataType } from '../ir/dtype';
import { SdcError } from '../ir/errors';
import { Node } from '../ir/graph';
import { fromHalfBits } from '../ir/half';
import { readModel } from '../onnx/read';
import { writeModel } from '../onnx/write';
import { analyzeShapes, ShapeLookup } from '../analysis/shapes';
import { Emitter, LowerContext, LowerFn, LoweringError, opRecord } from '../ops';

/**
 * The oracle for GPU-only outputs (`--check` and the tests): rewrite the ops sdc emits that the CPU
 * provider has no kernel for (NhwcConv, GroupNorm NHWC, SkipGroupNorm, BiasSplitGelu, BiasAdd) back into
 * ops the CPU runs, by each op record's lowering (src/ops), so the transformed graph — transposes sunk,
 * weights re-laid out, affines and SiLU folded — can be run and compared with the original model on a
 * machine without the GPU. It checks sdc's algebra, not the provider's kernels. `only` names the op
 * types to lower instead (attention, whose CPU kernel runs, is lowered only when named). A float16 op
 * (--precision fp16) is lowered as its float32 definition between casts. Returns how many nodes were
 * lowered. A node it cannot lower is an SdcError naming the file.
 */
export function lowerToCpu(src: string, out: string, only?: string[]): number {
  const model = readModel(src);
  const g = model.graph;
  let facts: ShapeLookup | null = null;
  const analysis = () => (facts ??= analyzeShapes(model));
  const ctx: LowerContext = { opset: model.opset('') ?? 17, shapeOf: (v) => analysis().get(v).shape };
  const lowerable = (node: Node) => {
    const record = opRecord(node.domain, node.opType);
    if (!record || typeof record.lower !== 'function') return false;
    return only ? only.includes(node.opType) : !record.kernels?.cpu;
  };
  const nodes = g.nodes.filter(lowerable);
  // element types, read before anything changes (a lowered op's result is a value the analysis never saw)
  const inputTypes = new Map(nodes.map((node) => [node, node.inputs.map((v) => (v && !v.omitted ? v.constant?.dtype ?? analysis().get(v).dtype : null))]));
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
      if (err instanceof LoweringError) throw new SdcError(src, `${err.message}, so its output cannot be checked on the CPU`);
      throw err;
    }
    node.outputs.forEach((o, i) => {
      const r = results[i];
      if (!r) {
        if (o.uses.length || o.isGraphOutput) throw new SdcError(src, `cannot lower ${node.opType} '${node.name}': its output ${i} is read, and the lowering computes only the first`);
        return;
      }
      const result = half ? e.one('Cast', [r], [{ name: 'to', type: 2, value: DataType.FLOAT16 }]) : r;
      result.type = o.type;
      g.replaceAllUsesWith(o, result);
    });
    g.removeNode(node);
  }
  g.topoSort();
  model.source = '';
  writeModel(model, out);
  return nodes.length;
}
