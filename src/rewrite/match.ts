import { Node, Value } from '../ir/graph';
import { isDefaultDomain } from '../ir/query';

/**
 * One matcher for every fusion. A pattern is a small tree describing the math backwards from a root
 * value: which op produces it, what its inputs must be, what to capture. Fusions write patterns, not
 * parent walks by input index; an exporter spelling something differently is one more alternative.
 */
export type Pattern =
  | { kind: 'op'; ops: string[]; domain: string; inputs: Pattern[] | null; capture?: string; commutative: boolean; where?: (n: Node, m: Match) => boolean; singleUse: boolean }
  | { kind: 'any'; capture?: string; where?: (v: Value, m: Match) => boolean }
  | { kind: 'alt'; options: Pattern[] }
  | { kind: 'chain'; capture: string; step: (n: Node) => number | null; inner: Pattern; max: number; ops: string[] | null; singleUse: boolean };

export interface Match {
  /** Captured values (from any/op patterns: the op's output) and nodes, by name. */
  values: Record<string, Value>;
  nodes: Record<string, Node>;
  /** Nodes walked through by chain patterns, in order from the inner end outwards. */
  chains: Record<string, Node[]>;
  /** Every node the pattern covered. */
  covered: Node[];
}

export interface OpOptions {
  capture?: string;
  domain?: string;
  /** Try the two inputs in both orders (Add, Mul). */
  commutative?: boolean;
  where?: (n: Node, m: Match) => boolean;
  /** The node's output may be read only by the node above it in the pattern (default true). */
  singleUse?: boolean;
}

export const p = {
  op(ops: string | string[], inputs: Pattern[] | null, o: OpOptions = {}): Pattern {
    return { kind: 'op', ops: Array.isArray(ops) ? ops : [ops], domain: o.domain ?? '', inputs, capture: o.capture, commutative: o.commutative ?? false, where: o.where, singleUse: o.singleUse ?? true };
  },
  any(capture?: string, where?: (v: Value, m: Match) => boolean): Pattern {
    return { kind: 'any', capture, where };
  },
  alt(...options: Pattern[]): Pattern {
    return { kind: 'alt', options };
  },
  /**
   * Zero or more nodes of a chain, each continuing through the input index `step` returns (null: not a
   * chain node), ending at `inner`. For scale multiplications and masks between two anchors, and for the
   * reshapes that merge a result back. `ops` names the op types `step` accepts (so a driver knows which
   * nodes can root the pattern); `singleUse: false` lets walked values have other readers, for rules that
   * check what really dies.
   */
  chain(capture: string, step: (n: Node) => number | null, inner: Pattern, o: { max?: number; ops?: string[]; singleUse?: boolean } = {}): Pattern {
    return { kind: 'chain', capture, step, inner, max: o.max ?? 8, ops: o.ops ?? null, singleUse: o.singleUse ?? true };
  },
};

const isDomain = (n: Node, d: string) => (d === '' ? isDefaultDomain(n) : n.domain === d);

function clone(m: Match): Match {
  return { values: { ...m.values }, nodes: { ...m.nodes }, chains: { ...m.chains }, covered: [...m.covered] };
}

/**
 * Why a match failed, at its deepest point (as onnxscript's MatchingTracer): `depth` counts the pattern's
 * op nodes matched on the way down from the root (nodes a chain walked through do not count: a chain
 * of reshapes is not progress), `path` holds every node walked, and `reason` says what the pattern wanted
 * there ("Softmax input 0 is Add, not MatMul"). The driver reports it in --explain.
 */
export interface MatchFailure {
  depth: number;
  reason: string;
  path: Node[];
}

/** Keeps the deepest failure of the matches it is passed to (the first one at that depth). */
export class MatchTracer {
  deepest: MatchFailure | null = null;
  private stack: { node: Node; counts: boolean }[] = [];
  private depth = 0;

  push(node: Node, counts = true): void {
    this.stack.push({ node, counts });
    if (counts) this.depth++;
  }

  pop(): void {
    if (this.stack.pop()?.counts) this.depth--;
  }

  fail(reason: string): null {
    if (!this.deepest || this.depth >= this.deepest.depth) this.deepest = { depth: this.depth, reason, path: this.stack.map((s) => s.node) };
    return null;
  }

  reset(): void {
    this.deepest = null;
    this.stack = [];
    this.depth = 0;
  }
}

/** "Softmax input 0" for the reader of a value, "the root" for the value a match starts at. */
const whereIs = (user: Node | null, index: number) => (user ? `${user.opType} '${user.name}' input ${index}` : 'the root');
const opsText = (ops: string[]) => ops.join('/');

/** Match `pat` against the value `v` (usually a node's output); null when it does not fit. A tracer records why not. */
export function matchValue(pat: Pattern, v: Value | null, m: Match = { values: {}, nodes: {}, chains: {}, covered: [] }, user: Node | null = null, tracer: MatchTracer | null = null): Match | null {
  return walk(pat, v, m, user, 0, tracer ?? SILENT);
}

