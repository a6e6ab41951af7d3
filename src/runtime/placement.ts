import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import * as ort from 'onnxruntime-node';

/**
 * Ops the WebGPU provider runs without a dispatch (a view of the same buffer, or host-side metadata):
 * they are placed on the device but cost no GPU kernel, so dispatch counts leave them out.
 */
const NO_DISPATCH = new Set(['Reshape', 'Unsqueeze', 'Squeeze', 'Flatten', 'Shape', 'Identity']);

/** Where onnxruntime ran each node of one call, read from its profiler's trace. */
export interface Placement {
  /** the provider the session was asked to run on */
  provider: string;
  /** node executions in one call (one per kernel launch recorded by the profiler) */
  kernels: number;
  byProvider: Record<string, number>;
  /** `Provider:OpType` → executions */
  byOp: Record<string, number>;
  /** nodes the CPU provider ran while the session ran on a device provider */
  cpuNodes: { name: string; op: string }[];
  /** copies between host and device the provider inserted (MemcpyToHost / MemcpyFromHost) */
  memcpy: number;
  /** device kernels that launch GPU work: device-placed, not a copy, not in NO_DISPATCH */
  dispatches: number;
  /** Transpose kernels that ran, the provider's own layout changes included */
  transposes: number;
}

interface TraceEvent {
  cat?: string;
  name?: string;
  args?: { provider?: string; op_name?: string };
}

const SHORT: Record<string, string> = {
  CPUExecutionProvider: 'cpu',
  WebGpuExecutionProvider: 'webgpu',
  CUDAExecutionProvider: 'cuda',
};

/** onnxruntime's CPU provider (provider names, not targets): where every node a device provider leaves runs. */
const CPU_EP = SHORT.CPUExecutionProvider;

/** Placement from onnxruntime's profiler trace (the JSON array `enableProfiling` writes). */
export function placementFromTrace(events: TraceEvent[], provider: string): Placement {
  const p: Placement = { provider, kernels: 0, byProvider: {}, byOp: {}, cpuNodes: [], memcpy: 0, dispatches: 0, transposes: 0 };
  for (const e of events) {
    if (e.cat !== 'Node' || !e.name?.endsWith('_kernel_time') || !e.args?.provider || !e.args.op_name) continue;
    const where = SHORT[e.args.provider] ?? e.args.provider;
    const op = e.args.op_name;
    p.kernels++;
    p.byProvider[where] = (p.byProvider[where] ?? 0) + 1;
    const k = `${where}:${op}`;
    p.byOp[k] = (p.byOp[k] ?? 0) + 1;
    if (op.startsWith('Memcpy')) p.memcpy++;
    else if (where === CPU_EP && provider !== CPU_EP) p.cpuNodes.push({ name: e.name.slice(0, -'_kernel_time'.length), op });
    else if (where !== CPU_EP && !NO_DISPATCH.has(op)) p.dispatches++;
    if (op === 'Transpose') p.transposes++;
  }
  return p;
}

/**
 * Run one profiled call of `file` and report where each node ran. The caller picks the provider
 * through `options.executionProviders` (with its provider options, e.g. the WebGPU layout); a
 * provider that cannot start makes this throw, as session creation does.
 */
export async function profilePlacement(
  file: string,
  feeds: Record<string, ort.Tensor>,
  options: ort.InferenceSession.SessionOptions,
): Promise<Placement> {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'sdc-profile-'));
  try {
    const session = await ort.InferenceSession.create(file, { logSeverityLevel: 3, ...options, enableProfiling: true, profileFilePrefix: path.join(dir, 'trace') });
    try {
      await session.run(feeds);
      session.endProfiling();
    } finally {
      await session.release();
    }
    // the binding writes the trace but does not return its name: it is the one file in our folder
    const trace = fs.readdirSync(dir).find((f) => f.endsWith('.json'));
    if (!trace) throw new Error(`onnxruntime wrote no profile for ${file}`);
    const ep = options.executionProviders?.[0];
    const provider = typeof ep === 'string' ? ep : (ep as { name?: string } | undefined)?.name ?? 'cpu';
    return placementFromTrace(JSON.parse(fs.readFileSync(path.join(dir, trace), 'utf8')), provider);
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

/** Kernels per op type for people: `webgpu Conv 47, ...`, largest first. */
export function formatPlacement(p: Placement, top = 12): string[] {
  const lines = [
    `${p.kernels} kernels in one call: ${Object.entries(p.byProvider).map(([k, v]) => `${k} ${v}`).join(', ')}`,
    `  ${p.dispatches} GPU dispatches, ${p.cpuNodes.length} nodes on the CPU, ${p.memcpy} host↔device copies, ${p.transposes} Transposes`,
  ];
  const ops = Object.entries(p.byOp).sort((a, b) => b[1] - a[1]);
  lines.push(`  per op: ${ops.slice(0, top).map(([k, v]) => `${k} ${v}`).join(', ')}${ops.length > top ? `, … (${ops.length - top} more)` : ''}`);
  return lines;
}
