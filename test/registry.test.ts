import { analyzeShapes } from '../src/analysis/shapes';
import { runPipeline } from '../src/compiler/pipeline';
import { readModel } from '../src/onnx/read';
import { OP_RECORDS, OpRecord, opKey } from '../src/ops';
import { REGISTRY, RegistryEntry, pipelineSteps, siteColumns, stageOrder } from '../src/passes';
import { Rule } from '../src/rewrite/rule';
import { TARGETS, Target, TargetName } from '../src/targets';
import { tinyPath } from './helpers/ort';

interface Emitted {
  op: string;
  by: string;
  target: TargetName;
}

/** Every op each registered pass emits on each target it runs on, at the opsets exporters write. */
function emittedOps(registry: RegistryEntry[]): Emitted[] {
  const out: Emitted[] = [];
  for (const e of registry) {
    for (const target of TARGETS) {
      const t = new Target(target);
      if (e.pass.appliesTo?.(t)) continue;
      for (const opset of [17, 18, 23]) for (const op of e.pass.emits?.(t, opset) ?? []) out.push({ op, by: e.pass.name, target });
    }
  }
  return out;
}

/** What an emitted op lacks: a record, its target's kernel row, an inference, a lowering. */
function recordProblems(emitted: Emitted[], records: OpRecord[]): string[] {
  const problems = new Set<string>();
  for (const { op, by, target } of emitted) {
    const r = records.find((x) => x.op === op);
    if (!r) {
      problems.add(`${op} (emitted by ${by}) has no op record`);
      continue;
    }
    if (r.kernels && !r.kernels[target]) problems.add(`${op} is emitted by ${by} on ${target}, which has no kernel row for it`);
    if (!r.kernels && !op.startsWith('ai.onnx::')) problems.add(`${op}: a contrib op needs kernel rows`);
    if (typeof r.infer !== 'function' && !(r.infer === 'onnx' && op.startsWith('ai.onnx::'))) problems.add(`${op} has no shape and dtype inference`);
    if (typeof r.lower !== 'function' && !(r.lower === 'cpu' && (!r.kernels || r.kernels.cpu))) problems.add(`${op} has no CPU kernel and no lowering for the --check oracle`);
  }
  return [...problems];
}

test('every op a rule or pass emits has a record: kernel rows, shape and dtype inference, a lowering', () => {
  const emitted = emittedOps(REGISTRY);
  expect(emitted.length).toBeGreaterThan(20);
  expect(recordProblems(emitted, OP_RECORDS)).toEqual([]);
});

test('the record check fails for an op without a record, a kernel row, an inference or a lowering', () => {
  const fake: Rule = {
    name: 'conv-relu', description: 'test', priority: 0, pattern: null as never, site: 'x', counter: 'convRelu', label: 'conv relu',
    emits: () => ['com.example::ConvRelu', 'com.microsoft::Fake'], check: () => 'no', rewrite: () => '',
  };
  const entry: RegistryEntry = { pass: { name: 'fuse-conv-relu', description: 'test', emits: (t, o) => fake.emits({ target: t, opset: o } as never), run: () => ({ changed: false }) }, stage: 'fuse' };
  const half: OpRecord = { op: 'com.microsoft::Fake', kernels: { cuda: { dtypes: [1] } }, infer: 'onnx', lower: 'cpu' };
  expect(recordProblems(emittedOps([entry]), [...OP_RECORDS, half]).sort()).toEqual([
    'com.example::ConvRelu (emitted by fuse-conv-relu) has no op record',
    'com.microsoft::Fake has no CPU kernel and no lowering for the --check oracle',
    'com.microsoft::Fake has no shape and dtype inference',
    'com.microsoft::Fake is emitted by fuse-conv-relu on cpu, which has no kernel row for it',
    'com.microsoft::Fake is emitted by fuse-conv-relu on webgpu, which has no kernel row for it',
  ]);
});

