import { DataType, ORT_TYPE, dtypeName } from '../ir/dtype';
import { opKey } from '../ops';
import { KERNELS, Kernel, Layout, TARGETS, TargetName } from './kernels';
import { TargetTraits, targetTraits } from './traits';

export { KERNELS, TARGETS, TargetName, Kernel } from './kernels';
export { TargetTraits, targetTraits } from './traits';

/** What a rule is about to emit, for `Target.accepts`: the main input's element type, sizes, layout. */
export interface KernelUse {
  dtype?: DataType | null;
  sizes?: Record<string, number | null | undefined>;
  layout?: Layout;
  /** Optional inputs or attributes the use sets (`attention_bias`). */
  options?: string[];
}

/** float32, float16: the names onnxruntime users read. */
const typeName = (dt: DataType) => ORT_TYPE[dt] ?? dtypeName(dt);

const key = opKey;

export class Target {
  readonly traits: TargetTraits;

  constructor(readonly name: TargetName) {
    this.traits = targetTraits(name);
  }

  kernel(domain: string, op: string): Kernel | null {
    return KERNELS[key(domain, op)]?.targets[this.name] ?? null;
  }

  /** Can this target run `domain::op`? Unknown contrib ops are refused: emitting one would be a bug. */
  runs(domain: string, op: string): boolean {
    const k = key(domain, op);
    if (KERNELS[k]) return !!KERNELS[k].targets[this.name];
    return k.startsWith('ai.onnx::');
  }

  /** null when the target runs the op, else a sentence saying it does not (for --explain). */
  lacks(domain: string, op: string): string | null {
    return this.runs(domain, op) ? null : `${this.name} has no kernel for ${key(domain, op)}`;
  }

  /** null when the target's kernel takes this use of the op, else why not. */
  accepts(domain: string, op: string, use: KernelUse): string | null {
    const missing = this.lacks(domain, op);
    if (missing) return missing;
    const k = this.kernel(domain, op);
    if (!k) return null;
    const name = `${this.name}'s ${op} kernel`;
    if (use.dtype !== undefined && (use.dtype === null || !k.dtypes.includes(use.dtype))) {
      return `${name} takes ${k.dtypes.map(typeName).join('/')}${use.dtype === null ? ' (element type unknown)' : `, not ${typeName(use.dtype)}`}`;
    }
    for (const [size, allowed] of Object.entries(k.sizes ?? {})) {
      const got = use.sizes?.[size];
      if (got === null || got === undefined || !allowed.includes(got)) return `${name} takes ${size} ${allowed.join('/')} (got ${got ?? 'unknown'})`;
    }
    for (const [size, step] of Object.entries(k.multiples ?? {})) {
      const got = use.sizes?.[size];
      if (got === null || got === undefined || got % step !== 0) return `${name} takes ${size} a multiple of ${step} (got ${got ?? 'unknown'})`;
    }
    if (use.layout && k.layouts && !k.layouts.includes(use.layout)) return `${name} computes in ${k.layouts.join('/')}, not ${use.layout}`;
    const missingOption = use.options?.find((o) => !k.options?.includes(o));
    if (missingOption) return `${name} does not take ${missingOption}${k.options?.length ? ` (it takes ${k.options.join(', ')})` : ''}`;
    return null;
  }
}

export function parseTarget(name: string): Target {
  if (!(TARGETS as string[]).includes(name)) throw new Error(`unknown target '${name}' (choose ${TARGETS.join(', ')})`);
  return new Target(name as TargetName);
}

function cell(k: Kernel | undefined): string {
  if (!k) return 'no';
  const parts = [k.dtypes.map(typeName).join('/')];
  for (const [size, allowed] of Object.entries(k.sizes ?? {})) parts.push(`${size} ${allowed.join('/')}`);
  for (const [size, step] of Object.entries(k.multiples ?? {})) parts.push(`${size} multiple of ${step}`);
  if (k.layouts) parts.push(k.layouts.join('/'));
  if (k.options) parts.push(k.options.join(', '));
  return `yes: ${parts.join('; ')}`;
}

/** The kernel table as Markdown (docs/targets.md embeds it; a test keeps the two equal). */
export function renderTargetTable(): string {
  const rows = Object.entries(KERNELS).map(([op, e]) => `| ${op} | ${TARGETS.map((t) => cell(e.targets[t])).join(' | ')} | ${e.note ?? ''} |`);
  return [`| op | ${TARGETS.join(' | ')} | note |`, `|---|${TARGETS.map(() => '---').join('|')}|---|`, ...rows].join('\n');
}
