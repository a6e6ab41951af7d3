import * as ort from 'onnxruntime-node';
import { ShapeSpec, toShapeMap } from '../compiler/compile';
import { DataType, ORT_TYPE, dtypeName } from '../ir/dtype';
import { SdcError } from '../ir/errors';
import { toHalfBits } from '../ir/half';
import { Model } from '../ir/model';
import { analyzeAt, solveOpenDims } from '../analysis/solve-dims';
import { Value } from '../ir/graph';

/** Each input's element type as onnxruntime names it (`float32`, `int64`), for syntheticFeeds. */
export function inputTypes(inputs: Value[]): Map<string, string> {
  return new Map(inputs.map((v) => [v.name, v.elemType === null ? 'of no declared type' : ORT_TYPE[v.elemType] ?? dtypeName(v.elemType)]));
}

/**
 * Refuse, naming the model (`file`), an input syntheticFeeds cannot make: the model is the user's, so
 * this is their mistake to hear about before anything compiles, not a crash.
 */
export function refuseUnfeedable(types: Map<string, string>, file: string): void {
  for (const [name, type] of types) {
    if (!(FEED_TYPES as readonly string[]).includes(type)) throw new SdcError(file, `input '${name}' is ${type}: sdc run, bench, inspect --placement and max-autotune make synthetic inputs of types ${FEED_TYPES.join(', ')} only`);
  }
}

/*
 * The one generator of synthetic inputs: `--check`, fp16 calibration, `sdc run` / `sdc bench` /
 * max-autotune (syntheticFeeds) and the tests' helpers all draw their tensors here, so one (seed, set)
 * gives the same tensors everywhere. The conventions, for diffusion models:
 * - floats are uniform in [-1, 1) (`floats: 'uniform'`, the default) or unit Gaussian (`'gaussian'`,
 *   Box–Muller: latent noise and conditioning, what calibration measures ranges on);
 * - an input named like a timestep (`timestep`, `timesteps`, `t`) holds the set's timestep in every
 *   element: TIMESTEPS[set % 3] = 500, 0, 999 (the middle and both ends of the schedule), or `timestep`;
 * - an integer input with a `range` (the rows of the embedding table it indexes, token-ids.ts) holds ids
 *   uniform in [0, range): a text encoder checked on many tokens, not one repeated;
 * - other integer inputs hold 1 (a valid index, token id or count), bool inputs true (masks on);
 * - one xorshift32 stream per input set, seeded by `seed` and `set`, read input by input in the order
 *   given (a timestep, an integer input without a range or a bool input reads none of it).
 */

/** The timestep of input set `set` is TIMESTEPS[set % TIMESTEPS.length]. */
export const TIMESTEPS: readonly number[] = [500, 0, 999];
/** The seed when none is given (the golden ratio's bits; set 0 streams from it unchanged). */
const DEFAULT_SEED = 0x9e3779b9;

/** Whether an input is a diffusion timestep, by name. */
const isTimestep = (name: string): boolean => /timestep|^t$/i.test(name);

/** The element types the generator fills (onnxruntime's names). */
export const FEED_TYPES = ['float32', 'float16', 'float64', 'int64', 'int32', 'int16', 'int8', 'uint64', 'uint32', 'uint16', 'uint8', 'bool'] as const;
type FeedType = (typeof FEED_TYPES)[number];

/** A deterministic xorshift32 stream: the one pseudo-random source of synthetic inputs. */
class Rng {
  private s: number;
  constructor(seed: number) {
    this.s = seed >>> 0 || 1;
  }
  /** The next 32 random bits, unsigned. */
  next(): number {
    this.s ^= this.s << 13;
    this.s ^= this.s >>> 17;
    this.s ^= this.s << 5;
    return this.s >>> 0;
  }
  /** Uniform in [-1, 1). */
  uniform(): number {
    return this.next() / 2 ** 31 - 1;
  }
  /** Unit Gaussian (Box–Muller on two draws in (0, 1]). */
  gaussian(): number {
    const u = (this.next() + 1) / 2 ** 32;
    const v = (this.next() + 1) / 2 ** 32;
    return Math.sqrt(-2 * Math.log(u)) * Math.cos(2 * Math.PI * v);
  }
}

/** The stream seed of input set `set`: distinct sets, distinct streams; set 0 is `seed` itself. */
const streamSeed = (seed: number, set: number): number => (seed ^ Math.imul(set, 7919)) >>> 0 || 1;

export interface InputSpec {
  name: string;
  /** onnxruntime's element type name ('float32', 'int64', ...). */
  type: string;
  dims: readonly number[];
  /** Integer inputs: ids uniform in [0, range) instead of 1. */
  range?: number;
}

