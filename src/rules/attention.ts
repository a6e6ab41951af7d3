import { Layout, layoutKey, replay, scalarScale, sourceLayout, traceBack } from '../analysis/layout';
import { Sym } from '../ir/symbolic';
import { AttrType, Graph, Node, Value } from '../ir/graph';
import { isDefaultDomain } from '../ir/query';
import { Match, p } from '../rewrite/match';
import { defineRule, RuleContext } from '../rewrite/rule';
import { normalizeAxis } from '../ir/dims';

/** Between the two MatMuls: scalar scales and at most one additive mask, in any order. */
function scoreStep(n: Node): number | null {
  const s = scalarScale(n);
  if (s) return s[0];
  if (n.opType === 'Add' && isDefaultDomain(n)) {
    const fromScores = (v: Value | null) => !!v?.producer && ['MatMul', 'Mul', 'Div', 'Add'].includes(v.producer.opType);
    if (fromScores(n.inputs[0])) return 0;
    if (fromScores(n.inputs[1])) return 1;
  }
  return null;
}

/** softmax(scale · Q Kᵀ + mask) V, whatever the exporter did around it. */
const CORE = p.op('MatMul', [
  p.op('Softmax', [p.chain('scores', scoreStep, p.op('MatMul', [p.any('q'), p.any('k')], { capture: 'qk' }))], { capture: 'softmax' }),
  p.any('v'),
], { capture: 'pv' });

const relayout = (n: Node) => ((n.opType === 'Reshape' || n.opType === 'Transpose') && isDefaultDomain(n) ? 0 : null);

/**
 * The core followed by the reshapes/transposes that merge the heads back, rooted at the last of them.
 * Their intermediate values may have other readers (Shape nodes computing targets): the check proves the
 * unfused core dies instead.
 */
const ATTENTION = p.chain('merge', relayout, CORE, { max: 6, ops: ['Reshape', 'Transpose'], singleUse: false });

/** The head layouts attention needs, as factor ids of each [B, S, C=H·D] source (see layout.ts). */
const FORMS = {
  '4d': { q: 'B|C.0|S|C.1', k: 'B|C.0|C.1|S', v: 'B|C.0|S|C.1' },
  '3d': { q: 'B+C.0|S|C.1', k: 'B+C.0|C.1|S', v: 'B+C.0|S|C.1' },
} as const;
const MERGED = 'B|S|C.0+C.1';

interface Site {
  q: Value;
  k: Value;
  v: Value;
  heads: number;
  scale: number;
  headDim: number;
  mask: Value | null;
  form: keyof typeof FORMS;
  output: Value;
}

const useOnnxAttention = (ctx: RuleContext) => ctx.opset >= 23 && ctx.target.runs('', 'Attention');

/**
 * softmax(scale·QKᵀ [+ mask])V with head splits → com.microsoft MultiHeadAttention, or ai.onnx Attention
 * at opset ≥ 23. The layouts of q, k and v must be a head split of [B, S, H·D] sources (same H, D, batch,
 * kv length), the result merged back to [B, S, H·D], and the unfused core must die once its readers move.
 */
export const attention = defineRule<Site>({
  name: 'attention',
  description: 'MatMul→scale→Softmax→MatMul with head splits → one MultiHeadAttention (or Attention-23) per site',
  priority: 0,
  pattern: ATTENTION,
  site: 'softmax',
  counter: 'attention',
  label: 'attention',
  emits: (ctx) => [useOnnxAttention(ctx) ? 'ai.onnx::Attention' : 'com.microsoft::MultiHeadAttention'],
  check(m, ctx) {
    const site = analyze(m, ctx);
    if (typeof site === 'string') return site;
    const kept = survivors(ctx.graph, site.output, [m.nodes.qk, m.nodes.softmax, m.nodes.pv]);
    if (kept.length) return `the unfused attention would still run for other readers (${kept.map((n) => n.opType).join(', ')} kept alive)`;
    return site;
  },
  rewrite(m, s, rw, ctx) {
    const name = m.nodes.softmax.name;
    const onnx = useOnnxAttention(ctx);
    let mask = s.mask;
    if (mask) {
      const r = mask.shape?.length ?? mask.constant?.dims.length ?? 4;
      if (r < 4) {
        const axes = rw.int64s(`${name}_mask_axes`, Array.from({ length: 4 - r }, (_, i) => i));
        mask = rw.add({ op: 'Unsqueeze', inputs: [mask, axes], outputs: [`${name}_mask4d`] }).outputs[0];
      }
    }
    const scaleAttr = Math.fround(s.scale) === Math.fround(1 / Math.sqrt(s.headDim)) ? [] : [{ name: 'scale', type: AttrType.FLOAT as const, value: s.scale }];
    const node = onnx
      ? rw.add({ op: 'Attention', inputs: mask ? [s.q, s.k, s.v, mask] : [s.q, s.k, s.v], outputs: [`${name}_attention`], name: `${name}_Attention`,
          attrs: [{ name: 'q_num_heads', type: AttrType.INT, value: s.heads }, { name: 'kv_num_heads', type: AttrType.INT, value: s.heads }, ...scaleAttr] })
      : rw.add({ op: 'MultiHeadAttention', domain: 'com.microsoft', inputs: mask ? [s.q, s.k, s.v, null, null, mask] : [s.q, s.k, s.v], outputs: [`${name}_attention`], name: `${name}_MultiHeadAttention`,
          attrs: [{ name: 'num_heads', type: AttrType.INT, value: s.heads }, ...scaleAttr] });
    rw.replace(s.output, node.outputs[0]);
    return `${s.form} heads=${s.heads} head_dim=${s.headDim} scale=${s.scale.toPrecision(6)}${s.mask ? ' with mask' : ''}`;
  },
});

