import { p, Pattern } from '../rewrite/match';
import { constNear } from '../rewrite/helpers';
import { defineRule, RuleContext } from '../rewrite/rule';

/** x · ½ · (1 + erf(x/√2)) in the three association orders exporters produce, for x matching `x`. */
export function erfGelu(x: Pattern): Pattern {
  const erfTerm = p.op('Add', [
    p.op('Erf', [p.alt(p.op('Div', [x, constNear('c', Math.SQRT2)]), p.op('Mul', [x, constNear('c', Math.SQRT1_2)], { commutative: true }))], { capture: 'erf' }),
    constNear('one', 1),
  ], { commutative: true });
  const half = constNear('half', 0.5);
  return p.alt(
    p.op('Mul', [p.op('Mul', [x, erfTerm], { commutative: true }), half], { commutative: true, capture: 'gelu' }),
    p.op('Mul', [x, p.op('Mul', [half, erfTerm], { commutative: true })], { commutative: true, capture: 'gelu' }),
    p.op('Mul', [p.op('Mul', [x, half], { commutative: true }), erfTerm], { commutative: true, capture: 'gelu' }),
  );
}

/** ai.onnx Gelu exists from opset 20; before it, com.microsoft Gelu (same erf formula). */
const onnxGelu = (ctx: RuleContext) => ctx.opset >= 20;

/** Exact (erf) GELU → one Gelu op. */
export const gelu = defineRule<null>({
  name: 'gelu',
  description: 'x·½·(1+erf(x/√2)) → Gelu (ai.onnx at opset ≥ 20, else com.microsoft)',
  priority: 0,
  pattern: erfGelu(p.any('x')),
  site: 'erf',
  counter: 'gelu',
  label: 'gelu',
  emits: (ctx) => [onnxGelu(ctx) ? 'ai.onnx::Gelu' : 'com.microsoft::Gelu'],
  check: () => null,
  rewrite(m, _facts, rw, ctx) {
    const out = m.values.gelu;
    const n = rw.add({ op: 'Gelu', domain: onnxGelu(ctx) ? '' : 'com.microsoft', inputs: [m.values.x], outputs: [`${out.name}_gelu`], name: `${m.nodes.erf.name}_Gelu` });
    rw.replace(out, n.outputs[0]);
    return 'Gelu';
  },
});
