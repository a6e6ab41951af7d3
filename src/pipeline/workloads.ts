import * as path from 'path';
import * as ort from 'onnxruntime-node';
import { SdcError } from '../ir/errors';
import { Model } from '../ir/model';
import { readModel } from '../onnx/read';
import { randomFloats } from '../runtime/feeds';
import { DimPlan } from './dims';
import { Component, Pipeline, readJsonObject } from './layout';

/**
 * The benchmark workloads this project follows, end to end on a pipeline's components: prompt encoding
 * (prompt and negative prompt), N denoising steps with classifier-free guidance and a plain Euler step
 * in JavaScript, VAE decoding (and encoding for img2img). Token ids are synthetic: turning text into ids
 * is the app's job. The same seed gives the same latents, so two variants of a pipeline (as exported,
 * compiled) must give the same image.
 */
export type Workload = 'txt2img' | 'img2img' | 'inpaint' | 'controlnet';
export const WORKLOADS: readonly Workload[] = ['txt2img', 'img2img', 'inpaint', 'controlnet'];

export interface WorkloadOptions {
  workload: Workload;
  steps: number;
  /** Classifier-free guidance scale (used when the plan has guidance on). */
  guidance?: number;
  /** img2img and inpainting: how much of the schedule runs (0.75: the last three quarters). */
  strength?: number;
  seed?: number;
}

/** One component call: what the benchmark times, on whichever variant of the pipeline. */
export type Runner = (component: string, feeds: Record<string, ort.Tensor>) => Promise<Record<string, ort.Tensor>>;

/** What a workload needs to know of a pipeline: its components by role and how their inputs are typed. */
export interface PipelineFacts {
  textEncoders: string[];
  unet: string;
  controlnet: string | null;
  vaeEncoder: string | null;
  vaeDecoder: string;
  /** Per component, per input: onnxruntime type and declared rank. */
  inputs: Map<string, Map<string, { type: 'float32' | 'int64' | 'int32'; rank: number }>>;
  /** Per text encoder: its outputs' names. */
  outputs: Map<string, string[]>;
  /** Rows of the first text encoder's token table (ids are drawn below it). */
  vocab: number;
  scalingFactor: number;
  scheduler: { betaStart: number; betaEnd: number; trainSteps: number };
}

const TYPES: Record<number, 'float32' | 'int64' | 'int32'> = { 1: 'float32', 7: 'int64', 6: 'int32' };

export function pipelineFacts(p: Pipeline): PipelineFacts {
  const by = (role: Component['role']) => p.components.filter((c) => c.role === role).map((c) => c.name);
  const textEncoders = by('text-encoder');
  const [unet] = by('unet');
  const [vaeDecoder] = by('vae-decoder');
  if (!unet || !vaeDecoder || !textEncoders.length) {
    throw new SdcError(p.dir, `a benchmarked pipeline needs a text encoder, a UNet and a VAE decoder (found: ${p.components.map((c) => `${c.name} (${c.role})`).join(', ')})`);
  }
  const models = new Map(p.components.map((c) => [c.name, readModel(c.modelFile, { allowMissingData: true })]));
  const inputs = new Map<string, Map<string, { type: 'float32' | 'int64' | 'int32'; rank: number }>>();
  for (const [name, m] of models) {
    const map = new Map<string, { type: 'float32' | 'int64' | 'int32'; rank: number }>();
    for (const v of m.graph.inputs.filter((x) => !x.initializer)) {
      const type = TYPES[v.elemType ?? 0];
      if (!type) throw new SdcError(p.components.find((c) => c.name === name)!.modelFile, `input '${v.name}' has a type the pipeline benchmark cannot feed (${v.elemType})`);
      map.set(v.name, { type, rank: v.shape?.length ?? 0 });
    }
    inputs.set(name, map);
  }
  const vaeConfig = readJsonObject(path.join(p.dir, vaeDecoder, 'config.json'));
  const sched = readJsonObject(path.join(p.dir, 'scheduler', 'scheduler_config.json'));
  return {
    textEncoders,
    unet,
    controlnet: by('controlnet')[0] ?? null,
    vaeEncoder: by('vae-encoder')[0] ?? null,
    vaeDecoder,
    inputs,
    outputs: new Map(textEncoders.map((t) => [t, models.get(t)!.graph.outputs.map((v) => v.name)])),
    vocab: tokenRows(models.get(textEncoders[0])!) ?? 49408,
    scalingFactor: num(vaeConfig?.scaling_factor, 0.18215),
    scheduler: { betaStart: num(sched?.beta_start, 0.00085), betaEnd: num(sched?.beta_end, 0.012), trainSteps: num(sched?.num_train_timesteps, 1000) },
  };
}

