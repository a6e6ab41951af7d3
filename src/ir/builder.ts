import { DataType } from './dtype';
import { AttrType, Attribute, Dim, Graph, Value } from './graph';
import { Tensor } from './tensor';
import { Model } from './model';

/** Marks a number as a FLOAT attribute (plain integers become INT). */
class F {
  constructor(readonly v: number | number[]) {}
}
export const float = (v: number | number[]) => new F(v);

export type AttrInput = number | number[] | string | Tensor | F | Graph;

function toAttr(name: string, v: AttrInput): Attribute {
  if (v instanceof F) return Array.isArray(v.v) ? { name, type: AttrType.FLOATS, value: v.v } : { name, type: AttrType.FLOAT, value: v.v };
  if (v instanceof Tensor) return { name, type: AttrType.TENSOR, value: v };
  if (v instanceof Graph) return { name, type: AttrType.GRAPH, value: v };
  if (typeof v === 'string') return { name, type: AttrType.STRING, value: Buffer.from(v) };
  if (Array.isArray(v)) return v.every(Number.isInteger) ? { name, type: AttrType.INTS, value: v } : { name, type: AttrType.FLOATS, value: v };
  return Number.isInteger(v) ? { name, type: AttrType.INT, value: v } : { name, type: AttrType.FLOAT, value: v };
}

/**
 * Builds small models in code for unit tests: the same IR the compiler uses, written by the same writer,
 * saved by `saveModel` (onnx/write) as a real ONNX file that onnxruntime loads.
 */
export class ModelBuilder {
  readonly model: Model;
  readonly graph: Graph;

  constructor(opset = 17, extraOpsets: Record<string, number> = {}) {
    this.graph = new Graph('test');
    this.model = new Model(this.graph);
    this.model.irVersion = opset >= 21 ? 10 : 8;
    this.model.producerName = 'sdc-fixtures';
    this.model.opsets.set('', opset);
    for (const [d, v] of Object.entries(extraOpsets)) this.model.opsets.set(d, v);
  }

  input(name: string, shape: Dim[], dtype = DataType.FLOAT): Value {
    const v = this.graph.newValue(name);
    v.type = { kind: 'tensor', elemType: dtype, shape };
    this.graph.inputs.push(v);
    return v;
  }

  const(name: string, dims: number[], values: number[] | Float32Array, dtype = DataType.FLOAT): Value {
    const vals = dtype === DataType.INT64 ? Array.from(values, (x) => BigInt(x)) : values;
    return this.graph.addInitializer(name, Tensor.fromValues(name, dtype, dims, vals as ArrayLike<number>));
  }

  ints(name: string, values: number[]): Value {
    return this.const(name, [values.length], values, DataType.INT64);
  }

  scalar(name: string, value: number, dtype = DataType.FLOAT): Value {
    return this.const(name, [], [value], dtype);
  }

  /** Add a node; returns its single output (or all of them when `outputs` > 1). */
  op(op: string, inputs: (Value | null)[], attrs: Record<string, AttrInput> = {}, opts: { domain?: string; outputs?: number; name?: string } = {}): Value {
    return this.opN(op, inputs, attrs, opts)[0];
  }

  opN(op: string, inputs: (Value | null)[], attrs: Record<string, AttrInput> = {}, opts: { domain?: string; outputs?: number; name?: string } = {}): Value[] {
    const n = this.graph.addNode({
      op,
      domain: opts.domain,
      name: opts.name,
      inputs,
      outputs: Array.from({ length: opts.outputs ?? 1 }, (_, i) => `${opts.name ?? op.toLowerCase()}_out${i}`),
      attrs: Object.entries(attrs).map(([k, v]) => toAttr(k, v)),
    });
    return n.outputs;
  }

  output(v: Value, shape: Dim[] | null = null, dtype = DataType.FLOAT): this {
    if (!v.type) v.type = { kind: 'tensor', elemType: dtype, shape };
    this.graph.outputs.push(v);
    return this;
  }

}
