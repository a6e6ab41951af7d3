import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import * as ort from 'onnxruntime-node';
import { ModelBuilder } from '../ir/builder';
import { DataType } from '../ir/dtype';
import { TARGETS, TargetName, targetTraits } from '../targets';
import { ProviderLayout, recommendedSession } from '../targets/session-options';
import { saveModel } from '../onnx/write';
import { SdcError } from '../ir/errors';

export const ORT_VERSION = ort.env.versions.node ?? ort.env.versions.common ?? 'unknown';

/** The onnxruntime execution provider each target runs on (its row in targets/traits.ts). */
const PROVIDER = Object.fromEntries(TARGETS.map((t) => [t, targetTraits(t).provider])) as Record<TargetName, string>;

const probes = new Map<TargetName, Promise<string | null>>();

/**
 * Can onnxruntime start the target's provider here? Opens a one-node model once per process and
 * target; null when it can, else the provider's own reason (no adapter, no Vulkan loader, a build of
 * onnxruntime-node without CUDA, ...).
 */
export function providerUnavailable(target: TargetName): Promise<string | null> {
  if (targetTraits(target).hostCpu) return Promise.resolve(null);
  let probe = probes.get(target);
  if (!probe) {
    probe = (async () => {
      const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'sdc-probe-'));
      try {
        const b = new ModelBuilder();
        const x = b.input('x', [1]);
        b.output(b.op('Relu', [x]), [1]);
        const file = saveModel(b.model, path.join(dir, 'probe.onnx'));
        // the provider's failure is ours to report, once, in a sentence: not onnxruntime's log line
        const level = ort.env.logLevel;
        ort.env.logLevel = 'fatal';
        const s = await ort.InferenceSession.create(file, { executionProviders: [PROVIDER[target]], logSeverityLevel: 4 }).finally(() => {
          ort.env.logLevel = level;
        });
        await s.release();
        return null;
      } catch (e) {
        return (e as Error).message.split('\n')[0];
      } finally {
        fs.rmSync(dir, { recursive: true, force: true });
      }
    })();
    probes.set(target, probe);
  }
  return probe;
}

export const webgpuUnavailable = () => providerUnavailable('webgpu');

const f16Probes = new Map<TargetName, Promise<string | null>>();

/**
 * Can the target's provider run float16 here? WebGPU needs the adapter's `shader-f16` (its trait
 * `fp16Feature`; SwiftShader has none: session creation fails with "requires f16 but the device does not
 * support it"). Null when it can, when the target needs no feature, or when the provider itself cannot
 * start (providerUnavailable says that); else why not. Probed once per process and target with a
 * one-node fp16 model, run once (some kernels compile their shaders at the first run).
 */
export function fp16Unavailable(target: TargetName): Promise<string | null> {
  const traits = targetTraits(target);
  if (!traits.fp16Feature) return Promise.resolve(null);
  let probe = f16Probes.get(target);
  probe ??= (async () => {
    if (await providerUnavailable(target)) return null;
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'sdc-probe-'));
    try {
      const b = new ModelBuilder();
      const x = b.input('x', [2, 2], DataType.FLOAT16);
      b.output(b.op('Transpose', [b.op('Add', [x, x])], { perm: [1, 0] }), [2, 2], DataType.FLOAT16);
      const file = saveModel(b.model, path.join(dir, 'probe-f16.onnx'));
      const level = ort.env.logLevel;
      ort.env.logLevel = 'fatal';
      try {
        const s = await ort.InferenceSession.create(file, { executionProviders: [traits.provider], logSeverityLevel: 4 });
        await s.run({ x: new ort.Tensor('float16', new Uint16Array(4), [2, 2]) });
        await s.release();
      } finally {
        ort.env.logLevel = level;
      }
      return null;
    } catch (e) {
      const why = (e as Error).message.split('\n')[0];
      return /f16|float16|shader-f16/i.test(why) ? `the ${traits.label} adapter has no ${traits.fp16Feature}` : why;
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  })();
  f16Probes.set(target, probe);
  return probe;
}

export const webgpuF16Unavailable = () => fp16Unavailable('webgpu');

/**
 * Open an onnxruntime session for a target. A provider that cannot start makes session creation throw
 * (onnxruntime does not fall back by itself): we retry on the CPU and say so, never silently.
 */
