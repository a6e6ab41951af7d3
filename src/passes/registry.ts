import { rulePass } from '../rewrite/driver';
import { Mode, Pass, Precision } from '../rewrite/pass';
import { RuleSet } from '../rewrite/rule';
import { DataType } from '../ir/dtype';
import { Target, TARGETS } from '../targets';
import { affineIntoConv } from '../rules/affine-into-conv';
import { attention } from '../rules/attention';
import { attentionBias } from '../rules/attention-bias';
import { biasAdd } from '../rules/bias-add';
import { biasSplitGelu } from '../rules/bias-split-gelu';
import { castByLookup } from '../rules/cast-by-lookup';
import { channelAffine } from '../rules/channel-affine';
import { gelu } from '../rules/gelu';
import { groupNorm } from '../rules/group-norm';
import { groupNormSilu } from '../rules/group-norm-silu';
import { layerNorm } from '../rules/layer-norm';
import { packedAttention } from '../rules/packed-attention';
import { quickGelu } from '../rules/quick-gelu';
import { skipGroupNorm } from '../rules/skip-group-norm';
import { skipLayerNorm } from '../rules/skip-layer-norm';
import { captureHints } from './capture-hints';
import { channelsLast } from './channels-last';
import { convertFp16 } from './convert-fp16';
import { eliminateDead } from './eliminate-dead';
import { eliminateDuplicates } from './eliminate-duplicates';
import { eliminateNoops } from './eliminate-noops';
import { foldConstants } from './fold-constants';
import { mergeProjections } from './merge-projections';
import { simplifyShapes } from './simplify-shapes';
import { specializeShapes } from './specialize-shapes';

/**
 * Where a pass runs in every mode's pipeline: `specialize` (reduce-overhead only, first), `cleanup` (a
 * group repeated until nothing changes, before and after the fusions), `fuse` (once each), `precision`
 * (with --precision fp16), `finish` (last).
 */
export type Stage = 'specialize' | 'cleanup' | 'fuse' | 'precision' | 'finish';

/** A pass of its stage that must have run first, and why. */
interface After {
  pass: string;
  why: string;
}

export interface RegistryEntry {
  pass: Pass;
  stage: Stage;
  after?: After[];
}

/** Why a pass that saves dispatches at the cost of a copy of weights is not worth it on a target. */
const dispatchBoundOnly = (what: string) => (target: Target): string | null =>
  target.traits.dispatchBound ? null : `on ${target.name} ${what} (only a target whose every kernel is a dispatch gains)`;

const fusion = (set: RuleSet, after: After[] = []): RegistryEntry => ({ pass: rulePass(set), stage: 'fuse', after });

/**
 * Every pass and fusion rule set sdc has, once, in pipeline order within each stage. The pipeline of every
 * mode × target × precision, the `--passes` help, the fused-site columns (CLI summary, bench) and
 * docs/targets.md's pass table are derived from this list. Order constraints are stated with `after`
 * (a test checks that the derived order honours them); the list order breaks ties.
 *
 * Adding a fusion: add its rule to a set below, or a new `fusion({...})` entry for a new set.
 */
