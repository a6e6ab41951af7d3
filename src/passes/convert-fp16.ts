import { analyzeShapes, ShapeLookup } from '../analysis/shapes';
import { DataType } from '../ir/dtype';
import { AttrType, Graph, Node, Value } from '../ir/graph';
import { halfBytesFrom } from '../ir/half';
import { isDefaultDomain } from '../ir/query';
import { Tensor, derivedTensor } from '../ir/tensor';
import { Pass, PassResult, ValueRange } from '../rewrite/pass';
import { SdcError } from '../ir/errors';
import { Target } from '../targets';

export const PRECISION_KEY = 'sdc.precision';

/** Whose result leaves fp16's precision or range when computed in it: kept float32 where unfused. */
const SENSITIVE: Record<string, string> = {
  Softmax: 'an unfused Softmax (exponentials of unbounded scores)',
  Exp: 'Exp of an unbounded input',
  Log: 'Log (small inputs flush in fp16)',
  Pow: 'Pow of an unbounded input',
  Sin: 'Sin of an unbounded argument (a timestep embedding reaches t·freq ≈ 1000)',
  Cos: 'Cos of an unbounded argument (a timestep embedding reaches t·freq ≈ 1000)',
  Range: 'Range (index arithmetic)',
  ReduceMean: 'normalization statistics (an unfused mean)',
  ReduceSum: 'an unfused sum',
  ReduceSumSquare: 'an unfused sum of squares',
  ReduceL2: 'an unfused norm',
  Sqrt: 'normalization statistics (an unfused square root)',
  Reciprocal: 'a reciprocal (small inputs overflow fp16)',
  CumSum: 'a running sum',
};

/** Ops that feed a Sin/Cos argument elementwise: computed in fp32 with it (a rounding before Sin is amplified). */
const ARGUMENT_OPS = new Set(['Mul', 'Div', 'Add', 'Sub', 'Unsqueeze', 'Reshape', 'Squeeze', 'Expand', 'Concat', 'Slice', 'Gather', 'Cast', 'Neg']);

/** Input slots that stay float32 whatever the tensor type (ONNX and onnxruntime signatures). */
const FLOAT32_SLOTS: Record<string, number[]> = { Resize: [1, 2], GroupNorm: [1, 2], SkipGroupNorm: [1, 2] };

/** Ops that read only a value's shape: they take either precision. */
const SHAPE_READERS = new Set(['Shape', 'Size']);

/** Ops whose float output type comes from an attribute sdc does not rewrite. */
const TYPED_BY_ATTRIBUTE = new Set(['RandomNormal', 'RandomUniform', 'RandomNormalLike', 'RandomUniformLike', 'EyeLike', 'Multinomial', 'Constant']);

/**
 * Float32 → float16, with float32 islands where the target's kernel has no fp16 version (the target
 * table) or where the computation needs fp32 (unfused exponentials, normalization statistics, Sin/Cos of
 * a timestep and the arithmetic that builds their argument). Weights are converted when written (lazily,
 * tensor by tensor); a constant read by both regions gets an fp16 copy, never a Cast. Casts sit only at
 * region edges, and graph inputs and outputs keep float32 unless `ioTypes` is fp16. Each island is
 * explained with its reason. A model already converted is left alone.
 */
