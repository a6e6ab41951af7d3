import { ModelBuilder } from '../../src/ir/builder';
import { Value } from '../../src/ir/graph';
import { MatchTracer, matchValue, p, rootOps } from '../../src/rewrite/match';
import { scalarScale } from '../../src/analysis/layout';

const step = (n: import('../../src/ir/graph').Node) => scalarScale(n)?.[0] ?? null;

describe('pattern matcher', () => {
  test('commutative: the inputs are tried in both orders, and only then', () => {
    const b = new ModelBuilder();
    const x = b.input('x', [4]);
    const y = b.op('Add', [b.scalar('one', 1), b.op('Relu', [x])]);
    const relu = p.op('Relu', [p.any('x')]);
    expect(matchValue(p.op('Add', [relu, p.any('c')]), y)).toBeNull();
    const m = matchValue(p.op('Add', [relu, p.any('c')], { commutative: true }), y)!;
    expect(m.values.x).toBe(x);
    expect(m.values.c.name).toBe('one');
  });

  test('alternatives: the first that fits wins, in the order written', () => {
    const b = new ModelBuilder();
    const x = b.input('x', [4]);
    const y = b.op('Sigmoid', [b.op('Relu', [x])]);
    const m = matchValue(p.alt(p.op('Sigmoid', [p.op('Relu', [p.any('a')])], { capture: 'long' }), p.op('Sigmoid', [p.any('a')], { capture: 'short' })), y)!;
    expect(Object.keys(m.nodes)).toEqual(['long']);
    expect(m.values.a).toBe(x);
    const n = matchValue(p.alt(p.op('Sigmoid', [p.any('a')], { capture: 'short' }), p.op('Sigmoid', [p.op('Relu', [p.any('a')])])), y)!;
    expect(Object.keys(n.nodes)).toEqual(['short']);
  });

  test('a repeated capture name must be the same value', () => {
    const b = new ModelBuilder();
    const x = b.input('x', [4]);
    const z = b.input('z', [4]);
    const same = p.op('Mul', [p.any('t'), p.op('Sigmoid', [p.any('t')])], { commutative: true });
    expect(matchValue(same, b.op('Mul', [x, b.op('Sigmoid', [x])]))).not.toBeNull();
    expect(matchValue(same, b.op('Mul', [x, b.op('Sigmoid', [z])]))).toBeNull();
  });

  test('single use: an inner value read twice does not match unless the pattern allows it', () => {
    const b = new ModelBuilder();
    const x = b.input('x', [4]);
    const r = b.op('Relu', [x]);
    const y = b.op('Neg', [r]);
    b.output(b.op('Abs', [r]));
    expect(matchValue(p.op('Neg', [p.op('Relu', [p.any()])]), y)).toBeNull();
    expect(matchValue(p.op('Neg', [p.op('Relu', [p.any()], { singleUse: false })]), y)).not.toBeNull();
  });

  test('the root value may have any number of readers', () => {
    const b = new ModelBuilder();
    const r = b.op('Relu', [b.input('x', [4])]);
    b.output(b.op('Neg', [r]));
    b.output(b.op('Abs', [r]));
    expect(matchValue(p.op('Relu', [p.any()]), r)).not.toBeNull();
  });

  test('chains: zero or more steps up to the limit, walked nodes in order from the inner end', () => {
    const b = new ModelBuilder();
    const x = b.input('x', [4]);
    let v: Value = b.op('Relu', [x]);
    const scales: Value[] = [];
    for (let i = 0; i < 3; i++) scales.push((v = b.op('Mul', [v, b.scalar(`s${i}`, 2)])));
    const pat = (max: number) => p.op('Neg', [p.chain('scales', step, p.op('Relu', [p.any('x')], { capture: 'relu' }), { max })]);
    const y = b.op('Neg', [v]);
    const m = matchValue(pat(8), y)!;
    expect(m.chains.scales.map((n) => n.outputs[0])).toEqual(scales);
    expect(matchValue(pat(2), y)).toBeNull();
    expect(matchValue(pat(0), b.op('Neg', [b.op('Relu', [x])]))).not.toBeNull();
  });

  test('a chain node read twice stops the chain unless singleUse is off', () => {
    const b = new ModelBuilder();
    const x = b.input('x', [4]);
    const s = b.op('Mul', [b.op('Relu', [x]), b.scalar('two', 2)]);
    b.output(b.op('Abs', [s]));
    const y = b.op('Neg', [s]);
    const chain = (singleUse: boolean) => p.op('Neg', [p.chain('c', step, p.op('Relu', [p.any()]), { singleUse })]);
    expect(matchValue(chain(true), y)).toBeNull();
    expect(matchValue(chain(false), y)).not.toBeNull();
  });

  test('rootOps: the op types that can root a pattern, for the driver\'s index', () => {
    expect(rootOps(p.op(['Add', 'Sub'], null))).toEqual(['Add', 'Sub']);
    expect(rootOps(p.alt(p.op('Mul', null), p.op('Div', null)))).toEqual(['Mul', 'Div']);
    expect(rootOps(p.chain('c', () => 0, p.op('MatMul', null), { ops: ['Reshape'] }))).toEqual(['Reshape', 'MatMul']);
    expect(rootOps(p.chain('c', () => 0, p.op('MatMul', null)))).toBeNull();
    expect(rootOps(p.any())).toBeNull();
  });
});

describe('why a pattern did not match (MatchTracer)', () => {
  test('the deepest failure names the node, the input and what the pattern wanted there', () => {
    const b = new ModelBuilder();
    const x = b.input('x', [4]);
    const y = b.op('Sigmoid', [b.op('Relu', [b.op('Tanh', [x], {}, { name: 'tanh' })], {}, { name: 'relu' })], {}, { name: 'sig' });
    const tracer = new MatchTracer();
    const pat = p.alt(
      p.op('Sigmoid', [p.op('Exp', [p.any()])]),
      p.op('Sigmoid', [p.op('Relu', [p.op('Neg', [p.any()])])]),
    );
    expect(matchValue(pat, y, undefined, null, tracer)).toBeNull();
    // the second alternative got two nodes deep; its failure is the one reported
    expect(tracer.deepest).toMatchObject({ depth: 2, reason: "Relu 'relu' input 0 is Tanh, not Neg" });
    expect(tracer.deepest!.path.map((n) => n.name)).toEqual(['sig', 'relu']);
  });

  test('reasons for readers, constants and graph inputs', () => {
    const b = new ModelBuilder();
    const x = b.input('x', [4]);
    const r = b.op('Relu', [x], {}, { name: 'relu' });
    const y = b.op('Add', [r, b.scalar('one', 1)], {}, { name: 'add' });
    b.output(r);
    const tracer = new MatchTracer();
    expect(matchValue(p.op('Add', [p.op('Relu', [p.any()]), p.any()]), y, undefined, null, tracer)).toBeNull();
    expect(tracer.deepest!.reason).toMatch(/Relu 'relu' has 1 \(and a graph output\) readers; the pattern needs it read once/);
    tracer.reset();
    expect(matchValue(p.op('Add', [p.any(), p.op('Mul', [p.any()])]), y, undefined, null, tracer)).toBeNull();
    expect(tracer.deepest!.reason).toBe("Add 'add' input 1 is a constant, not Mul");
    tracer.reset();
    expect(matchValue(p.op('Relu', [p.op('Exp', [p.any()])]), r, undefined, null, tracer)).toBeNull();
    expect(tracer.deepest!.reason).toBe("Relu 'relu' input 0 is a graph input, not Exp");
  });
});