export interface InputOptions {
  /** Which input set (default 0): picks the timestep and, with `seed`, the random stream. */
  set?: number;
  /** Default DEFAULT_SEED. */
  seed?: number;
  /** 'uniform' in [-1, 1) (default) or 'gaussian' (unit normal). */
  floats?: 'uniform' | 'gaussian';
  /** The timestep inputs' value (every element), or one value per element; default TIMESTEPS[set % 3]. */
  timestep?: number | readonly number[];
}

/** One deterministic input set for inputs of the given names, types and dims (the conventions above). */
export function syntheticInputs(specs: readonly InputSpec[], o: InputOptions = {}): Record<string, ort.Tensor> {
  const set = o.set ?? 0;
  const rng = new Rng(streamSeed(o.seed ?? DEFAULT_SEED, set));
  const draw = o.floats === 'gaussian' ? () => rng.gaussian() : () => rng.uniform();
  const t = o.timestep ?? TIMESTEPS[set % TIMESTEPS.length];
  const feeds: Record<string, ort.Tensor> = {};
  for (const { name, type, dims, range } of specs) {
    if (!(FEED_TYPES as readonly string[]).includes(type)) throw new Error(`synthetic inputs are ${FEED_TYPES.join(', ')}; '${name}' is ${type}`);
    const n = dims.reduce((a, b) => a * b, 1);
    if (typeof t !== 'number' && isTimestep(name) && t.length !== n) throw new Error(`'${name}' has ${n} elements; ${t.length} timesteps were given`);
    const ids = range ? () => Math.floor((rng.next() / 2 ** 32) * range) : () => 1;
    const value: (i: number) => number = isTimestep(name) ? (i) => (typeof t === 'number' ? t : t[i]) : type.startsWith('float') ? draw : ids;
    feeds[name] = new ort.Tensor(type as FeedType, fill(type as FeedType, n, value), [...dims]);
  }
  return feeds;
}

/** What syntheticInputs puts in one input, for people (`--check`'s report); `table`: the table a range indexes. */
export function describeSynthetic(spec: InputSpec, table?: string): string {
  if (isTimestep(spec.name)) return `timesteps ${TIMESTEPS.join(', ')} by set`;
  if (spec.type.startsWith('float')) return 'uniform in [-1, 1)';
  if (spec.type === 'bool') return 'true';
  return spec.range ? `ids uniform in [0, ${spec.range})${table ? ` (the rows of '${table}')` : ''}` : '1';
}

function fill(type: FeedType, n: number, value: (i: number) => number): ort.Tensor.DataType {
  switch (type) {
    case 'float32': return Float32Array.from({ length: n }, (_, i) => value(i));
    case 'float64': return Float64Array.from({ length: n }, (_, i) => value(i));
    case 'float16': return Uint16Array.from({ length: n }, (_, i) => toHalfBits(value(i)));
    case 'int64': return BigInt64Array.from({ length: n }, (_, i) => BigInt(value(i)));
    case 'uint64': return BigUint64Array.from({ length: n }, (_, i) => BigInt(value(i)));
    case 'int32': return Int32Array.from({ length: n }, (_, i) => value(i));
    case 'uint32': return Uint32Array.from({ length: n }, (_, i) => value(i));
    case 'int16': return Int16Array.from({ length: n }, (_, i) => value(i));
    case 'uint16': return Uint16Array.from({ length: n }, (_, i) => value(i));
    case 'int8': return Int8Array.from({ length: n }, (_, i) => value(i));
    case 'uint8': return Uint8Array.from({ length: n }, (_, i) => value(i));
    case 'bool': return Uint8Array.from({ length: n }, (_, i) => (value(i) ? 1 : 0));
  }
}

/** The model's graph inputs (not initializers) at `dims`, with their element types; `purpose` names the caller in errors. */
export function modelInputSpecs(model: Model, dims: Map<string, number[]>, purpose: string): InputSpec[] {
  return model.graph.inputs
    .filter((v) => !v.initializer)
    .map((v) => {
      const type = ORT_TYPE[v.elemType ?? DataType.UNDEFINED];
      if (!type || !(FEED_TYPES as readonly string[]).includes(type)) {
        throw new SdcError(model.source, `${purpose} feeds ${FEED_TYPES.join(', ')} inputs; '${v.name}' is ${DataType[v.elemType ?? 0] ?? v.elemType}`);
      }
      return { name: v.name, type, dims: dims.get(v.name)! };
    });
}

/** `n` floats uniform in [-1, 1) from the stream of `seed` (weights and inputs of models built in code). */
export function randomFloats(n: number, seed = 1): Float32Array {
  const rng = new Rng(seed);
  return Float32Array.from({ length: n }, () => rng.uniform());
}