export const REGISTRY: RegistryEntry[] = [
  { pass: specializeShapes, stage: 'specialize' },
  { pass: foldConstants, stage: 'cleanup' },
  { pass: simplifyShapes, stage: 'cleanup', after: [{ pass: 'fold-constants', why: 'a folded shape vector becomes a constant to simplify' }] },
  { pass: eliminateNoops, stage: 'cleanup', after: [{ pass: 'simplify-shapes', why: 'a simplified shape exposes a same-shape Reshape/Expand' }] },
  { pass: eliminateDuplicates, stage: 'cleanup', after: [{ pass: 'eliminate-noops', why: 'a removed no-op exposes a duplicate' }] },
  { pass: eliminateDead, stage: 'cleanup', after: [{ pass: 'eliminate-duplicates', why: 'merged duplicates leave unread nodes' }] },
  fusion({
    name: 'fuse-attention',
    description: 'MatMul→scale→Softmax→MatMul with head splits → one MultiHeadAttention (or Attention-23) per site',
    rules: [attention, attentionBias],
    anchors: [
      { op: 'Softmax', reason: 'not softmax(scale·QKᵀ [+ mask]) V with a single reader at each step' },
      { op: 'Attention', reason: 'already a fused ai.onnx::Attention (opset 23), runs on every target', counter: 'alreadyFused' },
    ],
  }),
  fusion({
    name: 'fuse-packed-attention',
    description: 'self-attention MultiHeadAttention(x·Wq, x·Wk, x·Wv) → com.microsoft Attention with packed weights (webgpu)',
    rules: [packedAttention],
    appliesTo: dispatchBoundOnly('three projections cost no dispatches worth repacking the weights'),
    movesWeights: true,
  }, [{ pass: 'fuse-attention', why: 'it repacks the MultiHeadAttention sites fuse-attention emits' }]),
  fusion({
    name: 'fuse-group-norm',
    description: 'Reshape→InstanceNorm→Reshape (+affine, +SiLU, of a residual sum) → com.microsoft GroupNorm / SkipGroupNorm, NHWC',
    rules: [groupNorm, groupNormSilu, skipGroupNorm],
    anchors: [{ op: 'InstanceNormalization', reason: 'not Reshape → InstanceNormalization → Reshape' }],
  }),
  fusion({
    name: 'fuse-channel-affine',
    description: 'per-channel x·γ + β (a GroupNorm\'s affine where no GroupNorm kernel takes it) → folded into the next unpadded Conv, else BatchNormalization (webgpu)',
    rules: [affineIntoConv, channelAffine],
    // cuda's GroupNorm takes the affine itself
    appliesTo: dispatchBoundOnly('the two elementwise ops are not worth a rewrite'),
  }, [{ pass: 'fuse-group-norm', why: 'an affine a GroupNorm kernel takes is fused there, not folded' }]),
  fusion({
    name: 'fuse-layer-norm',
    description: 'decomposed LayerNorm → LayerNormalization; residual Add + LayerNormalization → SkipLayerNormalization',
    rules: [layerNorm, skipLayerNorm],
  }, [{ pass: 'fuse-group-norm', why: 'a residual Add into a GroupNorm belongs to SkipGroupNorm, so group norms settle the residual sums first' }]),
  fusion({
    name: 'fuse-gelu',
    description: 'erf GELU → Gelu; GEGLU (bias, split, left·gelu(right)) → BiasSplitGelu; x·sigmoid(α·x) → QuickGelu',
    rules: [biasSplitGelu, gelu, quickGelu],
    anchors: [{ op: 'Erf', reason: 'Erf is not part of x·½·(1+erf(x/√2))' }],
  }),
  fusion({
    name: 'fuse-bias-add',
    description: 'x + bias + residual → com.microsoft BiasAdd (3-D)',
    rules: [biasAdd],
  }, [{ pass: 'fuse-layer-norm', why: 'a residual Add feeding a LayerNorm belongs to SkipLayerNormalization' }]),
  fusion({
    name: 'lookup-int64-casts',
    description: 'Cast of int64 token ids on a target whose Cast takes no int64 (webgpu) → Gather from a constant table, so it runs on the device',
    rules: [castByLookup],
    appliesTo: (target) => (target.accepts('', 'Cast', { dtype: DataType.INT64 }) ? null : `${target.name}'s Cast takes int64 input`),
  }),
  {
    pass: mergeProjections,
    stage: 'fuse',
    after: [{ pass: 'fuse-packed-attention', why: 'self-attention projections are packed into Attention first; the rest are merged' }],
  },
  {
    pass: channelsLast,
    stage: 'fuse',
    after: [
      { pass: 'fuse-group-norm', why: 'GroupNorm/SkipGroupNorm are NHWC already, and their transposes are what channels-last cancels' },
      { pass: 'fuse-channel-affine', why: 'affines fold into NCHW Convs before those become NhwcConv' },
    ],
  },
  { pass: convertFp16, stage: 'precision' },
  { pass: captureHints, stage: 'finish' },
];

/** A pipeline step: one pass, or a group repeated until nothing in it changes (at most `max` rounds). */
export type Step = string | { repeat: string[]; max: number };

/** Cleanup feeds itself (a folded shape exposes a no-op, a removed no-op a duplicate): 4 rounds at most. */
const CLEANUP_ROUNDS = 4;

/**
 * The entries of a stage in an order that honours every `after` (the registry order breaks ties).
 * Throws when a constraint names an unknown pass, a pass of another stage, or makes a cycle.
 */
