import { DataType } from '../ir/dtype';
import { AttrType, Graph, Node, Value, clampInt } from '../ir/graph';
import { Model } from '../ir/model';
import { Arr, arrOf, evaluate, sliceBounds } from './evaluate';
import { Sym, symOfDim } from '../ir/symbolic';
import { normalizeAxis } from '../ir/dims';
import { convSpatialDims, opRecord } from '../ops';

/**
 * What the compiler knows about a value: element type, shape (symbolic dims), and for small integer
 * tensors (the shape vectors exporters compute with Shape/Gather/Concat) their contents, also symbolic.
 * `constant` holds the full value when it is known (initializers and what folds from them).
 */
export interface Info {
  dtype: DataType | null;
  shape: Sym[] | null;
  content: Sym[] | null;
  constant: Arr | null;
}

const UNKNOWN: Info = { dtype: null, shape: null, content: null, constant: null };
const MAX_CONTENT = 64;
const INTS = new Set([DataType.INT64, DataType.INT32]);

const SAME_SHAPE = new Set([
  'Relu', 'Sigmoid', 'Sqrt', 'Erf', 'Tanh', 'Neg', 'Exp', 'Log', 'Abs', 'Softmax', 'LogSoftmax', 'Identity',
  'InstanceNormalization', 'Not', 'Sin', 'Cos', 'Gelu', 'Reciprocal', 'Floor', 'Ceil', 'LeakyRelu',
  'HardSigmoid', 'Clip', 'Elu', 'Selu', 'Softplus', 'Mish', 'HardSwish', 'Round', 'Sign', 'CumSum', 'Trilu',
  'GroupNormalization', 'IsNaN', 'IsInf', 'BatchNormalization', 'Celu',
]);
const BROADCAST = new Set(['Add', 'Sub', 'Mul', 'Div', 'Pow', 'Equal', 'Less', 'Greater', 'LessOrEqual', 'GreaterOrEqual', 'And', 'Or', 'Xor', 'Where', 'Max', 'Min', 'Sum', 'Mod', 'PRelu', 'BitShift']);
const BOOL_OUT = new Set(['Equal', 'Less', 'Greater', 'LessOrEqual', 'GreaterOrEqual', 'And', 'Or', 'Xor', 'Not', 'IsNaN', 'IsInf']);

/** Read access to shape facts: what rules and layout tracking need. */
export interface ShapeLookup {
  get(v: Value | null | undefined): Info;
}

/** Two static dims that cannot both hold: the model, or the shapes it was specialized to, are inconsistent. */
export interface Conflict {
  node: Node;
  problem: string;
  /**
   * The node cannot run at any input (its own operands' sizes clash); false for a declared output type
   * that disagrees with what the node computes, which onnxruntime tolerates (it warns and runs).
   */
  certain: boolean;
}

export class ShapeAnalysis implements ShapeLookup {
  private info = new Map<Value, Info>();
  private freshCount = 0;
  /** Contradictions between known dims found on the way (first per node). */
  readonly conflicts: Conflict[] = [];
  private current: Node | null = null;

  constructor(readonly model: Model, readonly graph: Graph) {}

  get(v: Value | null | undefined): Info {
    if (!v) return UNKNOWN;
    return this.info.get(v) ?? this.seed(v);
  }

  fresh(hint: string): Sym {
    return Sym.atom(`${hint}_${++this.freshCount}`);
  }

  /** Info for a value no node in this graph produces: a graph input, an initializer, an outer value. */
  private seed(v: Value): Info {
    const t = v.constant;
    let info: Info;
    if (t) {
      const small = t.size <= 4096;
      const constant = small ? arrOf(t) : null;
      info = {
        dtype: t.dtype,
        shape: t.dims.map((d) => Sym.const(d)),
        constant,
        content: constant && INTS.has(t.dtype) && t.dims.length <= 1 && t.size <= MAX_CONTENT ? Array.from(constant.data, (x) => Sym.const(x)) : null,
      };
    } else {
      info = { dtype: v.elemType, shape: v.shape ? v.shape.map((d, i) => symOfDim(d, () => `unk__${v.name}_${i}`)) : null, content: null, constant: null };
    }
    this.info.set(v, info);
    return info;
  }

