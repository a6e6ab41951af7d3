import { analyzeShapes, ShapeAnalysis } from './shapes';
import { Node, Value } from '../ir/graph';
import { Model } from '../ir/model';

/**
 * Dims of a model's inputs that nothing declares, read from the weights that read them: what a pipeline
 * component's role leaves open (src/pipeline/dims.ts) and what --check must choose for a model's free
 * dims (src/runtime/feeds.ts) so that the original accepts them.
 */

/** Ops that pass a tensor's values through unchanged in shape (the solver looks through them). */
const PASS_THROUGH = new Set(['Cast', 'Identity']);
const ELEMENTWISE = new Set(['Add', 'Sub', 'Mul', 'Div']);

/** The inputs a caller feeds (an initializer listed as an input is a constant). */
export function realInputs(model: Model): Value[] {
  return model.graph.inputs.filter((v) => !v.initializer);
}

/** Shape analysis with the model's inputs at `dims` (null: unknown), its declared input types left as they were. */
export function analyzeAt(model: Model, dims: Map<string, readonly (number | null)[]>): ShapeAnalysis {
  const inputs = realInputs(model);
  const types = inputs.map((v) => v.type);
  try {
    for (const v of inputs) {
      const d = dims.get(v.name);
      if (d && v.type?.kind === 'tensor') v.type = { ...v.type, shape: d.map((x, i) => x ?? `sdc_unknown_${v.name}_${i}`) };
    }
    const a = analyzeShapes(model);
    // the analysis reads an input's type when first asked: ask now, while the trial dims are in place
    for (const v of inputs) a.get(v);
    return a;
  } finally {
    // the trial dims never outlive the analysis: the model keeps the types it declares
    inputs.forEach((v, i) => {
      v.type = types[i];
    });
  }
}

/**
 * Fill the dims the roles leave open from the weights that read them: a Conv's input channels, a
 * MatMul's or Gemm's contraction width (also through a Concat with other known widths: SDXL's
 * `text_embeds`, whose axis Optimum names `sequence_length`), and an input added to a value of known
 * dims (ControlNet residuals). Repeated while it learns something.
 */
export function solveOpenDims(model: Model, known: Map<string, (number | null)[]>, notes: string[]): { dims: Map<string, number[]>; unresolved: null } | { dims: null; unresolved: string } {
  const inputs = realInputs(model);
  for (let round = 0; round < 4; round++) {
    const open = inputs.filter((v) => known.get(v.name)!.some((d) => d === null));
    if (!open.length) break;
    const a = analyzeAt(model, known);
    let learned = false;
    for (const v of open) {
      const dims = known.get(v.name)!;
      for (const [i, d] of fromReaders(v, dims.length, a)) {
        if (dims[i] !== null || d === null || d < 1) continue;
        dims[i] = d;
        learned = true;
        notes.push(`${v.name} dim ${i} = ${d}, from the weights that read it`);
      }
    }
    if (!learned) break;
  }
  const open = inputs.find((v) => known.get(v.name)!.some((d) => d === null));
  if (open) {
    const d = known.get(open.name)!;
    return { dims: null, unresolved: `${open.name} [${(open.shape ?? []).join(', ')}]: dim${d.filter((x) => x === null).length > 1 ? 's' : ''} ${d.map((x, i) => (x === null ? i : -1)).filter((i) => i >= 0).join(', ')} follow from no pipeline size or weight` };
  }
  return { dims: new Map([...known].map(([k, d]) => [k, d as number[]])), unresolved: null };
}

/** What the readers of input `v` (looked at through Cast/Identity) say its dims must be. */
function fromReaders(v: Value, rank: number, a: ShapeAnalysis): [number, number | null][] {
  const out: [number, number | null][] = [];
  const dim = (x: Value | null | undefined, i: number) => {
    const s = a.get(x).shape;
    if (!s) return null;
    const k = i < 0 ? s.length + i : i;
    return s[k]?.value ?? null;
  };
  for (const { node: n, index } of readers(v)) out.push(...fromReader(n, index, rank, a, dim));
  return out;
}

function fromReader(n: Node, index: number, rank: number, a: ShapeAnalysis, dim: (x: Value | null | undefined, i: number) => number | null): [number, number | null][] {
  const w = n.inputs[1]?.constant;
  if (n.domain === '' && n.opType === 'Conv' && index === 0 && w && w.dims.length >= 2) return [[1, w.dims[1] * n.int('group', 1)]];
  if (n.domain === '' && n.opType === 'MatMul' && index === 0 && w && w.dims.length >= 2) return [[rank - 1, w.dims[w.dims.length - 2]]];
  if (n.domain === '' && n.opType === 'Gemm' && index === 0 && w && w.dims.length === 2) return [[rank - 1, w.dims[n.int('transB', 0) ? 1 : 0]]];
  if (n.domain === '' && n.opType === 'Concat' && rank >= 1) {
    const axis = n.int('axis', 0);
    if (axis !== -1 && axis !== rank - 1) return [];
    const others = n.inputs.filter((_, i) => i !== index);
    const widths = others.map((o) => dim(o, -1));
    if (widths.some((wd) => wd === null)) return [];
    const total = readers(n.outputs[0]).map((u) => (u.index === 0 && u.node.domain === '' ? contraction(u.node) : null)).find((k) => k !== null);
    if (total === undefined || total === null) return [];
    return [[rank - 1, total - widths.reduce((sum: number, wd) => sum + wd!, 0)]];
  }
  if (n.domain === '' && ELEMENTWISE.has(n.opType)) {
    const other = n.inputs[1 - index];
    const s = a.get(other).shape;
    if (!other || !s || s.length !== rank) return [];
    return s.map((d, i) => [i, d.value] as [number, number | null]).filter(([, d]) => d !== null && d > 1);
  }
  return [];
}

/** The readers of `v`, looking through Cast and Identity. */
function readers(v: Value, depth = 0): { node: Node; index: number }[] {
  return v.uses.flatMap((u) => (PASS_THROUGH.has(u.node.opType) && depth < 4 ? readers(u.node.outputs[0], depth + 1) : [u]));
}

/** The contraction width of a MatMul or Gemm with a constant weight. */
function contraction(n: Node): number | null {
  const w = n.inputs[1]?.constant;
  if (!w || w.dims.length < 2) return null;
  if (n.opType === 'MatMul') return w.dims[w.dims.length - 2];
  if (n.opType === 'Gemm' && w.dims.length === 2) return w.dims[n.int('transB', 0) ? 1 : 0];
  return null;
}