/** Which workloads a pipeline can run: inpainting needs a 9-channel UNet (and then is the only txt2img-like one), ControlNet a controlnet. */
export function workloadsFor(p: Pipeline, plan: DimPlan, f: PipelineFacts): Workload[] {
  const channels = plan.components.get(f.unet)?.dims?.get('sample')?.[1];
  if (channels === 9) return f.vaeEncoder ? ['inpaint'] : [];
  // a UNet that takes ControlNet's residuals runs only with them
  if (needsControlnet(f)) return f.controlnet ? ['controlnet'] : [];
  const out: Workload[] = ['txt2img'];
  if (f.vaeEncoder) out.push('img2img');
  void p;
  return out;
}

function needsControlnet(f: PipelineFacts): boolean {
  return [...f.inputs.get(f.unet)!.keys()].some((k) => k.startsWith('down_block_additional_residuals') || k === 'mid_block_additional_residual');
}

/** Run one workload; `stage` wraps every component call (the benchmark times it). Returns the image. */
export async function runWorkload(f: PipelineFacts, plan: DimPlan, o: WorkloadOptions, run: Runner): Promise<ort.Tensor> {
  const seed = o.seed ?? 1;
  const B = plan.batch;
  const dims = (c: string) => plan.components.get(c)?.dims ?? null;
  const unetDims = dims(f.unet);
  if (!unetDims) throw new SdcError(f.unet, 'the UNet\'s dims do not follow from the pipeline; give --shape unet:INPUT=DIMS');
  const [, , h, w] = unetDims.get('sample')!;
  const latentChannels = unetDims.get('sample')![1] === 9 ? 4 : unetDims.get('sample')![1];

  // prompt and negative prompt, each at batch B, through every text encoder
  const L = dims(f.textEncoders[0])!.get('input_ids')![1];
  const ids = (neg: boolean) => Array.from({ length: B * L }, (_, i) => (neg ? (i % L === 0 ? 0 : 1) : 2 + ((i * 7919 + seed * 104729) % Math.max(1, f.vocab - 2))));
  const encode = async (neg: boolean) => {
    const hidden: ort.Tensor[] = [];
    let pooled: ort.Tensor | null = null;
    for (const t of f.textEncoders) {
      const spec = f.inputs.get(t)!.get('input_ids')!;
      const data = spec.type === 'int64' ? BigInt64Array.from(ids(neg), (x) => BigInt(x)) : Int32Array.from(ids(neg));
      const out = await run(t, { input_ids: new ort.Tensor(spec.type, data, [B, L]) });
      const names = f.outputs.get(t)!;
      // SDXL takes the penultimate layer's hidden states; SD1.5 the last
      const layers = names.filter((n) => /^hidden_states\.\d+$/.test(n)).sort((a, b) => Number(a.split('.')[1]) - Number(b.split('.')[1]));
      hidden.push(out[layers.length >= 2 ? layers[layers.length - 2] : 'last_hidden_state']);
      if (out.text_embeds) pooled = out.text_embeds;
    }
    return { hidden: concat(hidden, -1), pooled };
  };
  const cfg = plan.cfg;
  const pos = await encode(false);
  const neg = cfg ? await encode(true) : null;
  const ehs = neg ? concat([neg.hidden, pos.hidden], 0) : pos.hidden;
  const wantD = unetDims.get('encoder_hidden_states')?.[2];
  if (wantD !== undefined && ehs.dims[2] !== wantD) throw new SdcError(f.unet, `takes encoder_hidden_states ${wantD} wide, but the text encoders give ${ehs.dims[2]}`);
  const added: Record<string, ort.Tensor> = {};
  if (unetDims.has('text_embeds')) {
    if (!pos.pooled) throw new SdcError(f.unet, 'takes text_embeds, but no text encoder outputs text_embeds');
    added.text_embeds = neg ? concat([neg.pooled!, pos.pooled], 0) : pos.pooled;
  }
  if (unetDims.has('time_ids')) {
    const [n, T] = unetDims.get('time_ids')!;
    const row = [plan.height, plan.width, 0, 0, plan.height, plan.width].slice(0, T);
    added.time_ids = new ort.Tensor('float32', Float32Array.from({ length: n * T }, (_, i) => row[i % T] ?? 0), [n, T]);
  }

  // the Euler schedule over the scheduler's scaled-linear betas
  const { sigmas, timesteps } = eulerSchedule(f.scheduler, o.steps);
  const noise = gaussian([B, latentChannels, h, w], seed + 1);
  let start = 0;
  let x: Float32Array;
  let inpaintExtra: ort.Tensor | null = null;
  if (o.workload === 'img2img' || o.workload === 'inpaint') {
    if (!f.vaeEncoder) throw new SdcError(f.unet, `${o.workload} needs a vae_encoder`);
    const img = image(B, plan.height, plan.width, seed + 2);
    const enc = (await run(f.vaeEncoder, { sample: img })).latent_parameters;
    const mean = scale(firstChannels(enc, latentChannels), f.scalingFactor);
    start = Math.min(o.steps - 1, Math.floor(o.steps * (1 - (o.strength ?? 0.75))));
    x = Float32Array.from(mean.data as Float32Array, (m, i) => m + noise[i] * sigmas[start]);
    if (o.workload === 'inpaint') {
      // the lower half of the image is masked: mask [B,1,h,w] and the masked image's latents
      const mask = new ort.Tensor('float32', Float32Array.from({ length: B * h * w }, (_, i) => (Math.floor((i % (h * w)) / w) >= h / 2 ? 1 : 0)), [B, 1, h, w]);
      inpaintExtra = concat([mask, mean], 1);
    }
  } else {
    x = Float32Array.from(noise, (n) => n * sigmas[0]);
  }
  const cond = o.workload === 'controlnet' ? image(cfg ? 2 * B : B, plan.height, plan.width, seed + 3) : null;
  const g = o.guidance ?? 7.5;
  for (let i = start; i < o.steps; i++) {
    const sigma = sigmas[i];
    const scaled = new ort.Tensor('float32', Float32Array.from(x, (v) => v / Math.sqrt(sigma * sigma + 1)), [B, latentChannels, h, w]);
    let sample = cfg ? concat([scaled, scaled], 0) : scaled;
    if (inpaintExtra) sample = concat([sample, cfg ? concat([inpaintExtra, inpaintExtra], 0) : inpaintExtra], 1);
    const feeds: Record<string, ort.Tensor> = { sample, timestep: timestepTensor(f.inputs.get(f.unet)!.get('timestep')!, unetDims.get('timestep'), timesteps[i], sample.dims[0]), encoder_hidden_states: ehs, ...added };
    if (cond && f.controlnet) {
      const cin = f.inputs.get(f.controlnet)!;
      const res = await run(f.controlnet, {
        sample, timestep: timestepTensor(cin.get('timestep')!, dims(f.controlnet)?.get('timestep'), timesteps[i], sample.dims[0]), encoder_hidden_states: ehs, controlnet_cond: cond,
        ...(cin.has('conditioning_scale') ? { conditioning_scale: new ort.Tensor('float32', Float32Array.of(1), cin.get('conditioning_scale')!.rank ? [1] : []) } : {}),
      });
      for (const [k, v] of Object.entries(res)) feeds[k.replace('down_block_res_samples', 'down_block_additional_residuals').replace('mid_block_res_sample', 'mid_block_additional_residual')] = v;
    }
    const eps = (await run(f.unet, feeds)).out_sample.data as Float32Array;
    const n = x.length;
    const next = sigmas[i + 1];
    for (let k = 0; k < n; k++) {
      const e = cfg ? eps[k] + g * (eps[n + k] - eps[k]) : eps[k];
      x[k] += e * (next - sigma);
    }
  }
  const latent = new ort.Tensor('float32', Float32Array.from(x, (v) => v / f.scalingFactor), [B, latentChannels, h, w]);
  return (await run(f.vaeDecoder, { latent_sample: latent })).sample;
}

