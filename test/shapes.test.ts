import { analyzeShapes } from '../src/analysis/shapes';
import { ModelBuilder } from '../src/ir/builder';
import { DataType } from '../src/ir/dtype';
import { Sym } from '../src/ir/symbolic';

const dims = (s: Sym[] | null) => s?.map(String) ?? null;

test('CLIP embeddings: a position table sliced up to the sequence length broadcasts to the sequence length', () => {
  const b = new ModelBuilder(17);
  const ids = b.input('input_ids', ['batch', 'seq'], DataType.INT64);
  const seq = b.op('Slice', [b.op('Shape', [ids]), b.ints('one', [1]), b.ints('two', [2])]);
  const positions = b.op('Slice', [b.const('position_ids', [1, 77], Array.from({ length: 77 }, (_, i) => i), DataType.INT64), b.ints('zero', [0]), seq, b.ints('axis1', [1])]);
  const tokens = b.op('Gather', [b.const('tok', [10, 4], new Array(40).fill(0)), ids]);
  const pos = b.op('Gather', [b.const('pos', [77, 4], new Array(308).fill(0)), positions]);
  const sum = b.op('Add', [tokens, pos]);
  b.output(sum);
  const sa = analyzeShapes(b.model);
  expect(dims(sa.get(positions).shape)).toEqual(['1', 'min(seq,77)']);
  expect(dims(sa.get(sum).shape)).toEqual(['batch', 'seq', '4']);
});

test('min(x, c) broadcasts to x only for c > 1; two unrelated dims stay unknown', () => {
  const x = Sym.atom('seq');
  expect(x.minWith(77).isMinOf(x)).toBe(true);
  expect(x.minWith(1).isMinOf(x)).toBe(false);
  expect(x.minWith(77).isMinOf(Sym.atom('other'))).toBe(false);
  expect(Sym.const(5).minWith(3).value).toBe(3);
  const twice = x.mul(Sym.const(2)).mul(Sym.atom('b'));
  expect(twice.minWith(9).isMinOf(twice)).toBe(true);
});

test('Range(0, n, 1) of a dim is n long; a causal mask built from it is [n, n]', () => {
  const b = new ModelBuilder(17);
  const x = b.input('x', ['batch', 'seq', 4]);
  const n = b.op('Squeeze', [b.op('Slice', [b.op('Shape', [x]), b.ints('one', [1]), b.ints('two', [2])]), b.ints('ax', [0])]);
  const r = b.op('Range', [b.const('start', [], [0], DataType.INT64), n, b.const('delta', [], [1], DataType.INT64)]);
  const mask = b.op('Less', [r, b.op('Reshape', [b.op('Add', [r, b.const('c1', [], [1], DataType.INT64)]), b.ints('col', [-1, 1])])]);
  b.output(mask);
  const sa = analyzeShapes(b.model);
  expect(dims(sa.get(r).shape)).toEqual(['seq']);
  expect(dims(sa.get(mask).shape)).toEqual(['seq', 'seq']);
});
