import { DataType } from '../ir/dtype';
import { Node } from '../ir/graph';
import { Sym } from '../ir/symbolic';
import { Emitter } from './emit';
import { F32_F16, LoweringError, OpRecord, TypeShape } from './record';

/**
 * Output spatial dims of a convolution from its input's spatial dims and kernel size (-1: unknown, which
 * gives null): the one copy of Conv's arithmetic, for Conv (NCHW) and NhwcConv (NHWC) alike.
 */
export function convSpatialDims(n: Node, dims: Sym[], kernel: number[]): (Sym | null)[] {
  const spatial = dims.length;
  const strides = n.ints('strides') ?? Array(spatial).fill(1);
  const dil = n.ints('dilations') ?? Array(spatial).fill(1);
  const pads = n.ints('pads') ?? Array(spatial * 2).fill(0);
  const autoPad = n.string('auto_pad') ?? 'NOTSET';
  return dims.map((d, i) => {
    if (autoPad === 'SAME_UPPER' || autoPad === 'SAME_LOWER') return d.add(Sym.const(strides[i] - 1)).floorDiv(Sym.const(strides[i]));
    if (!(kernel[i] >= 0)) return null;
    const num = d.add(Sym.const((autoPad === 'VALID' ? 0 : pads[i] + pads[i + spatial]) - dil[i] * (kernel[i] - 1) - 1));
    return num.floorDiv(Sym.const(strides[i])).add(Sym.const(1));
  });
}

export const NHWC_CONV: OpRecord = {
  op: 'com.microsoft::NhwcConv',
  kernels: { cuda: { dtypes: F32_F16, layouts: ['NHWC'] } },
  note: 'webgpu: session creation fails',
  // [N, H, W, C] in, OHWI weights: spatial dims follow Conv's arithmetic, which the analysis owns; the
  // element type and rank are known here, and the channel count from the weights
  // [N, H, W, C] in, OHWI weights [M, kH, kW, C]: [N, H', W', M] out
  infer(n, ins): TypeShape[] {
    const x = ins[0]?.shape;
    const w = ins[1]?.shape;
    if (!x || x.length < 3 || !w || w.length !== x.length) return [{ dtype: ins[0]?.dtype ?? null, shape: null }];
    const kernel = n.ints('kernel_shape') ?? w.slice(1, -1).map((d) => d.value ?? -1);
    const spatial = convSpatialDims(n, x.slice(1, -1), kernel);
    if (spatial.some((d) => d === null)) return [{ dtype: ins[0].dtype, shape: null }];
    return [{ dtype: ins[0].dtype, shape: [x[0], ...(spatial as Sym[]), w[0]] }];
  },
  // NCHW Conv between two transposes, with the OHWI weights re-laid out as OIHW
  lower(g, n) {
    const w = n.inputs[1]?.constant;
    if (!w || w.dtype !== DataType.FLOAT) throw new LoweringError(`cannot lower NhwcConv '${n.name}': its weights are not a float32 constant`);
    const [m, kh, kw, c] = w.dims;
    const a = w.values() as Float32Array;
    const oihw = new Float32Array(a.length);
    for (let o = 0; o < m; o++) for (let y = 0; y < kh; y++) for (let x = 0; x < kw; x++) for (let i = 0; i < c; i++) oihw[((o * c + i) * kh + y) * kw + x] = a[((o * kh + y) * kw + x) * c + i];
    const e = new Emitter(g, n);
    const wv = e.constant(`${w.name}_oihw`, DataType.FLOAT, [m, c, kh, kw], oihw);
    const conv = e.one('Conv', [e.transpose(n.inputs[0]!, [0, 3, 1, 2]), wv, n.inputs[2] ?? null], [...n.attrs.values()]);
    return [e.transpose(conv, [0, 2, 3, 1])];
  },
};

export const CONV: OpRecord = { op: 'ai.onnx::Conv', infer: 'onnx', lower: 'cpu' };
