import { analyzeShapes, ShapeAnalysis, ShapeLookup } from '../analysis/shapes';
import { Graph, Node, Value } from '../ir/graph';
import { DataType } from '../ir/dtype';
import { isDefaultDomain } from '../ir/query';
import { Tensor } from '../ir/tensor';
import { Target } from '../targets';
import { MatchFailure, MatchTracer, matchValue, rootOps } from './match';
import { Pass, PassContext, PassResult } from './pass';
import { Rule, RuleContext, RuleSet, Rewriter, splitOp } from './rule';

/** Rounds per graph: a rewrite can expose a site for another rule (GroupNorm, then its SiLU tail). */
const MAX_ROUNDS = 8;

/**
 * A pattern that matched this many op nodes before it failed is a near miss worth explaining (the root
 * alone matching is every Add or Mul of the graph for some rule).
 */
const NEAR_MISS_DEPTH = 3;

interface Verdict {
  rule: string;
  site: string;
  status: 'applied' | 'skipped';
  reason: string;
}

/** The ops a rule emits that the target has no kernel for, as the first such sentence (or null). */
function missingKernel(r: Rule, ctx: RuleContext): string | null {
  for (const ref of r.emits(ctx)) {
    const [domain, op] = splitOp(ref);
    const why = ctx.target.lacks(domain, op);
    if (why) return why;
  }
  return null;
}

/** Shape facts before a round has computed any: everything unknown. */
const NO_SHAPES: ShapeLookup = { get: () => ({ dtype: null, shape: null, content: null, constant: null }) };

function contextFor(graph: Graph, pctx: PassContext): RuleContext {
  return { model: pctx.model, graph, target: pctx.target, opset: pctx.model.opset('') ?? 0, shapes: NO_SHAPES };
}

/**
 * Apply a rule set to a graph and every subgraph, greedily: each round visits the nodes consumers first
 * (so the largest pattern, rooted furthest down, is tried before the patterns inside it) and tries, at
 * each node, the rules that can root there by priority; the first whose check passes rewrites. What the
 * rewrite leaves unread is erased at once. Rounds repeat, with fresh shape facts, until one changes
 * nothing. Every check that fails is explained, once per rule and site.
 */
export function applyRuleSet(set: RuleSet, root: Graph, pctx: PassContext): PassResult {
  const counts: Record<string, number> = {};
  for (const r of set.rules) counts[r.counter] ??= 0;
  const verdicts = new Map<string, Verdict>();
  const probe = contextFor(root, pctx);
  const active: Rule[] = [];
  for (const r of [...set.rules].sort((a, b) => b.priority - a.priority)) {
    const missing = missingKernel(r, probe);
    if (missing) pctx.explain(`(rule ${r.name})`, 'skipped', missing, r.name);
    else active.push(r);
  }
  const byOp = new Map<string, Rule[]>();
  const anywhere: Rule[] = [];
  for (const r of active) {
    const ops = rootOps(r.pattern);
    if (!ops) anywhere.push(r);
    else for (const op of ops) byOp.set(op, [...(byOp.get(op) ?? []), r]);
  }
  const rulesAt = (n: Node): Rule[] => {
    const own = byOp.get(n.opType) ?? [];
    return anywhere.length ? [...own, ...anywhere].sort((a, b) => b.priority - a.priority) : own;
  };
  const record = (v: Verdict) => {
    const key = `${v.rule}|${v.site}`;
    if (verdicts.get(key)?.status !== 'applied') verdicts.set(key, v);
  };

  // the deepest failure of any pattern walk that reached a node, for explaining anchors and near misses
  const tracer = new MatchTracer();
  const failedAt = new Map<Node, MatchFailure & { rule: string }>();
  const nearMisses = new Map<string, Verdict & { path: Node[] }>();
  let changed = false;
  for (const g of [...root.allGraphs()]) {
    const ctx = contextFor(g, pctx);
    for (let round = 0; round < MAX_ROUNDS; round++) {
      let analysis: ShapeAnalysis | null = null;
      const replaced = new Map<Value, Value>();
      const original = (v: Value | null | undefined) => {
        while (v && replaced.has(v)) v = replaced.get(v);
        return v;
      };
      ctx.shapes = { get: (v) => (analysis ??= analyzeShapes(pctx.model, g)).get(original(v)) };
      let rewrites = 0;
      // a snapshot: erasing filters `g.nodes` into a new array at its next read, and this walk must not
      // shift under its own rewrites (nodes added in the round are matched in the next one)
      const nodes = g.nodes;
      for (let i = nodes.length - 1; i >= 0; i--) {
        const n = nodes[i];
        for (const r of rulesAt(n)) {
          if (g.isErased(n)) break;
          tracer.reset();
          const m = matchValue(r.pattern, n.outputs[0], undefined, null, tracer);
          if (!m) {
            const f = tracer.deepest;
            if (f && f.depth >= 2) {
              for (const at of f.path) if ((failedAt.get(at)?.depth ?? 0) < f.depth) failedAt.set(at, { ...f, rule: r.name });
              // later rounds see the set's own rewrites half-applied: only the first round's misses are news
              if (f.depth >= NEAR_MISS_DEPTH && round === 0) nearMisses.set(`${r.name}|${n.name}`, { rule: r.name, site: n.name, status: 'skipped', reason: `pattern: ${f.reason}`, path: f.path });
            }
            continue;
          }
          const site = m.nodes[r.site]?.name ?? n.name;
          const facts = r.check(m, ctx);
          if (typeof facts === 'string') {
            record({ rule: r.name, site, status: 'skipped', reason: facts });
            continue;
          }
          const what = r.rewrite(m, facts, rewriterFor(g, pctx, replaced), ctx);
          eraseDead(g, m.covered);
          record({ rule: r.name, site, status: 'applied', reason: what });
          counts[r.counter]++;
          rewrites++;
          break;
        }
      }
      if (!rewrites) break;
      changed = true;
      g.compact();
      g.topoSort();
    }
  }

  const explainedSites = new Set([...verdicts.values()].map((v) => v.site));
  // a near miss through nodes a rewrite later took, or at a site some rule explained, says nothing more
  for (const v of nearMisses.values()) {
    if (!explainedSites.has(v.site) && v.path.every((n) => !n.detached)) pctx.explain(v.site, v.status, v.reason, v.rule);
  }
  const fusedSites = new Set([...verdicts.values()].filter((v) => v.status === 'applied').map((v) => v.site));
  for (const v of verdicts.values()) pctx.explain(v.site, v.status, v.reason, v.rule);
  for (const a of set.anchors ?? []) {
    for (const g of root.allGraphs()) {
      for (const n of g.nodes) {
        if (n.opType !== a.op || !isDefaultDomain(n) || explainedSites.has(n.name)) continue;
        const f = failedAt.get(n);
        pctx.explain(n, 'skipped', f ? `${a.reason}: ${f.reason}` : `${a.reason} (no pattern reached it)`, f?.rule);
        if (a.counter) counts[a.counter] = (counts[a.counter] ?? 0) + 1;
      }
    }
  }
  counts.notFused = [...explainedSites].filter((s) => !fusedSites.has(s)).length;
  return { changed, counts };
}

