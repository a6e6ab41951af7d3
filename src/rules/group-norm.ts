import { DataType } from '../ir/dtype';
import { AttrType, Value } from '../ir/graph';
import { Match, p } from '../rewrite/match';
import { defineRule, Rewriter, RuleContext } from '../rewrite/rule';
import { sameDims, TO_NCHW, TO_NHWC } from '../ir/dims';
import { perChannelCount } from '../ir/query';

/** GroupNorm as exporters write it: Reshape [N, G, -1] → InstanceNormalization → Reshape back. */
const CORE = p.op('Reshape', [
  p.op('InstanceNormalization', [p.op('Reshape', [p.any('x'), p.any('groupShape')], { capture: 'r1' }), p.any('instScale'), p.any('instBias')], { capture: 'inorm' }),
  p.any('backShape'),
], { capture: 'core' });

/** A per-channel [C, 1, 1] / [1, C, 1, 1] float constant (the channel count is checked against the input's). */
const channelConst = (capture: string) => p.any(capture, (v) => perChannelCount(v) !== null);

/** The core, then the GroupNorm's own affine: a per-channel Mul, then a per-channel Add, each optional. */
const GROUP_NORM = p.alt(
  p.op('Add', [p.op('Mul', [CORE, channelConst('gammaMul')], { commutative: true }), channelConst('betaAdd')], { commutative: true, capture: 'root' }),
  p.op('Mul', [CORE, channelConst('gammaMul')], { commutative: true, capture: 'root' }),
  p.op('Add', [CORE, channelConst('betaAdd')], { commutative: true, capture: 'root' }),
  CORE,
);

interface Site {
  x: Value;
  groups: number;
  channels: number;
  epsilon: number;
  gamma: Float32Array;
  beta: Float32Array;
}

const floats = (v: Value | undefined) => (v?.constant && v.constant.dtype === DataType.FLOAT ? Float32Array.from(v.constant.values() as Float32Array) : null);

export const transpose = (rw: Rewriter, x: Value, perm: number[], name: string): Value =>
  rw.add({ op: 'Transpose', inputs: [x], outputs: [name], attrs: [{ name: 'perm', type: AttrType.INTS, value: perm }] }).outputs[0];

/**
 * Reshape→InstanceNormalization→Reshape (+ channel affine) → com.microsoft GroupNorm, which computes
 * channels-last only: Transposes go around it, and channels-last sinks them. The InstanceNorm's per-group
 * scale/bias and the following per-channel Mul/Add fold into the GroupNorm's gamma and beta.
 */
export const groupNorm = defineRule<Site>({
  name: 'group-norm',
  description: 'Reshape→InstanceNorm→Reshape (+affine) → com.microsoft GroupNorm, NHWC',
  priority: 0,
  pattern: GROUP_NORM,
  site: 'inorm',
  counter: 'groupNorm',
  label: 'group norm',
  emits: () => ['com.microsoft::GroupNorm'],
  check(m, ctx) {
    return analyze(m, ctx);
  },
  rewrite(m, s, rw) {
    const name = m.nodes.inorm.name;
    const gamma = rw.floats(`${name}_gamma`, [s.channels], s.gamma);
    const beta = rw.floats(`${name}_beta`, [s.channels], s.beta);
    const gn = rw.add({ op: 'GroupNorm', domain: 'com.microsoft', inputs: [transpose(rw, s.x, TO_NHWC, `${name}_nhwc`), gamma, beta], outputs: [`${name}_groupnorm`], name: `${name}_GroupNorm`,
      attrs: [{ name: 'groups', type: AttrType.INT, value: s.groups }, { name: 'epsilon', type: AttrType.FLOAT, value: s.epsilon }, { name: 'activation', type: AttrType.INT, value: 0 }, { name: 'channels_last', type: AttrType.INT, value: 1 }] });
    rw.replace(m.values.root ?? m.values.core, transpose(rw, gn.outputs[0], TO_NCHW, `${name}_nchw`));
    return `GroupNorm groups=${s.groups} channels=${s.channels}`;
  },
});

function analyze(m: Match, ctx: RuleContext): Site | string {
  const info = (v: Value) => ctx.shapes.get(v);
  const x = m.values.x;
  const xs = info(x).shape;
  const gs = info(m.values.r1).shape;
  if (!xs || xs.length !== 4 || !gs || gs.length !== 3) return 'input is not [N, C, H, W] grouped as [N, G, -1]';
  const channels = xs[1].value;
  const groups = gs[1].value;
  if (channels === null || groups === null || channels % groups !== 0 || !gs[0].equals(xs[0])) return 'channels are not split evenly into groups';
  const outShape = info(m.values.core).shape;
  if (!sameDims(outShape, xs)) return 'the result is not reshaped back to the input shape';
  const why = ctx.target.accepts('com.microsoft', 'GroupNorm', { dtype: info(x).dtype, layout: 'NHWC' });
  if (why) return why;
  const s = floats(m.values.instScale);
  const b = floats(m.values.instBias);
  if (!s || !b || s.length !== groups || b.length !== groups) return 'InstanceNormalization scale/bias are not constant per group';
  const per = channels / groups;
  const gamma = new Float32Array(channels);
  const beta = new Float32Array(channels);
  for (let c = 0; c < channels; c++) {
    gamma[c] = s[Math.floor(c / per)];
    beta[c] = b[Math.floor(c / per)];
  }
  const mul = floats(m.values.gammaMul);
  const add = floats(m.values.betaAdd);
  if ((m.values.gammaMul && mul?.length !== channels) || (m.values.betaAdd && add?.length !== channels)) return 'the affine after the GroupNorm is not per channel';
  for (let c = 0; c < channels; c++) {
    if (mul) {
      gamma[c] *= mul[c];
      beta[c] *= mul[c];
    }
    if (add) beta[c] += add[c];
  }
  return { x, groups, channels, epsilon: m.nodes.inorm.float('epsilon', 1e-5), gamma, beta };
}