  /** Forward pass over the graph in topological order. */
  run(): this {
    this.graph.topoSort();
    const opset = this.model.opset('') ?? 17;
    for (const n of this.graph.nodes) {
      let outs: Info[];
      this.current = n;
      try {
        outs = this.infer(n, opset);
      } catch {
        outs = [];
      }
      n.outputs.forEach((o, i) => {
        let inferred = outs[i] ?? UNKNOWN;
        // An op argument out of range (a perm or axis past the rank) leaves holes: the shape is unknown.
        if (inferred.shape && (inferred.shape.length !== Object.keys(inferred.shape).length || inferred.shape.some((d) => !d))) {
          this.conflict(`its arguments do not fit its input's rank`);
          inferred = { ...inferred, shape: null, content: null };
        }
        // Fall back to what the exporter wrote in value_info when inference knows nothing.
        const declared = o.type?.kind === 'tensor' ? o.type : null;
        const clash = inferred.shape && declared?.shape && declared.shape.length === inferred.shape.length
          ? declared.shape.findIndex((d, k) => typeof d === 'number' && inferred.shape![k].value !== null && inferred.shape![k].value !== d)
          : -1;
        if (clash >= 0) this.conflict(`output '${o.name}' is declared with dim ${clash} = ${declared!.shape![clash]} but computes ${inferred.shape![clash].value}`, false);
        const shape = inferred.shape ?? (declared?.shape ? declared.shape.map((d, k) => symOfDim(d, () => `unk__${o.name}_${k}`)) : null);
        this.info.set(o, { ...inferred, dtype: inferred.dtype ?? declared?.elemType ?? null, shape });
      });
    }
    return this;
  }