export const convertFp16: Pass = {
  name: 'convert-fp16',
  emits: () => ['ai.onnx::Cast'],
  movesWeights: true,
  description: 'float32 → float16 with fp32 islands (target kernels without fp16, precision-sensitive ops); casts only at region edges',
  run(graph, ctx): PassResult {
    if (ctx.precision !== 'fp16') return { changed: false };
    if ([...graph.allGraphs()].length > 1) throw new SdcError('', 'fp16 conversion of a model with control flow (If/Loop/Scan subgraphs) is not supported yet');
    if (ctx.model.getMetadata(PRECISION_KEY) === 'fp16') return { changed: false, counts: { alreadyFp16: 1 } };
    const sa = analyzeShapes(ctx.model, graph);
    const isF32 = (v: Value | null | undefined): v is Value => !!v && !v.omitted && (v.initializer ? v.initializer.dtype === DataType.FLOAT : sa.get(v).dtype === DataType.FLOAT);
    const floatNode = (n: Node) => n.inputs.some(isF32) || n.outputs.some(isF32);

    // 1. islands: by the target table and by precision, then backwards from Sin/Cos through their argument
    const island = new Map<Node, string>();
    const keep = new Set(ctx.keepFp32 ?? []);
    const kept = new Set<string>();
    for (const n of graph.nodes) {
      if (!floatNode(n)) continue;
      const byUser = keep.has(n.name) ? n.name : keep.has(n.opType) ? n.opType : null;
      if (byUser) kept.add(byUser);
      const why = byUser ? `--keep-fp32 ${byUser}` : islandReason(n, ctx.target) ?? measuredReason(n, ctx.ranges, isF32);
      if (why) island.set(n, why);
    }
    for (const k of keep) if (!kept.has(k)) ctx.explain(k, 'skipped', `--keep-fp32 ${k}: no float node has this name or op type`);
    for (const n of [...island.keys()].filter((x) => x.opType === 'Sin' || x.opType === 'Cos')) markArgument(n, island, isF32, 0);
    const half = new Set(graph.nodes.filter((n) => floatNode(n) && !island.has(n) && !SHAPE_READERS.has(n.opType)));
    for (const [n, why] of island) ctx.explain(n, 'skipped', `kept float32: ${why}`);

    // 2. values: outputs of fp16 nodes become fp16; constants read only by fp16 slots are converted
    const ioHalf = ctx.ioTypes === 'fp16';
    const halfValue = new Set<Value>();
    for (const n of half) {
      for (const o of n.outputs) if (isF32(o)) halfValue.add(o);
      retype(n);
    }
    if (ioHalf) for (const v of graph.inputs) if (!v.initializer && isF32(v)) halfValue.add(v);
    const wantsHalf = (n: Node, i: number) => half.has(n) && !(FLOAT32_SLOTS[n.opType] ?? []).includes(i);
    let weights = 0;
    const copies = new Map<Value, Value>();
    for (const v of graph.initializers()) {
      if (!isF32(v) || v.isGraphInput) continue;
      const readers = v.uses.filter((u) => wantsHalf(u.node, u.index));
      if (!readers.length) continue;
      if (readers.length === v.uses.length && !v.isGraphOutput) {
        v.initializer = toHalfTensor(v.initializer!);
        halfValue.add(v);
      } else {
        const copy = graph.addInitializer(`${v.name}_fp16`, toHalfTensor(v.initializer!, `${v.name}_fp16`));
        copies.set(v, copy);
        halfValue.add(copy);
        for (const u of readers) graph.setInput(u.node, u.index, copy);
      }
      weights++;
    }

    // 3. casts at the edges, one per value and direction
    const casts = { toHalf: new Map<Value, Value>(), toFloat: new Map<Value, Value>() };
    const cast = (v: Value, to: DataType, before: Node): Value => {
      const memo = to === DataType.FLOAT16 ? casts.toHalf : casts.toFloat;
      let c = memo.get(v);
      if (!c) {
        const n = graph.addNode({ op: 'Cast', inputs: [v], outputs: [`${v.name}_${to === DataType.FLOAT16 ? 'fp16' : 'fp32'}`], attrs: [{ name: 'to', type: AttrType.INT, value: to }], before });
        c = n.outputs[0];
        memo.set(v, c);
      }
      return c;
    };
    for (const n of [...graph.nodes]) {
      n.inputs.forEach((v, i) => {
        if (!v || v.omitted || SHAPE_READERS.has(n.opType)) return;
        if (wantsHalf(n, i) && isF32(v) && !halfValue.has(v)) graph.setInput(n, i, cast(v, DataType.FLOAT16, n));
        else if (!wantsHalf(n, i) && halfValue.has(v)) graph.setInput(n, i, cast(v, DataType.FLOAT, n));
      });
    }
    for (const [i, v] of graph.outputs.entries()) {
      if (!halfValue.has(v) || ioHalf) continue;
      const name = v.name;
      graph.renameValue(v, graph.uniqueName(`${name}_fp16`));
      const c = graph.addNode({ op: 'Cast', inputs: [v], outputs: [name], attrs: [{ name: 'to', type: AttrType.INT, value: DataType.FLOAT }] });
      c.outputs[0].type = v.type?.kind === 'tensor' ? { ...v.type, elemType: DataType.FLOAT } : null;
      graph.outputs[i] = c.outputs[0];
    }
    for (const v of halfValue) if (v.type?.kind === 'tensor') v.type = { ...v.type, elemType: DataType.FLOAT16 };
    const merged = mergeCastChains(graph, sa);
    graph.topoSort();
    ctx.model.setMetadata(PRECISION_KEY, 'fp16');
    return { changed: true, counts: { fp16Nodes: half.size, islands: island.size, weightsConverted: weights, casts: casts.toHalf.size + casts.toFloat.size - merged } };
  },
};

function islandReason(n: Node, target: Target): string | null {
  if (TYPED_BY_ATTRIBUTE.has(n.opType)) return `${n.opType} makes float32 by attribute`;
  if (isDefaultDomain(n) && SENSITIVE[n.opType]) return SENSITIVE[n.opType];
  const domain = isDefaultDomain(n) ? '' : n.domain;
  const kernel = target.kernel(domain, n.opType);
  if (kernel && !kernel.dtypes.includes(DataType.FLOAT16)) return `${target.name}'s ${n.opType} kernel takes float32 only`;
  if (!isDefaultDomain(n) && !kernel) return `${n.domain}::${n.opType} is not in the target table`;
  return null;
}