/** Euler discrete: sigmas at evenly spaced training timesteps, high to low, then 0. */
function eulerSchedule(s: PipelineFacts['scheduler'], steps: number): { sigmas: number[]; timesteps: number[] } {
  const T = s.trainSteps;
  const acp: number[] = [];
  let prod = 1;
  for (let i = 0; i < T; i++) {
    const b = (Math.sqrt(s.betaStart) + ((Math.sqrt(s.betaEnd) - Math.sqrt(s.betaStart)) * i) / (T - 1)) ** 2;
    prod *= 1 - b;
    acp.push(prod);
  }
  const timesteps = Array.from({ length: steps }, (_, i) => Math.round(((T - 1) * (steps - 1 - i)) / Math.max(1, steps - 1)));
  const sigmas = [...timesteps.map((t) => Math.sqrt((1 - acp[t]) / acp[t])), 0];
  return { sigmas, timesteps };
}

/** The timestep as the component declares it: a rank-0 scalar, one per sample, or a fixed [1] (older exports). */
function timestepTensor(spec: { type: string; rank: number }, planned: number[] | undefined, t: number, batch: number): ort.Tensor {
  const dims = planned ?? (spec.rank === 0 ? [] : [batch]);
  const n = dims.reduce((a, b) => a * b, 1);
  if (spec.type === 'int64') return new ort.Tensor('int64', BigInt64Array.from({ length: n }, () => BigInt(t)), dims);
  if (spec.type === 'int32') return new ort.Tensor('int32', Int32Array.from({ length: n }, () => t), dims);
  return new ort.Tensor('float32', Float32Array.from({ length: n }, () => t), dims);
}