  private infer(n: Node, opset: number): Info[] {
    const ins = n.inputs.map((v) => this.get(v));
    const x = ins[0] ?? UNKNOWN;
    // the ops sdc emits carry their own inference (src/ops); other contrib ops are unknown
    const record = opRecord(n.domain, n.opType);
    if (record && typeof record.infer === 'function') return record.infer(n, ins).map((t) => ({ dtype: t.dtype, shape: t.shape, content: null, constant: null }));
    if (n.domain !== '' && n.domain !== 'ai.onnx') return n.outputs.map(() => UNKNOWN);
    // Constant folding in the analysis: small all-constant nodes give their full value.
    if (n.inputs.every((v, i) => !v || ins[i].constant) && n.opType !== 'Shape') {
      const vals = evaluate(n, ins.map((i) => i.constant), opset);
      if (vals && vals.every((a) => a.data.length <= 4096)) return vals.map((a) => fromArr(a));
    }
    const op = n.opType;
    if (op === 'Cast') return [{ dtype: n.int('to') ?? null, shape: x.shape, content: INTS.has(n.int('to') ?? 0) ? x.content : null, constant: null }];
    if (op === 'CastLike') return [{ ...x, dtype: ins[1]?.dtype ?? null, constant: null }];
    if (op === 'Dropout') return [{ ...x, constant: null }, { dtype: DataType.BOOL, shape: x.shape, content: null, constant: null }];
    if (op === 'LayerNormalization') {
      const axis = n.int('axis', -1);
      const r = x.shape?.length ?? 0;
      const stat = x.shape ? x.shape.map((d, i) => (i < (axis < 0 ? axis + r : axis) ? d : Sym.const(1))) : null;
      return [{ dtype: x.dtype, shape: x.shape, content: null, constant: null }, { dtype: DataType.FLOAT, shape: stat, content: null, constant: null }, { dtype: DataType.FLOAT, shape: stat, content: null, constant: null }];
    }
    if (SAME_SHAPE.has(op)) return [{ dtype: BOOL_OUT.has(op) ? DataType.BOOL : x.dtype, shape: x.shape, content: op === 'Identity' ? x.content : null, constant: null }];
    if (BROADCAST.has(op)) {
      const shapes = ins.map((i) => i.shape);
      let shape: Sym[] | null = shapes[0] ?? null;
      for (const s of shapes.slice(1)) shape = shape && s ? this.broadcast(shape, s) : null;
      const dtype = BOOL_OUT.has(op) ? DataType.BOOL : op === 'Where' ? ins[1]?.dtype ?? null : x.dtype;
      return [{ dtype, shape, content: this.contentArith(op, ins), constant: null }];
    }
    switch (op) {
      case 'Shape': {
        if (!x.shape) return [{ dtype: DataType.INT64, shape: null, content: null, constant: null }];
        const r = x.shape.length;
        const clampAxis = (a: number) => Math.min(Math.max(a < 0 ? a + r : a, 0), r);
        const s = clampAxis(n.int('start', 0));
        const e = clampAxis(n.int('end', r));
        const dims = x.shape.slice(s, Math.max(s, e));
        return [{ dtype: DataType.INT64, shape: [Sym.const(dims.length)], content: dims, constant: null }];
      }
      case 'Size':
        return [{ dtype: DataType.INT64, shape: [], content: x.shape ? [x.shape.reduce((a, b) => a.mul(b), Sym.const(1))] : null, constant: null }];
      case 'Constant': return [UNKNOWN];
      case 'Reshape': {
        const target = ins[1]?.content;
        return [{ dtype: x.dtype, shape: target && x.shape ? this.reshape(x.shape, target, n.int('allowzero', 0) === 1) : target ? target.map((d) => (d.value === -1 || d.value === 0 ? this.fresh('reshape') : d)) : null, content: x.content, constant: null }];
      }
      case 'Flatten': {
        if (!x.shape) return [UNKNOWN];
        const r = x.shape.length;
        let axis = n.int('axis', 1);
        if (axis < 0) axis += r;
        const prod = (l: Sym[]) => l.reduce((a, b) => a.mul(b), Sym.const(1));
        return [{ dtype: x.dtype, shape: [prod(x.shape.slice(0, axis)), prod(x.shape.slice(axis))], content: null, constant: null }];
      }
      case 'Transpose': {
        if (!x.shape) return [{ ...UNKNOWN, dtype: x.dtype }];
        const perm = n.ints('perm') ?? x.shape.map((_, i) => x.shape!.length - 1 - i);
        if (perm.length !== x.shape.length || [...perm].sort((a, b) => a - b).some((p, i) => p !== i)) {
          this.conflict(`perm [${perm.join(', ')}] is not a permutation of its input's ${x.shape.length} axes`);
          return [{ ...UNKNOWN, dtype: x.dtype }];
        }
        return [{ dtype: x.dtype, shape: perm.map((p) => x.shape![p]), content: null, constant: null }];
      }
      case 'Unsqueeze':
      case 'Squeeze': {
        const axes = opset >= 13 ? ins[1]?.content?.map((s) => s.value) : n.ints(op === 'Squeeze' ? 'axes' : 'axes');
        if (!x.shape || (axes && axes.some((a) => a === null))) return [{ ...UNKNOWN, dtype: x.dtype, content: x.content }];
        let shape: Sym[] | null;
        if (op === 'Unsqueeze') {
          if (!axes) return [{ ...UNKNOWN, dtype: x.dtype }];
          const r = x.shape.length + axes.length;
          const set = new Set(axes.map((a) => (a! < 0 ? a! + r : a!)));
          shape = [];
          let j = 0;
          for (let i = 0; i < r; i++) shape.push(set.has(i) ? Sym.const(1) : x.shape[j++]);
        } else {
          const r = x.shape.length;
          const set = axes ? new Set(axes.map((a) => (a! < 0 ? a! + r : a!))) : new Set(x.shape.map((d, i) => (d.value === 1 ? i : -1)));
          if (!axes && x.shape.some((d) => d.value === null)) return [{ ...UNKNOWN, dtype: x.dtype, content: x.content }];
          shape = x.shape.filter((_, i) => !set.has(i));
        }
        return [{ dtype: x.dtype, shape, content: x.content, constant: null }];
      }
      case 'Concat': {
        if (ins.some((i) => !i.shape)) return [{ ...UNKNOWN, dtype: x.dtype }];
        const r = x.shape!.length;
        let axis = n.int('axis', 0);
        if (axis < 0) axis += r;
        const shape = [...x.shape!];
        for (const other of ins.slice(1)) {
          const k = other.shape!.findIndex((d, i) => i !== axis && d.value !== null && shape[i]?.value !== null && shape[i] !== undefined && d.value !== shape[i].value);
          if (other.shape!.length !== r) this.conflict(`concatenates tensors of rank ${r} and ${other.shape!.length}`);
          else if (k >= 0) this.conflict(`concatenates tensors whose dim ${k} differs (${shape[k].value} and ${other.shape![k].value})`);
        }
        shape[axis] = ins.reduce((s, i) => s.add(i.shape![axis]), Sym.const(0));
        const content = r === 1 && ins.every((i) => i.content) ? ins.flatMap((i) => i.content!) : null;
        return [{ dtype: x.dtype, shape, content: content && content.length <= MAX_CONTENT ? content : null, constant: null }];
      }
      case 'Gather': {
        const idx = ins[1];
        if (!x.shape || !idx.shape) return [{ ...UNKNOWN, dtype: x.dtype }];
        const r = x.shape.length;
        let axis = n.int('axis', 0);
        if (axis < 0) axis += r;
        const shape = [...x.shape.slice(0, axis), ...idx.shape, ...x.shape.slice(axis + 1)];
        let content: Sym[] | null = null;
        if (x.content && axis === 0 && idx.constant) {
          content = Array.from(idx.constant.data, (i) => x.content![i < 0 ? i + x.content!.length : i]);
          if (content.some((c) => c === undefined)) content = null;
        }
        return [{ dtype: x.dtype, shape, content, constant: null }];
      }
      case 'Slice': return [this.slice(n, ins, opset)];
      case 'Split': return this.split(n, ins, opset);
      case 'Expand': {
        const target = ins[1]?.content;
        return [{ dtype: x.dtype, shape: x.shape && target ? this.broadcast(x.shape, target) : null, content: null, constant: null }];
      }
      case 'ConstantOfShape': {
        const v = n.attr('value');
        const dtype = v && v.type === AttrType.TENSOR ? v.value.dtype : DataType.FLOAT;
        // an integer fill of a short vector is content: exporters build Expand targets this way
        // (torch's `t.expand(n)`: Where(Equal(shape, -1), ConstantOfShape(...), shape))
        const fill = v && v.type === AttrType.TENSOR && v.value.size === 1 ? arrOf(v.value)?.data[0] : v ? undefined : 0;
        const len = x.content?.length === 0 ? 1 : x.content?.length === 1 ? x.content[0].value : null;
        const content = INTS.has(dtype) && typeof fill === 'number' && len !== null && len <= MAX_CONTENT ? Array.from({ length: len }, () => Sym.const(fill)) : null;
        return [{ dtype, shape: x.content, content, constant: null }];
      }
      case 'Tile': {
        const reps = ins[1]?.content;
        return [{ dtype: x.dtype, shape: x.shape && reps ? x.shape.map((d, i) => d.mul(reps[i])) : null, content: null, constant: null }];
      }
      case 'Range': {
        const [s, l, d] = ins.map((i) => i.constant?.data[0] ?? null);
        // Range(0, n, 1) of a dim n (arange(seq)) is n long
        const limit = ins[1]?.content;
        const len = s !== null && l !== null && d !== null ? Sym.const(Math.max(Math.ceil((l - s) / d), 0))
          : s === 0 && d === 1 && limit?.length === 1 && limit[0].nonNegative() ? limit[0] : this.fresh('range');
        return [{ dtype: x.dtype, shape: [len], content: null, constant: null }];
      }
      case 'MatMul': {
        const a = x.shape;
        const b = ins[1]?.shape;
        if (!a || !b) return [{ ...UNKNOWN, dtype: x.dtype }];
        const a2 = a.length === 1 ? [Sym.const(1), a[0]] : a;
        const b2 = b.length === 1 ? [b[0], Sym.const(1)] : b;
        const [ka, kb] = [a2[a2.length - 1], b2[b2.length - 2]];
        if (ka.value !== null && kb.value !== null && ka.value !== kb.value) this.conflict(`multiplies a [..., ${ka.value}] operand by a [${kb.value}, ...] one`);
        const batch = this.broadcast(a2.slice(0, -2), b2.slice(0, -2));
        const shape = [...batch, ...(a.length === 1 ? [] : [a2[a2.length - 2]]), ...(b.length === 1 ? [] : [b2[b2.length - 1]])];
        return [{ dtype: x.dtype, shape, content: null, constant: null }];
      }
      case 'Gemm': {
        const a = x.shape;
        const b = ins[1]?.shape;
        if (!a || !b) return [{ ...UNKNOWN, dtype: x.dtype }];
        const m = n.int('transA', 0) ? a[1] : a[0];
        const nn = n.int('transB', 0) ? b[0] : b[1];
        const [ka, kb] = [n.int('transA', 0) ? a[0] : a[1], n.int('transB', 0) ? b[1] : b[0]];
        if (ka?.value != null && kb?.value != null && ka.value !== kb.value) this.conflict(`multiplies a [M, ${ka.value}] operand by a [${kb.value}, N] one`);
        return [{ dtype: x.dtype, shape: [m, nn], content: null, constant: null }];
      }
      case 'Conv': return [this.conv(n, ins)];
      case 'Resize':
      case 'Upsample': return [this.resize(n, ins, opset)];
      case 'ReduceMean':
      case 'ReduceSum':
      case 'ReduceMax':
      case 'ReduceMin':
      case 'ReduceProd':
      case 'ReduceL2':
      case 'ReduceSumSquare': {
        if (!x.shape) return [{ ...UNKNOWN, dtype: x.dtype }];
        const fromInput = (op === 'ReduceSum' && opset >= 13) || opset >= 18;
        const axes = fromInput ? (n.inputs[1] ? ins[1].content?.map((s) => s.value) ?? null : []) : n.ints('axes') ?? [];
        if (axes === null || axes.some((a) => a === null)) return [{ ...UNKNOWN, dtype: x.dtype }];
        const r = x.shape.length;
        const set = new Set((axes.length ? axes : x.shape.map((_, i) => i)).map((a) => (a! < 0 ? a! + r : a!)));
        const keep = n.int('keepdims', 1) === 1;
        return [{ dtype: x.dtype, shape: keep ? x.shape.map((d, i) => (set.has(i) ? Sym.const(1) : d)) : x.shape.filter((_, i) => !set.has(i)), content: null, constant: null }];
      }
      case 'ArgMax':
      case 'ArgMin': {
        // one int64 index per reduced row: CLIP's pooled token (argmax of the ids)
        if (!x.shape) return [{ ...UNKNOWN, dtype: DataType.INT64 }];
        const r = x.shape.length;
        const axis = normalizeAxis(n.int('axis', 0), r);
        if (axis < 0 || axis >= r) return [{ ...UNKNOWN, dtype: DataType.INT64 }];
        const keep = n.int('keepdims', 1) === 1;
        return [{ dtype: DataType.INT64, shape: keep ? x.shape.map((d, i) => (i === axis ? Sym.const(1) : d)) : x.shape.filter((_, i) => i !== axis), content: null, constant: null }];
      }
      case 'Pad': {
        const pads = ins[1]?.content?.map((s) => s.value);
        if (!x.shape || !pads || pads.some((p) => p === null) || n.inputs[3]) return [{ ...UNKNOWN, dtype: x.dtype }];
        const r = x.shape.length;
        return [{ dtype: x.dtype, shape: x.shape.map((d, i) => d.add(Sym.const(pads[i]! + pads[i + r]!))), content: null, constant: null }];
      }
      case 'Einsum':
      default:
        return n.outputs.map(() => UNKNOWN);
    }
  }

