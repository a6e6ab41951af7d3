import { DataType } from '../ir/dtype';
import { Model } from '../ir/model';
import { Value } from '../ir/graph';

/** Ops an index passes through unchanged on its way to the table it indexes. */
const PASS_THROUGH = new Set(['Cast', 'Reshape', 'Flatten', 'Unsqueeze', 'Squeeze', 'Identity']);
const INTEGER = new Set([DataType.INT64, DataType.INT32, DataType.INT16, DataType.INT8, DataType.UINT64, DataType.UINT32, DataType.UINT16, DataType.UINT8]);

/**
 * How many rows each integer input indexes: for an input that reaches a Gather's indices (directly or
 * through casts and reshapes) whose data is an initializer — an embedding table (token ids, position
 * ids, class labels) — the size of the table along the gathered axis (the smallest, when it indexes
 * several). `--check` feeds such inputs ids spread over that range, not one repeated id.
 */
export function indexRanges(model: Model): Map<string, { size: number; table: string }> {
  const g = model.graph;
  const ranges = new Map<string, { size: number; table: string }>();
  for (const input of g.inputs.filter((v) => !v.initializer && v.elemType !== null && INTEGER.has(v.elemType))) {
    const seen = new Set<Value>();
    const walk = (v: Value): void => {
      if (seen.has(v)) return;
      seen.add(v);
      for (const { node, index } of v.uses) {
        if (PASS_THROUGH.has(node.opType) && index === 0) node.outputs.forEach((o) => o && walk(o));
        const table = node.inputs[0]?.initializer;
        if (node.opType !== 'Gather' || node.domain !== '' || index !== 1 || !table) continue;
        const rank = table.dims.length;
        const axis = node.int('axis', 0);
        const size = table.dims[axis < 0 ? axis + rank : axis];
        const known = ranges.get(input.name);
        if (size > 0 && (!known || size < known.size)) ranges.set(input.name, { size, table: node.inputs[0]!.name });
      }
    };
    walk(input);
  }
  return ranges;
}
