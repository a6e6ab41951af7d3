import { DataType } from '../ir/dtype';
import { AttrType, Graph, Node, Value } from '../ir/graph';
import { RowReader, Tensor, concatColumns, floats, matrixRows } from '../ir/tensor';
import { isDefaultDomain } from '../ir/query';
import { Pass } from '../rewrite/pass';
import { Target } from '../targets';

/** One projection x·W (+ b) with W as [K, N] row-major, whatever its spelling (MatMul, Gemm transB). */
interface Projection {
  node: Node;
  k: number;
  n: number;
  /** Rows of W as [K, N]. */
  weight: RowReader;
  bias: (() => Float32Array) | null;
}

const f32 = (v: Value | null | undefined) => !!v?.constant && v.constant.dtype === DataType.FLOAT;

function projection(node: Node): Projection | null {
  if (!isDefaultDomain(node) || node.outputs.length !== 1 || node.outputs[0].isGraphOutput) return null;
  const w = node.inputs[1];
  if (!f32(w) || w!.constant!.dims.length !== 2) return null;
  // the tensor itself, not the value: the merged weight is produced from it when written, after the value is gone
  const wt = w!.constant!;
  const [r, c] = wt.dims;
  if (node.opType === 'MatMul') return { node, k: r, n: c, weight: matrixRows(wt, c), bias: null };
  if (node.opType !== 'Gemm') return null;
  if (node.int('transA', 0) !== 0 || node.float('alpha', 1) !== 1 || node.float('beta', 1) !== 1) return null;
  const b = node.inputs[2];
  const transB = node.int('transB', 0) === 1;
  const [k, n] = transB ? [c, r] : [r, c];
  if (b && !(f32(b) && b.constant!.dims.length === 1 && b.constant!.size === n)) return null;
  // transB: rows j0..j1 of Wᵀ are columns j0..j1 of the stored [N, K], read row by row
  const weight: RowReader = !transB ? matrixRows(wt, n) : (j0, j1) => {
    const t = new Float32Array((j1 - j0) * n);
    for (let i = 0; i < n; i++) {
      const col = floats(wt.bytesIn((i * k + j0) * 4, (j1 - j0) * 4));
      for (let j = 0; j < j1 - j0; j++) t[j * n + i] = col[j];
    }
    return t;
  };
  return { node, k, n, weight, bias: b ? () => b.constant!.values() as Float32Array : null };
}

/**
 * Projections of one tensor by several constant weights (a transformer's q/k/v, the cross-attention
 * keys and values of every block reading the text embedding, each ResNet block's time-embedding
 * projection) become one MatMul or Gemm over the concatenated weights and one Split: on a GPU one large
 * GEMM and one copy kernel instead of many small dispatches. Each output column is the same dot product
 * as before. For webgpu, where the dispatch count is the cost.
 */
export const mergeProjections: Pass = {
  name: 'merge-projections',
  description: 'MatMul/Gemm siblings reading one tensor with constant weights → one MatMul/Gemm and a Split (webgpu)',
  appliesTo: (target) => (target.traits.dispatchBound ? null : `on ${target.name} small GEMMs cost no dispatch worth a copy of the weights`),
  movesWeights: true,
  emits: () => ['ai.onnx::MatMul', 'ai.onnx::Gemm', 'ai.onnx::Split'],
  sites: [{ counter: 'projectionsMerged', label: 'projections merged' }],
  run(graph, ctx) {
    let groups = 0;
    let merged = 0;
    const opset = ctx.model.opset('') ?? 17;
    for (const x of [...new Set(graph.nodes.map((n) => n.inputs[0]).filter((v): v is Value => !!v))]) {
      for (const op of ['MatMul', 'Gemm']) {
        const ps = x.uses.filter((u) => u.index === 0 && u.node.opType === op).map((u) => projection(u.node)).filter((p): p is Projection => !!p);
        const k = ps[0]?.k;
        const all = ps.filter((p) => p.k === k);
        if (op === 'Gemm' && all.some((p) => !p.bias) && all.some((p) => p.bias)) continue;
        const most = maxSplitOutputs(ctx.target, all.length);
        for (let i = 0; i + 1 < all.length; i += most) {
          const group = all.slice(i, i + most);
          if (group.length < 2) break;
          mergeGroup(graph, x, op, group, opset);
          ctx.explain(group[0].node, 'applied', `${group.length} ${op}s reading '${x.name}' → one ${op} and a Split`);
          groups++;
          merged += group.length;
        }
      }
    }
    return { changed: groups > 0, counts: { projectionGroups: groups, projectionsMerged: merged } };
  },
};

/** The most outputs one Split may have on the target (its kernel binds them all in one shader). */
function maxSplitOutputs(target: Target, wanted: number): number {
  let n = wanted;
  while (n > 1 && target.accepts('', 'Split', { sizes: { outputs: n } })) n--;
  return n;
}

function mergeGroup(graph: Graph, x: Value, op: string, group: Projection[], opset: number): void {
  const k = group[0].k;
  const total = group.reduce((s, p) => s + p.n, 0);
  const first = group[0].node;
  const name = `${first.name}_merged`;
  const merged = concatColumns(`${name}_weight`, k, group.map((p) => ({ width: p.n, rows: p.weight })), group.map((p) => p.node.inputs[1]!.constant!));
  const inputs: (Value | null)[] = [x, graph.addInitializer(`${name}_weight`, merged)];
  if (group[0].bias) {
    const b = new Float32Array(total);
    let at = 0;
    for (const p of group) {
      b.set(p.bias!(), at);
      at += p.n;
    }
    inputs.push(graph.addInitializer(`${name}_bias`, Tensor.fromValues(`${name}_bias`, DataType.FLOAT, [total], b)));
  }
  const before = group.reduce((a, p) => (graph.nodes.indexOf(p.node) < graph.nodes.indexOf(a) ? p.node : a), first);
  const mm = graph.addNode({ op, inputs, outputs: [`${name}_out`], name, before });
  const sizes = group.map((p) => BigInt(p.n));
  const splitInputs: (Value | null)[] = [mm.outputs[0]];
  const attrs = [{ name: 'axis', type: AttrType.INT as const, value: -1 }];
  if (opset >= 13) splitInputs.push(graph.addInitializer(`${name}_sizes`, Tensor.fromValues(`${name}_sizes`, DataType.INT64, [sizes.length], sizes)));
  const split = graph.addNode({
    op: 'Split',
    inputs: splitInputs,
    outputs: group.map((p) => `${p.node.outputs[0].name}_part`),
    attrs: opset >= 13 ? attrs : [...attrs, { name: 'split', type: AttrType.INTS, value: group.map((p) => p.n) }],
    name: `${name}_split`,
    before,
  });
  group.forEach((p, i) => {
    split.outputs[i].type = p.node.outputs[0].type;
    graph.replaceAllUsesWith(p.node.outputs[0], split.outputs[i]);
  });
}
