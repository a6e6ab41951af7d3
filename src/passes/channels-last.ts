import { analyzeShapes } from '../analysis/shapes';
import { DataType } from '../ir/dtype';
import { AttrType, Graph, Node, Value } from '../ir/graph';
import { Tensor, derivedTensor } from '../ir/tensor';
import { Pass, PassContext } from '../rewrite/pass';
import { isDefaultDomain } from '../ir/query';
import { TO_NCHW, TO_NHWC } from '../ir/dims';

/** Ops that act elementwise (no axis attribute): a transpose of every input commutes with them. */
const ELEMENTWISE = new Set(['Add', 'Sub', 'Mul', 'Div', 'Sigmoid', 'Relu', 'Tanh', 'Erf', 'Neg', 'Sqrt', 'Exp', 'Identity', 'Cast']);

/**
 * Channels-last for cuda: 2-D convolutions become com.microsoft NhwcConv (weights re-laid out as OHWI
 * once, at compile time, streamed), with a Transpose on each side; NCHW→NHWC transposes then sink
 * through elementwise ops and cancel against their inverses, so layout changes remain only where an op
 * needs NCHW (and at the graph boundaries). cpu keeps NCHW: onnxruntime's own NCHWc layout there is
 * faster than anything an ONNX graph can spell; webgpu is left to the provider's preferredLayout (NHWC by
 * default) until it is measured on a GPU.
 */
export const channelsLast: Pass = {
  name: 'channels-last',
  description: 'cuda: Conv → NhwcConv in NHWC, transposes sunk through elementwise ops and cancelled in pairs',
  appliesTo: (target) => target.accepts('com.microsoft', 'NhwcConv', { layout: 'NHWC' }),
  movesWeights: true,
  emits: () => ['com.microsoft::NhwcConv', 'ai.onnx::Transpose'],
  sites: [{ counter: 'nhwcConv', label: 'NhwcConv' }],
  run(graph, ctx) {
    const before = countTransposes(graph);
    const convs = convertConvs(graph, ctx);
    let sunk = 0;
    for (let round = 0; round < 50; round++) {
      mergeDuplicateTransposes(graph);
      const moved = sinkTransposes(graph, ctx);
      sunk += moved;
      cancelPairs(graph);
      if (!moved) break;
    }
    mergeDuplicateTransposes(graph);
    removeDeadTransposes(graph);
    const reshaped = transposesToReshapes(graph, ctx);
    graph.topoSort();
    return { changed: convs > 0, counts: { nhwcConv: convs, transposesBefore: before, transposesAfter: countTransposes(graph), sunk, asReshape: reshaped } };
  },
};

/**
 * OIHW → OHWI, computed when written, a block of output channels at a time (the weights stay on disk
 * until then, and a 118 MB kernel is never held whole). A 1×1 kernel's bytes are the same in both layouts.
 */
function ohwiWeight(w: Tensor): Tensor {
  const [m, c, kh, kw] = w.dims;
  const k = kh * kw;
  const rowBytes = c * k * 4;
  const rows = (o0: number, o1: number): Uint8Array => {
    const b = w.bytesIn(o0 * rowBytes, (o1 - o0) * rowBytes);
    if (k === 1) return b;
    const out = new Int32Array(b.byteLength >> 2);
    ohwiRows(words(b), out, c, k);
    return new Uint8Array(out.buffer);
  };
  return derivedTensor(`${w.name}_ohwi`, DataType.FLOAT, [m, kh, kw, c], m, rowBytes, rows, [w]);
}

/** Packed 4-byte elements as int32 words: moved as bits, so no float conversion touches a NaN's payload. */
function words(b: Uint8Array): Int32Array {
  const a = b.byteOffset % 4 === 0 ? b : new Uint8Array(b);
  return new Int32Array(a.buffer, a.byteOffset, a.byteLength >> 2);
}

/**
 * Per output channel, [C, k] → [k, C]. Reads run contiguously; each element goes to one of k write streams.
 * The 3×3 kernels that make up most of a UNet's weights get an unrolled loop: the generic one costs ~2.5×
 * as much per element, and this transpose is most of a cuda compile's time.
 */
function ohwiRows(a: Int32Array, out: Int32Array, c: number, k: number): void {
  const per = c * k;
  if (k === 9) {
    for (let base = 0; base < a.length; base += per) {
      for (let i = 0, from = base, to = base; i < c; i++, from += 9, to++) {
        out[to] = a[from];
        out[to + c] = a[from + 1];
        out[to + 2 * c] = a[from + 2];
        out[to + 3 * c] = a[from + 3];
        out[to + 4 * c] = a[from + 4];
        out[to + 5 * c] = a[from + 5];
        out[to + 6 * c] = a[from + 6];
        out[to + 7 * c] = a[from + 7];
        out[to + 8 * c] = a[from + 8];
      }
    }
    return;
  }
  for (let base = 0; base < a.length; base += per) {
    for (let i = 0, from = base; i < c; i++) {
      for (let j = 0, to = base + i; j < k; j++, from++, to += c) out[to] = a[from];
    }
  }
}

