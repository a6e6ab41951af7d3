import * as path from 'path';
import { analyzeShapes, ShapeAnalysis } from '../analysis/shapes';
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
/** Ops that pass a tensor's values through unchanged in shape (the solver looks through them). */
const PASS_THROUGH = new Set(['Cast', 'Identity']);
const ELEMENTWISE = new Set(['Add', 'Sub', 'Mul', 'Div']);

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
    const solved = solve(model, known, cnotes);
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

function realInputs(model: Model): Value[] {
  return model.graph.inputs.filter((v) => !v.initializer);
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

/** A private copy's input types set to `dims`, then shape analysis: what every value's dims become. */
function analyzeAt(model: Model, dims: Map<string, (number | null)[]>): ShapeAnalysis {
  for (const v of realInputs(model)) {
    const d = dims.get(v.name);
    if (d && v.type?.kind === 'tensor') v.type = { ...v.type, shape: d.map((x, i) => x ?? `sdc_unknown_${v.name}_${i}`) };
  }
  return analyzeShapes(model);
}

/**
 * Fill the dims the roles leave open from the weights that read them: a Conv's input channels, a
 * MatMul's or Gemm's contraction width (also through a Concat with other known widths: SDXL's
 * `text_embeds`, whose axis Optimum names `sequence_length`), and an input added to a value of known
 * dims (ControlNet residuals). Repeated while it learns something.
 */
function solve(model: Model, known: Map<string, (number | null)[]>, notes: string[]): { dims: Map<string, number[]>; unresolved: null } | { dims: null; unresolved: string } {
  const inputs = realInputs(model);
  for (let round = 0; round < 4; round++) {
    const open = inputs.filter((v) => known.get(v.name)!.some((d) => d === null));
    if (!open.length) break;
    const a = analyzeAt(model, known);
    let learned = false;
    for (const v of open) {
      const dims = known.get(v.name)!;
      for (const [i, d] of fromReaders(v, dims.length, a)) {
        if (dims[i] !== null || d === null || d < 1) continue;
        dims[i] = d;
        learned = true;
        notes.push(`${v.name} dim ${i} = ${d}, from the weights that read it`);
      }
    }
    if (!learned) break;
  }
  const open = inputs.find((v) => known.get(v.name)!.some((d) => d === null));
  if (open) {
    const d = known.get(open.name)!;
    return { dims: null, unresolved: `${open.name} [${(open.shape ?? []).join(', ')}]: dim${d.filter((x) => x === null).length > 1 ? 's' : ''} ${d.map((x, i) => (x === null ? i : -1)).filter((i) => i >= 0).join(', ')} follow from no pipeline size or weight` };
  }
  return { dims: new Map([...known].map(([k, d]) => [k, d as number[]])), unresolved: null };
}

/** What the readers of input `v` (looked at through Cast/Identity) say its dims must be. */
function fromReaders(v: Value, rank: number, a: ShapeAnalysis): [number, number | null][] {
  const out: [number, number | null][] = [];
  const dim = (x: Value | null | undefined, i: number) => {
    const s = a.get(x).shape;
    if (!s) return null;
    const k = i < 0 ? s.length + i : i;
    return s[k]?.value ?? null;
  };
  for (const { node: n, index } of readers(v)) out.push(...fromReader(n, index, rank, a, dim));
  return out;
}

function fromReader(n: Node, index: number, rank: number, a: ShapeAnalysis, dim: (x: Value | null | undefined, i: number) => number | null): [number, number | null][] {
  const w = n.inputs[1]?.constant;
  if (n.domain === '' && n.opType === 'Conv' && index === 0 && w && w.dims.length >= 2) return [[1, w.dims[1] * n.int('group', 1)]];
  if (n.domain === '' && n.opType === 'MatMul' && index === 0 && w && w.dims.length >= 2) return [[rank - 1, w.dims[w.dims.length - 2]]];
  if (n.domain === '' && n.opType === 'Gemm' && index === 0 && w && w.dims.length === 2) return [[rank - 1, w.dims[n.int('transB', 0) ? 1 : 0]]];
  if (n.domain === '' && n.opType === 'Concat' && rank >= 1) {
    const axis = n.int('axis', 0);
    if (axis !== -1 && axis !== rank - 1) return [];
    const others = n.inputs.filter((_, i) => i !== index);
    const widths = others.map((o) => dim(o, -1));
    if (widths.some((wd) => wd === null)) return [];
    const total = readers(n.outputs[0]).map((u) => (u.index === 0 && u.node.domain === '' ? contraction(u.node) : null)).find((k) => k !== null);
    if (total === undefined || total === null) return [];
    return [[rank - 1, total - widths.reduce((sum: number, wd) => sum + wd!, 0)]];
  }
  if (n.domain === '' && ELEMENTWISE.has(n.opType)) {
    const other = n.inputs[1 - index];
    const s = a.get(other).shape;
    if (!other || !s || s.length !== rank) return [];
    return s.map((d, i) => [i, d.value] as [number, number | null]).filter(([, d]) => d !== null && d > 1);
  }
  return [];
}

/** The readers of `v`, looking through Cast and Identity. */
function readers(v: Value, depth = 0): { node: Node; index: number }[] {
  return v.uses.flatMap((u) => (PASS_THROUGH.has(u.node.opType) && depth < 4 ? readers(u.node.outputs[0], depth + 1) : [u]));
}

/** The contraction width of a MatMul or Gemm with a constant weight. */
function contraction(n: Node): number | null {
  const w = n.inputs[1]?.constant;
  if (!w || w.dims.length < 2) return null;
  if (n.opType === 'MatMul') return w.dims[w.dims.length - 2];
  if (n.opType === 'Gemm' && w.dims.length === 2) return w.dims[n.int('transB', 0) ? 1 : 0];
  return null;
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