/**
 * Largest magnitude an fp16 region may see in calibration: a quarter of fp16's largest value (65504),
 * because other inputs than the calibration's reach further.
 */
const FP16_SAFE_MAX = 65504 / 4;
/** A tensor most of whose nonzero values are below fp16's normal range keeps little of its precision. */
const FP16_TINY_FRACTION = 0.5;

/**
 * From the calibration: a node that produces or reads (non-constant) a tensor beyond FP16_SAFE_MAX stays
 * float32, so the large value is neither computed nor cast into fp16; likewise one whose tensor lives
 * mostly below fp16's normal range.
 */
function measuredReason(n: Node, ranges: Map<string, ValueRange> | null | undefined, isF32: (v: Value | null | undefined) => v is Value): string | null {
  if (!ranges?.size) return null;
  for (const v of [...n.outputs, ...n.inputs]) {
    if (!isF32(v) || v.initializer) continue;
    const r = ranges.get(v.name);
    if (!r) continue;
    const role = n.outputs.includes(v) ? 'produces' : 'reads';
    if (r.maxAbs > FP16_SAFE_MAX) return `calibration: ${role} ${v.name}, which reached ${r.maxAbs.toPrecision(3)} (fp16 is safe to ${FP16_SAFE_MAX})`;
    if (r.tinyFraction > FP16_TINY_FRACTION) return `calibration: ${role} ${v.name}, ${Math.round(r.tinyFraction * 100)}% of whose nonzero values are below fp16's normal range (6.1e-5)`;
  }
  return null;
}

function markArgument(n: Node, island: Map<Node, string>, isF32: (v: Value | null | undefined) => v is Value, depth: number): void {
  if (depth > 6) return;
  for (const v of n.inputs) {
    const p = v?.producer;
    if (!p || island.has(p) || !ARGUMENT_OPS.has(p.opType) || !isDefaultDomain(p) || !p.outputs.some(isF32)) continue;
    island.set(p, `computes the argument of ${n.opType === 'Sin' || n.opType === 'Cos' ? `a ${n.opType}` : 'a Sin/Cos'} (kept exact before it is amplified)`);
    markArgument(p, island, isF32, depth + 1);
  }
}

/** A Cast to float, ConstantOfShape of a float, inside the fp16 region: make it produce fp16. */
function retype(n: Node): void {
  if (n.opType === 'Cast' && n.int('to') === DataType.FLOAT) n.setAttr({ name: 'to', type: AttrType.INT, value: DataType.FLOAT16 });
  if (n.opType === 'ConstantOfShape') {
    const a = n.attr('value');
    if (a && a.type === AttrType.TENSOR && a.value.dtype === DataType.FLOAT) n.setAttr({ name: 'value', type: AttrType.TENSOR, value: toHalfTensor(a.value) });
  }
}

/** Converted when written, in the source's own pieces (rows of a derived tensor) or runs of elements. */
function toHalfTensor(t: Tensor, name = t.name): Tensor {
  const perRow = t.pieceUnit % 4 === 0 ? t.pieceUnit / 4 : 1;
  const rows = (r0: number, r1: number) => halfBytesFrom((r1 - r0) * perRow * 4, (into) => t.readInto(r0 * perRow * 4, into));
  return derivedTensor(name, DataType.FLOAT16, [...t.dims], t.size / perRow, perRow * 2, rows, [t]);
}

/** Cast(Cast(x)) between float types: read x directly (or x itself when it already has the type). */
function mergeCastChains(g: Graph, sa: ShapeLookup): number {
  let merged = 0;
  for (const n of [...g.nodes]) {
    if (n.opType !== 'Cast' || !isDefaultDomain(n)) continue;
    const inner = n.inputs[0]?.producer;
    if (!inner || inner.opType !== 'Cast' || !isDefaultDomain(inner)) continue;
    const floats = [DataType.FLOAT, DataType.FLOAT16];
    const source = inner.inputs[0]!;
    const sourceType = source.initializer?.dtype ?? sa.get(source).dtype;
    if (!floats.includes(inner.int('to')!) || !floats.includes(n.int('to')!) || sourceType === null || !floats.includes(sourceType)) continue;
    g.setInput(n, 0, source);
    if (sourceType === n.int('to') && !n.outputs[0].isGraphOutput) {
      g.replaceAllUsesWith(n.outputs[0], source);
      g.removeNode(n);
    }
    if (inner.outputs[0].uses.length === 0 && !inner.outputs[0].isGraphOutput) g.removeNode(inner);
    merged++;
  }
  return merged;
}