/** Standard normal values (Box-Muller over the project's one uniform stream). */
function gaussian(dims: number[], seed: number): Float32Array {
  const n = dims.reduce((a, b) => a * b, 1);
  const u = randomFloats(n + (n % 2), seed);
  const out = new Float32Array(n);
  for (let i = 0; i < n; i += 2) {
    const a = Math.max(1e-7, (u[i] + 1) / 2);
    const b = (u[i + 1] + 1) / 2;
    const r = Math.sqrt(-2 * Math.log(a));
    out[i] = r * Math.cos(2 * Math.PI * b);
    if (i + 1 < n) out[i + 1] = r * Math.sin(2 * Math.PI * b);
  }
  return out;
}

/** An RGB image in [-1, 1]. */
function image(batch: number, height: number, width: number, seed: number): ort.Tensor {
  return new ort.Tensor('float32', randomFloats(batch * 3 * height * width, seed), [batch, 3, height, width]);
}

function firstChannels(t: ort.Tensor, c: number): ort.Tensor {
  const [b, total, ...rest] = t.dims;
  const plane = rest.reduce((a, x) => a * x, 1);
  const src = t.data as Float32Array;
  const out = new Float32Array(b * c * plane);
  for (let i = 0; i < b; i++) out.set(src.subarray(i * total * plane, (i * total + c) * plane), i * c * plane);
  return new ort.Tensor('float32', out, [b, c, ...rest]);
}

function scale(t: ort.Tensor, k: number): ort.Tensor {
  return new ort.Tensor('float32', Float32Array.from(t.data as Float32Array, (v) => v * k), t.dims);
}

/** Float tensors joined along `axis` (negative counts from the end). */
function concat(ts: ort.Tensor[], axis: number): ort.Tensor {
  const rank = ts[0].dims.length;
  const a = axis < 0 ? axis + rank : axis;
  const outer = ts[0].dims.slice(0, a).reduce((x, y) => x * y, 1);
  const inner = ts[0].dims.slice(a + 1).reduce((x, y) => x * y, 1);
  for (const t of ts) {
    if (t.dims.length !== rank || t.dims.some((d, i) => i !== a && d !== ts[0].dims[i])) throw new Error(`cannot join [${t.dims}] with [${ts[0].dims}] along axis ${a}`);
  }
  const total = ts.reduce((s, t) => s + t.dims[a], 0);
  const out = new Float32Array(outer * total * inner);
  let offset = 0;
  for (const t of ts) {
    const src = t.data as Float32Array;
    const chunk = t.dims[a] * inner;
    for (let o = 0; o < outer; o++) out.set(src.subarray(o * chunk, (o + 1) * chunk), o * total * inner + offset);
    offset += chunk;
  }
  const dims = [...ts[0].dims];
  dims[a] = total;
  return new ort.Tensor('float32', out, dims);
}

/** Rows of the token-embedding table: the Gather from a 2-D weight indexed by input_ids. */
function tokenRows(m: Model): number | null {
  const ids = m.graph.inputs.find((v) => v.name === 'input_ids');
  for (const n of m.graph.nodes) {
    if (n.opType !== 'Gather' || n.inputs[0]?.constant?.dims.length !== 2) continue;
    let x = n.inputs[1];
    for (let k = 0; x && k < 6 && x !== ids; k++) x = x.producer && ['Cast', 'Reshape', 'Flatten', 'Identity'].includes(x.producer.opType) ? x.producer.inputs[0] : null;
    if (x === ids) return n.inputs[0]!.constant!.dims[0];
  }
  return null;
}

function num(v: unknown, dflt: number): number {
  return typeof v === 'number' && Number.isFinite(v) ? v : dflt;
}