  private conflict(problem: string, certain = true): void {
    const n = this.current;
    if (n && !this.conflicts.some((c) => c.node === n)) this.conflicts.push({ node: n, problem, certain });
  }

  /** Numpy broadcasting over symbolic dims; two different symbols give a fresh one (never a guess). */
  broadcast(a: Sym[], b: Sym[]): Sym[] {
    const r = Math.max(a.length, b.length);
    const out: Sym[] = [];
    for (let i = 0; i < r; i++) {
      const x = a[a.length - r + i] ?? Sym.const(1);
      const y = b[b.length - r + i] ?? Sym.const(1);
      if (x.equals(y) || y.value === 1 || y.isMinOf(x)) out.push(x);
      else if (x.value === 1 || x.isMinOf(y)) out.push(y);
      else {
        if (x.value !== null && y.value !== null) this.conflict(`cannot broadcast dim ${x.value} with ${y.value}`);
        out.push(this.fresh('bcast'));
      }
    }
    return out;
  }

  private reshape(input: Sym[], target: Sym[], allowzero: boolean): Sym[] {
    const dims = target.map((d, i) => (d.value === 0 && !allowzero && input[i] ? input[i] : d));
    const minus = dims.findIndex((d) => d.value === -1);
    const total = input.reduce((a, b) => a.mul(b), Sym.const(1));
    const rest = dims.filter((_, i) => i !== minus).reduce((a, b) => a.mul(b), Sym.const(1));
    // a count both sides know and that cannot match: the model cannot run at any input (a mutated target)
    if (total.value !== null && rest.value !== null && (minus < 0 ? total.value !== rest.value : rest.value === 0 || total.value % rest.value !== 0)) {
      this.conflict(`reshapes ${total.value} elements into [${target.map((d) => d.value ?? d.toString()).join(', ')}]`);
    }
    if (minus < 0) return dims;
    dims[minus] = total.floorDiv(rest);
    return dims;
  }

