import { DataType } from '../ir/dtype';
import { Sym } from '../ir/symbolic';
import { Emitter } from './emit';
import { F32_F16, LoweringError, OpRecord, TypeShape } from './record';

export const NHWC_CONV: OpRecord = {
  op: 'com.microsoft::NhwcConv',
  kernels: { cuda: { dtypes: F32_F16, layouts: ['NHWC'] } },
  note: 'webgpu: session creation fails',
  // [N, H, W, C] in, OHWI weights: spatial dims follow Conv's arithmetic, which the analysis owns; the
  // element type and rank are known here, and the channel count from the weights
  infer(n, ins): TypeShape[] {
    const x = ins[0]?.shape;
    const w = n.inputs[1]?.constant;
    const kernel = n.ints('kernel_shape') ?? (w ? w.dims.slice(1, -1) : null);
    const stride1 = (n.ints('strides') ?? []).every((s) => s === 1) && (n.ints('dilations') ?? []).every((d) => d === 1);
    const pads = n.ints('pads');
    const same = !!kernel && stride1 && !!pads && kernel.every((k, i) => pads[i] + pads[i + kernel.length] === k - 1);
    if (!x || x.length !== 4 || !w || !same) return [{ dtype: ins[0]?.dtype ?? null, shape: null }];
    return [{ dtype: ins[0].dtype, shape: [x[0], x[1], x[2], Sym.const(w.dims[0])] }];
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
