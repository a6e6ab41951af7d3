import * as fs from 'fs';
import { ModelBuilder } from '../../src/ir/builder';
import { DataType } from '../../src/ir/dtype';
import { Tensor } from '../../src/ir/tensor';
import { applyRuleSet } from '../../src/rewrite/driver';
import { p } from '../../src/rewrite/match';
import { Explanation, PassContext } from '../../src/rewrite/pass';
import { defineRule, RuleSet } from '../../src/rewrite/rule';
import { Target } from '../../src/targets';
import { applyRules, worstError } from '../helpers/rules';
import { tensor, tmpDir } from '../helpers/ort';

const dir = tmpDir();
afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));

const feeds = [{ x: tensor([2, 3], 1) }, { x: tensor([2, 3], 2) }];

/** Two correct rewrites of Neg(x), both rooted at the Neg: x · −1 and 0 − x. */
const negRule = (name: string, priority: number, op: 'Mul' | 'Sub', refuse = false) => defineRule<null>({
  name, description: `Neg(x) → ${op}`, priority, site: 'neg', counter: name,
  pattern: p.op('Neg', [p.any('x')], { capture: 'neg' }),
  emits: () => [`ai.onnx::${op}`],
  check: () => (refuse ? `${name} refuses` : null),
  rewrite(m, _f, rw) {
    const k = rw.constant(`${name}_k`, Tensor.fromValues(`${name}_k`, DataType.FLOAT, [], [op === 'Mul' ? -1 : 0]));
    const inputs = op === 'Mul' ? [m.values.x, k] : [k, m.values.x];
    rw.replace(m.values.neg, rw.add({ op, inputs, outputs: [`${name}_out`] }).outputs[0]);
    return `${op} instead`;
  },
});

function negGraph(): ModelBuilder {
  const b = new ModelBuilder();
  b.output(b.op('Neg', [b.input('x', [2, 3])], {}, { name: 'neg' }), [2, 3]);
  return b;
}

test('priority: of two rules rooted at one op, the higher one rewrites, whatever the order in the set; the numbers stay', async () => {
  for (const order of ['low first', 'high first']) {
    const [lo, hi] = [negRule('to-sub', 0, 'Sub'), negRule('to-mul', 5, 'Mul')];
    const run = applyRules(negGraph(), order === 'low first' ? [lo, hi] : [hi, lo], dir, `priority-${order.replace(' ', '-')}`);
    expect(run.ops).toEqual({ 'ai.onnx::Mul': 1 });
    expect(run.counts).toEqual(expect.objectContaining({ 'to-mul': 1, 'to-sub': 0 }));
    // the lower rule is not even tried at a site the higher one took
    expect(run.explanations).toEqual([expect.objectContaining({ rule: 'to-mul', site: 'neg', status: 'applied' })]);
    expect(await worstError(run, feeds)).toBe(0);
  }
});

test('priority: when the higher rule refuses, the next one rewrites; both verdicts are explained', async () => {
  const run = applyRules(negGraph(), [negRule('to-sub', 0, 'Sub'), negRule('to-mul', 5, 'Mul', true)], dir, 'priority-refused');
  expect(run.ops).toEqual({ 'ai.onnx::Sub': 1 });
  expect(run.explanations).toEqual([
    expect.objectContaining({ rule: 'to-mul', site: 'neg', status: 'skipped', reason: 'to-mul refuses' }),
    expect.objectContaining({ rule: 'to-sub', site: 'neg', status: 'applied' }),
  ]);
  expect(await worstError(run, feeds)).toBe(0);
});

/** Neg(Neg(x)) → x; with anchors on Neg, as fuse-attention anchors Softmax. */
const doubleNeg = defineRule<null>({
  name: 'double-neg', description: 'Neg(Neg(x)) → Identity(x)', priority: 0, site: 'outer', counter: 'doubleNeg',
  pattern: p.op('Neg', [p.op('Neg', [p.any('x')])], { capture: 'outer' }),
  emits: () => ['ai.onnx::Identity'],
  check: (m) => (m.values.x.name === 'keep' ? 'told to keep it' : null),
  rewrite(m, _f, rw) {
    rw.replace(m.values.outer, rw.add({ op: 'Identity', inputs: [m.values.x], outputs: ['id'] }).outputs[0]);
    return 'removed';
  },
});

test('anchors: an anchor op no rule explained is reported with the set\'s reason and counted; explained sites are not', () => {
  const b = new ModelBuilder();
  b.output(b.op('Neg', [b.op('Neg', [b.input('x', [4])], {}, { name: 'inner' })], {}, { name: 'outer' }), [4]); // fused
  b.output(b.op('Neg', [b.op('Neg', [b.input('keep', [4])], {}, { name: 'k_inner' })], {}, { name: 'k_outer' }), [4]); // refused at k_outer
  b.output(b.op('Neg', [b.input('y', [4])], {}, { name: 'lone' }), [4]); // no match
  const explanations: Explanation[] = [];
  const ctx: PassContext = {
    model: b.model, target: new Target('cpu'), mode: 'default', shapes: null,
    explain: (site, status, reason, rule) => explanations.push({ pass: 'test', rule, site: typeof site === 'string' ? site : site.name, status, reason }),
  };
  const set: RuleSet = { name: 'test', description: 'anchored', rules: [doubleNeg], anchors: [{ op: 'Neg', reason: 'a Neg no rule took', counter: 'lonelyNeg' }] };
  const result = applyRuleSet(set, b.graph, ctx);
  // k_inner is no rule's site (the refused match is explained at k_outer), so the anchor reports it too
  expect(result.counts).toEqual({ doubleNeg: 1, lonelyNeg: 2, notFused: 1 });
  const bySite = Object.fromEntries(explanations.map((e) => [e.site, [e.status, e.reason]]));
  expect(bySite).toEqual({
    outer: ['applied', 'removed'],
    k_outer: ['skipped', 'told to keep it'],
    k_inner: ['skipped', 'a Neg no rule took (no pattern reached it)'],
    lone: ['skipped', 'a Neg no rule took (no pattern reached it)'],
  });
  expect(explanations).toHaveLength(4);
});

/** Relu(x) → a new Relu(x): every rewrite makes a site for the next round, so only the round limit stops it. */
const restless = defineRule<null>({
  name: 'restless', description: 'Relu → Relu', priority: 0, site: 'relu', counter: 'restless',
  pattern: p.op('Relu', [p.any('x')], { capture: 'relu' }),
  emits: () => ['ai.onnx::Relu'],
  check: () => null,
  rewrite(m, _f, rw) {
    rw.replace(m.values.relu, rw.add({ op: 'Relu', inputs: [m.values.x], outputs: ['again'] }).outputs[0]);
    return 'again';
  },
});

test('the round limit: a rule that keeps making its own site stops after 8 rounds (one rewrite each), the graph valid and its numbers the same', async () => {
  const b = new ModelBuilder();
  b.output(b.op('Relu', [b.input('x', [2, 3])]), [2, 3]);
  const t0 = Date.now();
  const run = applyRules(b, [restless], dir, 'restless');
  expect(Date.now() - t0).toBeLessThan(5000);
  // MAX_ROUNDS in src/rewrite/driver.ts; a node a round adds is visited in the next round, not this one
  expect(run.counts.restless).toBe(8);
  expect(run.ops).toEqual({ 'ai.onnx::Relu': 1 });
  expect(run.explanations.filter((e) => e.status === 'applied')).toHaveLength(8);
  expect(await worstError(run, feeds)).toBe(0);
});