  private contentArith(op: string, ins: Info[]): Sym[] | null {
    if (op === 'Where') return this.contentWhere(ins);
    if (op === 'Equal') return this.contentEqual(ins);
    if (ins.length !== 2 || !ins[0].content || !ins[1].content || !INTS.has(ins[0].dtype ?? 0)) return null;
    const [a, b] = [ins[0].content, ins[1].content];
    const n = Math.max(a.length, b.length);
    if ((a.length !== n && a.length !== 1) || (b.length !== n && b.length !== 1)) return null;
    const at = (l: Sym[], i: number) => l[l.length === 1 ? 0 : i];
    const f: Record<string, (x: Sym, y: Sym) => Sym | null> = {
      Add: (x, y) => x.add(y),
      Sub: (x, y) => x.sub(y),
      Mul: (x, y) => x.mul(y),
      // onnxruntime's integer Div truncates; for the non-negative sizes shapes hold that is floor division
      Div: (x, y) => (x.value !== null && y.value !== null ? Sym.const(Math.trunc(x.value / y.value)) : x.floorDiv(y)),
    };
    if (!f[op]) return null;
    const out: Sym[] = [];
    for (let i = 0; i < n; i++) {
      const r = f[op](at(a, i), at(b, i));
      if (!r) return null;
      out.push(r);
    }
    return out;
  }