export function stageOrder(stage: Stage, registry: RegistryEntry[] = REGISTRY): string[] {
  const entries = registry.filter((e) => e.stage === stage);
  const names = entries.map((e) => e.pass.name);
  const done = new Set<string>();
  const order: string[] = [];
  while (order.length < entries.length) {
    const next = entries.find((e) => !done.has(e.pass.name) && (e.after ?? []).every((a) => {
      if (!names.includes(a.pass)) throw new Error(`registry: ${e.pass.name} must run after '${a.pass}', which is not a ${stage} pass`);
      return done.has(a.pass);
    }));
    if (!next) throw new Error(`registry: the 'after' constraints of ${stage} passes form a cycle (${names.filter((n) => !done.has(n)).join(', ')})`);
    done.add(next.pass.name);
    order.push(next.pass.name);
  }
  return order;
}

/** The steps of a mode's pipeline, before the target drops what does not apply to it. */
export function pipelineSteps(mode: Mode, precision: Precision = 'fp32'): Step[] {
  const cleanup: Step = { repeat: stageOrder('cleanup'), max: CLEANUP_ROUNDS };
  return [
    ...(mode === 'reduce-overhead' ? stageOrder('specialize') : []),
    cleanup,
    ...stageOrder('fuse'),
    cleanup,
    // the precision stage runs only when a precision other than float32 is asked for
    ...(precision === 'fp32' ? [] : stageOrder('precision')),
    ...stageOrder('finish'),
  ];
}

/** The repeated cleanup group, which `--passes cleanup` names. */
export function cleanupGroup(): { repeat: string[]; max: number } {
  return { repeat: stageOrder('cleanup'), max: CLEANUP_ROUNDS };
}

export const ALL_PASSES: Pass[] = REGISTRY.map((e) => e.pass);

export function passByName(name: string): Pass | undefined {
  return ALL_PASSES.find((p) => p.name === name);
}

/** A fused-site column: a counter a fusion pass reports and its heading (CLI summary, bench tables). */
export interface SiteColumn {
  counter: string;
  label: string;
}

/** Every counter of a fused site, in registry order: the rules' counters, then the passes' own. */
export function siteColumns(): SiteColumn[] {
  const out: SiteColumn[] = [];
  for (const e of REGISTRY) for (const c of e.pass.sites ?? []) if (!out.some((o) => o.counter === c.counter)) out.push(c);
  return out;
}

/** Fused sites by counter, summed over a compile's pass reports (zeros left out). */
export function fusedSiteCounts(passes: { name: string; counts?: Record<string, number> }[]): Record<string, number> {
  const columns = siteColumns();
  const out: Record<string, number> = {};
  for (const p of passes) {
    const entry = REGISTRY.find((e) => e.pass.name === p.name);
    for (const c of entry?.pass.sites ?? []) {
      const v = p.counts?.[c.counter] ?? 0;
      if (v) out[c.counter] = (out[c.counter] ?? 0) + v;
    }
  }
  return Object.fromEntries(columns.filter((c) => out[c.counter]).map((c) => [c.counter, out[c.counter]]));
}

const shortOp = (ref: string) => ref.replace(/^ai\.onnx::/, '').replace(/^com\.microsoft::/, 'ms.');

/**
 * The fusion stage by target, as Markdown (docs/targets.md embeds it; a test keeps the two equal): what
 * each pass emits there at opsets 17 and 23, or why the target drops it.
 */
export function renderFusionTable(): string {
  const targets = TARGETS.map((t) => new Target(t));
  const rows = stageOrder('fuse').map((name) => {
    const pass = passByName(name)!;
    const after = REGISTRY.find((e) => e.pass.name === name)!.after ?? [];
    const cells = targets.map((t) => {
      const why = pass.appliesTo?.(t);
      if (why) return `no: ${why}`;
      const ops = [...new Set([17, 23].flatMap((opset) => pass.emits?.(t, opset) ?? []))];
      return ops.length ? ops.map(shortOp).join(', ') : 'yes';
    });
    return `| ${name} | ${after.map((a) => a.pass).join(', ')} | ${cells.join(' | ')} |`;
  });
  return [`| fusion pass (in order) | runs after | ${TARGETS.join(' | ')} |`, `|---|---|${TARGETS.map(() => '---').join('|')}|`, ...rows].join('\n');
}
