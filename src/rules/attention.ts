import { Layout, layoutKey, replay, scalarScale, sourceLayout, traceBack } from '../analysis/layout';
import { Sym } from '../ir/symbolic';
import { AttrType, Node, Value } from '../ir/graph';
import { isDefaultDomain } from '../ir/query';
import { Match, p } from '../rewrite/match';
import { defineRule, RuleContext } from '../rewrite/rule';
import { normalizeAxis } from '../ir/dims';

/**
 * Between the two MatMuls: scalar scales, additive masks, and reshapes between the 3-D and
 * 4-D views of the scores (transformers' CLIP adds its causal mask to a [B, H, S, S] view of [B·H, S, S]
 * scores), in any order.
 */
function scoreStep(n: Node): number | null {
  const s = scalarScale(n);
  if (s) return s[0];
  if (n.opType === 'Reshape' && isDefaultDomain(n)) return 0;
  if (n.opType === 'Add' && isDefaultDomain(n)) {
    const fromScores = (v: Value | null) => !!v?.producer && ['MatMul', 'Mul', 'Div', 'Add', 'Reshape'].includes(v.producer.opType);
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

/**
 * A layout key as it reads with a single head: no head split is written (diffusers' VAE attention reshapes
 * to [B, S, 1, C]), so the channels stay one factor `C` and the head axis is empty.
 */
const singleHead = (key: string) => key.split('|').map((g) => g.split('+').filter((f) => f !== 'C.0').map((f) => (f === 'C.1' ? 'C' : f)).join('+')).join('|');

interface Site {
  q: Value;
  k: Value;
  v: Value;
  heads: number;
  scale: number;
  headDim: number;
  /**
   * Additive masks on the scores, each with the axes that unsqueeze it to [B or 1, heads or 1, q_len, kv_len]
   * and the product of the scales applied after it (the kernels add the bias after their scale).
   */
  masks: { value: Value; axes: number[]; scale: number }[];
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
    const kept = survivors(site.output, [m.nodes.qk, m.nodes.softmax, m.nodes.pv]);
    if (kept.length) return `the unfused attention would still run for other readers (${kept.map((n) => n.opType).join(', ')} kept alive)`;
    return site;
  },
  rewrite(m, s, rw, ctx) {
    const name = m.nodes.softmax.name;
    const onnx = useOnnxAttention(ctx);
    // each mask made 4-D; two (a causal and a padding mask) are summed into one bias
    let mask: Value | null = null;
    s.masks.forEach(({ value, axes, scale }, i) => {
      let m4 = axes.length ? rw.add({ op: 'Unsqueeze', inputs: [value, rw.int64s(`${name}_mask${i}_axes`, axes)], outputs: [`${name}_mask${i}_4d`] }).outputs[0] : value;
      if (scale !== 1) m4 = rw.add({ op: 'Mul', inputs: [m4, rw.floats(`${name}_mask${i}_scale`, [], [scale])], outputs: [`${name}_mask${i}_scaled`] }).outputs[0];
      mask = mask ? rw.add({ op: 'Add', inputs: [mask, m4], outputs: [`${name}_mask_sum${i}`] }).outputs[0] : m4;
    });
    const scaleAttr = Math.fround(s.scale) === Math.fround(1 / Math.sqrt(s.headDim)) ? [] : [{ name: 'scale', type: AttrType.FLOAT as const, value: s.scale }];
    const node = onnx
      ? rw.add({ op: 'Attention', inputs: mask ? [s.q, s.k, s.v, mask] : [s.q, s.k, s.v], outputs: [`${name}_attention`], name: `${name}_Attention`,
          attrs: [{ name: 'q_num_heads', type: AttrType.INT, value: s.heads }, { name: 'kv_num_heads', type: AttrType.INT, value: s.heads }, ...scaleAttr] })
      : rw.add({ op: 'MultiHeadAttention', domain: 'com.microsoft', inputs: mask ? [s.q, s.k, s.v, null, null, mask] : [s.q, s.k, s.v], outputs: [`${name}_attention`], name: `${name}_MultiHeadAttention`,
          attrs: [{ name: 'num_heads', type: AttrType.INT, value: s.heads }, ...scaleAttr] });
    rw.replace(s.output, node.outputs[0]);
    return `${s.form} heads=${s.heads} head_dim=${s.headDim} scale=${s.scale.toPrecision(6)}${s.masks.length ? ` with mask${s.masks.length > 1 ? `s (${s.masks.length}, summed)` : ''}` : ''}`;
  },
});