  /** Equal on shape contents: symbols are dims, so a dim never equals a negative number (the -1 test of `expand`). */
  private contentEqual(ins: Info[]): Sym[] | null {
    const [a, b] = [ins[0]?.content, ins[1]?.content];
    if (!a || !b) return null;
    const n = Math.max(a.length, b.length);
    if ((a.length !== n && a.length !== 1) || (b.length !== n && b.length !== 1)) return null;
    const out: Sym[] = [];
    for (let i = 0; i < n; i++) {
      const x = a[a.length === 1 ? 0 : i];
      const y = b[b.length === 1 ? 0 : i];
      if (x.equals(y)) out.push(Sym.const(1));
      else if (x.value !== null && y.value !== null) out.push(Sym.const(0));
      else if ((x.nonNegative() && y.value !== null && y.value < 0) || (y.nonNegative() && x.value !== null && x.value < 0)) out.push(Sym.const(0));
      else return null;
    }
    return out;
  }

  private contentWhere(ins: Info[]): Sym[] | null {
    const [c, a, b] = [ins[0]?.content, ins[1]?.content, ins[2]?.content];
    if (!c || !a || !b || c.some((x) => x.value === null)) return null;
    const n = Math.max(c.length, a.length, b.length);
    const at = (l: Sym[], i: number) => l[l.length === 1 ? 0 : i];
    if ([c, a, b].some((l) => l.length !== n && l.length !== 1)) return null;
    return Array.from({ length: n }, (_, i) => (at(c, i).value ? at(a, i) : at(b, i)));
  }

