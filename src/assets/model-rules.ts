import * as path from 'path';
import { CompileOptions, ShapeSpec } from '../compiler/compile';
import { SdcError } from '../ir/errors';
import { MODES, Mode } from '../rewrite/pass';
import { TARGETS, TargetName } from '../targets';

/** What a build step may choose per model. */
export interface ModelOptions {
  mode?: Mode;
  target?: TargetName;
  precision?: CompileOptions['precision'];
  /** Static input dims (`sample=1x4x64x64,...`, a Map or an object); needed by reduce-overhead/max-autotune for dynamic models. */
  shapes?: ShapeSpec | null;
  /** Compare a newly compiled model with its source on this many input sets before keeping it (0: no). */
  check?: number;
}

/**
 * Options for the models a pattern matches. A pattern with a `/` is matched against the model's path
 * relative to the project root (posix separators); one without, against its file name. `*` stays
 * within a path segment, `**` crosses them, `?` is one character. Later rules override earlier ones.
 */
export interface ModelRule extends ModelOptions {
  include: string | RegExp | (string | RegExp)[];
}

export interface ResolvedModelOptions {
  mode: Mode;
  target: TargetName;
  precision: NonNullable<CompileOptions['precision']>;
  shapes: string | null;
  check: number;
}

export function globToRegExp(glob: string): RegExp {
  let re = '';
  for (let i = 0; i < glob.length; i++) {
    const c = glob[i];
    if (c === '*' && glob[i + 1] === '*') {
      // `**/` may match no folder at all
      if (glob[i + 2] === '/') {
        re += '(?:.*/)?';
        i += 2;
      } else {
        re += '.*';
        i += 1;
      }
    } else if (c === '*') re += '[^/]*';
    else if (c === '?') re += '[^/]';
    else re += c.replace(/[.+^${}()|[\]\\]/g, '\\$&');
  }
  return new RegExp(`^${re}$`);
}

function matches(pattern: string | RegExp, rel: string): boolean {
  if (pattern instanceof RegExp) return pattern.test(rel);
  const subject = pattern.includes('/') ? rel : path.posix.basename(rel);
  return globToRegExp(pattern.replace(/^\.\//, '')).test(subject);
}

/** Shapes as one canonical string (the cache key and the CLI's `--shape` form). */
export function shapesToString(spec: ShapeSpec | null | undefined): string | null {
  if (spec === null || spec === undefined) return null;
  if (typeof spec === 'string') return spec.trim() || null;
  const entries = spec instanceof Map ? [...spec.entries()] : Object.entries(spec);
  return entries.map(([k, dims]) => `${k}=${dims.join('x')}`).join(',') || null;
}

/** Checks one set of options as given by a user (a plugin option, a query string), naming `where`. */
export function validateModelOptions(o: ModelOptions, where: string): void {
  if (o.mode !== undefined && !MODES.includes(o.mode)) throw new SdcError(where, `unknown mode '${o.mode}' (one of ${MODES.join(', ')})`);
  if (o.target !== undefined && !TARGETS.includes(o.target)) throw new SdcError(where, `unknown target '${o.target}' (one of ${TARGETS.join(', ')})`);
  if (o.precision !== undefined && o.precision !== 'fp32' && o.precision !== 'fp16') throw new SdcError(where, `unknown precision '${o.precision}' (fp32 or fp16)`);
  if (o.check !== undefined && !(Number.isInteger(o.check) && o.check >= 0)) throw new SdcError(where, `check must be a whole number of input sets, not '${o.check}'`);
}

/**
 * The options for one model: the defaults, then every rule whose pattern matches `rel` in order, then
 * `explicit` (e.g. an import's query string) last.
 */
export function optionsFor(rel: string, rules: ModelRule[] = [], defaults: ModelOptions = {}, explicit: ModelOptions = {}): ResolvedModelOptions {
  const posix = rel.split(path.sep).join('/');
  let merged: ModelOptions = { ...defaults };
  for (const rule of rules) {
    const patterns = Array.isArray(rule.include) ? rule.include : [rule.include];
    if (!patterns.some((p) => matches(p, posix))) continue;
    const { include: _include, ...opts } = rule;
    merged = { ...merged, ...definedOnly(opts) };
  }
  merged = { ...merged, ...definedOnly(explicit) };
  return {
    mode: merged.mode ?? 'default',
    target: merged.target ?? 'cpu',
    precision: merged.precision ?? 'fp32',
    shapes: shapesToString(merged.shapes),
    check: merged.check ?? 0,
  };
}

function definedOnly<T extends object>(o: T): Partial<T> {
  return Object.fromEntries(Object.entries(o).filter(([, v]) => v !== undefined)) as Partial<T>;
}
