import { SdcError } from '../ir/errors';
import { DataType } from '../ir/dtype';
import { AttrType, Node, clampInt } from '../ir/graph';
import { Tensor } from '../ir/tensor';

/**
 * The constant evaluator: the ops exporters use to compute shapes, scales and masks, on small tensors.
 * Values are held as float64 (exact for every int64 a shape holds); int64 beyond 2^53 clamps to INT64_MAX.
 */
export interface Arr {
  dtype: DataType;
  dims: number[];
  data: Float64Array;
}

const NUMERIC = new Set([DataType.FLOAT, DataType.DOUBLE, DataType.INT32, DataType.INT64, DataType.BOOL, DataType.UINT8, DataType.INT8, DataType.INT16, DataType.UINT16, DataType.UINT32]);
const isFoldable = (dt: DataType) => NUMERIC.has(dt);

const count = (dims: number[]) => dims.reduce((a, b) => a * b, 1);

export function arrOf(t: Tensor): Arr | null {
  if (!isFoldable(t.dtype) || t.data.kind === 'strings') return null;
  const v = t.values();
  const data = new Float64Array(v.length);
  for (let i = 0; i < v.length; i++) data[i] = Number(v[i] as number | bigint);
  return { dtype: t.dtype, dims: [...t.dims], data };
}

/** A value the evaluator computed that no tensor of its type can hold: the node is left unfolded. */
export class NotFoldable extends Error {}

export function tensorOf(a: Arr, name: string): Tensor {
  const n = a.data.length;
  if (a.dtype !== DataType.FLOAT && a.dtype !== DataType.DOUBLE && a.dtype !== DataType.FLOAT16) {
    // an integer result that is not a number (0/0 in an integer Div) has no value to store: a caller checks
    for (let i = 0; i < n; i++) if (!Number.isFinite(a.data[i]) && !(a.dtype === DataType.INT64 && Math.abs(a.data[i]) === Infinity)) throw new NotFoldable();
  }
  let out: ArrayLike<number> | BigInt64Array;
  switch (a.dtype) {
    case DataType.INT64: {
      const b = new BigInt64Array(n);
      for (let i = 0; i < n; i++) {
        const x = a.data[i];
        b[i] = x >= 9.2e18 ? 0x7fffffffffffffffn : x <= -9.2e18 ? -0x8000000000000000n : BigInt(Math.trunc(x));
      }
      return new Tensor(name, a.dtype, [...a.dims], { kind: 'bytes', bytes: new Uint8Array(b.buffer) });
    }
    default:
      out = a.data;
  }
  return Tensor.fromValues(name, a.dtype, [...a.dims], out);
}

function arr(dtype: DataType, dims: number[], values: ArrayLike<number>): Arr {
  return { dtype, dims, data: Float64Array.from(values) };
}

/** Round a float64 result into the element type (integer division truncates, as onnxruntime does). */
function coerce(dt: DataType, x: number): number {
  switch (dt) {
    case DataType.FLOAT: return Math.fround(x);
    case DataType.DOUBLE: return x;
    case DataType.BOOL: return x ? 1 : 0;
    case DataType.INT32: return Math.trunc(x) | 0;
    case DataType.UINT8: return Math.trunc(x) & 0xff;
    case DataType.INT8: return (Math.trunc(x) << 24) >> 24;
    case DataType.INT16: return (Math.trunc(x) << 16) >> 16;
    case DataType.UINT16: return Math.trunc(x) & 0xffff;
    case DataType.UINT32: return Math.trunc(x) >>> 0;
    default: return Number.isFinite(x) ? Math.trunc(x) : x;
  }
}

function broadcastDims(a: number[], b: number[]): number[] | null {
  const r = Math.max(a.length, b.length);
  const out: number[] = [];
  for (let i = 0; i < r; i++) {
    const x = a[a.length - r + i] ?? 1;
    const y = b[b.length - r + i] ?? 1;
    if (x !== y && x !== 1 && y !== 1) return null;
    out.push(x === 1 ? y : x);
  }
  return out;
}