function analyze(m: Match, ctx: RuleContext): Site | string {
  const sa = ctx.shapes;
  const sm = m.nodes.softmax;
  const rank = sa.get(sm.inputs[0]).shape?.length;
  if (rank === undefined) return 'rank of the scores unknown';
  const axis = normalizeAxis(sm.int('axis', (ctx.opset || 17) >= 13 ? -1 : 1), rank);
  if (axis !== rank - 1) return `softmax over axis ${axis}, not the last (${rank - 1})`;

  let scale = 1;
  let mask: Value | null = null;
  for (const n of m.chains.scores) {
    const s = scalarScale(n);
    if (s) {
      scale *= s[1];
      continue;
    }
    if (mask) return 'more than one additive mask';
    mask = n.inputs[scoreStep(n) === 0 ? 1 : 0];
  }
  const traced = (['q', 'k', 'v'] as const).map((r) => {
    const t = traceBack(m.values[r]);
    const shape = sa.get(t.source).shape;
    if (!shape || shape.length !== 3 || shape[2].value === null) return null;
    const res = replay(sourceLayout(shape, ['B', 'S', 'C']), t.steps, sa);
    return res && { source: t.source, ...res };
  });
  const [q, k, v] = traced;
  if (!q || !k || !v) return 'q, k or v does not come from a [batch, sequence, heads·dim] tensor through reshapes and transposes';
  const form = (Object.keys(FORMS) as (keyof typeof FORMS)[]).find((f) => layoutKey(q.layout) === FORMS[f].q && layoutKey(k.layout) === FORMS[f].k && layoutKey(v.layout) === FORMS[f].v);
  if (!form) return `q/k/v are not a head split of their sources (q ${layoutKey(q.layout)}, k ${layoutKey(k.layout)}, v ${layoutKey(v.layout)})`;
  const size = (l: Layout, id: string) => l.flat().find((f) => f.id === id)!.size;
  const heads = size(q.layout, 'C.0').value!;
  const headDim = size(q.layout, 'C.1').value!;
  if (size(k.layout, 'C.0').value !== heads || size(v.layout, 'C.0').value !== heads) return 'q, k and v have different head counts';
  if (size(k.layout, 'C.1').value !== headDim) return 'q and k have different head sizes';
  if (!size(q.layout, 'B').equals(size(k.layout, 'B')) || !size(k.layout, 'B').equals(size(v.layout, 'B'))) return 'q, k and v batch sizes are not provably equal';
  if (!size(k.layout, 'S').equals(size(v.layout, 'S'))) return 'k and v sequence lengths are not provably equal';
  const onnx = useOnnxAttention(ctx);
  const kernel = ctx.target.accepts(onnx ? '' : 'com.microsoft', onnx ? 'Attention' : 'MultiHeadAttention', { dtype: sa.get(q.source).dtype });
  if (kernel) return kernel;
  if (mask && !maskFits(sa.get(mask).shape, form)) return 'mask shape does not broadcast as [batch, heads, q_len, kv_len]';

  // The chain the pattern walked must merge the result back to [batch, q_len, heads·dim].
  let layout: Layout = form === '4d'
    ? [[{ id: 'B', size: size(q.layout, 'B') }], [{ id: 'C.0', size: Sym.const(heads) }], [{ id: 'S', size: size(q.layout, 'S') }], [{ id: 'C.1', size: size(v.layout, 'C.1') }]]
    : [[{ id: 'B', size: size(q.layout, 'B') }, { id: 'C.0', size: Sym.const(heads) }], [{ id: 'S', size: size(q.layout, 'S') }], [{ id: 'C.1', size: size(v.layout, 'C.1') }]];
  let output = m.values.pv;
  for (const n of m.chains.merge) {
    if (output.isGraphOutput) return 'an intermediate of the output reshapes is a graph output';
    const r = replay(layout, [{ node: n, scale: 1 }], sa);
    if (!r) return 'the output reshape cannot be followed';
    layout = r.layout;
    output = n.outputs[0];
  }
  if (layoutKey(layout) !== MERGED) return `the output is not merged back to [batch, seq, heads·dim] (${layoutKey(layout)})`;
  return { q: q.source, k: k.source, v: v.source, heads, headDim, scale: scale * q.scale * k.scale * v.scale, mask, form, output };
}

/**
 * Which of `core` would stay alive once every reader of `output` reads the fused op instead: a node
 * dies when all its outputs' readers die. Exporters' Shape readers of intermediates die with the
 * reshapes they feed; a real second consumer of the scores keeps them (and the fusion is refused).
 */
function survivors(g: Graph, output: Value, core: Node[]): Node[] {
  const dead = new Set<Node>();
  for (let i = g.nodes.length - 1; i >= 0; i--) {
    const n = g.nodes[i];
    const dies = n.outputs.every((o) => o === output || (!o.isGraphOutput && o.uses.every((u) => dead.has(u.node))));
    if (dies) dead.add(n);
  }
  return core.filter((n) => !dead.has(n));
}

function maskFits(shape: Sym[] | null, form: keyof typeof FORMS): boolean {
  if (!shape) return false;
  if (form === '4d') return shape.length <= 4;
  return shape.length <= 2 || (shape.length === 3 && shape[0].value === 1);
}