function analyze(m: Match, ctx: RuleContext): Site | string {
  const sa = ctx.shapes;
  const sm = m.nodes.softmax;
  const rank = sa.get(sm.inputs[0]).shape?.length;
  if (rank === undefined) return 'rank of the scores unknown';
  const axis = normalizeAxis(sm.int('axis', (ctx.opset || 17) >= 13 ? -1 : 1), rank);
  if (axis !== rank - 1) return `softmax over axis ${axis}, not the last (${rank - 1})`;

  const traced = (['q', 'k', 'v'] as const).map((r) => {
    const t = traceBack(m.values[r]);
    const shape = sa.get(t.source).shape;
    if (!shape || shape.length !== 3 || shape[2].value === null) return null;
    const res = replay(sourceLayout(shape, ['B', 'S', 'C']), t.steps, sa);
    return res && { source: t.source, ...res };
  });
  const [q, k, v] = traced;
  if (!q || !k || !v) return 'q, k or v does not come from a [batch, sequence, heads·dim] tensor through reshapes and transposes';
  // one head: the channels are never split, the keys read without the head factor
  const single = q.layout.flat().some((f) => f.id === 'C');
  const keyed = (key: string) => (single ? singleHead(key) : key);
  const form = (Object.keys(FORMS) as (keyof typeof FORMS)[]).find((f) => layoutKey(q.layout) === keyed(FORMS[f].q) && layoutKey(k.layout) === keyed(FORMS[f].k) && layoutKey(v.layout) === keyed(FORMS[f].v));
  if (!form) return `q/k/v are not a head split of their sources (q ${layoutKey(q.layout)}, k ${layoutKey(k.layout)}, v ${layoutKey(v.layout)})`;
  const size = (l: Layout, id: string) => l.flat().find((f) => f.id === id)!.size;
  const [headId, dimId] = single ? ['', 'C'] : ['C.0', 'C.1'];
  const heads = single ? 1 : size(q.layout, headId).value!;
  const headDim = size(q.layout, dimId).value!;
  if (!single && (size(k.layout, headId).value !== heads || size(v.layout, headId).value !== heads)) return 'q, k and v have different head counts';
  if (size(k.layout, dimId).value !== headDim) return 'q and k have different head sizes';
  if (!size(q.layout, 'B').equals(size(k.layout, 'B')) || !size(k.layout, 'B').equals(size(v.layout, 'B'))) return 'q, k and v batch sizes are not provably equal';
  if (!size(k.layout, 'S').equals(size(v.layout, 'S'))) return 'k and v sequence lengths are not provably equal';
  const dims = { B: size(q.layout, 'B'), N: Sym.const(heads), Sq: size(q.layout, 'S'), Sk: size(k.layout, 'S') };

  // The scores from q·kᵀ through the chain the pattern walked: scales multiply, reshapes must be views
  // of the same [B, N, Sq, Sk] (and end where they began), a mask must be a bias the kernel takes.
  const headFactor = single ? [] : [{ id: 'N', size: dims.N }];
  const start: Layout = form === '4d'
    ? [[{ id: 'B', size: dims.B }], headFactor, [{ id: 'Sq', size: dims.Sq }], [{ id: 'Sk', size: dims.Sk }]]
    : [[{ id: 'B', size: dims.B }, ...headFactor], [{ id: 'Sq', size: dims.Sq }], [{ id: 'Sk', size: dims.Sk }]];
  let scores = start;
  let scale = 1;
  const masks: Site['masks'] = [];
  for (const n of m.chains.scores) {
    if (n.opType === 'Reshape') {
      const r = replay(scores, [{ node: n, scale: 1 }], sa);
      if (!r) return 'a reshape of the scores cannot be followed';
      scores = r.layout;
      continue;
    }
    const s = scalarScale(n);
    if (s) {
      scale *= s[1];
      for (const earlier of masks) earlier.scale *= s[1];
      continue;
    }
    const mask = n.inputs[scoreStep(n) === 0 ? 1 : 0]!;
    const fit = maskFit(sa.get(mask).shape, layoutKey(scores), single, dims);
    if (typeof fit === 'string') return fit;
    masks.push({ value: mask, axes: fit, scale: 1 });
  }
  if (layoutKey(scores) !== layoutKey(start)) return `the scores reach the softmax as ${layoutKey(scores)}, not as the product ${layoutKey(start)}`;
  const onnx = useOnnxAttention(ctx);
  const kernel = ctx.target.accepts(onnx ? '' : 'com.microsoft', onnx ? 'Attention' : 'MultiHeadAttention', { dtype: sa.get(q.source).dtype, ...(masks.length ? { options: [onnx ? 'attn_mask' : 'attention_bias'] } : {}) });
  if (kernel) return kernel;

  // The chain the pattern walked must merge the result back to [batch, q_len, heads·dim].
  const headAxis = single ? [] : [{ id: 'C.0', size: Sym.const(heads) }];
  let layout: Layout = form === '4d'
    ? [[{ id: 'B', size: dims.B }], headAxis, [{ id: 'S', size: dims.Sq }], [{ id: dimId, size: size(v.layout, dimId) }]]
    : [[{ id: 'B', size: dims.B }, ...headAxis], [{ id: 'S', size: dims.Sq }], [{ id: dimId, size: size(v.layout, dimId) }]];
  let output = m.values.pv;
  for (const n of m.chains.merge) {
    if (output.isGraphOutput) return 'an intermediate of the output reshapes is a graph output';
    const r = replay(layout, [{ node: n, scale: 1 }], sa);
    if (!r) return 'the output reshape cannot be followed';
    layout = r.layout;
    output = n.outputs[0];
  }
  if (layoutKey(layout) !== keyed(MERGED)) return `the output is not merged back to [batch, seq, heads·dim] (${layoutKey(layout)})`;
  return { q: q.source, k: k.source, v: v.source, heads, headDim, scale: scale * q.scale * k.scale * v.scale, masks, form, output };
}