test('every fusion and precision pass declares the ops it emits and the counts that are fused sites', () => {
  for (const e of REGISTRY.filter((x) => x.stage === 'fuse' || x.stage === 'precision')) {
    expect({ pass: e.pass.name, emits: typeof e.pass.emits }).toEqual({ pass: e.pass.name, emits: 'function' });
    if (e.stage === 'fuse') expect({ pass: e.pass.name, sites: (e.pass.sites ?? []).length > 0 }).toEqual({ pass: e.pass.name, sites: true });
  }
  const counters = siteColumns().map((c) => c.counter);
  expect(new Set(counters).size).toBe(counters.length);
  expect(counters).toEqual(expect.arrayContaining(['attention', 'groupNorm', 'skipLayerNorm', 'biasAdd', 'nhwcConv', 'projectionsMerged']));
});

test('the derived order of every stage honours each stated constraint', () => {
  for (const stage of ['specialize', 'cleanup', 'fuse', 'precision', 'finish'] as const) {
    const order = stageOrder(stage);
    for (const e of REGISTRY.filter((x) => x.stage === stage)) {
      for (const a of e.after ?? []) expect({ pass: e.pass.name, after: a.pass, ok: order.indexOf(a.pass) < order.indexOf(e.pass.name) }).toEqual({ pass: e.pass.name, after: a.pass, ok: true });
    }
  }
  // a constraint moves an entry listed too early
  const pass = (name: string) => ({ name, description: name, run: () => ({ changed: false }) });
  expect(stageOrder('fuse', [
    { pass: pass('b'), stage: 'fuse', after: [{ pass: 'a', why: 'test' }] },
    { pass: pass('a'), stage: 'fuse' },
  ])).toEqual(['a', 'b']);
  expect(() => stageOrder('fuse', [{ pass: pass('b'), stage: 'fuse', after: [{ pass: 'a', why: 'test' }] }, { pass: pass('a'), stage: 'fuse', after: [{ pass: 'b', why: 'test' }] }])).toThrow(/cycle/);
  expect(() => stageOrder('fuse', [{ pass: pass('b'), stage: 'fuse', after: [{ pass: 'nope', why: 'test' }] }])).toThrow(/not a fuse pass/);
});

test('every mode pipeline comes from the registry: specialization first in reduce-overhead, fp16 only when asked', () => {
  const names = (s: ReturnType<typeof pipelineSteps>) => s.flatMap((x) => (typeof x === 'string' ? [x] : x.repeat));
  expect(pipelineSteps('reduce-overhead')[0]).toBe('specialize-shapes');
  expect(names(pipelineSteps('default'))).not.toContain('specialize-shapes');
  expect(names(pipelineSteps('default'))).not.toContain('convert-fp16');
  expect(names(pipelineSteps('default', 'fp16'))).toContain('convert-fp16');
  expect(names(pipelineSteps('default')).at(-1)).toBe('capture-hints');
  // every registered pass is in some pipeline
  const all = new Set([...names(pipelineSteps('reduce-overhead', 'fp16'))]);
  expect(REGISTRY.map((e) => e.pass.name).filter((n) => !all.has(n))).toEqual([]);
});

test.each(TARGETS)('on %s the ops with records get a dtype and a shape from their inference (tiny sdpa, static)', (target) => {
  const model = readModel(tinyPath('unet_sdpa_op17'));
  const shapes = new Map([['sample', [2, 4, 32, 32]], ['timestep', [2]], ['encoder_hidden_states', [2, 16, 32]]]);
  runPipeline(model, { mode: 'reduce-overhead', target: new Target(target), shapes });
  const facts = analyzeShapes(model);
  const missing: string[] = [];
  let checked = 0;
  for (const n of model.graph.nodes) {
    const record = OP_RECORDS.find((r) => r.op === opKey(n.domain, n.opType));
    if (!record || typeof record.infer !== 'function') continue;
    checked++;
    const info = facts.get(n.outputs[0]);
    if (info.dtype === null || info.shape === null) missing.push(`${n.opType} ${n.name}`);
  }
  expect(checked).toBeGreaterThan(10);
  expect(missing).toEqual([]);
});