/** Flat index into `src` for each flat index of the broadcast result `dims`. */
function broadcastIndex(src: number[], dims: number[]): Int32Array {
  const n = count(dims);
  const idx = new Int32Array(n);
  const r = dims.length;
  const s = [...Array(r - src.length).fill(1), ...src];
  const strides = new Array(r).fill(0);
  let acc = 1;
  for (let i = r - 1; i >= 0; i--) {
    strides[i] = s[i] === 1 ? 0 : acc;
    acc *= s[i];
  }
  const pos = new Array(r).fill(0);
  for (let k = 0; k < n; k++) {
    let off = 0;
    for (let i = 0; i < r; i++) off += pos[i] * strides[i];
    idx[k] = off;
    for (let i = r - 1; i >= 0; i--) {
      if (++pos[i] < dims[i]) break;
      pos[i] = 0;
    }
  }
  return idx;
}

function elementwise(inputs: Arr[], outType: DataType, f: (...x: number[]) => number): Arr | null {
  let dims: number[] | null = inputs[0].dims;
  for (const a of inputs.slice(1)) {
    dims = dims && broadcastDims(dims, a.dims);
  }
  if (!dims) return null;
  const n = count(dims);
  const idx = inputs.map((a) => broadcastIndex(a.dims, dims!));
  const data = new Float64Array(n);
  const args = new Array(inputs.length);
  for (let k = 0; k < n; k++) {
    for (let j = 0; j < inputs.length; j++) args[j] = inputs[j].data[idx[j][k]];
    data[k] = coerce(outType, f(...args));
  }
  return { dtype: outType, dims, data };
}

const isInt = (dt: DataType) => dt !== DataType.FLOAT && dt !== DataType.DOUBLE;

const BINARY: Record<string, (a: number, b: number, dt: DataType) => number> = {
  Add: (a, b) => a + b,
  Sub: (a, b) => a - b,
  Mul: (a, b) => a * b,
  Div: (a, b, dt) => (isInt(dt) ? (b === 0 ? 0 : Math.trunc(a / b)) : a / b),
  Pow: (a, b) => Math.pow(a, b),
  Min: (a, b) => Math.min(a, b),
  Max: (a, b) => Math.max(a, b),
};
const COMPARE: Record<string, (a: number, b: number) => boolean> = {
  Equal: (a, b) => a === b,
  Less: (a, b) => a < b,
  Greater: (a, b) => a > b,
  LessOrEqual: (a, b) => a <= b,
  GreaterOrEqual: (a, b) => a >= b,
  And: (a, b) => !!a && !!b,
  Or: (a, b) => !!a || !!b,
  Xor: (a, b) => !!a !== !!b,
};
const UNARY: Record<string, (a: number) => number> = {
  Neg: (a) => -a,
  Abs: Math.abs,
  Sqrt: Math.sqrt,
  Exp: Math.exp,
  Log: Math.log,
  Reciprocal: (a) => 1 / a,
  Floor: Math.floor,
  Ceil: Math.ceil,
  Sign: Math.sign,
  Relu: (a) => Math.max(0, a),
  Sigmoid: (a) => 1 / (1 + Math.exp(-a)),
  Tanh: Math.tanh,
  Sin: Math.sin,
  Cos: Math.cos,
  Identity: (a) => a,
};

const normAxis = (axis: number, rank: number) => (axis < 0 ? axis + rank : axis);
const ints = (a: Arr | null | undefined): number[] | null => (a ? Array.from(a.data) : null);

/** Outputs of `node` from constant inputs, or null when the op (or this use of it) is not supported. */
/** More elements than constant folding ever makes (the pass caps bytes too): not folded, not allocated. */
const FOLD_ELEMENTS = 1 << 22;

/** An op whose arguments cannot hold: the model is invalid (the file is added by compile()). */
function invalid(node: Node, problem: string): SdcError {
  return new SdcError('', `node '${node.name || '(unnamed)'}' (${node.opType}) ${problem}`);
}

