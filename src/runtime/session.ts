import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import * as ort from 'onnxruntime-node';
import { ModelBuilder } from '../ir/builder';
import { TargetName } from '../targets';
import { saveModel } from '../onnx/write';

export const ORT_VERSION = ort.env.versions.node ?? ort.env.versions.common ?? 'unknown';

let webgpuProbe: Promise<string | null> | null = null;

/**
 * Can onnxruntime start its WebGPU provider here? Opens a one-node model once per process; null when it
 * can, else the provider's own reason (no adapter, no Vulkan loader, ...).
 */
export function webgpuUnavailable(): Promise<string | null> {
  webgpuProbe ??= (async () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'sdc-probe-'));
    try {
      const b = new ModelBuilder();
      const x = b.input('x', [1]);
      b.output(b.op('Relu', [x]), [1]);
      const file = saveModel(b.model, path.join(dir, 'probe.onnx'));
      const s = await ort.InferenceSession.create(file, { executionProviders: ['webgpu'], logSeverityLevel: 4 });
      await s.release();
      return null;
    } catch (e) {
      return (e as Error).message.split('\n')[0];
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  })();
  return webgpuProbe;
}

/**
 * Open an onnxruntime session for a target. WebGPU without an adapter makes session creation throw
 * (onnxruntime does not fall back by itself): we retry on the CPU and say so, never silently.
 */
export async function openSession(
  file: string,
  target: TargetName,
  options: ort.InferenceSession.SessionOptions,
  warn: (msg: string) => void,
): Promise<{ session: ort.InferenceSession; provider: string }> {
  const base: ort.InferenceSession.SessionOptions = { logSeverityLevel: 3, ...options };
  if (target === 'webgpu') {
    try {
      return { session: await ort.InferenceSession.create(file, { ...base, executionProviders: ['webgpu'] }), provider: 'webgpu' };
    } catch (e) {
      warn(`sdc: the WebGPU provider could not start (${(e as Error).message.split('\n')[0]}); running on the CPU instead`);
    }
  }
  if (target === 'cuda') warn('sdc: onnxruntime-node is installed without the CUDA provider here; running the cuda-targeted model on the CPU');
  return { session: await ort.InferenceSession.create(file, { ...base, executionProviders: ['cpu'] }), provider: 'cpu' };
}

/**
 * Session options for onnxruntime-web (browsers), where WebGPU graph capture exists: capture is asked
 * for only when sdc recorded the model as capturable (static shapes, no CPU-side shape work, no control
 * flow), with outputs kept on the GPU as capture requires; otherwise the reason is returned.
 */
export function webCaptureOptions(capture: { capturable: boolean; blockers: string[] } | null): { options: Record<string, unknown>; reason: string } {
  if (!capture) return { options: { executionProviders: ['webgpu'] }, reason: 'not an sdc-compiled model: no capture report in its metadata' };
  if (!capture.capturable) return { options: { executionProviders: ['webgpu'] }, reason: `not capturable: ${capture.blockers.slice(0, 3).join('; ')}${capture.blockers.length > 3 ? '; …' : ''}` };
  return { options: { executionProviders: ['webgpu'], enableGraphCapture: true, preferredOutputLocation: 'gpu-buffer' }, reason: 'capturable: graph capture enabled (inputs must be GPU buffers too)' };
}