/** A tracer that keeps nothing, so untraced matches pay nothing for reasons. */
const SILENT = { push() {}, pop() {}, fail: () => null } as unknown as MatchTracer;

function walk(pat: Pattern, v: Value | null, m: Match, user: Node | null, index: number, t: MatchTracer, reader: Node | null = user): Match | null {
  const fail = (why: () => string) => (t === SILENT ? null : t.fail(why()));
  const at = () => whereIs(reader, index);
  if (!v) return fail(() => `${at()} is omitted`);
  switch (pat.kind) {
    case 'any': {
      if (pat.capture && m.values[pat.capture] && m.values[pat.capture] !== v) return fail(() => `${at()} is '${v.name}', but '${pat.capture}' is '${m.values[pat.capture!].name}' elsewhere in the pattern`);
      if (pat.where && !pat.where(v, m)) return fail(() => `${at()} ('${v.name}') is not what '${pat.capture ?? 'the pattern'}' needs`);
      const r = clone(m);
      if (pat.capture) r.values[pat.capture] = v;
      return r;
    }
    case 'alt':
      for (const o of pat.options) {
        const r = walk(o, v, m, user, index, t, reader);
        if (r) return r;
      }
      return null;
    case 'chain': {
      const walked: Node[] = [];
      let cur: Value = v;
      let chainAt = reader;
      let atIndex = index;
      try {
        for (let i = 0; i <= pat.max; i++) {
          // the inner pattern is matched as if read by the chain's own reader (single-use rules apply as
          // there), while a failure is described at the node the chain reached
          const r = walk(pat.inner, cur, m, user, atIndex, t, chainAt);
          if (r) {
            r.chains[pat.capture] = walked.slice().reverse();
            r.covered.push(...walked);
            return r;
          }
          const n = cur.producer;
          // the root value's readers are outside the pattern; a walked value inside it is read once
          const inside = i > 0 || user !== null;
          if (!n || i === pat.max) return null;
          if (inside && pat.singleUse && (cur.uses.length !== 1 || cur.isGraphOutput)) return fail(() => `'${cur.name}' in the '${pat.capture}' chain has ${cur.uses.length} readers (the pattern needs one)`);
          const next = pat.step(n);
          if (next === null || !n.inputs[next]) return null;
          walked.push(n);
          t.push(n, false);
          chainAt = n;
          atIndex = next;
          cur = n.inputs[next]!;
        }
        return null;
      } finally {
        for (let i = 0; i < walked.length; i++) t.pop();
      }
    }
    case 'op': {
      const n = v.producer;
      if (!n) return fail(() => `${at()} is ${v.isGraphInput ? 'a graph input' : v.constant ? 'a constant' : `'${v.name}'`}, not ${opsText(pat.ops)}`);
      if (!pat.ops.includes(n.opType) || !isDomain(n, pat.domain)) return fail(() => `${at()} is ${n.domain && !isDefaultDomain(n) ? `${n.domain} ` : ''}${n.opType}, not ${opsText(pat.ops)}`);
      if (pat.singleUse && user && (v.uses.length !== 1 || v.isGraphOutput)) return fail(() => `${n.opType} '${n.name}' has ${v.uses.length}${v.isGraphOutput ? ' (and a graph output)' : ''} readers; the pattern needs it read once`);
      t.push(n);
      try {
        const tryOrder = (order: number[]): Match | null => {
          let r: Match | null = clone(m);
          if (pat.inputs) {
            if (n.inputs.length < pat.inputs.length) return fail(() => `${n.opType} '${n.name}' has ${n.inputs.length} inputs; the pattern needs ${pat.inputs!.length}`);
            for (let i = 0; i < pat.inputs.length && r; i++) r = walk(pat.inputs[i], n.inputs[order[i]], r, n, order[i], t);
          }
          if (!r) return null;
          if (pat.capture) {
            r.nodes[pat.capture] = n;
            r.values[pat.capture] = v;
          }
          if (pat.where && !pat.where(n, r)) return fail(() => `${n.opType} '${n.name}' is not what '${pat.capture ?? 'the pattern'}' needs (its condition fails)`);
          r.covered.push(n);
          return r;
        };
        const straight = tryOrder(n.inputs.map((_, i) => i));
        if (straight || !pat.commutative || n.inputs.length !== 2) return straight;
        return tryOrder([1, 0]);
      } finally {
        t.pop();
      }
    }
  }
}

/**
 * The op types a node must have to root `pat` (its output is the root value), or null when any node
 * may. A driver tries a rule only at such nodes.
 */
export function rootOps(pat: Pattern): string[] | null {
  switch (pat.kind) {
    case 'op':
      return pat.ops;
    case 'any':
      return null;
    case 'alt': {
      const all = pat.options.map(rootOps);
      return all.some((o) => o === null) ? null : [...new Set(all.flat() as string[])];
    }
    case 'chain': {
      const inner = rootOps(pat.inner);
      return pat.ops && inner ? [...new Set([...pat.ops, ...inner])] : null;
    }
  }
}