/** An axis in [-rank, rank), normalized; anything else makes the model invalid. */
function checkAxis(node: Node, axis: number, rank: number): number {
  if (!(axis >= -rank && axis < rank)) throw invalid(node, `has axis ${axis} for a tensor of rank ${rank}`);
  return axis < 0 ? axis + rank : axis;
}

export function evaluate(node: Node, inputs: (Arr | null)[], opset: number): Arr[] | null {
  const op = node.opType;
  if (node.domain !== '' && node.domain !== 'ai.onnx') return null;
  const x = inputs[0];
  if (op in BINARY && x && inputs[1]) {
    const dt = x.dtype;
    const r = elementwise([x, inputs[1]], dt, (a, b) => BINARY[op](a, b, dt));
    return r && [r];
  }
  if (op in COMPARE && x && inputs[1]) {
    const r = elementwise([x, inputs[1]], DataType.BOOL, (a, b) => (COMPARE[op](a, b) ? 1 : 0));
    return r && [r];
  }
  if (op in UNARY && x) {
    const r = elementwise([x], x.dtype, UNARY[op]);
    return r && [r];
  }
  switch (op) {
    case 'Not': return x && [elementwise([x], DataType.BOOL, (a) => (a ? 0 : 1))!];
    case 'Cast': {
      const to = node.int('to');
      if (!x || to === undefined || !isFoldable(to)) return null;
      return [elementwise([x], to, (a) => a)!];
    }
    case 'CastLike': return x && inputs[1] ? [elementwise([x], inputs[1].dtype, (a) => a)!] : null;
    case 'Where': {
      if (!x || !inputs[1] || !inputs[2]) return null;
      const r = elementwise([x, inputs[1], inputs[2]], inputs[1].dtype, (c, a, b) => (c ? a : b));
      return r && [r];
    }
    case 'Constant': return constantNode(node);
    case 'Shape': {
      if (!x) return null;
      const r = x.dims.length;
      let start = node.int('start', 0);
      let end = node.int('end', r);
      start = Math.min(Math.max(normAxis(start, r), 0), r);
      end = Math.min(Math.max(normAxis(end, r), 0), r);
      const dims = x.dims.slice(start, Math.max(start, end));
      return [arr(DataType.INT64, [dims.length], dims)];
    }
    case 'Size': return x && [arr(DataType.INT64, [], [count(x.dims)])];
    case 'Reshape': {
      const shape = ints(inputs[1]);
      if (!x || !shape) return null;
      const dims = reshapeDims(x.dims, shape, node.int('allowzero', 0) === 1);
      return dims && [{ ...x, dims }];
    }
    case 'Flatten': {
      if (!x) return null;
      const axis = normAxis(node.int('axis', 1), x.dims.length);
      return [{ ...x, dims: [count(x.dims.slice(0, axis)), count(x.dims.slice(axis))] }];
    }
    case 'Squeeze': {
      if (!x) return null;
      const axes = (opset >= 13 ? ints(inputs[1]) : node.ints('axes')) ?? x.dims.map((d, i) => (d === 1 ? i : -1)).filter((i) => i >= 0);
      const drop = new Set(axes.map((a) => checkAxis(node, a, x.dims.length)));
      for (const a of drop) if (x.dims[a] !== 1) throw invalid(node, `squeezes axis ${a} of size ${x.dims[a]}`);
      return [{ ...x, dims: x.dims.filter((_, i) => !drop.has(i)) }];
    }
    case 'Unsqueeze': {
      if (!x) return null;
      const axes = opset >= 13 ? ints(inputs[1]) : node.ints('axes') ?? null;
      if (!axes) return null;
      const r = x.dims.length + axes.length;
      const set = new Set(axes.map((a) => checkAxis(node, a, r)));
      if (set.size !== axes.length) throw invalid(node, `repeats an axis in [${axes.join(', ')}]`);
      const dims: number[] = [];
      let j = 0;
      for (let i = 0; i < r; i++) dims.push(set.has(i) ? 1 : x.dims[j++]);
      return [{ ...x, dims }];
    }
    case 'Concat': {
      if (inputs.some((a) => !a)) return null;
      const list = inputs as Arr[];
      const r = list[0].dims.length;
      const axis = checkAxis(node, node.int('axis', 0), r);
      for (const a of list) {
        if (a.dims.length !== r) throw invalid(node, `concatenates tensors of rank ${r} and ${a.dims.length}`);
        if (a.dims.some((d, i) => i !== axis && d !== list[0].dims[i])) throw invalid(node, `concatenates [${list[0].dims.join(',')}] and [${a.dims.join(',')}] on axis ${axis}`);
      }
      return [concat(list, axis)];
    }
    case 'Gather': {
      const idx = inputs[1];
      if (!x || !idx) return null;
      const axis = checkAxis(node, node.int('axis', 0), x.dims.length);
      const n = x.dims[axis];
      for (const i of idx.data) if (!(i >= -n && i < n)) throw invalid(node, `gathers index ${i} from a dim of ${n}`);
      return [gather(x, idx, axis)];
    }
    case 'Slice': return x ? slice(node, x, inputs, opset) : null;
    case 'Transpose': {
      if (!x) return null;
      const perm = node.ints('perm') ?? x.dims.map((_, i) => x.dims.length - 1 - i);
      if (perm.length !== x.dims.length || [...perm].sort((a, b) => a - b).some((p, i) => p !== i)) throw invalid(node, `perm [${perm.join(', ')}] is not a permutation of ${x.dims.length} axes`);
      return [transpose(x, perm)];
    }
    case 'Range': {
      if (!x || !inputs[1] || !inputs[2]) return null;
      const [s, l, d] = [x.data[0], inputs[1].data[0], inputs[2].data[0]];
      const n = Math.max(Math.ceil((l - s) / d), 0);
      if (!Number.isFinite(n)) throw invalid(node, `ranges from ${s} to ${l} by ${d}`);
      if (n > FOLD_ELEMENTS) return null;
      return [arr(x.dtype, [n], Array.from({ length: n }, (_, i) => coerce(x.dtype, s + i * d)))];
    }
    case 'ConstantOfShape': {
      const shape = ints(x);
      if (!shape) return null;
      const v = node.attr('value');
      const fill = v && v.type === AttrType.TENSOR ? arrOf(v.value) : arr(DataType.FLOAT, [1], [0]);
      if (!fill) return null;
      if (shape.some((d) => d < 0)) throw invalid(node, `makes a tensor of negative dims [${shape.join(', ')}]`);
      if (count(shape) > FOLD_ELEMENTS) return null;
      return [{ dtype: fill.dtype, dims: shape, data: new Float64Array(count(shape)).fill(fill.data[0]) }];
    }
    case 'Expand': {
      const shape = ints(inputs[1]);
      if (!x || !shape) return null;
      const dims = broadcastDims(x.dims, shape);
      if (dims && count(dims) > FOLD_ELEMENTS) return null;
      return dims ? [elementwise([x, { dtype: x.dtype, dims, data: new Float64Array(count(dims)) }], x.dtype, (a) => a)!] : null;
    }
    case 'Tile': {
      const reps = ints(inputs[1]);
      if (!x || !reps) return null;
      if (reps.length !== x.dims.length || reps.some((k) => k < 0)) throw invalid(node, `repeats [${reps.join(', ')}] do not fit a tensor of rank ${x.dims.length}`);
      if (count(x.dims.map((d, i) => d * reps[i])) > FOLD_ELEMENTS) return null;
      let cur = x;
      for (let ax = 0; ax < reps.length; ax++) cur = concat(Array(reps[ax]).fill(cur), ax);
      return [cur];
    }
    case 'ReduceProd':
    case 'ReduceSum':
    case 'ReduceMax':
    case 'ReduceMin':
      return x ? reduce(node, x, inputs, opset) : null;
  }
  return null;
}