/**
 * Whether a mask added to the scores viewed as `view` (B|N|Sq|Sk, or B+N|Sq|Sk) is a bias the kernels
 * take, [B or 1, N or 1, Sq, Sk]: its last two dims exactly the query and key lengths (no kernel broadcasts
 * those), the others 1 or the batch / head count. Returns the axes to unsqueeze it to 4-D, or why not.
 */
function maskFit(shape: Sym[] | null, view: string, single: boolean, d: { B: Sym; N: Sym; Sq: Sym; Sk: Sym }): number[] | string {
  if (!shape) return 'the mask shape is unknown';
  const fourD = view === (single ? 'B||Sq|Sk' : 'B|N|Sq|Sk');
  const threeD = view === (single ? 'B|Sq|Sk' : 'B+N|Sq|Sk');
  if (!fourD && !threeD) return `the mask is added to the scores viewed as ${view}, not [batch, heads, q_len, kv_len]`;
  const r = shape.length;
  if (r < 2 || r > (fourD ? 4 : 3)) return `a mask of rank ${r} on ${fourD ? '4' : '3'}-D scores`;
  if (!shape[r - 2].equals(d.Sq) || !shape[r - 1].equals(d.Sk)) return `the mask is [${shape.join(', ')}]: its last two dims are not the query and key lengths (${d.Sq}, ${d.Sk}), and the kernels do not broadcast those`;
  const one = (x: Sym) => x.value === 1;
  if (fourD) {
    if (r === 4 && !(one(shape[1]) || shape[1].equals(d.N))) return `the mask's head dim ${shape[1]} is neither 1 nor ${d.N}`;
    if (r === 4 && !(one(shape[0]) || shape[0].equals(d.B))) return `the mask's batch dim ${shape[0]} is neither 1 nor ${d.B}`;
    if (r === 3 && !(one(shape[0]) || shape[0].equals(d.N))) return `the mask's head dim ${shape[0]} is neither 1 nor ${d.N}`;
    return Array.from({ length: 4 - r }, (_, i) => i);
  }
  // [B·N, Sq, Sk] view: a leading dim must be 1, or the batch where there is one head
  if (r === 3 && !one(shape[0])) {
    if (single && shape[0].equals(d.B)) return [1];
    return `the mask's first dim ${shape[0]} on [batch·heads, q_len, kv_len] scores is not 1`;
  }
  return Array.from({ length: 4 - r }, (_, i) => i);
}

/**
 * Which of `core` would stay alive once every reader of `output` reads the fused op instead: a node
 * dies when all its outputs' readers die. Exporters' Shape readers of intermediates die with the
 * reshapes they feed; a real second consumer of the scores keeps them (and the fusion is refused).
 * Walks up from `output` through the nodes that die (each is re-examined when one of its readers dies),
 * so the cost is the size of the attention's own cone, not the graph's: the rule stays linear overall.
 */
function survivors(output: Value, core: Node[]): Node[] {
  const dead = new Set<Node>();
  // a reader with no readers of its own (left by a rewrite of this round) dies with what it reads
  const gone = (n: Node) => dead.has(n) || n.outputs.every((o) => !o.isGraphOutput && o.uses.length === 0);
  const dies = (n: Node) => n.outputs.every((o) => o === output || (!o.isGraphOutput && o.uses.every((u) => gone(u.node))));
  const work: Node[] = [];
  const consider = (n: Node | null) => {
    if (n && !dead.has(n) && dies(n)) {
      dead.add(n);
      work.push(n);
    }
  };
  consider(output.producer);
  while (work.length) for (const v of work.pop()!.inputs) consider(v?.producer ?? null);
  return core.filter((n) => !dead.has(n));
}
