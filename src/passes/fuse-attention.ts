import { Layout, layoutKey, replay, scalarScale, sourceLayout, traceBack } from '../analysis/layout';
import { analyzeShapes, ShapeAnalysis } from '../analysis/shapes';
import { Sym } from '../analysis/symbolic';
import { DataType } from '../ir/dtype';
import { AttrType, Graph, Node, Value } from '../ir/graph';
import { Tensor } from '../ir/tensor';
import { Pass, PassContext } from '../rewrite/pass';
import { Match, matchValue, p } from '../rewrite/match';

/** Between the two MatMuls: scalar scales and at most one additive mask, in any order. */
function scoreStep(n: Node): number | null {
  const s = scalarScale(n);
  if (s) return s[0];
  if (n.opType === 'Add' && (n.domain === '' || n.domain === 'ai.onnx')) {
    const fromScores = (v: Value | null) => !!v?.producer && ['MatMul', 'Mul', 'Div', 'Add'].includes(v.producer.opType);
    if (fromScores(n.inputs[0])) return 0;
    if (fromScores(n.inputs[1])) return 1;
  }
  return null;
}

/** softmax(scale · Q Kᵀ + mask) V, whatever the exporter did around it. */
const ATTENTION = p.op('MatMul', [
  p.op('Softmax', [p.chain('scores', scoreStep, p.op('MatMul', [p.any('q'), p.any('k')], { capture: 'qk' }))], { capture: 'softmax' }),
  p.any('v'),
], { capture: 'pv' });

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

export const fuseAttention: Pass = {
  name: 'fuse-attention',
  description: 'MatMul→scale→Softmax→MatMul with head splits → one MultiHeadAttention (or Attention-23) per site',
  targets: ['cpu', 'webgpu', 'cuda'],
  run(graph, ctx) {
    const sa = analyzeShapes(ctx.model, graph);
    let fused = 0;
    let skipped = 0;
    let existing = 0;
    for (const n of graph.nodes) {
      if (n.opType === 'Attention' && (n.domain === '' || n.domain === 'ai.onnx')) {
        existing++;
        ctx.explain(n, 'skipped', 'already a fused ai.onnx::Attention (opset 23), runs on every target');
      }
    }
    for (const sm of graph.nodes.filter((n) => n.opType === 'Softmax' && (n.domain === '' || n.domain === 'ai.onnx'))) {
      const user = sm.outputs[0].uses.length === 1 ? sm.outputs[0].uses[0].node : null;
      const m = user && user.opType === 'MatMul' ? matchValue(ATTENTION, user.outputs[0]) : null;
      if (!m) {
        skipped++;
        ctx.explain(sm, 'skipped', 'not softmax(scale·QKᵀ [+ mask]) V with a single reader at each step (pattern did not match)');
        continue;
      }
      const site = analyze(m, sa, ctx);
      if (typeof site === 'string') {
        skipped++;
        ctx.explain(sm, 'skipped', site);
        continue;
      }
      const kept = survivors(graph, site.output, [m.nodes.qk, sm, m.nodes.pv]);
      if (kept.length) {
        skipped++;
        ctx.explain(sm, 'skipped', `the unfused attention would still run for other readers (${kept.map((n) => n.opType).join(', ')} kept alive)`);
        continue;
      }
      const why = emit(graph, ctx, site, sm.name);
      if (why) {
        skipped++;
        ctx.explain(sm, 'skipped', why);
        continue;
      }
      fused++;
      ctx.explain(sm, 'applied', `${site.form} heads=${site.heads} head_dim=${site.headDim} scale=${site.scale.toPrecision(6)}${site.mask ? ' with mask' : ''}`);
    }
    if (fused) graph.topoSort();
    return { changed: fused > 0, counts: { attention: fused, notFused: skipped, alreadyFused: existing } };
  },
};

