import * as ort from 'onnxruntime-node';
import { DataType } from '../ir/dtype';
import { AttrType, Graph, Node, Value } from '../ir/graph';
import { Model } from '../ir/model';
import { Tensor } from '../ir/tensor';
import { ValueRange } from '../rewrite/pass';
import { Segment } from './calibrate-plan';

const SMALLEST_NORMAL_FP16 = 2 ** -14;
/** Nodes segmentModel adds per measured tensor (Abs, ReduceMax, ReduceSum, two Greater→Cast→ReduceSum). */
export const PROBE_NODES = 9;
/** The largest float32 below 2^-14: |x| > it is |x| ≥ 2^-14 for a float32 x. */
const BELOW_SMALLEST_NORMAL = SMALLEST_NORMAL_FP16 * (1 - 2 ** -24);

/** A segment as a model of its own, and how to read what it measured. */
export interface SegmentModel {
  model: Model;
  /** Per probed tensor: its range, or null when it holds a NaN or an Inf (or nothing): fetch it then. */
  read(out: ort.InferenceSession.OnnxValueMapType, v: Value): ValueRange | null;
}

/**
 * The segment as a model: its nodes; its inputs (values computed elsewhere are declared with their
 * element type and no shape); the initializers it reads; as outputs, what later segments read, the
 * tensors in `fetch` whole, and for each tensor in `probe` four scalars computed right after it:
 * max |x|, Σ|x| (finite only when every element is), the count of x ≠ 0 and of |x| ≥ 2^-14.
 *
 * Measuring in the graph is what keeps calibration small: a fetched tensor stays alive in onnxruntime to
 * the end of the run and is then copied into JS; the probes are freed as the run goes, and only
 * scalars come back. They give exactly what measuring the fetched tensor gives (max and counts are
 * exact; integer counts in int32); a tensor with a NaN or an Inf is fetched instead (`read` says which),
 * as its max from onnxruntime need not skip them the way `measureTensor` does.
 */
export function segmentModel(model: Model, seg: Segment, dtype: (v: Value) => DataType | null, probe: readonly Value[], fetch: readonly Value[] = []): SegmentModel {
  const g = new Graph(model.graph.name);
  g.docString = model.graph.docString;
  g.extra = model.graph.extra;
  const declare = (v: Value) => {
    if (!v.initializer && !(v.isGraphInput && v.type)) v.type = { kind: 'tensor', elemType: dtype(v)!, shape: null };
  };
  for (const v of [...seg.inputs, ...seg.handsOn, ...fetch]) declare(v);
  const outputs = new Set([...seg.handsOn, ...fetch]);

  // names no value of the model has
  let prefix = 'sdc_calibration/';
  while ([...model.graph.values.keys()].some((k) => k.startsWith(prefix))) prefix = `_${prefix}`;
  const values: Value[] = [];
  const make = (name: string) => {
    const v = new Value(g, prefix + name);
    values.push(v);
    return v;
  };
  const constant = (name: string, dtype: DataType, dims: number[], x: number | bigint) => {
    const v = make(name);
    v.initializer = Tensor.fromValues(v.name, dtype, dims, [x] as number[] | bigint[]);
    return v;
  };
  const zero = constant('zero', DataType.FLOAT, [], 0);
  const below = constant('below_normal', DataType.FLOAT, [], BELOW_SMALLEST_NORMAL);
  let count = 0;
  const node = (op: string, inputs: Value[], out: Value, attrs: Record<string, number> = {}) => {
    const n = new Node(g, op, '', `${prefix}${op}_${count++}`);
    n.inputs = inputs;
    n.outputs = [out];
    out.producer = n;
    for (const [name, value] of Object.entries(attrs)) n.attrs.set(name, { name, type: AttrType.INT, value });
    return n;
  };
  const probes = new Map<Value, { max: string; sum: string; nonzero: string; normal: string }>();
  const after = new Map<Node, Node[]>();
  for (const [i, v] of probe.entries()) {
    const abs = make(`${i}/abs`);
    const out = (name: string, elemType: DataType) => {
      const o = make(`${i}/${name}`);
      o.type = { kind: 'tensor', elemType, shape: [] };
      outputs.add(o);
      return o;
    };
    const [max, sum, nonzero, normal] = [out('max', DataType.FLOAT), out('sum', DataType.FLOAT), out('nonzero', DataType.INT32), out('normal', DataType.INT32)];
    const counted = (above: Value, o: Value) => {
      const is = make(`${i}/${o.name}_is`);
      const as = make(`${i}/${o.name}_as_int`);
      return [node('Greater', [abs, above], is), node('Cast', [is], as, { to: DataType.INT32 }), node('ReduceSum', [as], o, { keepdims: 0 })];
    };
    // right after the tensor's producer: onnxruntime runs nodes in this order and frees the tensor
    // and |x| once the last probe has read them
    after.set(v.producer!, [
      ...(after.get(v.producer!) ?? []),
      node('Abs', [v], abs),
      node('ReduceMax', [abs], max, { keepdims: 0 }),
      node('ReduceSum', [abs], sum, { keepdims: 0 }),
      ...counted(zero, nonzero),
      ...counted(below, normal),
    ]);
    probes.set(v, { max: max.name, sum: sum.name, nonzero: nonzero.name, normal: normal.name });
  }
  g.nodes = seg.nodes.flatMap((n) => [n, ...(after.get(n) ?? [])]);
  g.inputs = seg.inputs;
  g.outputs = [...outputs];
  for (const v of [...seg.inputs, ...seg.initializers, ...seg.nodes.flatMap((n) => n.outputs), ...values.filter((v) => probe.length || !v.initializer)]) g.values.set(v.name, v);
  const m = Object.assign(new Model(g), model);
  m.graph = g;
  return {
    model: m,
    read(out, v) {
      const p = probes.get(v)!;
      const scalar = (name: string) => Number((out[name] as ort.Tensor).data[0]);
      // Σ|x| is finite only without NaN and Inf; an empty tensor's max is -Inf: both are fetched
      if (!Number.isFinite(scalar(p.sum)) || !Number.isFinite(scalar(p.max))) return null;
      const nonzero = scalar(p.nonzero);
      return { maxAbs: scalar(p.max), tinyFraction: nonzero ? (nonzero - scalar(p.normal)) / nonzero : 0 };
    },
  };
}

/** The range of a fetched tensor: max |x| and the share of its nonzero values below 2^-14, NaN and Inf left out. */
export function measureTensor(data: Float32Array): ValueRange {
  let maxAbs = 0;
  let nonzero = 0;
  let tiny = 0;
  for (let i = 0; i < data.length; i++) {
    const a = Math.abs(data[i]);
    // a NaN or an Inf in the fp32 model is the model's own; it says nothing about fp16
    if (!Number.isFinite(a)) continue;
    if (a > maxAbs) maxAbs = a;
    if (a !== 0) {
      nonzero++;
      if (a < SMALLEST_NORMAL_FP16) tiny++;
    }
  }
  return { maxAbs, tinyFraction: nonzero ? tiny / nonzero : 0 };
}