function rewriterFor(g: Graph, pctx: PassContext, replaced: Map<Value, Value>): Rewriter {
  return {
    add(spec) {
      const n = g.addNode(spec);
      if (!isDefaultDomain(n)) pctx.model.useDomain(n.domain);
      return n;
    },
    replace(from, to) {
      to.type = from.type;
      replaced.set(to, from);
      g.replaceAllUsesWith(from, to);
    },
    constant(name, tensor) {
      return g.addInitializer(name, tensor);
    },
    floats(name, dims, values) {
      return g.addInitializer(name, Tensor.fromValues(name, DataType.FLOAT, dims, values));
    },
    int64s(name, values) {
      return g.addInitializer(name, Tensor.fromValues(name, DataType.INT64, [values.length], values.map(BigInt)));
    },
  };
}

/**
 * Erase the matched nodes no one reads any more, and then whatever only they read (the Shape nodes that
 * computed a reshape target): the rest of the round sees the graph as it now is.
 */
function eraseDead(g: Graph, start: Node[]): void {
  const work = [...start];
  while (work.length) {
    const n = work.pop()!;
    if (n.graph !== g || g.isErased(n) || n.subgraphs().length) continue;
    if (n.outputs.some((o) => o.uses.length > 0 || o.isGraphOutput)) continue;
    for (const v of n.inputs) if (v?.producer) work.push(v.producer);
    g.erase(n);
  }
}

/** A pipeline pass that applies one rule set; it applies to a target when any of its rules can. */
export function rulePass(set: RuleSet): Pass {
  return {
    name: set.name,
    description: set.description,
    movesWeights: set.movesWeights,
    sites: set.rules.map((r) => ({ counter: r.counter, label: r.label })).filter((c, i, all) => all.findIndex((o) => o.counter === c.counter) === i),
    emits(target: Target, opset: number) {
      const probe: RuleContext = { model: null as never, graph: null as never, target, opset, shapes: NO_SHAPES };
      // only the rules the target can run emit there
      return [...new Set(set.rules.filter((r) => !missingKernel(r, probe)).flatMap((r) => r.emits(probe)))];
    },
    appliesTo(target: Target) {
      const own = set.appliesTo?.(target);
      if (own) return own;
      const probe: RuleContext = { model: null as never, graph: null as never, target, opset: 0, shapes: NO_SHAPES };
      const reasons = set.rules.map((r) => missingKernelStatic(r, probe));
      return reasons.every((x) => x !== null) ? reasons[0] : null;
    },
    run(graph, ctx) {
      return applyRuleSet(set, graph, ctx);
    },
  };
}

/** Whether a rule can emit on a target at all, before any model is read (every opset tried). */
function missingKernelStatic(r: Rule, probe: RuleContext): string | null {
  const reasons = [0, 99].map((opset) => missingKernel(r, { ...probe, opset }));
  return reasons.every((x) => x !== null) ? reasons[0] : null;
}
