import { Graph, Node } from '../ir/graph';
import { Model } from '../ir/model';
import { Target } from '../targets';

export type Mode = 'default' | 'reduce-overhead' | 'max-autotune';
export type Precision = 'fp32' | 'fp16';
export const MODES: Mode[] = ['default', 'reduce-overhead', 'max-autotune'];

/** What a pass did: whether anything changed, and counts worth reporting (sites fused, nodes folded...). */
export interface PassResult {
  changed: boolean;
  counts?: Record<string, number>;
}

/** One site a pass considered, for `--explain`: done, or why not. */
export interface Explanation {
  pass: string;
  /** The rule that considered the site (fusion passes). */
  rule?: string;
  site: string;
  status: 'applied' | 'skipped';
  reason?: string;
}

/** What a calibration run saw of one float tensor (src/runtime/calibrate.ts), by value name. */
export interface ValueRange {
  maxAbs: number;
  /** Fraction of its nonzero values below fp16's smallest normal number (2^-14): they lose precision or flush. */
  tinyFraction: number;
}

export interface PassContext {
  model: Model;
  target: Target;
  mode: Mode;
  /** Static dims by graph input name (reduce-overhead specialization), when a shape key was given. */
  shapes: Map<string, number[]> | null;
  /** Element type of the computation (convert-fp16) and of the graph's inputs and outputs. */
  precision?: Precision;
  ioTypes?: Precision;
  /** Value ranges measured by a calibration run of the original model (convert-fp16 keeps out-of-range regions fp32). */
  ranges?: Map<string, ValueRange> | null;
  /** Op types or node names the user keeps in float32 (`--keep-fp32`). */
  keepFp32?: string[];
  explain(node: Node | string, status: 'applied' | 'skipped', reason?: string, rule?: string): void;
}

export interface Pass {
  name: string;
  /** One line for --help and the report. */
  description: string;
  /**
   * The ops the pass creates as its product (`domain::op`), each with an op record (src/ops) — glue it
   * adds around them (Transpose, Reshape, Cast) included. Rule passes take theirs from the rules.
   */
  emits?(target: Target, opset: number): string[];
  /** The counts that are fused sites, with their headings (CLI summary, bench tables). */
  sites?: { counter: string; label: string }[];
  /** null when the pass can do something on this target, else why not (the pipeline then drops it and says so). */
  appliesTo?(target: Target): string | null;
  /**
   * Where it applies, it rewrites or reorders most of a model's weight bytes (a new kernel layout, merged
   * or converted weights): the output's data file cannot start as a copy of the source's, so a compile
   * planning it does not copy ahead (compile.ts).
   */
  movesWeights?: boolean;
  run(graph: Graph, ctx: PassContext): PassResult;
}
