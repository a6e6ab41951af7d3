import { BATCH_NORMALIZATION, GROUP_NORM, LAYER_NORMALIZATION, ONNX_GROUP_NORMALIZATION, SKIP_GROUP_NORM, SKIP_LAYER_NORMALIZATION } from './norms';
import { MULTI_HEAD_ATTENTION, ONNX_ATTENTION, PACKED_ATTENTION } from './attention';
import { CONV, NHWC_CONV } from './conv';
import { BIAS_ADD, BIAS_SPLIT_GELU, FAST_GELU, MS_GELU, ONNX_GELU, QUICK_GELU } from './gelu';
import { OpRecord, opKey } from './record';
import { CAST, GATHER, GEMM, MATMUL, SPLIT, TRANSPOSE } from './standard';

export * from './record';
export { Emitter } from './emit';
export { convSpatialDims } from './conv';

/**
 * Every op record, in the order docs/targets.md lists them. Adding a fused op: write its record (kernels,
 * infer, lower) beside the others and list it here.
 */
export const OP_RECORDS: OpRecord[] = [
  MULTI_HEAD_ATTENTION, ONNX_ATTENTION, PACKED_ATTENTION, ONNX_GROUP_NORMALIZATION, GROUP_NORM, SKIP_GROUP_NORM, NHWC_CONV,
  BIAS_SPLIT_GELU, BIAS_ADD, LAYER_NORMALIZATION, SPLIT, SKIP_LAYER_NORMALIZATION, ONNX_GELU, MS_GELU, FAST_GELU, QUICK_GELU,
  BATCH_NORMALIZATION, CONV, MATMUL, GEMM, CAST, GATHER, TRANSPOSE,
];

const BY_KEY = new Map(OP_RECORDS.map((r) => [r.op, r]));

/** The record of `domain::op`, or null when sdc has none (an op sdc never emits). */
export function opRecord(domain: string, op: string): OpRecord | null {
  return BY_KEY.get(opKey(domain, op)) ?? null;
}
