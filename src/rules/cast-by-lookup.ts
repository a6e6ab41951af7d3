import { DataType, ORT_TYPE, dtypeName } from '../ir/dtype';
import { Node, Value } from '../ir/graph';
import { Tensor } from '../ir/tensor';
import { p } from '../rewrite/match';
import { defineRule } from '../rewrite/rule';

const typeName = (dt: DataType) => ORT_TYPE[dt] ?? dtypeName(dt);

/** Element types the lookup table can hold with every index value exact (float32: up to 2^24). */
const EXACT_LIMIT: Partial<Record<DataType, number>> = { [DataType.INT32]: 2 ** 31, [DataType.FLOAT]: 2 ** 24 };

/**
 * A Gather that reads `x` as indices into a constant table: it fails on any index outside [-V, V) (V the
 * table's size on the gathered axis), so wherever the model computes at all, x lies in that range.
 */
function indexBound(x: Value): { gather: Node; size: number } | null {
  for (const u of x.uses) {
    const g = u.node;
    if (g.opType !== 'Gather' || g.domain !== '' || u.index !== 1) continue;
    const table = g.inputs[0]?.constant;
    if (!table) continue;
    const rank = table.dims.length;
    const axis = g.int('axis', 0);
    if (axis < -rank || axis >= rank) continue;
    const size = table.dims[axis < 0 ? axis + rank : axis];
    if (size > 0) return { gather: g, size };
  }
  return null;
}

/**
 * Cast of int64 indices (a text encoder's `input_ids`, cast to int32 for the pooled token's ArgMax) on a
 * target whose Cast kernel takes no int64 input (onnxruntime's WebGPU Cast, unless graph capture is on,
 * which onnxruntime-node ignores) → Gather from a constant table [0, 1, …, V−1, −V, …, −1]: the same
 * values for every index in [-V, V), and that range is all the model accepts, because the same ids index a
 * table of size V elsewhere (the token embedding). The Cast otherwise runs on the CPU with a copy of the
 * ids on either side.
 */
export const castByLookup = defineRule<{ size: number; to: DataType }>({
  name: 'cast-by-lookup',
  description: 'Cast(int64 ids → int32/float) on a target without an int64 Cast, when the ids also index a table of size V → Gather from [0..V−1, −V..−1]',
  priority: 0,
  pattern: p.op('Cast', [p.any('x')], { capture: 'cast', singleUse: false }),
  site: 'cast',
  counter: 'castByLookup',
  label: 'int64 cast as lookup',
  emits: () => ['ai.onnx::Gather'],
  check(m, ctx) {
    const x = m.values.x;
    if (ctx.shapes.get(x).dtype !== DataType.INT64) return 'its input is not int64';
    const lacks = ctx.target.accepts('', 'Cast', { dtype: DataType.INT64 });
    if (!lacks) return `${ctx.target.name}'s Cast takes int64`;
    const to = m.nodes.cast.int('to', 0) as DataType;
    const limit = EXACT_LIMIT[to];
    if (!limit) return `it casts to ${typeName(to)}, not int32 or float32`;
    const bound = indexBound(x);
    if (!bound) return 'its input does not also index a constant table (nothing bounds its values)';
    if (bound.size > limit) return `its bound ${bound.size} is not exact in ${typeName(to)}`;
    return ctx.target.accepts('', 'Gather', { dtype: to }) ?? { size: bound.size, to };
  },
  rewrite(m, s, rw) {
    const cast = m.nodes.cast;
    const out = m.values.cast;
    const table = new Array<number>(2 * s.size);
    for (let i = 0; i < s.size; i++) {
      table[i] = i;
      table[s.size + i] = i - s.size;
    }
    const name = `${cast.name}_lookup`;
    const t = rw.constant(name, Tensor.fromValues(name, s.to, [2 * s.size], table));
    const n = rw.add({ op: 'Gather', domain: '', inputs: [t, m.values.x], outputs: [`${out.name}_looked_up`], name: `${cast.name}_Gather`, attrs: [] });
    rw.replace(out, n.outputs[0]);
    return `Gather from a ${2 * s.size}-entry ${typeName(s.to)} table`;
  },
});
