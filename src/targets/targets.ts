/**
 * Which fused and contrib ops each execution provider can run (onnxruntime 1.30; ../shared/REFERENCE.md §3,
 * checked on CPU by running single-op models, WebGPU/CUDA from the providers' kernel registrations).
 * Standard ai.onnx ops are taken as runnable everywhere; a fusion may only emit what `runs` allows.
 */
export type TargetName = 'cpu' | 'webgpu' | 'cuda';
export const TARGETS: TargetName[] = ['cpu', 'webgpu', 'cuda'];

interface OpSupport {
  cpu: boolean;
  webgpu: boolean;
  cuda: boolean;
  note?: string;
}

/** keyed `domain::op`, ai.onnx for the default domain */
export const FUSED_OPS: Record<string, OpSupport> = {
  'com.microsoft::MultiHeadAttention': { cpu: true, webgpu: true, cuda: true, note: 'separate q,k,v; cpu float32 only; packed QKV/KV not on cpu' },
  'ai.onnx::Attention': { cpu: true, webgpu: true, cuda: true, note: 'opset 23+; webgpu coverage uneven' },
  'com.microsoft::Attention': { cpu: true, webgpu: true, cuda: true, note: 'packed weight' },
  'ai.onnx::GroupNormalization': { cpu: false, webgpu: false, cuda: true, note: 'cpu: no kernel, runs as its function body (measured slower, adds Shape ops); webgpu unverified' },
  'com.microsoft::GroupNorm': { cpu: false, webgpu: false, cuda: true },
  'com.microsoft::SkipGroupNorm': { cpu: false, webgpu: false, cuda: true },
  'com.microsoft::NhwcConv': { cpu: false, webgpu: false, cuda: true },
  'com.microsoft::BiasSplitGelu': { cpu: false, webgpu: true, cuda: true },
  'com.microsoft::BiasAdd': { cpu: false, webgpu: true, cuda: true },
  'ai.onnx::LayerNormalization': { cpu: true, webgpu: true, cuda: true },
  'com.microsoft::SkipLayerNormalization': { cpu: true, webgpu: true, cuda: true },
  'ai.onnx::Gelu': { cpu: true, webgpu: true, cuda: true, note: 'opset 20' },
  'com.microsoft::Gelu': { cpu: true, webgpu: true, cuda: true },
  'com.microsoft::FastGelu': { cpu: true, webgpu: true, cuda: true },
};

export class Target {
  constructor(readonly name: TargetName) {}

  /** Can this target run `domain::op`? Unknown contrib ops are refused: emitting one would be a bug. */
  runs(domain: string, op: string): boolean {
    const d = domain === '' ? 'ai.onnx' : domain;
    const entry = FUSED_OPS[`${d}::${op}`];
    if (entry) return entry[this.name];
    return d === 'ai.onnx';
  }

  /** null when the target runs the op, else a sentence saying it does not (for --explain). */
  lacks(domain: string, op: string): string | null {
    return this.runs(domain, op) ? null : `${this.name} has no kernel for ${domain || 'ai.onnx'}::${op}`;
  }
}

export function parseTarget(name: string): Target {
  if (!(TARGETS as string[]).includes(name)) throw new Error(`unknown target '${name}' (choose ${TARGETS.join(', ')})`);
  return new Target(name as TargetName);
}

/** The op table as Markdown (docs/targets.md embeds it; a test keeps the two equal). */
export function renderTargetTable(): string {
  const rows = Object.entries(FUSED_OPS).map(([op, s]) => `| ${op} | ${s.cpu ? 'yes' : 'no'} | ${s.webgpu ? 'yes' : 'no'} | ${s.cuda ? 'yes' : 'no'} | ${s.note ?? ''} |`);
  return ['| op | cpu | webgpu | cuda | note |', '|---|---|---|---|---|', ...rows].join('\n');
}