  private slice(n: Node, ins: Info[], opset: number): Info {
    const x = ins[0];
    const num = (i: Info | undefined) => (i?.content && i.content.every((s) => s.value !== null) ? i.content.map((s) => s.value!) : null);
    let starts: number[] | null, ends: number[] | null, axes: number[] | null, steps: number[] | null;
    // ends that are dims (x[:, :seq]): each known symbolically, read below where a number is unknown
    let symEnds: Sym[] | null = null;
    if (opset >= 10) {
      starts = num(ins[1]);
      ends = num(ins[2]);
      if (!ends && ins[2]?.content) {
        symEnds = ins[2].content;
        ends = symEnds.map((e) => e.value ?? NaN);
      }
      axes = n.inputs[3] ? num(ins[3]) : null;
      steps = n.inputs[4] ? num(ins[4]) : null;
      if ((n.inputs[3] && !axes) || (n.inputs[4] && !steps)) return { ...UNKNOWN, dtype: x.dtype };
    } else {
      starts = n.ints('starts') ?? null;
      ends = n.ints('ends') ?? null;
      axes = n.ints('axes') ?? null;
      steps = null;
    }
    if (!x.shape || !starts || !ends) return { ...UNKNOWN, dtype: x.dtype };
    const r = x.shape.length;
    const shape = [...x.shape];
    let content = x.content;
    const ax = (axes ?? starts.map((_, i) => i)).map((a) => (a < 0 ? a + r : a));
    for (let i = 0; i < ax.length; i++) {
      const a = ax[i];
      const step = steps?.[i] ?? 1;
      const d = x.shape[a].value;
      const BIG = 2 ** 31;
      if (Number.isNaN(ends[i])) {
        // a slice from 0 up to a dim: min(dim, length), exact only for a static axis
        if (d !== null && starts[i] === 0 && step === 1 && symEnds![i].nonNegative()) shape[a] = symEnds![i].minWith(d);
        else shape[a] = this.fresh('slice');
        content = null;
      } else if (d !== null) {
        const [s, , len] = sliceBounds(d, starts[i], ends[i], step);
        shape[a] = Sym.const(len);
        if (content && r === 1) content = Array.from({ length: len }, (_, k) => content![s + k * step]);
      } else if (step === 1 && starts[i] >= 0 && ends[i] >= BIG) {
        shape[a] = x.shape[a].sub(Sym.const(starts[i]));
      } else if (step === 1 && starts[i] < 0 && ends[i] >= BIG) {
        shape[a] = Sym.const(-starts[i]);
      } else {
        shape[a] = this.fresh('slice');
        content = null;
      }
    }
    return { dtype: x.dtype, shape, content: content && content.every(Boolean) ? content : null, constant: null };
  }