export async function openSession(
  file: string,
  target: TargetName,
  options: ort.InferenceSession.SessionOptions,
  warn: (msg: string) => void,
): Promise<{ session: ort.InferenceSession; provider: string }> {
  const base: ort.InferenceSession.SessionOptions = { logSeverityLevel: 3, ...options };
  if (!targetTraits(target).hostCpu) {
    const why = await providerUnavailable(target);
    // the caller's provider entry carries provider options (the WebGPU layout); else the bare name
    const providers = options.executionProviders?.length ? options.executionProviders : [PROVIDER[target]];
    if (!why) return { session: await createSession(file, { ...base, executionProviders: providers }, PROVIDER[target]), provider: PROVIDER[target] };
    warn(`sdc: the ${target} provider cannot start here (${why}); running on the CPU instead`);
  }
  return { session: await createSession(file, { ...base, executionProviders: ['cpu'] }), provider: 'cpu' };
}

/**
 * A session; an op the provider has no kernel for (a contrib op of another provider) is said in one line
 * naming `model` (the file the user gave, when `file` is a copy of it), exit 2.
 */
export async function createSession(file: string, options: ort.InferenceSession.SessionOptions, provider = 'cpu', model = file): Promise<ort.InferenceSession> {
  try {
    return await ort.InferenceSession.create(file, options);
  } catch (e) {
    const m = /Could not find an implementation for (\w+)\((\d+)\) node with name '([^']*)'/.exec((e as Error).message);
    if (!m) throw e;
    throw new SdcError(model, `onnxruntime's ${provider} provider has no kernel for ${m[1]} (opset ${m[2]}, node '${m[3]}'): the model holds an op only another provider runs; run it where that provider is`);
  }
}

/**
 * Session options for onnxruntime-web (browsers), where WebGPU graph capture exists: capture is asked
 * for only when sdc recorded the model as capturable (static shapes, no CPU-side shape work, no control
 * flow), with outputs kept on the GPU as capture requires; otherwise the reason is returned. `layout`
 * goes into the WebGPU provider entry (recommendedSession() reads it from the model).
 */
export function webCaptureOptions(
  capture: { capturable: boolean; blockers: string[] } | null,
  layout?: ProviderLayout,
): { options: Record<string, unknown>; reason: string } {
  const providers = [layout ? { name: 'webgpu', preferredLayout: layout } : 'webgpu'];
  if (!capture) return { options: { executionProviders: providers }, reason: 'not an sdc-compiled model: no capture report in its metadata' };
  if (!capture.capturable) return { options: { executionProviders: providers }, reason: `not capturable: ${capture.blockers.slice(0, 3).join('; ')}${capture.blockers.length > 3 ? '; …' : ''}` };
  return { options: { executionProviders: providers, enableGraphCapture: true, preferredOutputLocation: 'gpu-buffer' }, reason: 'capturable: graph capture enabled (inputs must be GPU buffers too)' };
}

/**
 * Everything sdc recommends for opening a compiled model in onnxruntime-web on WebGPU, from its
 * metadata (`inspect(...).metadata`, or the plugin's import object): provider layout, optimization
 * level and, where the graph allows it, capture.
 */
export function webSessionOptions(metadata: Record<string, string>): { options: Record<string, unknown>; reasons: string[] } {
  const rec = recommendedSession((k) => metadata[k], 'webgpu');
  let capture: { capturable: boolean; blockers: string[] } | null = null;
  try {
    capture = JSON.parse(metadata['sdc.capture'] ?? 'null');
  } catch {
    capture = null;
  }
  const entry = rec.options.executionProviders[0];
  const web = webCaptureOptions(capture, typeof entry === 'string' ? undefined : entry.preferredLayout);
  return { options: { ...web.options, graphOptimizationLevel: rec.options.graphOptimizationLevel }, reasons: [...rec.reasons, web.reason] };
}

/**
 * Why the model in `file` does not run on these inputs on the CPU (onnxruntime's first line, its own
 * prefix dropped), or null when it runs: whether the original also fails where its compiled form did.
 */
export async function runFailure(file: string, feeds: Record<string, ort.Tensor>): Promise<string | null> {
  let s: ort.InferenceSession | null = null;
  try {
    s = await ort.InferenceSession.create(file, { executionProviders: ['cpu'], logSeverityLevel: 4 });
    await s.run(feeds, { logSeverityLevel: 4 });
    return null;
  } catch (e) {
    return (e as Error).message.split('\n')[0].replace(/^.*Status Message: /, '');
  } finally {
    await s?.release();
  }
}
