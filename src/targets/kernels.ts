import { Kernel, OP_RECORDS, TargetName } from '../ops';

export { Kernel, Layout, TARGETS, TargetName } from '../ops';

/**
 * What each execution provider's kernel for a fused or contrib op accepts (onnxruntime 1.30), gathered
 * from the op records (src/ops/): CPU by running single-op models; WebGPU from the provider's kernel
 * registrations and, where marked, runs on the real provider. "webgpu" is two implementations: the
 * native WebGPU EP (onnxruntime-node, `onnxruntime-web/webgpu`) and JSEP (plain `onnxruntime-web`, the
 * default import in browsers), whose kernels check sizes of their own at run time; the webgpu column is
 * what both run; CUDA from its registrations and kernel sources in onnxruntime 1.30.
 * An op absent from a target's column has no kernel there. Standard ai.onnx ops not listed run everywhere.
 * Rules ask `Target.accepts()`, docs/targets.md is rendered from this table, and compile() refuses an
 * output holding an op its target lacks.
 */
export interface OpEntry {
  targets: Partial<Record<TargetName, Kernel>>;
  note?: string;
}

/** keyed `domain::op`, ai.onnx for the default domain */
export const KERNELS: Record<string, OpEntry> = Object.fromEntries(
  OP_RECORDS.filter((r) => r.kernels).map((r) => [r.op, { targets: r.kernels!, ...(r.note ? { note: r.note } : {}) }]),
);