function constantNode(node: Node): Arr[] | null {
  const [a] = [...node.attrs.values()];
  if (!a) return null;
  switch (a.name) {
    case 'value': return a.type === AttrType.TENSOR ? (arrOf(a.value) ? [arrOf(a.value)!] : null) : null;
    case 'value_float': return [arr(DataType.FLOAT, [], [a.value as number])];
    case 'value_floats': return [arr(DataType.FLOAT, [(a.value as number[]).length], a.value as number[])];
    case 'value_int': return [arr(DataType.INT64, [], [clampInt(a.value as number)])];
    case 'value_ints': return [arr(DataType.INT64, [(a.value as number[]).length], (a.value as (number | bigint)[]).map(clampInt))];
  }
  return null;
}

function reshapeDims(input: number[], shape: number[], allowzero: boolean): number[] | null {
  const dims = shape.map((d, i) => (d === 0 && !allowzero ? input[i] : d));
  if (dims.some((d) => d === undefined)) return null;
  const known = dims.filter((d) => d !== -1).reduce((a, b) => a * b, 1);
  const unknown = dims.filter((d) => d === -1).length;
  if (unknown > 1) return null;
  if (unknown === 1) {
    if (known === 0) return null;
    return dims.map((d) => (d === -1 ? count(input) / known : d));
  }
  return known === count(input) ? dims : null;
}

