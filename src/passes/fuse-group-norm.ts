import { analyzeShapes, ShapeAnalysis } from '../analysis/shapes';
import { DataType } from '../ir/dtype';
import { AttrType, Graph, Node, Value } from '../ir/graph';
import { Tensor } from '../ir/tensor';
import { Pass, PassContext } from '../rewrite/pass';
import { Match, matchValue, p } from '../rewrite/match';

/** GroupNorm as exporters write it: Reshape [N, G, -1] → InstanceNormalization → Reshape back. */
const CORE = p.op('Reshape', [
  p.op('InstanceNormalization', [p.op('Reshape', [p.any('x'), p.any('groupShape')], { capture: 'r1' }), p.any('instScale'), p.any('instBias')], { capture: 'inorm' }),
  p.any('backShape'),
], { capture: 'core', singleUse: false });

interface Site {
  m: Match;
  x: Value;
  groups: number;
  channels: number;
  epsilon: number;
  /** per-channel affine folded from the InstanceNorm's per-group scale/bias and a following Mul/Add */
  gamma: Float32Array;
  beta: Float32Array;
  affineNodes: Node[];
  /** the value the GroupNorm (plus affine) produces */
  out: Value;
  silu: { sigmoid: Node; mul: Node } | null;
}

/**
 * Reshape→InstanceNormalization→Reshape (+ channel affine, + SiLU) → com.microsoft GroupNorm on cuda
 * (NHWC only: transposes around it, which channels-last then sinks; SiLU folded as activation=1), or
 * SkipGroupNorm when the normalized tensor is a residual sum. Not on cpu: onnxruntime 1.30 has no CPU kernel for ai.onnx GroupNormalization (18 or 21)
 * and runs it as its ONNX function body — measured slower than the InstanceNormalization form, with Shape
 * ops added back. Not on webgpu: its GroupNormalization kernel is unverified.
 */
export const fuseGroupNorm: Pass = {
  name: 'fuse-group-norm',
  description: 'Reshape→InstanceNorm→Reshape (+affine, +SiLU) → com.microsoft GroupNorm, NHWC (cuda)',
  targets: ['cuda'],
  run(graph, ctx) {
    const sa = analyzeShapes(ctx.model, graph);
    let fused = 0;
    let silu = 0;
    let skip = 0;
    for (const n of graph.nodes.filter((x) => x.opType === 'InstanceNormalization')) {
      const back = n.outputs[0].uses.length === 1 ? n.outputs[0].uses[0].node : null;
      const m = back && back.opType === 'Reshape' ? matchValue(CORE, back.outputs[0]) : null;
      if (!m) {
        ctx.explain(n, 'skipped', 'not Reshape → InstanceNormalization → Reshape');
        continue;
      }
      const site = analyze(m, sa);
      if (typeof site === 'string') {
        ctx.explain(n, 'skipped', site);
        continue;
      }
      const emitted = emitCuda(graph, ctx, site, sa);
      if ('why' in emitted) {
        ctx.explain(n, 'skipped', emitted.why);
        continue;
      }
      fused++;
      if (site.silu) silu++;
      if (emitted.op === 'SkipGroupNorm') skip++;
      ctx.explain(n, 'applied', `${emitted.op} groups=${site.groups} channels=${site.channels}${site.silu ? ' + SiLU' : ''}`);
    }
    if (fused) graph.topoSort();
    return { changed: fused > 0, counts: { groupNorm: fused, withSilu: silu, skipGroupNorm: skip } };
  },
};

function constValues(v: Value | null): Float32Array | null {
  const t = v?.constant;
  if (!t || t.dtype !== DataType.FLOAT || t.data.kind === 'strings') return null;
  return Float32Array.from(t.values() as Float32Array);
}

function analyze(m: Match, sa: ShapeAnalysis): Site | string {
  const x = m.values.x;
  const xs = sa.get(x).shape;
  const gs = sa.get(m.values.r1).shape;
  if (!xs || xs.length !== 4 || !gs || gs.length !== 3) return 'input is not [N, C, H, W] grouped as [N, G, -1]';
  const channels = xs[1].value;
  const groups = gs[1].value;
  if (channels === null || groups === null || channels % groups !== 0 || !gs[0].equals(xs[0])) return 'channels are not split evenly into groups';
  const outShape = sa.get(m.values.core).shape;
  if (!outShape || outShape.length !== 4 || !outShape.every((d, i) => d.equals(xs[i]))) return 'the result is not reshaped back to the input shape';
  if (sa.get(x).dtype !== DataType.FLOAT) return 'float32 only';
  const s = constValues(m.values.instScale);
  const b = constValues(m.values.instBias);
  if (!s || !b || s.length !== groups || b.length !== groups) return 'InstanceNormalization scale/bias are not constant per group';
  const per = channels / groups;
  const gamma = new Float32Array(channels);
  const beta = new Float32Array(channels);
  for (let c = 0; c < channels; c++) {
    gamma[c] = s[Math.floor(c / per)];
    beta[c] = b[Math.floor(c / per)];
  }
  // A following per-channel Mul then Add ([C,1,1] constants) is the GroupNorm's own affine.
  let out = m.values.core;
  const affineNodes: Node[] = [];
  const channelConst = (v: Value | null) => {
    const t = v?.constant;
    if (!t || t.dtype !== DataType.FLOAT || t.dims.length < 3) return null;
    const d = t.dims;
    const fits = d.slice(0, -3).every((k) => k === 1) && d[d.length - 3] === channels && d[d.length - 2] === 1 && d[d.length - 1] === 1;
    return fits ? (t.values() as Float32Array) : null;
  };
  for (const [op, apply] of [['Mul', (k: Float32Array) => { for (let c = 0; c < channels; c++) { gamma[c] *= k[c]; beta[c] *= k[c]; } }], ['Add', (k: Float32Array) => { for (let c = 0; c < channels; c++) beta[c] += k[c]; }]] as const) {
    if (out.uses.length !== 1 || out.isGraphOutput) break;
    const u = out.uses[0].node;
    if (u.opType !== op) continue;
    const k = channelConst(u.inputs[0] === out ? u.inputs[1] : u.inputs[0]);
    if (!k) continue;
    apply(k);
    affineNodes.push(u);
    out = u.outputs[0];
  }
  const uses = out.uses.map((u) => u.node);
  let silu: Site['silu'] = null;
  if (!out.isGraphOutput && uses.length === 2) {
    const sig = uses.find((n) => n.opType === 'Sigmoid');
    const mul = uses.find((n) => n.opType === 'Mul' && n.inputs.includes(out) && sig && n.inputs.includes(sig.outputs[0]));
    if (sig && mul && sig.outputs[0].uses.length === 1) silu = { sigmoid: sig, mul };
  }
  return { m, x, groups, channels, epsilon: m.nodes.inorm.float('epsilon', 1e-5), gamma, beta, affineNodes, out, silu };
}

