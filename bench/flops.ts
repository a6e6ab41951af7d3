import { analyzeShapes } from '../src/analysis/shapes';
import { readModel } from '../src/onnx/read';

/**
 * GFLOP of the compute-bound ops (Conv, MatMul, Gemm, fused attention) at static input shapes, counted
 * from the graph: 2 FLOP per multiply-add. The rest of a UNet is memory-bound and small beside these.
 */
export function countGflop(file: string, shapes: Record<string, number[]>): number {
  const model = readModel(file);
  for (const v of model.graph.inputs) {
    const s = shapes[v.name];
    if (s && v.type?.kind === 'tensor') v.type = { ...v.type, shape: s };
  }
  const sa = analyzeShapes(model);
  const num = (v: Parameters<typeof sa.get>[0]) => {
    const s = sa.get(v).shape;
    return s && s.every((d) => d.value !== null) ? s.map((d) => d.value!) : null;
  };
  const prod = (l: number[]) => l.reduce((a, b) => a * b, 1);
  let flop = 0;
  for (const n of model.graph.nodes) {
    const out = num(n.outputs[0]);
    if (!out) continue;
    switch (n.opType) {
      case 'Conv': {
        const w = num(n.inputs[1]);
        if (w) flop += 2 * prod(out) * prod(w.slice(1)); // each output: C/group · kh · kw MACs
        break;
      }
      case 'MatMul':
      case 'Gemm': {
        const a = num(n.inputs[0]);
        if (a) flop += 2 * prod(out) * (n.opType === 'Gemm' && n.int('transA', 0) ? a[0] : a[a.length - 1]);
        break;
      }
      case 'MultiHeadAttention':
      case 'Attention': {
        const q = num(n.inputs[0]);
        const k = num(n.inputs[1]);
        if (q && k) flop += 2 * 2 * q[0] * q[1] * k[1] * q[2]; // QKᵀ and PV over all heads
        break;
      }
    }
  }
  return flop / 1e9;
}