function strides(dims: number[]): number[] {
  const s = new Array(dims.length).fill(1);
  for (let i = dims.length - 2; i >= 0; i--) s[i] = s[i + 1] * dims[i + 1];
  return s;
}

function concat(list: Arr[], axis: number): Arr {
  const dims = [...list[0].dims];
  dims[axis] = list.reduce((s, a) => s + a.dims[axis], 0);
  const outer = count(dims.slice(0, axis));
  const data = new Float64Array(count(dims));
  let off = 0;
  for (let o = 0; o < outer; o++) {
    for (const a of list) {
      const inner = count(a.dims.slice(axis));
      data.set(a.data.subarray(o * inner, (o + 1) * inner), off);
      off += inner;
    }
  }
  return { dtype: list[0].dtype, dims, data };
}

function gather(x: Arr, idx: Arr, axis: number): Arr {
  const outer = count(x.dims.slice(0, axis));
  const inner = count(x.dims.slice(axis + 1));
  const n = x.dims[axis];
  const dims = [...x.dims.slice(0, axis), ...idx.dims, ...x.dims.slice(axis + 1)];
  const data = new Float64Array(count(dims));
  let off = 0;
  for (let o = 0; o < outer; o++) {
    for (const raw of idx.data) {
      const i = raw < 0 ? raw + n : raw;
      data.set(x.data.subarray((o * n + i) * inner, (o * n + i + 1) * inner), off);
      off += inner;
    }
  }
  return { dtype: x.dtype, dims, data };
}

/** Slice bounds per axis, clamped as the ONNX spec says. */
export function sliceBounds(dim: number, start: number, end: number, step: number): [number, number, number] {
  const clampS = (v: number, lo: number, hi: number) => Math.min(Math.max(v, lo), hi);
  let s = start < 0 ? start + dim : start;
  let e = end < 0 ? end + dim : end;
  if (step > 0) {
    s = clampS(s, 0, dim);
    e = clampS(e, 0, dim);
    return [s, e, Math.max(0, Math.ceil((e - s) / step))];
  }
  s = clampS(s, -1, dim - 1);
  e = clampS(e, -1, dim - 1);
  return [s, e, Math.max(0, Math.ceil((e - s) / step))];
}

