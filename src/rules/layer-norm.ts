import { AttrType, Node } from '../ir/graph';
import { constInts, uniformConst } from '../ir/query';
import { constNear } from '../rewrite/helpers';
import { p } from '../rewrite/match';
import { defineRule } from '../rewrite/rule';

const lastAxisMean = (n: Node) => {
  const axes = n.ints('axes') ?? constInts(n.inputs[1]);
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

/** LayerNorm in its decomposed ReduceMean form → ai.onnx LayerNormalization. */
export const layerNorm = defineRule<null>({
  name: 'layer-norm',
  description: 'decomposed LayerNorm (ReduceMean, Sub, Pow, Sqrt, Div, affine) → LayerNormalization',
  priority: 0,
  pattern: DECOMPOSED,
  site: 'root',
  counter: 'layerNorm',
  label: 'layer norm',
  emits: () => ['ai.onnx::LayerNormalization'],
  check: () => null,
  rewrite(m, _facts, rw) {
    const root = m.nodes.root;
    const ln = rw.add({ op: 'LayerNormalization', inputs: [m.values.x, m.values.gamma, m.values.beta], outputs: [`${root.name}_ln`], name: `${root.name}_LayerNormalization`,
      attrs: [{ name: 'axis', type: AttrType.INT, value: -1 }, { name: 'epsilon', type: AttrType.FLOAT, value: uniformConst(m.values.eps)! }] });
    rw.replace(m.values.root, ln.outputs[0]);
    return 'LayerNormalization';
  },
});
