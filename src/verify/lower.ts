import { SdcError } from '../ir/errors';
import { readModel } from '../onnx/read';
import { writeModel } from '../onnx/write';
import { analyzeShapes, ShapeLookup } from '../analysis/shapes';
import { LowerContext, LoweringError, opRecord } from '../ops';

/**
 * The oracle for GPU-only outputs (`--check` and the tests): rewrite the ops sdc emits that the CPU
 * provider has no kernel for (NhwcConv, GroupNorm NHWC, SkipGroupNorm, BiasSplitGelu, BiasAdd) back into
 * ops the CPU runs, by each op record's lowering (src/ops), so the transformed graph — transposes sunk,
 * weights re-laid out, affines and SiLU folded — can be run and compared with the original model on a
 * machine without the GPU. It checks sdc's algebra, not the provider's kernels. `only` names the op
 * types to lower instead (attention, whose CPU kernel runs, is lowered only when named). Returns how many
 * nodes were lowered. A node it cannot lower is an SdcError naming the file.
 */
export function lowerToCpu(src: string, out: string, only?: string[]): number {
  const model = readModel(src);
  const g = model.graph;
  let facts: ShapeLookup | null = null;
  const ctx: LowerContext = { opset: model.opset('') ?? 17, shapeOf: (v) => (facts ??= analyzeShapes(model)).get(v).shape };
  let lowered = 0;
  for (const node of [...g.nodes]) {
    const record = opRecord(node.domain, node.opType);
    if (!record || typeof record.lower !== 'function') continue;
    if (only ? !only.includes(node.opType) : record.kernels?.cpu) continue;
    let results;
    try {
      results = record.lower(g, node, ctx);
    } catch (e) {
      if (e instanceof LoweringError) throw new SdcError(src, `${e.message}, so its output cannot be checked on the CPU`);
      throw e;
    }
    node.outputs.forEach((o, i) => {
      const r = results[i];
      if (!r) {
        if (o.uses.length || o.isGraphOutput) throw new SdcError(src, `cannot lower ${node.opType} '${node.name}': its output ${i} is read, and the lowering computes only the first`);
        return;
      }
      r.type = o.type;
      g.replaceAllUsesWith(o, r);
    });
    g.removeNode(node);
    lowered++;
  }
  g.topoSort();
  model.source = '';
  writeModel(model, out);
  return lowered;
}
