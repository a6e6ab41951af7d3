import * as ort from 'onnxruntime-web';
// Two compilations of one source model: for the WebGPU provider (fused GPU kernels) and for the CPU
// (wasm) fallback; the build step compiles each once and caches it.
import unetWebgpu from '../../../fixtures/models/tiny/unet_sdpa_op17.onnx?sdc&target=webgpu';
import unetWasm from '../../../fixtures/models/tiny/unet_sdpa_op17.onnx?sdc&target=cpu';

// threads need a cross-origin isolated page; one thread works everywhere
ort.env.wasm.numThreads = 1;

const compiled = { webgpu: unetWebgpu, wasm: unetWasm };
const sessions = {};

async function open(provider) {
  const asset = compiled[provider];
  sessions[provider] ??= ort.InferenceSession.create(asset.url, { ...asset.sessionOptions, externalData: asset.externalData });
  return { asset, session: await sessions[provider] };
}

/** Inputs of the model's own dims, the same on every run: latent noise, timestep 500, conditioning. */
export function exampleInputs(asset, seed = 1) {
  let s = seed >>> 0;
  const next = () => ((s = (s * 1664525 + 1013904223) >>> 0) / 2 ** 32) * 2 - 1;
  const feeds = {};
  for (const input of asset.inputs) {
    const size = input.dims.reduce((a, b) => a * b, 1);
    const data = input.name === 'timestep' ? new Array(size).fill(500) : Array.from({ length: size }, next);
    feeds[input.name] = { dims: input.dims, data };
  }
  return feeds;
}

/** One call on `provider` with plain-array feeds; returns plain-array outputs and the time it took. */
async function run(provider, feeds) {
  const { asset, session } = await open(provider);
  const tensors = {};
  for (const input of asset.inputs) {
    const f = feeds[input.name];
    tensors[input.name] = new ort.Tensor(input.dtype === 'float16' ? 'float16' : 'float32', Float32Array.from(f.data), f.dims);
  }
  const t0 = performance.now();
  const result = await session.run(tensors);
  const ms = performance.now() - t0;
  const outputs = {};
  for (const [name, t] of Object.entries(result)) outputs[name] = { dims: t.dims, data: Array.from(t.data) };
  return { provider, ms, outputs };
}

async function hasWebgpu() {
  try {
    return !!(navigator.gpu && (await navigator.gpu.requestAdapter()));
  } catch {
    return false;
  }
}

function summary(values) {
  let min = Infinity, max = -Infinity, sum = 0, sq = 0;
  for (const v of values) {
    min = Math.min(min, v);
    max = Math.max(max, v);
    sum += v;
    sq += v * v;
  }
  const mean = sum / values.length;
  return { min, max, mean, std: Math.sqrt(Math.max(0, sq / values.length - mean * mean)) };
}

async function main() {
  const status = document.getElementById('status');
  const provider = (await hasWebgpu()) ? 'webgpu' : 'wasm';
  const asset = compiled[provider];
  status.textContent = `compiled by sdc ${asset.sdcVersion} (${asset.mode}, ${asset.target}, ${asset.precision}); opening on ${provider}…`;
  const feeds = exampleInputs(asset);
  const first = await run(provider, feeds);
  const times = [];
  for (let i = 0; i < 3; i++) times.push((await run(provider, feeds)).ms);
  times.sort((a, b) => a - b);
  const lines = [`provider: ${provider}`, `model: ${asset.url}`, `first call: ${first.ms.toFixed(1)} ms`, `median of 3 calls: ${times[1].toFixed(1)} ms`];
  for (const [name, out] of Object.entries(first.outputs)) {
    const s = summary(out.data);
    lines.push(`${name} [${out.dims.join('x')}]: mean ${s.mean.toFixed(5)}, std ${s.std.toFixed(5)}, min ${s.min.toFixed(4)}, max ${s.max.toFixed(4)}`);
  }
  status.textContent = lines.join('\n');
  document.body.dataset.ready = provider;
}

// for tests and the console: run either compilation on given inputs
window.sdcExample = { run, exampleInputs, hasWebgpu, compiled, ort };
main().catch((e) => {
  document.getElementById('status').textContent = `error: ${e && e.message ? e.message : e}`;
  document.body.dataset.ready = 'error';
});
