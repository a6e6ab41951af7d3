import { DataType } from '../ir/dtype';
import { AttrType, Attribute, Graph, Node, Value } from '../ir/graph';
import { Tensor } from '../ir/tensor';

/**
 * Adds nodes in front of one node (a lowering writes its replacement there, so the graph stays in
 * topological order without a sort per node): ops, transposes and small constants, with attributes
 * written as plain numbers.
 */
export class Emitter {
  constructor(readonly g: Graph, readonly before: Node) {}

  op(type: string, inputs: (Value | null)[], attrs: Attribute[] = [], domain = '', outputs = 1): Value[] {
    const names = Array.from({ length: outputs }, (_, i) => `lower_${type.toLowerCase()}${outputs > 1 ? `_${i}` : ''}`);
    return this.g.addNode({ op: type, domain, inputs, outputs: names, attrs, before: this.before }).outputs;
  }

  one(type: string, inputs: (Value | null)[], attrs: Attribute[] = [], domain = ''): Value {
    return this.op(type, inputs, attrs, domain)[0];
  }

  transpose(x: Value, perm: number[]): Value {
    return this.one('Transpose', [x], [ints('perm', perm)]);
  }

  constant(name: string, dtype: DataType, dims: number[], values: ArrayLike<number> | ArrayLike<bigint>): Value {
    return this.g.addInitializer(name, Tensor.fromValues(name, dtype, dims, values));
  }

  int64s(name: string, values: number[]): Value {
    return this.constant(name, DataType.INT64, [values.length], values.map(BigInt));
  }
}

export const int = (name: string, value: number): Attribute => ({ name, type: AttrType.INT, value });
const ints = (name: string, value: number[]): Attribute => ({ name, type: AttrType.INTS, value });
export const float = (name: string, value: number): Attribute => ({ name, type: AttrType.FLOAT, value });
