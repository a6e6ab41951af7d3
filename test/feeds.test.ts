import * as ort from 'onnxruntime-node';
import { DataType } from '../src/ir/dtype';
import { fromHalfBits } from '../src/ir/half';
import { ModelBuilder } from '../src/ir/builder';
import { FEED_TYPES, TIMESTEPS, modelInputSpecs, randomFloats, syntheticFeeds, syntheticInputs } from '../src/runtime/feeds';

const specs = [
  { name: 'sample', type: 'float32', dims: [2, 4, 8, 8] },
  { name: 'timestep', type: 'int64', dims: [2] },
  { name: 'encoder_hidden_states', type: 'float32', dims: [2, 8, 16] },
];
const floats = (t: ort.Tensor) => Array.from(t.data as Float32Array);

test('the same seed and set give the same tensors; another set or seed another stream', () => {
  const a = syntheticInputs(specs, { set: 1, seed: 7 });
  const b = syntheticInputs(specs, { set: 1, seed: 7 });
  for (const k of Object.keys(a)) expect(b[k].data).toEqual(a[k].data);
  expect(floats(syntheticInputs(specs, { set: 4, seed: 7 }).sample)).not.toEqual(floats(a.sample));
  expect(floats(syntheticInputs(specs, { set: 1, seed: 8 }).sample)).not.toEqual(floats(a.sample));
  // one stream, read input by input: the conditioning continues where the sample stopped
  expect(floats(a.encoder_hidden_states)).not.toEqual(floats(a.sample).slice(0, 2 * 8 * 16));
  // randomFloats is the same stream (set 0 of a seed)
  expect(floats(syntheticInputs([{ name: 'w', type: 'float32', dims: [5, 7] }], { seed: 3 }).w)).toEqual(Array.from(randomFloats(35, 3)));
});

test('floats: uniform in [-1, 1) by default, unit Gaussian on request', () => {
  const u = floats(syntheticInputs([{ name: 'x', type: 'float32', dims: [20000] }]).x);
  expect(Math.min(...u)).toBeGreaterThanOrEqual(-1);
  expect(Math.max(...u)).toBeLessThan(1);
  expect(Math.abs(u.reduce((s, v) => s + v, 0) / u.length)).toBeLessThan(0.02);
  const g = floats(syntheticInputs([{ name: 'x', type: 'float32', dims: [20000] }], { floats: 'gaussian' }).x);
  const mean = g.reduce((s, v) => s + v, 0) / g.length;
  const sd = Math.sqrt(g.reduce((s, v) => s + (v - mean) ** 2, 0) / g.length);
  expect(Math.abs(mean)).toBeLessThan(0.03);
  expect(Math.abs(sd - 1)).toBeLessThan(0.03);
  expect(g.every(Number.isFinite)).toBe(true);
  expect(Math.max(...g.map(Math.abs))).toBeGreaterThan(2.5); // tails, not a squashed uniform
});

test('timesteps: 500, 0, 999 by input set (whatever the element type), a given value, or one per element', () => {
  expect(TIMESTEPS).toEqual([500, 0, 999]);
  for (const set of [0, 1, 2, 3]) {
    const f = syntheticInputs(specs, { set });
    expect(Array.from(f.timestep.data as BigInt64Array)).toEqual([BigInt(TIMESTEPS[set % 3]), BigInt(TIMESTEPS[set % 3])]);
  }
  const named = ['timestep', 'timesteps', 't', 'Timestep'].map((name) => ({ name, type: 'float32', dims: [2] }));
  for (const t of Object.values(syntheticInputs(named, { set: 2 }))) expect(Array.from(t.data as Float32Array)).toEqual([999, 999]);
  expect(Array.from(syntheticInputs([{ name: 'ts', type: 'float32', dims: [2] }]).ts.data as Float32Array)).not.toEqual([500, 500]); // not a timestep name
  expect(Array.from(syntheticInputs(named.slice(0, 1), { timestep: 42 }).timestep.data as Float32Array)).toEqual([42, 42]);
  expect(Array.from(syntheticInputs(named.slice(0, 1), { timestep: [500, 600] }).timestep.data as Float32Array)).toEqual([500, 600]);
  expect(() => syntheticInputs(named.slice(0, 1), { timestep: [1, 2, 3] })).toThrow(/'timestep' has 2 elements; 3 timesteps were given/);
  // a timestep reads nothing of the stream: the floats after it are the same as without it
  const without = syntheticInputs([specs[0], specs[2]], { set: 1 });
  const withT = syntheticInputs(specs, { set: 1 });
  expect(floats(withT.encoder_hidden_states)).toEqual(floats(without.encoder_hidden_states));
});