function constant(g: Graph, name: string, values: Float32Array): Value {
  return g.addInitializer(name, Tensor.fromValues(name, DataType.FLOAT, [values.length], values));
}

const transpose = (g: Graph, x: Value, perm: number[], name: string) =>
  g.addNode({ op: 'Transpose', inputs: [x], outputs: [name], attrs: [{ name: 'perm', type: AttrType.INTS, value: perm }] }).outputs[0];

/**
 * A GroupNorm of a residual sum a + b becomes SkipGroupNorm (the sum computed in the same kernel, and
 * handed on through its second output) when both operands have the input's full shape.
 */
function residualOperands(s: Site, sa: ShapeAnalysis): [Value, Value] | null {
  const add = s.x.producer;
  if (!add || add.opType !== 'Add' || (add.domain !== '' && add.domain !== 'ai.onnx')) return null;
  const [a, b] = add.inputs;
  const sh = (v: Value | null) => (v && !v.constant ? sa.get(v).shape : null);
  const [sa4, sb4] = [sh(a), sh(b)];
  return sa4 && sb4 && sa4.length === 4 && sb4.length === 4 && sa4.every((d, i) => d.equals(sb4[i])) ? [a!, b!] : null;
}

function emitCuda(g: Graph, ctx: PassContext, s: Site, sa: ShapeAnalysis): { why: string } | { op: 'GroupNorm' | 'SkipGroupNorm' } {
  const lacks = ctx.target.lacks('com.microsoft', 'GroupNorm');
  if (lacks) return { why: lacks };
  const name = s.m.nodes.inorm.name;
  const attrs = [{ name: 'groups', type: AttrType.INT as const, value: s.groups }, { name: 'epsilon', type: AttrType.FLOAT as const, value: s.epsilon }, { name: 'activation', type: AttrType.INT as const, value: s.silu ? 1 : 0 }, { name: 'channels_last', type: AttrType.INT as const, value: 1 }];
  const gamma = constant(g, `${name}_gamma`, s.gamma);
  const beta = constant(g, `${name}_beta`, s.beta);
  const residual = ctx.target.runs('com.microsoft', 'SkipGroupNorm') ? residualOperands(s, sa) : null;
  let gn: Value;
  if (residual) {
    // readers of the sum other than this GroupNorm (its reshapes and Shape) get the kernel's sum output
    const mine = new Set(s.m.covered);
    const others = s.x.uses.filter((u) => !mine.has(u.node) && !(u.node.opType === 'Shape' && u.node.outputs[0].uses.every((w) => mine.has(w.node))));
    const node = g.addNode({ op: 'SkipGroupNorm', domain: 'com.microsoft', inputs: [transpose(g, residual[0], [0, 2, 3, 1], `${name}_a_nhwc`), gamma, beta, transpose(g, residual[1], [0, 2, 3, 1], `${name}_b_nhwc`)], outputs: [`${name}_groupnorm`, `${name}_sum`], name: `${name}_SkipGroupNorm`, attrs });
    gn = node.outputs[0];
    if (others.length || s.x.isGraphOutput) {
      const sum = transpose(g, node.outputs[1], [0, 3, 1, 2], `${name}_sum_nchw`);
      sum.type = s.x.type;
      for (const u of others) g.setInput(u.node, u.index, sum);
      if (s.x.isGraphOutput) g.replaceAllUsesWith(s.x, sum);
    } else {
      node.outputs[1].omitted = true;
    }
  } else {
    gn = g.addNode({ op: 'GroupNorm', domain: 'com.microsoft', inputs: [transpose(g, s.x, [0, 2, 3, 1], `${name}_nhwc`), gamma, beta], outputs: [`${name}_groupnorm`], name: `${name}_GroupNorm`, attrs }).outputs[0];
  }
  const back = transpose(g, gn, [0, 3, 1, 2], `${name}_nchw`);
  const replaced = s.silu ? s.silu.mul.outputs[0] : s.out;
  back.type = replaced.type;
  ctx.model.useDomain('com.microsoft');
  g.replaceAllUsesWith(replaced, back);
  return { op: residual ? 'SkipGroupNorm' : 'GroupNorm' };
}