  private split(n: Node, ins: Info[], opset: number): Info[] {
    const x = ins[0];
    const outs = n.outputs.length;
    if (!x.shape) return n.outputs.map(() => ({ ...UNKNOWN, dtype: x.dtype }));
    const r = x.shape.length;
    let axis = n.int('axis', 0);
    if (axis < 0) axis += r;
    const given = opset >= 13 ? !!n.inputs[1] : !!n.ints('split');
    const sizes = opset >= 13 ? (n.inputs[1] ? ins[1].content : null) : n.ints('split')?.map((s) => Sym.const(s)) ?? null;
    const whole = x.shape[axis];
    // Without sizes the split is even, the last part smaller when it cannot be (opset 18's num_outputs).
    const chunk = whole.value !== null ? Math.ceil(whole.value / outs) : null;
    return n.outputs.map((_, i) => {
      const shape = [...x.shape!];
      if (sizes) shape[axis] = sizes[i] ?? this.fresh('split');
      else if (given) shape[axis] = this.fresh('split'); // sizes computed at run time: unknown, never a guess
      else if (chunk !== null) shape[axis] = Sym.const(Math.max(0, Math.min(chunk, whole.value! - chunk * i)));
      else shape[axis] = whole.floorDiv(Sym.const(outs));
      return { dtype: x.dtype, shape, content: null, constant: null };
    });
  }

  private conv(n: Node, ins: Info[]): Info {
    const x = ins[0].shape;
    const w = ins[1]?.shape;
    if (!x || !w) return { ...UNKNOWN, dtype: ins[0].dtype };
    const k = n.ints('kernel_shape') ?? w.slice(2).map((d) => d.value ?? -1);
    const out = [x[0], w[0], ...convSpatialDims(n, x.slice(2), k).map((d) => d ?? this.fresh('conv'))];
    return { dtype: ins[0].dtype, shape: out, content: null, constant: null };
  }

  private resize(n: Node, ins: Info[], opset: number): Info {
    const x = ins[0];
    if (!x.shape) return { ...UNKNOWN, dtype: x.dtype };
    const scalesIn = n.opType === 'Upsample' ? (opset >= 9 ? ins[1] : null) : opset >= 11 ? ins[2] : ins[1];
    const sizesIn = n.opType === 'Resize' && opset >= 11 ? ins[3] : null;
    if (sizesIn?.content && n.inputs[3]) return { dtype: x.dtype, shape: sizesIn.content, content: null, constant: null };
    const scales = scalesIn?.constant?.data ?? (n.opType === 'Upsample' && opset < 9 ? n.attr('scales')?.value as number[] : null);
    if (!scales || scales.length !== x.shape.length) return { dtype: x.dtype, shape: x.shape.map(() => this.fresh('resize')), content: null, constant: null };
    return {
      dtype: x.dtype,
      shape: x.shape.map((d, i) => {
        const s = scales[i];
        if (Number.isInteger(s)) return d.mul(Sym.const(s));
        return d.value !== null ? Sym.const(Math.floor(d.value * s)) : this.fresh('resize');
      }),
      content: null,
      constant: null,
    };
  }
}

function fromArr(a: Arr): Info {
  return {
    dtype: a.dtype,
    shape: a.dims.map((d) => Sym.const(d)),
    constant: a,
    content: INTS.has(a.dtype) && a.dims.length <= 1 && a.data.length <= MAX_CONTENT ? Array.from(a.data, (x) => Sym.const(clampInt(x))) : null,
  };
}

export function analyzeShapes(model: Model, graph: Graph = model.graph): ShapeAnalysis {
  return new ShapeAnalysis(model, graph).run();
}
