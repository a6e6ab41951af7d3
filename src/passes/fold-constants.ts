import { arrOf, evaluate, Arr, NotFoldable, tensorOf } from '../analysis/evaluate';
import { AttrType, Graph, Node } from '../ir/graph';
import { Pass } from '../rewrite/pass';
import { isDefaultDomain, isNondeterministic } from '../ir/query';
import { byteSize } from '../ir/dtype';

/**
 * Constants folding may create: at most this many bytes, and for growth ops no more than their inputs or
 * GROWTH_ALLOWANCE_BYTES: a causal mask of 77 tokens (23 KB) folds, so a static text encoder keeps no int64
 * mask arithmetic for the CPU (which blocks graph capture), while an Expand to a feature map does not.
 */
const FOLD_LIMIT_BYTES = 1 << 20;
const GROWTH_ALLOWANCE_BYTES = 64 << 10;
const GROWTH = new Set(['Expand', 'Tile', 'ConstantOfShape', 'Range', 'Resize', 'Upsample', 'Pad']);

/**
 * Evaluate every node whose inputs are all constant, and turn Constant nodes into initializers. The
 * result replaces the node's outputs under the same names. Big results are left to run time: folding must
 * never make the model much larger than it was.
 */
export const foldConstants: Pass = {
  name: 'fold-constants',
  description: 'evaluate nodes whose inputs are all constant (size-guarded); Constant nodes become initializers',
  run(graph, ctx) {
    let folded = 0;
    let tooBig = 0;
    const opset = ctx.model.opset('') ?? 17;
    for (const g of graph.allGraphs()) {
      g.topoSort();
      for (const n of [...g.nodes]) {
        const r = foldNode(g, n, opset);
        if (r === 'folded') folded++;
        else if (r === 'too-big') tooBig++;
      }
    }
    return { changed: folded > 0, counts: { folded, leftTooBig: tooBig } };
  },
};

function foldNode(g: Graph, n: Node, opset: number): 'folded' | 'too-big' | 'no' {
  if (isNondeterministic(n) || n.subgraphs().length) return 'no';
  if (n.opType === 'Constant' && isDefaultDomain(n)) {
    // The tensor moves as it is (any dtype, any size): no evaluation, no copy.
    const a = n.attr('value');
    if (a && a.type === AttrType.TENSOR) {
      g.makeConstant(n.outputs[0], a.value);
      return 'folded';
    }
  }
  if (n.opType !== 'Constant' && n.inputs.length === 0) return 'no';
  if (n.outputs.some((o) => o.omitted) && n.opType !== 'Dropout') return 'no';
  const consts = n.inputs.map((v) => (v ? v.constant : null));
  if (n.inputs.some((v, i) => v && !consts[i])) return 'no';
  let inBytes = 0;
  for (const t of consts) if (t) inBytes += t.byteLength;
  // Read no large weights: folding is for shapes, scales and masks.
  if (consts.some((t) => t && t.byteLength > FOLD_LIMIT_BYTES)) return 'no';
  const arrs: (Arr | null)[] = consts.map((t) => (t ? arrOf(t) : null));
  if (arrs.some((a, i) => consts[i] && !a)) return 'no';
  const outs = evaluate(n, arrs, opset);
  if (!outs || outs.length < n.outputs.filter((o) => !o.omitted).length) return 'no';
  const bytes = outs.reduce((s, a) => s + byteSize(a.dtype, a.data.length), 0);
  if (n.opType !== 'Constant' && (bytes > FOLD_LIMIT_BYTES || (GROWTH.has(n.opType) && bytes > Math.max(inBytes, GROWTH_ALLOWANCE_BYTES)))) return 'too-big';
  const targets = n.outputs.map((o, i) => [o, outs[i]] as const).filter(([o, a]) => !o.omitted && a);
  let tensors;
  try {
    tensors = targets.map(([o, a]) => tensorOf(a, o.name));
  } catch (e) {
    if (e instanceof NotFoldable) return 'no';
    throw e;
  }
  targets.forEach(([o], i) => g.makeConstant(o, tensors[i]));
  if (g.contains(n)) g.removeNode(n);
  return 'folded';
}