function slice(node: Node, x: Arr, inputs: (Arr | null)[], opset: number): Arr[] | null {
  const r = x.dims.length;
  let starts: number[] | null, ends: number[] | null, axes: number[] | null, steps: number[] | null;
  if (opset >= 10) {
    starts = ints(inputs[1]);
    ends = ints(inputs[2]);
    axes = inputs[3] === undefined || node.inputs[3] === null || node.inputs[3] === undefined ? null : ints(inputs[3]);
    steps = node.inputs[4] ? ints(inputs[4]) : null;
    if (!starts || !ends || (node.inputs[3] && !axes) || (node.inputs[4] && !steps)) return null;
  } else {
    starts = node.ints('starts') ?? null;
    ends = node.ints('ends') ?? null;
    axes = node.ints('axes') ?? null;
    steps = null;
    if (!starts || !ends) return null;
  }
  const ax = (axes ?? starts.map((_, i) => i)).map((a) => checkAxis(node, a, r));
  const st = steps ?? starts.map(() => 1);
  if (ends.length !== starts.length || ax.length !== starts.length || st.length !== starts.length) throw invalid(node, `has ${starts.length} starts, ${ends.length} ends, ${ax.length} axes and ${st.length} steps`);
  if (new Set(ax).size !== ax.length) throw invalid(node, `repeats an axis in [${ax.join(', ')}]`);
  if (st.some((s) => s === 0)) throw invalid(node, 'has a step of 0');
  const begin = new Array(r).fill(0);
  const step = new Array(r).fill(1);
  const dims = [...x.dims];
  ax.forEach((a, i) => {
    const [s, , n] = sliceBounds(x.dims[a], starts![i], ends![i], st[i]);
    begin[a] = s;
    step[a] = st[i];
    dims[a] = n;
  });
  const inS = strides(x.dims);
  const data = new Float64Array(count(dims));
  const pos = new Array(r).fill(0);
  for (let k = 0; k < data.length; k++) {
    let off = 0;
    for (let i = 0; i < r; i++) off += (begin[i] + pos[i] * step[i]) * inS[i];
    data[k] = x.data[off];
    for (let i = r - 1; i >= 0; i--) {
      if (++pos[i] < dims[i]) break;
      pos[i] = 0;
    }
  }
  return [{ dtype: x.dtype, dims, data }];
}

function transpose(x: Arr, perm: number[]): Arr {
  const dims = perm.map((p) => x.dims[p]);
  const inS = strides(x.dims);
  const data = new Float64Array(x.data.length);
  const pos = new Array(dims.length).fill(0);
  for (let k = 0; k < data.length; k++) {
    let off = 0;
    for (let i = 0; i < dims.length; i++) off += pos[i] * inS[perm[i]];
    data[k] = x.data[off];
    for (let i = dims.length - 1; i >= 0; i--) {
      if (++pos[i] < dims[i]) break;
      pos[i] = 0;
    }
  }
  return { dtype: x.dtype, dims, data };
}

function reduce(node: Node, x: Arr, inputs: (Arr | null)[], opset: number): Arr[] | null {
  const axesFromInput = (node.opType === 'ReduceSum' && opset >= 13) || opset >= 18;
  const axesRaw = axesFromInput ? (node.inputs[1] ? ints(inputs[1]) : []) : node.ints('axes') ?? [];
  if (axesRaw === null) return null;
  const r = x.dims.length;
  const axes = new Set((axesRaw.length ? axesRaw : x.dims.map((_, i) => i)).map((a) => normAxis(a, r)));
  if (axesRaw.length === 0 && node.int('noop_with_empty_axes', 0) === 1) return [x];
  const keep = node.int('keepdims', 1) === 1;
  const outDimsKeep = x.dims.map((d, i) => (axes.has(i) ? 1 : d));
  const init = { ReduceProd: 1, ReduceSum: 0, ReduceMax: -Infinity, ReduceMin: Infinity }[node.opType as 'ReduceProd']!;
  const f = { ReduceProd: (a: number, b: number) => a * b, ReduceSum: (a: number, b: number) => a + b, ReduceMax: Math.max, ReduceMin: Math.min }[node.opType as 'ReduceProd']!;
  const out = new Float64Array(count(outDimsKeep)).fill(init);
  const outS = strides(outDimsKeep);
  const pos = new Array(r).fill(0);
  for (let k = 0; k < x.data.length; k++) {
    let off = 0;
    for (let i = 0; i < r; i++) off += (axes.has(i) ? 0 : pos[i]) * outS[i];
    out[off] = f(out[off], x.data[k]);
    for (let i = r - 1; i >= 0; i--) {
      if (++pos[i] < x.dims[i]) break;
      pos[i] = 0;
    }
  }
  return [{ dtype: x.dtype, dims: keep ? outDimsKeep : x.dims.filter((_, i) => !axes.has(i)), data: out.map((v) => coerce(x.dtype, v)) }];
}