/** Transposes whose result is read (dead ones go in the next cleanup). */
function countTransposes(g: Graph): number {
  return g.nodes.filter((n) => n.opType === 'Transpose' && (n.outputs[0].uses.length > 0 || n.outputs[0].isGraphOutput)).length;
}

const perm = (n: Node) => n.ints('perm') ?? [];
const same = (a: number[], b: number[]) => a.length === b.length && a.every((x, i) => x === b[i]);
const transposeAttr = (p: number[]) => [{ name: 'perm', type: AttrType.INTS as const, value: p }];

function convertConvs(g: Graph, ctx: PassContext): number {
  const sa = analyzeShapes(ctx.model, g);
  let n = 0;
  for (const conv of g.nodes.filter((x) => x.opType === 'Conv' && isDefaultDomain(x))) {
    const w = conv.inputs[1]?.constant;
    const xs = sa.get(conv.inputs[0]).shape;
    if (!w || w.dims.length !== 4 || w.dtype !== DataType.FLOAT || !xs || xs.length !== 4) {
      ctx.explain(conv, 'skipped', 'not a 2-D float convolution with constant weights');
      continue;
    }
    const wv0 = ohwiWeight(w);
    const wv = g.addInitializer(`${w.name}_ohwi`, wv0);
    const xt = g.addNode({ op: 'Transpose', inputs: [conv.inputs[0]], outputs: [`${conv.name}_in_nhwc`], attrs: transposeAttr(TO_NHWC), before: conv }).outputs[0];
    const nc = g.addNode({ op: 'NhwcConv', domain: 'com.microsoft', inputs: [xt, wv, conv.inputs[2] ?? null], outputs: [`${conv.name}_nhwc`], name: `${conv.name}_NhwcConv`, before: conv,
      attrs: [...conv.attrs.values()] });
    const back = g.addNode({ op: 'Transpose', inputs: [nc.outputs[0]], outputs: [`${conv.name}_out_nchw`], attrs: transposeAttr(TO_NCHW), before: conv }).outputs[0];
    back.type = conv.outputs[0].type;
    g.replaceAllUsesWith(conv.outputs[0], back);
    if (conv.outputs[0].uses.length === 0 && !conv.outputs[0].isGraphOutput) g.removeNode(conv);
    n++;
  }
  if (n) ctx.model.useDomain('com.microsoft');
  return n;
}

/**
 * op(T(a), T(b), c) → T(op(a, b, c')) for an elementwise op whose inputs are transposes by the same perm,
 * scalars (which need no permuting), or small broadcast operands of full rank — a time embedding
 * [N, C, 1, 1] — which get the inverse transpose (cheap, and it lets the big tensor stay NHWC).
 * Returns how many ops the transposes moved past.
 */
function sinkTransposes(g: Graph, ctx: PassContext): number {
  const sa = analyzeShapes(ctx.model, g);
  const small = (v: Value, rank: number) => {
    const s = sa.get(v).shape;
    return !!s && s.length === rank && s.filter((d) => d.value !== 1).length <= 2 && s.slice(2).every((d) => d.value === 1);
  };
  let moved = 0;
  for (const n of [...g.nodes]) {
    if (!g.contains(n) || !(ELEMENTWISE.has(n.opType) || n.opType === 'Concat') || !isDefaultDomain(n) || n.outputs.length !== 1) continue;
    let p: number[] | null = null;
    const sources: (Value | null)[] = [];
    const needInverse: number[] = [];
    let ok = true;
    for (const v of n.inputs) {
      const t = v?.producer;
      if (t && t.opType === 'Transpose' && isDefaultDomain(t)) {
        if (p && !same(p, perm(t))) ok = false;
        p = perm(t);
        sources.push(t.inputs[0]);
      } else if (v?.constant && v.constant.size === 1 && n.opType !== 'Concat') {
        sources.push(v);
      } else if (v && n.opType !== 'Concat' && small(v, 4)) {
        needInverse.push(sources.length);
        sources.push(v);
      } else {
        ok = false;
      }
    }
    if (!ok || !p || (needInverse.length && p.length !== 4)) continue;
    if (needInverse.length && needInverse.length === sources.length) continue;
    const inverse = p.map((_, i) => p!.indexOf(i));
    for (const i of needInverse) {
      sources[i] = g.addNode({ op: 'Transpose', inputs: [sources[i]], outputs: [`${n.name}_in${i}_t`], attrs: transposeAttr(inverse), before: n }).outputs[0];
    }
    const out = n.outputs[0];
    const attrs = [...n.attrs.values()];
    if (n.opType === 'Concat') {
      // concatenating transposed tensors on axis k = concatenating the sources on axis perm[k]
      const r = p.length;
      const k = n.int('axis', 0);
      attrs.splice(attrs.findIndex((a) => a.name === 'axis'), 1, { name: 'axis', type: AttrType.INT, value: p[k < 0 ? k + r : k] });
    }
    const inner = g.addNode({ op: n.opType, inputs: sources, outputs: [`${out.name}_sunk`], attrs, before: n });
    const t = g.addNode({ op: 'Transpose', inputs: [inner.outputs[0]], outputs: [`${out.name}_t`], attrs: transposeAttr(p), before: n });
    t.outputs[0].type = out.type;
    g.replaceAllUsesWith(out, t.outputs[0]);
    g.removeNode(n);
    removeIfDead(g, n.inputs);
    moved++;
  }
  return moved;
}

