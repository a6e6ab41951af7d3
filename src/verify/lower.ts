import { readModel } from '../onnx/read';
import { writeModel } from '../onnx/write';
import { lowerNodes, unrunnableOn } from '../compiler/lower';

/**
 * The oracle for GPU-only outputs (`--check` and the tests): rewrite the ops sdc emits that the CPU
 * provider has no kernel for (NhwcConv, GroupNorm NHWC, SkipGroupNorm, BiasSplitGelu, BiasAdd) back into
 * ops the CPU runs, by each op record's lowering (src/ops, compiler/lower.ts), so the transformed graph —
 * transposes sunk, weights re-laid out, affines and SiLU folded — can be run and compared with the
 * original model on a machine without the GPU. It checks sdc's algebra, not the provider's kernels.
 * `only` names the op types to lower instead (attention, whose CPU kernel runs, is lowered only when
 * named). Returns how many nodes were lowered. A node it cannot lower is an SdcError naming the file.
 */
export function lowerToCpu(src: string, out: string, only?: string[]): number {
  const model = readModel(src);
  const select = only ? (node: { opType: string }) => only.includes(node.opType) : unrunnableOn('cpu');
  const lowered = lowerNodes(model, select, src, 'its output cannot be checked on the CPU');
  model.source = '';
  writeModel(model, out);
  return [...lowered.values()].reduce((a, n) => a + n, 0);
}