test('every element type: floats random, float16 as half bits, integers 1, bools true, timesteps in any type', () => {
  for (const type of FEED_TYPES) {
    const f = syntheticInputs([{ name: 'x', type, dims: [3, 4] }, { name: 'timestep', type, dims: [3] }], { set: 2 });
    expect(f.x.type).toBe(type);
    expect(f.x.dims).toEqual([3, 4]);
    const x = Array.from(f.x.data as ArrayLike<number | bigint>, (v) => (type === 'float16' ? fromHalfBits(Number(v)) : Number(v)));
    const t = Array.from(f.timestep.data as ArrayLike<number | bigint>, (v) => (type === 'float16' ? fromHalfBits(Number(v)) : Number(v)));
    if (type.startsWith('float')) {
      expect(new Set(x).size).toBeGreaterThan(6);
      expect(x.every((v) => v >= -1 && v <= 1)).toBe(true); // [-1, 1), which float16 may round up to 1
    } else expect(x).toEqual(new Array(12).fill(1));
    // the set's timestep (999) in every type that holds it; a bool is true
    if (type !== 'int8' && type !== 'uint8') expect(t).toEqual(new Array(3).fill(type === 'bool' ? 1 : 999));
  }
  expect(() => syntheticInputs([{ name: 's', type: 'string', dims: [1] }])).toThrow(/synthetic inputs are float32, .*; 's' is string/);
  // onnxruntime takes them: a float16 tensor with half bits
  expect(syntheticInputs([{ name: 'h', type: 'float16', dims: [2] }]).h.data).toBeInstanceOf(Uint16Array);
});

test('a model\'s inputs: element types from the graph (not initializers); an unsupported one is refused naming the caller', () => {
  const b = new ModelBuilder(17);
  b.input('sample', ['batch', 4, 8, 8]);
  b.input('timestep', ['batch'], DataType.INT64);
  b.input('mask', ['batch', 8], DataType.BOOL);
  b.input('half', [2], DataType.FLOAT16);
  b.const('w', [1], [1]);
  const dims = new Map([['sample', [1, 4, 8, 8]], ['timestep', [1]], ['mask', [1, 8]], ['half', [2]]]);
  expect(modelInputSpecs(b.model, dims, '--check')).toEqual([
    { name: 'sample', type: 'float32', dims: [1, 4, 8, 8] },
    { name: 'timestep', type: 'int64', dims: [1] },
    { name: 'mask', type: 'bool', dims: [1, 8] },
    { name: 'half', type: 'float16', dims: [2] },
  ]);
  b.input('text', [1], DataType.STRING);
  expect(() => modelInputSpecs(b.model, new Map([...dims, ['text', [1]]]), '--check')).toThrow(/--check feeds float32, .* inputs; 'text' is STRING/);
});

test('syntheticFeeds (sdc run, sdc bench, max-autotune): input set 0, float32 unless told', () => {
  const shapes = new Map([['sample', [1, 4, 8, 8]], ['timestep', [1]]]);
  const f = syntheticFeeds(shapes, new Map([['timestep', 'int64']]));
  expect(f.sample.type).toBe('float32');
  expect(f.timestep.data).toEqual(BigInt64Array.from([500n]));
  expect(f.sample.data).toEqual(syntheticInputs([{ name: 'sample', type: 'float32', dims: [1, 4, 8, 8] }], { set: 0 }).sample.data);
});