function removeIfDead(g: Graph, vals: (Value | null)[]): void {
  for (const v of vals) {
    const p = v?.producer;
    if (p && p.opType === 'Transpose' && p.outputs[0].uses.length === 0 && !p.outputs[0].isGraphOutput) g.removeNode(p);
  }
}

/**
 * A transpose that only moves size-1 dims ([N, C, 1, 1] → [N, 1, 1, C], the time embedding) moves no
 * data: it becomes a Reshape (0 keeps a dim that stays in place, numbers for the rest).
 */
function transposesToReshapes(g: Graph, ctx: PassContext): number {
  const sa = analyzeShapes(ctx.model, g);
  let n = 0;
  for (const t of g.nodes.filter((x) => x.opType === 'Transpose')) {
    const shape = sa.get(t.inputs[0]).shape;
    const p = perm(t);
    if (!shape || shape.length !== p.length) continue;
    const big = p.filter((i) => shape[i].value !== 1);
    if (!big.every((v, k) => k === 0 || v > big[k - 1])) continue; // the dims that carry data keep their order
    const target = p.map((src, i) => (shape[src].value === 1 ? 1 : src === i ? 0 : shape[src].value));
    if (target.some((d) => d === null)) continue;
    const c = g.addInitializer(`${t.name}_as_reshape`, Tensor.fromValues('', DataType.INT64, [target.length], target.map((d) => BigInt(d!))));
    const r = g.addNode({ op: 'Reshape', inputs: [t.inputs[0], c], outputs: [`${t.outputs[0].name}_r`], before: t });
    r.outputs[0].type = t.outputs[0].type;
    g.replaceAllUsesWith(t.outputs[0], r.outputs[0]);
    if (t.outputs[0].uses.length === 0 && !t.outputs[0].isGraphOutput) g.removeNode(t);
    n++;
  }
  return n;
}

/** One transpose per (value, perm): readers of a copy read the first, so their uses can sink together. */
function mergeDuplicateTransposes(g: Graph): void {
  const seen = new Map<string, Value>();
  for (const n of [...g.nodes]) {
    if (n.opType !== 'Transpose' || !n.inputs[0]) continue;
    const key = `${n.inputs[0].name}|${perm(n).join(',')}`;
    const first = seen.get(key);
    if (!first) seen.set(key, n.outputs[0]);
    else if (!n.outputs[0].isGraphOutput) {
      g.replaceAllUsesWith(n.outputs[0], first);
      g.removeNode(n);
    }
  }
}

/** Sinking leaves transposes (and chains of them) that nothing reads any more. */
function removeDeadTransposes(g: Graph): void {
  for (let changed = true; changed; ) {
    const dead = g.nodes.filter((n) => n.opType === 'Transpose' && n.outputs[0].uses.length === 0 && !n.outputs[0].isGraphOutput);
    changed = dead.length > 0;
    g.removeNodes(dead);
  }
}

/** T(T(x)) with inverse perms → x. */
function cancelPairs(g: Graph): void {
  for (const n of [...g.nodes]) {
    if (!g.contains(n) || n.opType !== 'Transpose') continue;
    const prev = n.inputs[0]?.producer;
    if (!prev || prev.opType !== 'Transpose') continue;
    const p1 = perm(prev);
    const p2 = perm(n);
    if (!p2.every((x, i) => p1[x] === i)) continue;
    const out = n.outputs[0];
    if (out.isGraphOutput) continue;
    g.replaceAllUsesWith(out, prev.inputs[0]!);
    g.removeNode(n);
    removeIfDead(g, [prev.outputs[0]]);
  }
}
