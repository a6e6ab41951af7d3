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
import { openInChild, providerReason } from './quiet-child';
import { adapterName, chooseSoftwareAdapter, quietVulkan, softwareAdapterChosen, softwareAdapterFor } from './swiftshader';

export const ORT_VERSION = ort.env.versions.node ?? ort.env.versions.common ?? 'unknown';

/** The onnxruntime execution provider each target runs on (its row in targets/traits.ts). */
const PROVIDER = Object.fromEntries(TARGETS.map((t) => [t, targetTraits(t).provider])) as Record<TargetName, string>;

/** A one-node model of `dtype` in a fresh folder, for probing a provider; the caller removes the folder. */
function probeModel(dtype: DataType): { dir: string; file: string } {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'sdc-probe-'));
  const b = new ModelBuilder();
  const x = b.input('x', [2, 2], dtype);
  // Transpose after Add: some kernels compile their shaders only at the first run, which the f16 probe makes
  b.output(b.op('Transpose', [b.op('Add', [x, x])], { perm: [1, 0] }), [2, 2], dtype);
  return { dir, file: saveModel(b.model, path.join(dir, 'probe.onnx')) };
}

/** Open (and with `run`, run once) the one-node probe model on a provider, in a quiet child process. */
async function probe(provider: string, dtype: DataType, env: NodeJS.ProcessEnv = process.env): Promise<string | null> {
  const { dir, file } = probeModel(dtype);
  try {
    const type = dtype === DataType.FLOAT16 ? 'float16' : 'float32';
    const why = await openInChild(file, { executionProviders: [provider] }, { x: [type, [2, 2]] }, env);
    return why && providerReason(why);
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

const probes = new Map<string, Promise<string | null>>();
const once = (key: string, make: () => Promise<string | null>) => {
  let p = probes.get(key);
  if (!p) probes.set(key, (p = make()));
  return p;
};

/**
 * Can onnxruntime start the target's provider here? Asked once per process and target, in a child
 * process (quiet-child.ts: the provider's native stderr stays out of sdc's, and this process's Vulkan
 * loader is not yet bound). Null when it can, else the provider's reason (no adapter, no Vulkan loader,
 * a build of onnxruntime-node without CUDA, ...).
 *
 * `software`: where no hardware WebGPU adapter exists, may sdc use a software one (SwiftShader,
 * adapter.ts)? For measurements that are exact there (placement) and checks of small models; never for
 * running models in an app (load(), bench): the CPU provider is far faster than an emulated GPU. Once
 * chosen, the software adapter serves every later session of the process.
 */
export async function providerUnavailable(target: TargetName, o: { software?: boolean } = {}): Promise<string | null> {
  const traits = targetTraits(target);
  if (traits.hostCpu) return null;
  quietVulkan();
  if (!traits.vulkanAdapter) return once(target, () => probe(PROVIDER[target], DataType.FLOAT));
  // chosen: the software probe started, and this process's sessions open on SwiftShader from now on
  if (softwareAdapterChosen()) return null;
  const hardware = await once(target, () => probe(PROVIDER[target], DataType.FLOAT));
  if (!hardware) return null;
  const icd = softwareAdapterFor(process.env);
  if (!icd) return hardware;
  if (!o.software) return `${hardware} (a software adapter, SwiftShader, exists: sdc uses it for --placement and small --check runs, not to run models)`;
  const software = await once(`${target}:software`, () => probe(PROVIDER[target], DataType.FLOAT, { ...process.env, VK_ICD_FILENAMES: icd }));
  if (software) return `${hardware}; SwiftShader: ${software}`;
  chooseSoftwareAdapter(icd);
  return null;
}

export const webgpuUnavailable = () => providerUnavailable('webgpu');

/**
 * Can the target's provider run float16 here? WebGPU needs the adapter's `shader-f16` (its trait
 * `fp16Feature`; SwiftShader has none: session creation fails with "requires f16 but the device does not
 * support it"). Null when it can, when the target needs no feature, or when the provider itself cannot
 * start (providerUnavailable says that); else why not. Probed once per process and target, in a child,
 * with a one-node fp16 model run once (some kernels compile their shaders at the first run).
 */
export function fp16Unavailable(target: TargetName): Promise<string | null> {
  const traits = targetTraits(target);
  if (!traits.fp16Feature) return Promise.resolve(null);
  return once(`${target}:f16:${process.env.VK_ICD_FILENAMES ?? ''}`, async () => {
    if (await providerUnavailable(target)) return null;
    const why = await probe(traits.provider, DataType.FLOAT16);
    if (!why) return null;
    return /f16|float16|shader-f16/i.test(why) ? `the ${traits.label} adapter (${adapterName()}) has no ${traits.fp16Feature}` : why;
  });
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
  const base: ort.InferenceSession.SessionOptions = { logSeverityLevel: 4, ...options };
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
    const m = missingKernel((e as Error).message);
    if (!m) throw e;
    throw new SdcError(model, `onnxruntime's ${provider} provider has no kernel for ${m.op} (opset ${m.opset}, node '${m.node}'): the model holds an op only another provider runs; run it where that provider is`);
  }
}

/**
 * The op onnxruntime found no kernel for, from its session error: "Could not find an implementation for
 * NhwcConv(1) node with name 'n'" (float32), or "Failed to find kernel for com.microsoft.NhwcConv(1)
 * (node:'n' ...)" (float16, where it first tried to insert casts); null for any other error.
 */
export function missingKernel(message: string): { op: string; opset: string; node: string } | null {
  const a = /Could not find an implementation for (\w+)\((\d+)\) node with name '([^']*)'/.exec(message);
  if (a) return { op: a[1], opset: a[2], node: a[3] };
  const b = /Failed to find kernel for (?:[\w.]+\.)?(\w+)\((\d+)\) \(node:'([^']*)'/.exec(message);
  return b ? { op: b[1], opset: b[2], node: b[3] } : null;
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
