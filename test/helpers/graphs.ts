import { ModelBuilder, float } from '../../src/ir/builder';
import { Value } from '../../src/ir/graph';
import { randomFloats } from './ort';

/** GroupNorm as torch exports it on x [2, 8, 4, 4], 4 groups, with an optional per-channel affine. */
export function exportedGroupNorm(o: { affine?: boolean; back?: 'shape' | 'flat'; channelsConst?: number } = {}): { b: ModelBuilder; x: Value; y: Value } {
  const b = new ModelBuilder(17);
  const x = b.input('x', [2, 8, 4, 4]);
  const r = b.op('Reshape', [x, b.ints('g', [0, 4, -1])]);
  const inorm = b.op('InstanceNormalization', [r, b.const('s', [4], [1.5, 0.5, 1, 2]), b.const('bias', [4], [0.1, -0.2, 0, 0.3])], { epsilon: float(1e-5) });
  let y: Value = b.op('Reshape', [inorm, o.back === 'flat' ? b.ints('back', [0, 8, 16]) : b.op('Shape', [x])]);
  if (o.affine) {
    const c = o.channelsConst ?? 8;
    y = b.op('Mul', [y, b.const('gamma', [c, 1, 1], Array.from(randomFloats(c, 3)))]);
    y = b.op('Add', [y, b.const('beta', [c, 1, 1], Array.from(randomFloats(c, 4)))]);
  }
  return { b, x, y };
}

/** y = x · ½ · (1 + erf(x/√2)) in one of the three association orders exporters write. */
export function erfGeluGraph(b: ModelBuilder, x: Value, form: 0 | 1 | 2, tag = ''): Value {
  const erfTerm = b.op('Add', [b.op('Erf', [b.op('Div', [x, b.scalar(`sqrt2${tag}`, Math.SQRT2)])]), b.scalar(`one${tag}`, 1)]);
  const half = b.scalar(`half${tag}`, 0.5);
  if (form === 0) return b.op('Mul', [b.op('Mul', [x, erfTerm]), half]);
  if (form === 1) return b.op('Mul', [x, b.op('Mul', [half, erfTerm])]);
  return b.op('Mul', [b.op('Mul', [x, half]), erfTerm]);
}

/**
 * One com.microsoft BiasSplitGelu or BiasAdd on x [...lead, c], saved with its lowering (the op's
 * definition in CPU ops) beside it, and inputs as plain arrays: for checking a kernel at a size.
 */
export function singleBiasOp(op: 'BiasSplitGelu' | 'BiasAdd', c: number, dir: string, lead: [number, number] = [2, 3]): { file: string; lowered: string; feeds: Record<string, { dims: number[]; data: number[] }> } {
  const { saveModel } = require('../../src/onnx/write') as typeof import('../../src/onnx/write');
  const { lowerToCpu } = require('../../src/verify/lower') as typeof import('../../src/verify/lower');
  const path = require('path') as typeof import('path');
  const dims = [...lead, c];
  const b = new ModelBuilder(17, { 'com.microsoft': 1 });
  const x = b.input('x', dims);
  const bias = b.const('bias', [c], Float32Array.from({ length: c }, (_, i) => Math.cos(i)));
  b.output(b.op(op, op === 'BiasAdd' ? [x, bias, b.input('s', dims)] : [x, bias], {}, { domain: 'com.microsoft' }), null);
  const file = saveModel(b.model, path.join(dir, `${op}${c}.onnx`));
  const lowered = path.join(dir, `${op}${c}.lowered.onnx`);
  lowerToCpu(file, lowered);
  const n = dims.reduce((a, d) => a * d, 1);
  const feeds: Record<string, { dims: number[]; data: number[] }> = { x: { dims, data: Array.from({ length: n }, (_, i) => Math.sin(i * 0.1)) } };
  if (op === 'BiasAdd') feeds.s = { dims, data: Array.from({ length: n }, (_, i) => Math.cos(i * 0.3)) };
  return { file, lowered, feeds };
}

/**
 * A model-zoo style CNN (ResNet-50, DenseNet-121 as exported before IR 4): IR 3, opset 7, every weight an
 * initializer listed as a graph input too; Conv → BatchNormalization → Relu → pool → Gemm on a transposed
 * weight → Reshape by a constant shape. onnxruntime folds such inputs as constants.
 */
export function legacyCnn(): ModelBuilder {
  const { DataType } = require('../../src/ir/dtype') as typeof import('../../src/ir/dtype');
  const b = new ModelBuilder(7);
  b.model.irVersion = 3;
  const x = b.input('data', ['N', 3, 8, 8]);
  const asInput = (v: Value) => {
    v.type = { kind: 'tensor', elemType: v.initializer!.dtype, shape: [...v.initializer!.dims] };
    b.graph.inputs.push(v);
    return v;
  };
  const w = (name: string, dims: number[], seed: number, shift = 0) => asInput(b.const(name, dims, Array.from(randomFloats(dims.reduce((a, d) => a * d, 1), seed), (v) => v * 0.3 + shift)));
  let y = b.op('Conv', [x, w('conv_w', [16, 3, 3, 3], 1), w('conv_b', [16], 2)], { pads: [1, 1, 1, 1] });
  y = b.op('BatchNormalization', [y, w('bn_s', [16], 3), w('bn_b', [16], 4), w('bn_m', [16], 5), w('bn_v', [16], 6, 1)], { epsilon: float(1e-5) });
  y = b.op('Flatten', [b.op('GlobalAveragePool', [b.op('Relu', [y])])]);
  y = b.op('Gemm', [y, b.op('Transpose', [w('fc_w', [10, 16], 7)], { perm: [1, 0] }), w('fc_b', [10], 8)]);
  const shape = asInput(b.ints('shape', [-1, 10]));
  shape.type = { kind: 'tensor', elemType: DataType.INT64, shape: [2] };
  b.output(b.op('Reshape', [y, shape]), ['N', 10]);
  return b;
}
