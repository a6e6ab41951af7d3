import { analyzeShapes } from '../analysis/shapes';
import { AttrType, Graph, Node, Value } from '../ir/graph';
import { Pass, PassContext } from '../rewrite/pass';
import { matchValue, p } from '../rewrite/match';
import { constNear, uniformConst } from '../rewrite/helpers';

const lastAxisMean = (n: Node) => {
  const axes = n.ints('axes') ?? (n.inputs[1]?.constant ? Array.from(n.inputs[1].constant.values() as BigInt64Array, Number) : null);
  return !!axes && axes.length === 1 && axes[0] === -1 && n.int('keepdims', 1) === 1;
};

/** (x - mean(x)) / sqrt(mean((x - mean(x))²) + ε) · γ + β over the last axis. */
const DECOMPOSED = p.op('Add', [
  p.op('Mul', [
    p.op('Div', [
      p.op('Sub', [p.any('x'), p.op('ReduceMean', [p.any('x')], { where: lastAxisMean, singleUse: false })], { capture: 'd', singleUse: false }),
      p.op('Sqrt', [p.op('Add', [p.op('ReduceMean', [p.op('Pow', [p.any('d'), constNear('two', 2)])], { where: lastAxisMean }), p.any('eps', (v) => uniformConst(v) !== null)], { commutative: true })]),
    ]),
    p.any('gamma', (v) => !!v.constant),
  ], { commutative: true }),
  p.any('beta', (v) => !!v.constant),
], { commutative: true, capture: 'root' });

/**
 * LayerNorm in its decomposed ReduceMean form → LayerNormalization; and a residual Add feeding a
 * LayerNormalization → com.microsoft SkipLayerNormalization (every target), whose fourth output carries
 * the sum on to the next residual.
 */
export const fuseLayerNorm: Pass = {
  name: 'fuse-layer-norm',
  description: 'decomposed LayerNorm → LayerNormalization; residual Add + LayerNormalization → SkipLayerNormalization',
  targets: ['cpu', 'webgpu', 'cuda'],
  run(graph, ctx) {
    let decomposed = 0;
    for (const n of graph.nodes.filter((x) => x.opType === 'Add')) {
      if (!graph.nodes.includes(n)) continue;
      const m = matchValue(DECOMPOSED, n.outputs[0]);
      if (!m) continue;
      const ln = graph.addNode({ op: 'LayerNormalization', inputs: [m.values.x, m.values.gamma, m.values.beta], outputs: [`${n.name}_ln`], name: `${n.name}_LayerNormalization`,
        attrs: [{ name: 'axis', type: AttrType.INT, value: -1 }, { name: 'epsilon', type: AttrType.FLOAT, value: uniformConst(m.values.eps)! }] });
      ln.outputs[0].type = n.outputs[0].type;
      graph.replaceAllUsesWith(n.outputs[0], ln.outputs[0]);
      decomposed++;
      ctx.explain(n, 'applied', 'LayerNormalization');
    }
    if (decomposed) graph.topoSort();
    const skip = fuseSkip(graph, ctx);
    if (skip) graph.topoSort();
    return { changed: decomposed + skip > 0, counts: { layerNorm: decomposed, skipLayerNorm: skip } };
  },
};

function fuseSkip(g: Graph, ctx: PassContext): number {
  const lacks = ctx.target.lacks('com.microsoft', 'SkipLayerNormalization');
  if (lacks) return 0;
  const sa = analyzeShapes(ctx.model, g);
  let fused = 0;
  // Decide every site on the unmodified graph first: a fused site's sum output replaces an Add that a
  // later site may read, with the same shape.
  const sites: Node[] = [];
  for (const ln of g.nodes.filter((n) => n.opType === 'LayerNormalization' && (n.domain === '' || n.domain === 'ai.onnx'))) {
    const add = ln.inputs[0]?.producer;
    if (!add || add.opType !== 'Add' || (add.domain !== '' && add.domain !== 'ai.onnx')) continue;
    const [a, b] = add.inputs as [Value, Value];
    const sh = (v: Value) => sa.get(v).shape;
    const sa3 = sh(a);
    const sb3 = sh(b);
    const why = (() => {
      if (ln.outputs.slice(1).some((o) => !o.omitted && (o.uses.length || o.isGraphOutput))) return 'mean/inv_std outputs are used';
      const r = sa3?.length;
      let axis = ln.int('axis', -1);
      if (r !== undefined && axis < 0) axis += r;
      if (r !== 3 || axis !== 2) return 'SkipLayerNormalization normalizes the last axis of 3-D input';
      if (!sb3 || sb3.length !== 3 || !sa3!.every((d, i) => d.equals(sb3[i]))) return 'the residual operands do not have the same shape';
      if (sa.get(a).dtype !== 1) return 'float32 only';
      if (!ln.inputs[1]?.constant || (ln.inputs[2] && !ln.inputs[2].constant)) return 'gamma/beta are not constant';
      return null;
    })();
    if (why) ctx.explain(ln, 'skipped', why);
    else sites.push(ln);
  }
  for (const ln of sites) {
    const add = ln.inputs[0]!.producer!;
    const [a, b] = add.inputs as [Value, Value];
    const sum = add.outputs[0];
    const others = sum.uses.filter((u) => u.node !== ln);
    const outs = [`${ln.name}_out`, `${ln.name}_mean`, `${ln.name}_invstd`, `${ln.name}_sum`];
    const n = g.addNode({ op: 'SkipLayerNormalization', domain: 'com.microsoft', inputs: [a, b, ln.inputs[1], ln.inputs[2] ?? null], outputs: outs, name: `${ln.name}_SkipLayerNormalization`,
      attrs: [{ name: 'epsilon', type: AttrType.FLOAT, value: ln.float('epsilon', 1e-5) }] });
    n.outputs[1].omitted = true;
    n.outputs[2].omitted = true;
    n.outputs[0].type = ln.outputs[0].type;
    ctx.model.useDomain('com.microsoft');
    g.replaceAllUsesWith(ln.outputs[0], n.outputs[0]);
    if (others.length || sum.isGraphOutput) {
      n.outputs[3].type = sum.type;
      g.replaceAllUsesWith(sum, n.outputs[3]);
    } else {
      n.outputs[3].omitted = true;
    }
    fused++;
    ctx.explain(ln, 'applied', `SkipLayerNormalization${others.length ? ' (sum passed on)' : ''}`);
  }
  return fused;
}