/**
 * Input set 0 (timestep 500) at the given dims: `sdc run`, `sdc bench`, max-autotune and the benchmarks.
 * `types` maps input names to onnxruntime type names (float32 where absent).
 */
export function syntheticFeeds(shapes: Map<string, number[]>, types: Map<string, string>, file = ''): Record<string, ort.Tensor> {
  refuseHugeFeeds(shapes, file, '--shape');
  refuseUnfeedable(new Map([...shapes.keys()].map((name) => [name, types.get(name) ?? 'float32'])), file);
  return syntheticInputs([...shapes].map(([name, dims]) => ({ name, type: types.get(name) ?? 'float32', dims })));
}

/**
 * Dims to check at: the given shapes, else each input's static dims, with symbolic ones read from the
 * weights that read the input where they say (a Conv's channels, a MatMul's width, a constant table it is
 * added to: a position table fixes the sequence length), and the rest at 1 for a batch and 8 otherwise
 * (8 survives three stride-2 downsamplings: SD1.5 latents, sequence lengths). One symbol, one value.
 */
export function checkDims(model: Model, shapes: ShapeSpec | null | undefined, file: string): { dims: Map<string, number[]>; derived: boolean } {
  const given = shapes ? toShapeMap(shapes, file, model) : null;
  const dims = new Map<string, number[]>();
  const open = new Map<string, (number | null)[]>();
  for (const v of model.graph.inputs.filter((i) => !i.initializer)) {
    const g = given?.get(v.name);
    if (g) dims.set(v.name, g);
    else if (!v.shape) throw new SdcError(file, `input '${v.name}' has no declared shape: give --shape to check at`);
    else open.set(v.name, v.shape.map((d) => (typeof d === 'number' ? d : null)));
  }
  const derived = [...open.values()].some((d) => d.includes(null));
  if (derived) {
    // the solver writes into the arrays of `open` (the map shares them)
    solveOpenDims(model, new Map([...dims, ...open]), []);
    const bySymbol = new Map<string, number>();
    for (const v of model.graph.inputs) v.shape?.forEach((d, i) => {
      const got = open.get(v.name)?.[i];
      if (typeof d === 'string' && typeof got === 'number' && !bySymbol.has(d)) bySymbol.set(d, got);
    });
    const defaulted = new Map<string, number[]>();
    for (const v of model.graph.inputs) {
      const o = open.get(v.name);
      if (!o) continue;
      dims.set(v.name, o.map((d, i) => {
        if (d !== null) return d;
        const known = bySymbol.get(String(v.shape![i]));
        if (known !== undefined) return known;
        if (/batch|^n$|^b$/i.test(String(v.shape![i]))) return 1;
        defaulted.set(v.name, [...(defaulted.get(v.name) ?? []), i]);
        return 8;
      }));
    }
    fitDefaults(model, dims, defaulted);
  } else for (const [name, d] of open) dims.set(name, d as number[]);
  refuseHugeFeeds(dims, file, given ? '--shape' : 'the dims --check chose');
  return { dims, derived };
}

/** Factors tried on an input's defaulted dims: a ControlNet's conditioning image is the latent times 8 (2 in tiny ones). */
const FIT_FACTORS = [2, 4, 8];

/**
 * Where the chosen dims make sizes clash (a ControlNet's `controlnet_cond` at the latent's 8×8 when its
 * embedding downsamples it), scale one input's defaulted dims together by 2, 4 or 8 until sdc's shape
 * analysis finds no clash; left as they are when nothing fits (the check then says the original refuses them).
 */
function fitDefaults(model: Model, dims: Map<string, number[]>, defaulted: Map<string, number[]>): void {
  const clashes = (d: Map<string, number[]>) => analyzeAt(model, d).conflicts.some((c) => c.certain);
  if (!defaulted.size || !clashes(dims)) return;
  for (const [name, at] of defaulted) {
    for (const f of FIT_FACTORS) {
      const trial = new Map(dims);
      trial.set(name, dims.get(name)!.map((d, i) => (at.includes(i) ? d * f : d)));
      if (!clashes(trial)) {
        dims.set(name, trial.get(name)!);
        return;
      }
    }
  }
}

/** Values sdc makes for one synthetic input at most (8 GiB of float32): past it a typed array cannot be made. */
const MAX_FEED_VALUES = 2 ** 31;

/** Dims whose synthetic input could not be allocated are the user's to change, said before anything runs. */
export function refuseHugeFeeds(dims: Map<string, number[]>, file: string, what: string): void {
  for (const [name, d] of dims) {
    const n = d.reduce((a, b) => a * b, 1);
    if (n > MAX_FEED_VALUES) throw new SdcError(file, `${what} makes '${name}' ${d.join('x')}: ${n} values, more than sdc makes for one synthetic input (${MAX_FEED_VALUES}); give smaller dims`);
  }
}
