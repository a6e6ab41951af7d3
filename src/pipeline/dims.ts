import * as path from 'path';
import { analyzeAt, realInputs, solveOpenDims } from '../analysis/solve-dims';
import { SdcError } from '../ir/errors';
import { Node, Value } from '../ir/graph';
import { Model } from '../ir/model';
import { readModel } from '../onnx/read';
import { parseShapes } from '../compiler/compile';
import { Pipeline, readJsonObject, Role } from './layout';

/** What a user says about the images a pipeline makes; every component's dims follow from it. */
export interface PipelineShape {
  /** Image height and width in pixels (default: 8 and 16 latent pixels, times the VAE's factor). */
  height?: number;
  width?: number;
  /** Images per call (default 1). */
  batch?: number;
  /** Classifier-free guidance: the UNet and ControlNet run at twice the batch (default true). */
  cfg?: boolean;
}

/** Per component, per input: dims given by the user (`--shape unet:sample=2x4x64x64`). */
export type DimOverrides = Map<string, Map<string, number[]>>;

export interface ComponentDims {
  /** Every input's dims, or null when some input's dims cannot be derived (`unresolved` says which). */
  dims: Map<string, number[]> | null;
  unresolved: string | null;
  /** How the dims were found, in words (the report shows them). */
  notes: string[];
}

export interface DimPlan {
  height: number;
  width: number;
  batch: number;
  cfg: boolean;
  /** Image pixels per latent pixel, read from the VAE graph. */
  vaeFactor: number;
  /** Token count, read from the text encoder's position table. */
  textLength: number | null;
  components: Map<string, ComponentDims>;
  notes: string[];
}

const DEFAULT_LATENT = [8, 16];

/** `unet:sample=2x4x64x64,vae_decoder:latent_sample=1x4x64x64` → per component dims, names checked. */
export function parsePipelineShapes(spec: string, p: Pipeline): DimOverrides {
  const groups = new Map<string, string[]>();
  for (const part of spec.split(',').map((s) => s.trim()).filter(Boolean)) {
    const m = /^([^:=]+):(.+)$/.exec(part);
    if (!m) throw new SdcError(p.dir, `--shape '${part}': for a pipeline, name the component too (component:input=DxD, e.g. unet:sample=2x4x64x64; components: ${p.components.map((c) => c.name).join(', ')})`);
    if (!p.components.some((c) => c.name === m[1])) throw new SdcError(p.dir, `--shape '${part}': there is no component '${m[1]}' (components: ${p.components.map((c) => c.name).join(', ')})`);
    groups.set(m[1], [...(groups.get(m[1]) ?? []), m[2]]);
  }
  const out: DimOverrides = new Map();
  for (const [name, parts] of groups) {
    const c = p.components.find((x) => x.name === name)!;
    out.set(name, parseShapes(parts.join(','), c.modelFile, readModel(c.modelFile, { allowMissingData: true })));
  }
  return out;
}

/**
 * Every component's input dims from one description of the images: latent size from the VAE's own
 * down-sampling factor (measured on its graph), text length from the text encoder's position table,
 * widths the inputs leave symbolic from the weights that read them, batch doubled for the UNet and
 * ControlNet under classifier-free guidance. Inconsistent dims (an image size the UNet cannot halve
 * often enough) are refused, naming the node where they contradict.
 */
export function planDims(p: Pipeline, want: PipelineShape, overrides: DimOverrides = new Map()): DimPlan {
  const models = new Map(p.components.map((c) => [c.name, readModel(c.modelFile, { allowMissingData: true })]));
  const notes: string[] = [];
  const batch = positive(want.batch ?? 1, '--batch', p.dir);
  const cfg = want.cfg ?? true;
  const vae = vaeFactor(p);
  notes.push(vae.note);
  const f = vae.factor;
  for (const [k, v] of [['--height', want.height], ['--width', want.width]] as const) {
    if (v !== undefined && (positive(v, k, p.dir) % f !== 0)) throw new SdcError(p.dir, `${k} ${v} is not a multiple of the VAE's down-sampling factor ${f} (${vae.note})`);
  }
  const height = want.height ?? DEFAULT_LATENT[0] * f;
  const width = want.width ?? DEFAULT_LATENT[1] * f;
  const text = textLength(p, models);
  if (text.note) notes.push(text.note);
  const latent = [height / f, width / f];
  const denoiserBatch = cfg ? 2 * batch : batch;

  const components = new Map<string, ComponentDims>();
  for (const c of p.components) {
    const model = models.get(c.name)!;
    const given = overrides.get(c.name) ?? new Map<string, number[]>();
    const known = new Map<string, (number | null)[]>();
    const cnotes: string[] = [];
    for (const v of realInputs(model)) {
      const dims = given.get(v.name) ?? roleDims(c.role, v, { batch, denoiserBatch, height, width, latent, textLength: text.length });
      known.set(v.name, dims);
    }
    const solved = solveOpenDims(model, known, cnotes);
    if (solved.unresolved) {
      components.set(c.name, { dims: null, unresolved: solved.unresolved, notes: cnotes });
      continue;
    }
    const dims = solved.dims!;
    const conflicts = analyzeAt(model, dims).conflicts;
    if (conflicts.length) {
      const at = [...dims].map(([k, d]) => `${k}=${d.join('x') || 'scalar'}`).join(',');
      throw new SdcError(c.modelFile, `cannot run at ${at} (from ${height}x${width}, batch ${batch}${cfg ? ', guidance' : ''}): node '${conflicts[0].node.name}' (${conflicts[0].node.opType}): ${conflicts[0].problem}; choose another --height/--width or give --shape ${c.name}:INPUT=DIMS`);
    }
    components.set(c.name, { dims, unresolved: null, notes: cnotes });
  }
  return { height, width, batch, cfg, vaeFactor: f, textLength: text.length, components, notes };
}

