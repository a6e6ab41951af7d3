import { ShapeLookup } from '../analysis/shapes';
import { Graph, NewNode, Node, Value } from '../ir/graph';
import { Model } from '../ir/model';
import { Tensor } from '../ir/tensor';
import { Target } from '../targets';
import { Match, Pattern } from './match';

/** What a rule's check and rewrite may read: the model, the target, shape facts. */
export interface RuleContext {
  model: Model;
  graph: Graph;
  target: Target;
  /** Opset of the default domain. */
  opset: number;
  /**
   * Shape facts, computed at most once per round of the driver. A value a rewrite made in this round
   * answers as the value it replaced; other new values are unknown until the next round.
   */
  shapes: ShapeLookup;
}

/** How a rewrite changes the graph; the driver erases what dies and imports the domains it uses. */
export interface Rewriter {
  /** Add a node (appended; the driver sorts the graph after the round). */
  add(spec: NewNode): Node;
  /** Every reader of `from` reads `to` instead; `to` takes `from`'s type. */
  replace(from: Value, to: Value): void;
  /** A new initializer. */
  constant(name: string, tensor: Tensor): Value;
  /** A new float32 initializer of `dims` from values (per-channel vectors, folded weights). */
  floats(name: string, dims: number[], values: ArrayLike<number>): Value;
  /** A new 1-D int64 initializer (shapes, axes, split sizes). */
  int64s(name: string, values: number[]): Value;
}

/**
 * A fusion: a declarative pattern rooted at the node the driver visits, a check that says why a match
 * cannot be rewritten (or returns the facts the rewrite needs), and the rewrite. `emits` names the ops
 * the rewrite creates (`domain::op`, ai.onnx for the default domain) so the driver can skip the rule,
 * and say so, on a target without kernels for them.
 */
export interface Rule<F = unknown> {
  name: string;
  description: string;
  /** Among rules that can root at the same node, higher is tried first. */
  priority: number;
  pattern: Pattern;
  /** Capture naming the node that identifies the site in --explain (stable across exporters). */
  site: string;
  /** Key of the report count this rule adds to when it applies. */
  counter: string;
  /** The count's heading in the fused-site tables (CLI summary, bench). */
  label: string;
  emits(ctx: RuleContext): string[];
  /** The facts for `rewrite`, or a sentence saying why this match is not rewritten. */
  check(m: Match, ctx: RuleContext): F | string;
  /** Rewrite the match; returns what was done, for --explain. */
  rewrite(m: Match, facts: F, rw: Rewriter, ctx: RuleContext): string;
}

/** Rules typed by their facts go into sets of `Rule` (the driver passes each rule its own facts). */
export function defineRule<F>(r: Rule<F>): Rule {
  return r as unknown as Rule;
}

/**
 * An op that marks where a rule set could apply: one that no rule of the set explained is reported with
 * `reason` (an unfused Softmax, a lone Erf), so --explain accounts for every candidate site.
 */
interface Anchor {
  op: string;
  reason: string;
  /** Report count of such nodes, when worth one. */
  counter?: string;
}

/** Rules applied together as one pass of the pipeline. */
export interface RuleSet {
  name: string;
  description: string;
  rules: Rule[];
  anchors?: Anchor[];
  /** Why the set is not worth running on a target whose kernels could run it (null: it is). */
  appliesTo?(target: Target): string | null;
  /** Its rewrites replace most weight bytes where it applies (Pass.movesWeights). */
  movesWeights?: boolean;
}

/** `com.microsoft::GroupNorm` → ['com.microsoft', 'GroupNorm']; ai.onnx is the default domain ''. */
export function splitOp(ref: string): [string, string] {
  const i = ref.lastIndexOf('::');
  const domain = ref.slice(0, i);
  return [domain === 'ai.onnx' ? '' : domain, ref.slice(i + 2)];
}