function analyze(m: Match, sa: ShapeAnalysis, ctx: PassContext): Site | string {
  const sm = m.nodes.softmax;
  const rank = sa.get(sm.inputs[0]).shape?.length;
  if (rank === undefined) return 'rank of the scores unknown';
  const opset = ctx.model.opset('') ?? 17;
  let axis = sm.int('axis', opset >= 13 ? -1 : 1);
  if (axis < 0) axis += rank;
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
  if (sa.get(q.source).dtype !== DataType.FLOAT && ctx.target.name === 'cpu') return 'the cpu MultiHeadAttention kernel is float32 only';
  if (mask && !maskFits(sa.get(mask).shape, form)) return 'mask shape does not broadcast as [batch, heads, q_len, kv_len]';

  // The result must be merged back to [batch, q_len, heads·dim] by reshapes/transposes read only once.
  let cur = m.values.pv;
  let layout: Layout = form === '4d'
    ? [[{ id: 'B', size: size(q.layout, 'B') }], [{ id: 'C.0', size: Sym.const(heads) }], [{ id: 'S', size: size(q.layout, 'S') }], [{ id: 'C.1', size: size(v.layout, 'C.1') }]]
    : [[{ id: 'B', size: size(q.layout, 'B') }, { id: 'C.0', size: Sym.const(heads) }], [{ id: 'S', size: size(q.layout, 'S') }], [{ id: 'C.1', size: size(v.layout, 'C.1') }]];
  for (let i = 0; i < 6 && layoutKey(layout) !== MERGED; i++) {
    if (cur.isGraphOutput) break;
    const relayout = cur.uses.filter((u) => u.index === 0 && (u.node.opType === 'Reshape' || u.node.opType === 'Transpose') && (u.node.domain === '' || u.node.domain === 'ai.onnx'));
    if (relayout.length !== 1) break;
    const next = relayout[0].node;
    const r = replay(layout, [{ node: next, scale: 1 }], sa);
    if (!r) return 'the output reshape cannot be followed';
    layout = r.layout;
    cur = next.outputs[0];
  }
  if (layoutKey(layout) !== MERGED) return `the output is not merged back to [batch, seq, heads·dim] (${layoutKey(layout)})`;
  return { q: q.source, k: k.source, v: v.source, heads, headDim, scale: scale * q.scale * k.scale * v.scale, mask, form, output: cur };
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

function emit(g: Graph, ctx: PassContext, s: Site, site: string): string | null {
  const useOnnx = (ctx.model.opset('') ?? 0) >= 23 && ctx.target.runs('', 'Attention');
  const op = useOnnx ? ['', 'Attention'] : ['com.microsoft', 'MultiHeadAttention'];
  const lacks = ctx.target.lacks(op[0], op[1]);
  if (lacks) return lacks;
  let mask = s.mask;
  if (mask) {
    const r = mask.shape?.length ?? analyzeRank(mask);
    if (r < 4) {
      const axes = g.addInitializer(`${site}_mask_axes`, Tensor.fromValues('', DataType.INT64, [4 - r], Array.from({ length: 4 - r }, (_, i) => BigInt(i))));
      mask = g.addNode({ op: 'Unsqueeze', inputs: [mask, axes], outputs: [`${site}_mask4d`] }).outputs[0];
    }
  }
  const scaleAttr = Math.fround(s.scale) === Math.fround(1 / Math.sqrt(s.headDim)) ? [] : [{ name: 'scale', type: AttrType.FLOAT as const, value: s.scale }];
  const node = useOnnx
    ? g.addNode({ op: 'Attention', inputs: mask ? [s.q, s.k, s.v, mask] : [s.q, s.k, s.v], outputs: [`${site}_attention`], name: `${site}_Attention`,
        attrs: [{ name: 'q_num_heads', type: AttrType.INT, value: s.heads }, { name: 'kv_num_heads', type: AttrType.INT, value: s.heads }, ...scaleAttr] })
    : g.addNode({ op: 'MultiHeadAttention', domain: 'com.microsoft', inputs: mask ? [s.q, s.k, s.v, null, null, mask] : [s.q, s.k, s.v], outputs: [`${site}_attention`], name: `${site}_MultiHeadAttention`,
        attrs: [{ name: 'num_heads', type: AttrType.INT, value: s.heads }, ...scaleAttr] });
  if (!useOnnx) ctx.model.useDomain('com.microsoft');
  node.outputs[0].type = s.output.type;
  g.replaceAllUsesWith(s.output, node.outputs[0]);
  return null;
}

function analyzeRank(v: Value): number {
  return v.constant?.dims.length ?? 4;
}