function positive(n: number, what: string, file: string): number {
  if (!Number.isSafeInteger(n) || n < 1 || n > 2 ** 20) throw new SdcError(file, `${what} takes a whole number from 1 to ${2 ** 20} (got ${n})`);
  return n;
}

interface Sizes {
  batch: number;
  denoiserBatch: number;
  height: number;
  width: number;
  latent: number[];
  textLength: number | null;
}

/**
 * The dims an input of a component with this role takes, by Optimum's input names; null where the role
 * does not say (the solver reads those from the weights), a declared static dim kept as declared.
 */
function roleDims(role: Role, v: Value, s: Sizes): (number | null)[] {
  const declared = v.shape ?? [];
  const keep = (want: (number | null)[]) => declared.map((d, i) => (typeof d === 'number' ? d : want[i] ?? null));
  const rank = declared.length;
  switch (role) {
    case 'text-encoder':
      return keep([s.batch, s.textLength]);
    case 'vae-encoder':
      return keep([s.batch, null, s.height, s.width]);
    case 'vae-decoder':
      return keep([s.batch, null, ...s.latent]);
    case 'unet':
    case 'controlnet': {
      const b = s.denoiserBatch;
      if (v.name === 'sample') return keep([b, null, ...s.latent]);
      if (v.name === 'controlnet_cond') return keep([b, null, s.height, s.width]);
      if (v.name === 'encoder_hidden_states') return keep([b, s.textLength, null]);
      // timestep: a scalar, or one per sample ([1] when the export fixed it)
      if (v.name === 'timestep') return keep(rank === 0 ? [] : [b]);
      // the rest is per sample (text_embeds, time_ids, timestep_cond, residuals): batch first, widths from weights
      return keep(rank ? [b] : []);
    }
    default:
      return keep([]);
  }
}

/**
 * Image pixels per latent pixel: the VAE decoder run (in shape analysis) at an 8x8 latent, or the
 * encoder at 64x64 pixels; else the UNet config's sample_size is no help, so 8 (every Stable Diffusion
 * VAE) is assumed and said.
 */
function vaeFactor(p: Pipeline): { factor: number; note: string } {
  const probe = (role: Role, size: number, ratio: (out: number) => number | null): number | null => {
    const c = p.components.find((x) => x.role === role);
    if (!c) return null;
    const model = readModel(c.modelFile, { allowMissingData: true });
    const v = realInputs(model)[0];
    if (!v?.shape || v.shape.length !== 4) return null;
    const dims = new Map([[v.name, v.shape.map((d, i) => (typeof d === 'number' ? d : i === 0 ? 1 : i === 1 ? null : size))]]);
    if (dims.get(v.name)!.some((d) => d === null)) return null;
    const a = analyzeAt(model, dims as Map<string, number[]>);
    const out = a.get(model.graph.outputs[0]).shape;
    const h = out?.[2]?.value;
    return h ? ratio(h) : null;
  };
  const fromDecoder = probe('vae-decoder', 8, (h) => (h % 8 === 0 && h >= 8 ? h / 8 : null));
  if (fromDecoder) return { factor: fromDecoder, note: `VAE factor ${fromDecoder}: the decoder turns 8x8 latents into ${8 * fromDecoder}x${8 * fromDecoder} pixels` };
  const fromEncoder = probe('vae-encoder', 64, (h) => (64 % h === 0 ? 64 / h : null));
  if (fromEncoder) return { factor: fromEncoder, note: `VAE factor ${fromEncoder}: the encoder turns 64x64 pixels into ${64 / fromEncoder}x${64 / fromEncoder} latents` };
  return { factor: 8, note: 'VAE factor 8 assumed: no VAE component whose output dims follow from its input dims' };
}

/**
 * Tokens per prompt: the rows of the text encoder's position-embedding table (a Gather from a 2-D
 * weight whose indices are not the token ids), else its config.json's max_position_embeddings.
 */
function textLength(p: Pipeline, models: Map<string, Model>): { length: number | null; note: string | null } {
  const encoders = p.components.filter((c) => c.role === 'text-encoder');
  if (!encoders.length) return { length: null, note: null };
  const lengths: number[] = [];
  for (const c of encoders) {
    const model = models.get(c.name)!;
    const ids = model.graph.inputs.find((v) => v.name === 'input_ids');
    const fromIds = (x: Value | null): boolean => {
      for (let k = 0; x && k < 6; k++) {
        if (x === ids) return true;
        const n: Node | null = x.producer;
        if (!n || !['Cast', 'Reshape', 'Flatten', 'Unsqueeze', 'Squeeze', 'Identity'].includes(n.opType)) return false;
        x = n.inputs[0];
      }
      return false;
    };
    const tables = model.graph.nodes.filter((n) => n.opType === 'Gather' && n.domain === '' && n.inputs[0]?.constant?.dims.length === 2 && !fromIds(n.inputs[1]));
    if (tables.length) {
      lengths.push(Math.min(...tables.map((n) => n.inputs[0]!.constant!.dims[0])));
      continue;
    }
    const config = readJsonObject(path.join(path.dirname(c.modelFile), 'config.json'));
    const max = config?.max_position_embeddings;
    if (typeof max === 'number' && Number.isSafeInteger(max) && max > 0) lengths.push(max);
  }
  if (!lengths.length) return { length: null, note: 'text length: no position table found in the text encoders' };
  const length = Math.min(...lengths);
  return { length, note: `text length ${length}: the text encoder's position table` };
}

