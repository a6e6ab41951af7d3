import { DataType } from '../ir/dtype';
import { AttrType, Value } from '../ir/graph';
import { Tensor } from '../ir/tensor';
import { p } from '../rewrite/match';
import { defineRule } from '../rewrite/rule';
import { sameDims } from '../ir/dims';
import { perChannelCount } from '../ir/query';

/** A per-channel constant of an NCHW tensor: [C,1,1] or [1,C,1,1]. */
export const perChannel = (v: Value) => perChannelCount(v) !== null;

/** x · γ + β with γ, β per channel, in either operand order. */
const AFFINE = p.op('Add', [
  p.op('Mul', [p.any('x'), p.any('gamma', perChannel)], { commutative: true, capture: 'mul' }),
  p.any('beta', perChannel),
], { commutative: true, capture: 'root' });

/**
 * The per-channel affine left behind a GroupNorm on providers without a GroupNorm kernel (Reshape →
 * InstanceNormalization → Reshape → Mul γ → Add β): one BatchNormalization with mean 0, variance 1 and
 * epsilon 0 computes exactly x·γ + β in one kernel instead of two. Its rule set runs for webgpu only
 * (src/passes/registry.ts), where every kernel is a GPU dispatch.
 */
export const channelAffine = defineRule<{ channels: number }>({
  name: 'channel-affine',
  description: 'x·γ + β per channel (NCHW) → one BatchNormalization (webgpu)',
  priority: 0,
  pattern: AFFINE,
  site: 'mul',
  counter: 'channelAffine',
  label: 'affine → BatchNorm',
  emits: () => ['ai.onnx::BatchNormalization'],
  check(m, ctx) {
    const xs = ctx.shapes.get(m.values.x);
    if (xs.dtype !== DataType.FLOAT) return 'not float32';
    if (!xs.shape || xs.shape.length !== 4) return 'not a 4-D (NCHW) tensor';
    const c = xs.shape[1].value;
    if (c === null) return 'channel count unknown';
    if (m.values.gamma.constant!.size !== c || m.values.beta.constant!.size !== c) return 'γ or β does not have one value per channel';
    const out = ctx.shapes.get(m.values.root).shape;
    if (!sameDims(out, xs.shape)) return 'the affine broadcasts the tensor to another shape';
    return { channels: c };
  },
  rewrite(m, s, rw) {
    const out: Value = m.values.root;
    const name = m.nodes.mul.name;
    const vec = (t: Tensor, suffix: string) => rw.floats(`${name}_${suffix}`, [s.channels], t.values() as Float32Array);
    const fill = (v: number, suffix: string) => rw.floats(`${name}_${suffix}`, [s.channels], new Float32Array(s.channels).fill(v));
    const bn = rw.add({
      op: 'BatchNormalization',
      inputs: [m.values.x, vec(m.values.gamma.constant!, 'gamma'), vec(m.values.beta.constant!, 'beta'), fill(0, 'mean'), fill(1, 'var')],
      outputs: [`${out.name}_affine`],
      attrs: [{ name: 'epsilon', type: AttrType.FLOAT, value: 0 }],
      name: `${name}_ChannelAffine`,
    });
    rw.replace(out, bn.outputs[0]);
    return `BatchNormalization (${s.channels} channels)`;
  },
});
