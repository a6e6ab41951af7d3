import { DataType } from '../ir/dtype';
import { derivedTensor, matrixRows } from '../ir/tensor';
import { Value } from '../ir/graph';
import { p } from '../rewrite/match';
import { defineRule } from '../rewrite/rule';
import { perChannel } from './channel-affine';

/** Weights read at once while the bias is summed (bytes). */
const PIECE = 2 << 20;

const weight4d = (v: Value) => !!v.constant && v.constant.dtype === DataType.FLOAT && v.constant.dims.length === 4;

/** Conv(x·γ + β, W) with γ, β per input channel. */
const AFFINE_CONV = p.op('Conv', [
  p.op('Add', [p.op('Mul', [p.any('x'), p.any('gamma', perChannel)], { commutative: true, capture: 'mul' }), p.any('beta', perChannel)], { commutative: true }),
  p.any('w', weight4d),
], { capture: 'conv' });

/**
 * A per-channel affine read only by an unpadded, ungrouped Conv folds into the Conv's weights and bias:
 * W'[o,i] = W[o,i]·γ[i], b'[o] = b[o] + Σ W[o,i,·]·β[i]. (Padding would see zeros where the affine made
 * β, so padded Convs keep it.) A GroupNorm's affine before an attention block's proj_in is this case;
 * no kernel is left for it at all. In the webgpu rule set with channel-affine, tried first.
 */
export const affineIntoConv = defineRule<{ cin: number }>({
  name: 'affine-into-conv',
  description: 'Conv(x·γ + β) per input channel, unpadded → Conv with γ, β folded into its weights and bias',
  priority: 1,
  pattern: AFFINE_CONV,
  site: 'mul',
  counter: 'affineIntoConv',
  label: 'affine into Conv',
  emits: () => ['ai.onnx::Conv'],
  check(m, ctx) {
    const conv = m.nodes.conv;
    if (conv.int('group', 1) !== 1) return 'a grouped Conv';
    const autoPad = conv.string('auto_pad');
    if (autoPad && !['NOTSET', 'VALID'].includes(autoPad)) return `the Conv pads (auto_pad ${autoPad})`;
    if ((conv.ints('pads') ?? []).some((x) => x !== 0)) return 'the Conv pads: the border would see zeros, not β';
    const w = m.values.w.constant!;
    const cin = w.dims[1];
    if (m.values.gamma.constant!.size !== cin || m.values.beta.constant!.size !== cin) return 'γ or β does not have one value per input channel';
    const b = conv.inputs[2];
    if (b && !(b.constant && b.constant.dtype === DataType.FLOAT)) return 'the Conv bias is not a constant';
    const xs = ctx.shapes.get(m.values.x);
    if (xs.dtype !== DataType.FLOAT || xs.shape?.length !== 4) return 'not a float32 NCHW tensor';
    const c = xs.shape[1].value;
    if (c !== cin) return `x has ${c === null ? 'an unknown number of' : c} channel${c === 1 ? '' : 's'} where the Conv takes ${cin} (γ, β broadcast it)`;
    return { cin };
  },
  rewrite(m, s, rw) {
    const conv = m.nodes.conv;
    const w = m.values.w.constant!;
    const [cout, cin, kh, kw] = w.dims;
    const k = kh * kw;
    const gamma = m.values.gamma.constant!.values() as Float32Array;
    const beta = m.values.beta.constant!.values() as Float32Array;
    const bias = conv.inputs[2]?.constant ? Float32Array.from(conv.inputs[2].constant.values() as Float32Array) : new Float32Array(cout);
    // the bias needs every weight once, read here a block of output channels at a time; the scaled weights
    // are computed again when written (a lazy tensor), so no folded kernel is held (49 MB on SD1.5)
    const rowBytes = cin * k * 4;
    const step = Math.max(1, Math.floor(PIECE / rowBytes));
    const rows = matrixRows(w, cin * k);
    for (let o0 = 0; o0 < cout; o0 += step) {
      const o1 = Math.min(cout, o0 + step);
      const a = rows(o0, o1);
      for (let o = o0; o < o1; o++) {
        let shift = 0;
        for (let i = 0, at = (o - o0) * cin * k; i < cin; i++) for (let j = 0; j < k; j++, at++) shift += a[at] * beta[i];
        bias[o] += shift;
      }
    }
    const scaled = (o0: number, o1: number): Uint8Array => {
      const a = rows(o0, o1);
      const out = new Float32Array(a.length);
      for (let at = 0, o = o0; o < o1; o++) for (let i = 0; i < cin; i++) for (let j = 0; j < k; j++, at++) out[at] = a[at] * gamma[i];
      return new Uint8Array(out.buffer);
    };
    const name = conv.name;
    const wv = rw.constant(`${name}_affine_w`, derivedTensor(`${name}_affine_w`, DataType.FLOAT, [...w.dims], cout, rowBytes, scaled, [w]));
    const bv = rw.floats(`${name}_affine_b`, [cout], bias);
    const node = rw.add({ op: 'Conv', inputs: [m.values.x, wv, bv], outputs: [`${m.values.conv.name}_affine`], attrs: [...conv.attrs.values()], name: `${name}_AffineFolded` });
    rw.replace(m.values.conv, node.outputs[0]);
    return `γ, β folded into a ${kh}×${kw} Conv (${s.cin} input channels)`;
  },
});
