import * as fs from 'fs';
import * as path from 'path';
import { SdcError } from '../src/ir/errors';
import { gelu } from '../src/rules/gelu';
import { ModelBuilder } from '../src/ir/builder';
import { saveModel } from '../src/onnx/write';
import { checkOutput, compileChecked } from '../src/verify/check';
import { erfGeluGraph } from './helpers/graphs';
import { FIXTURES, tinyPath, tmpDir } from './helpers/ort';
import { DataType } from '../src/ir/dtype';
import { readModel } from '../src/onnx/read';
import { randomFloats, syntheticInputs } from '../src/runtime/feeds';
import { indexRanges } from '../src/runtime/token-ids';
import { FAST_PAIRS, expectChecked } from './helpers/tiny';

const dir = tmpDir();
afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));

// every model on cpu, every target on sdpa; the other pairs: test/full/tiny-cross-product.test.ts
test.each(FAST_PAIRS)('--check passes the real tiny %s compiled for %s, and says where it ran', (style, target) => expectChecked(style, target, dir));

test('--check at given shapes uses them', async () => {
  const r = await compileChecked(tinyPath('unet_sdpa_op17'), { output: path.join(dir, 'shaped.onnx'), check: 1, shapes: 'sample=2x4x16x16,timestep=2,encoder_hidden_states=2x5x32' });
  expect(r.check).toMatchObject({ derivedDims: false, dims: { sample: [2, 4, 16, 16], encoder_hidden_states: [2, 5, 32] }, ranOn: 'cpu', passed: true });
});

test('--check refuses a wrong output (a rule broken on purpose): exit code 3, nothing written', async () => {
  const rewrite = gelu.rewrite;
  // GELU "fused" into a Relu: plausible structure, wrong numbers.
  gelu.rewrite = (m, _f, rw) => {
    rw.replace(m.values.gelu, rw.add({ op: 'Relu', inputs: [m.values.x], outputs: ['broken'] }).outputs[0]);
    return 'broken on purpose';
  };
  const out = path.join(dir, 'broken', 'unet.onnx');
  try {
    const p = compileChecked(tinyPath('unet_sdpa_op17'), { output: out, check: 2 });
    await expect(p).rejects.toThrow(SdcError);
    await expect(p).rejects.toMatchObject({ exitCode: 3, problem: expect.stringMatching(/differs from the original by .* nothing was written/) });
  } finally {
    gelu.rewrite = rewrite;
  }
  expect(fs.existsSync(out)).toBe(false);
  expect(fs.readdirSync(path.dirname(out))).toEqual([]);
});

/** y = erf-GELU(x) + c on x [2, 8], where c holds +Inf at column 3: the original's output has an Inf in every row. */
function geluPlusInf(name: string, inf = Infinity): string {
  const b = new ModelBuilder(17);
  const x = b.input('x', [2, 8]);
  const c = Array.from({ length: 8 }, (_, i) => (i === 3 ? inf : 0.25 * i));
  b.output(b.op('Add', [erfGeluGraph(b, x, 0), b.const('c', [8], c)], {}, { name: 'y' }), [2, 8]);
  return saveModel(b.model, path.join(dir, `${name}.onnx`));
}

test('--check refuses a wrong output when the original\'s output holds an Inf (the relative bound is over the finite values)', async () => {
  const src = geluPlusInf('gelu-inf');
  const rewrite = gelu.rewrite;
  gelu.rewrite = (m, _f, rw) => {
    rw.replace(m.values.gelu, rw.add({ op: 'Relu', inputs: [m.values.x], outputs: ['broken'] }).outputs[0]);
    return 'broken on purpose';
  };
  const out = path.join(dir, 'broken-inf', 'y.onnx');
  try {
    // before: max |a - b| / max |a| divided by Inf, so any difference beside an Inf passed
    const p = compileChecked(src, { output: out, check: 2 });
    await expect(p).rejects.toMatchObject({ exitCode: 3, problem: expect.stringMatching(/differs from the original by \S+ \(max relative, on the finite values; tolerance 0.001\)/) });
  } finally {
    gelu.rewrite = rewrite;
  }
  expect(fs.existsSync(out)).toBe(false);
});

test('--check passes a right output whose Infs match the original\'s, and says the bound covered the finite values', async () => {
  const r = await compileChecked(geluPlusInf('gelu-inf-ok'), { output: path.join(dir, 'gelu-inf-ok.out.onnx'), check: 3 });
  expect(r.opsAfter).toMatchObject({ 'com.microsoft::Gelu': 1 });
  expect(r.check).toMatchObject({ passed: true, nonFinite: 3 * 2, mismatches: [] });
  expect(r.check!.maxRel).toBeLessThan(1e-4);
  expect(r.warnings).toContainEqual(expect.stringMatching(/--check: the original's outputs held 6 NaN or infinite values over 3 input sets; the compiled model's matched each, position by position/));
});

test('--check: a NaN or an Inf on one side only is a mismatch, said where, whatever the tolerance', async () => {
  const original = geluPlusInf('one-side-a');
  const nan = geluPlusInf('one-side-b', NaN);
  const r = await checkOutput(original, nan, { sets: 1, target: 'cpu', tolerance: 1e9 });
  expect(r).toMatchObject({ passed: false, nonFinite: 2, mismatches: ['input set 0: y_out0[0,3]: the original has +Inf, the compiled model NaN (and 1 more position)'] });
  const back = await checkOutput(nan, original, { sets: 1, target: 'cpu', tolerance: 1e9 });
  expect(back.mismatches).toEqual(['input set 0: y_out0[0,3]: the original has NaN, the compiled model +Inf (and 1 more position)']);
  expect((await checkOutput(nan, nan, { sets: 1, target: 'cpu' })).passed).toBe(true); // NaN matches NaN
});

test('--check refuses an output with a NaN the original lacks, saying where (exit code 3, nothing written)', async () => {
  const rewrite = gelu.rewrite;
  // GELU "fused" into log(x): NaN for every negative x
  gelu.rewrite = (m, _f, rw) => {
    rw.replace(m.values.gelu, rw.add({ op: 'Log', inputs: [m.values.x], outputs: ['broken'] }).outputs[0]);
    return 'broken on purpose';
  };
  const out = path.join(dir, 'broken-nan', 'y.onnx');
  try {
    const p = compileChecked(geluPlusInf('gelu-nan'), { output: out, check: 1 });
    await expect(p).rejects.toMatchObject({ exitCode: 3, problem: expect.stringMatching(/^the compiled model differs from the original on cpu: input set 0: y_out0\[\d,\d\]: the original has -?[\d.e-]+, the compiled model NaN \(and \d+ more positions\); nothing was written$/) });
  } finally {
    gelu.rewrite = rewrite;
  }
  expect(fs.existsSync(out)).toBe(false);
});

test('--check at dims the original itself does not run at: a usage error naming them, not an internal one; where scaling one input fits, sdc finds it', async () => {
  // y must be `step` times as long as x (a ControlNet's image and latents): sdc's first dims (8 and 8) do not fit
  const related = (step: number) => {
    const b = new ModelBuilder(17);
    const x = b.input('x', ['len']);
    const y = b.input('y', ['longer_len']);
    b.output(b.op('Add', [x, b.op('Slice', [y, b.ints('start', [0]), b.ints('end', [1 << 30]), b.ints('axes', [0]), b.ints('step', [step])])]));
    return saveModel(b.model, path.join(dir, `related-dims-${step}.onnx`));
  };
  // twice as long: y scaled by 2 fits (the shape analysis finds no clash at 8 and 16)
  const fitted = await compileChecked(related(2), { output: path.join(dir, 'related-dims.out.onnx'), check: 1, passes: ['cleanup'] });
  expect(fitted.check).toMatchObject({ derivedDims: true, dims: { x: [8], y: [16] }, passed: true });
  // three times: no power-of-two scaling of one input fits, and the original refuses the dims tried
  const src = related(3);
  await expect(compileChecked(src, { output: path.join(dir, 'related-dims.out.onnx'), check: 1, passes: ['cleanup'] })).rejects.toMatchObject({ exitCode: 2, problem: expect.stringMatching(/^the original model does not run at the dims --check chose \(x=8,y=8\): .*give --shape with dims the model takes$/) });
  const ok = await compileChecked(src, { output: path.join(dir, 'related-dims.out.onnx'), check: 1, passes: ['cleanup'], shapes: 'x=4,y=12' });
  expect(ok.check!.passed).toBe(true);
});

describe('a target\'s output holds only ops the target runs', () => {
  const gpuOnly = /com\.microsoft::(NhwcConv|GroupNorm|SkipGroupNorm|BiasSplitGelu|BiasAdd)$/;
  test('a cuda output compiled for the cpu: its GPU-only ops are lowered (said in a note), it loads on the CPU and --check runs both through the oracle', async () => {
    const { compiledTiny } = require('./helpers/compiled') as typeof import('./helpers/compiled');
    const cuda = compiledTiny('unet_sdpa_op17', { target: 'cuda' }).file;
    const r = await compileChecked(cuda, { output: path.join(dir, 'cuda-to-cpu.onnx'), target: 'cpu', check: 1 });
    expect(Object.keys(r.opsBefore).filter((op) => gpuOnly.test(op)).length).toBeGreaterThan(0);
    expect(Object.keys(r.opsAfter).filter((op) => gpuOnly.test(op))).toEqual([]);
    expect(r.warnings.join('\n')).toMatch(/cpu has no kernel for NhwcConv \(\d+\), GroupNorm \(\d+\), SkipGroupNorm \(\d+\) in the input: lowered/);
    expect(r.loaded!.by).toBe('onnxruntime cpu');
    expect(r.check).toMatchObject({ passed: true, ranOn: expect.stringMatching(/the original's GPU-only ops lowered too/) });
    // compiled for cuda again, its ops stay, the load check says why it could not open it (from a real session) and --check still runs
    const again = await compileChecked(cuda, { output: path.join(dir, 'cuda-to-cuda.onnx'), target: 'cuda', check: 1 });
    expect(again.loaded!.by).toMatch(/^structure only: onnxruntime's CPU provider has no kernel for \w+/);
    expect(again.check!.passed).toBe(true);
  });

  test.each([18, 21])('ai.onnx GroupNormalization-%i opens on the CPU provider (it runs the function body): the load check loads it rather than name-listing it', async (opset) => {
    const b = new ModelBuilder(opset);
    const x = b.input('x', [2, 8, 4, 4]);
    const c = opset >= 21 ? 8 : 4; // scale and bias are per channel from opset 21, per group before
    b.output(b.op('GroupNormalization', [x, b.const('s', [c], Array(c).fill(1.5)), b.const('b', [c], Array(c).fill(0.25))], { num_groups: 4 }), [2, 8, 4, 4]);
    const src = saveModel(b.model, path.join(dir, `gn${opset}.onnx`));
    const r = await compileChecked(src, { output: path.join(dir, `gn${opset}.out.onnx`), check: 1 });
    expect(r.loaded!.by).toBe('onnxruntime cpu');
    expect(r.check!.passed).toBe(true);
  });

  test('an op no provider here runs (com.microsoft BiasDropout, a CUDA kernel): --check refuses it in one line naming the op and node, exit 2, nothing written', async () => {
    const b = new ModelBuilder(17, { 'com.microsoft': 1 });
    const x = b.input('x', [1, 2, 8]);
    b.output(b.op('BiasDropout', [x, b.const('bias', [8], [1, 2, 3, 4, 5, 6, 7, 8])], {}, { domain: 'com.microsoft', name: 'bd' }), [1, 2, 8]);
    const src = saveModel(b.model, path.join(dir, 'bias-dropout.onnx'));
    const out = path.join(dir, 'bias-dropout.out.onnx');
    await expect(compileChecked(src, { output: out, check: 1 })).rejects.toMatchObject({ exitCode: 2, file: src, problem: expect.stringMatching(/^onnxruntime's cpu provider has no kernel for BiasDropout \(opset 1, node 'bd'\)/) });
    expect(fs.existsSync(out)).toBe(false);
  });
});

test('--check without --shape reads free dims from the weights: a sequence added to a [1, 77, C] position table checks at 77, and a shared symbol takes one value', async () => {
  const b = new ModelBuilder(17);
  const x = b.input('x', ['batch', 'seq', 4]);
  const y = b.input('y', ['batch', 'seq', 4]);
  const pos = b.const('pos', [1, 77, 4], Array.from({ length: 308 }, (_, i) => Math.sin(i)));
  b.output(b.op('Relu', [b.op('Add', [b.op('Add', [x, pos]), y])]), ['batch', 'seq', 4]);
  const src = saveModel(b.model, path.join(dir, 'position-table.onnx'));
  const r = await compileChecked(src, { output: path.join(dir, 'position-table.out.onnx'), check: 1 });
  expect(r.check).toMatchObject({ derivedDims: true, dims: { x: [1, 77, 4], y: [1, 77, 4] }, passed: true });
  // the output keeps its symbolic dims: the solver's trial dims do not leak into what is written
  expect(readModel(path.join(dir, 'position-table.out.onnx')).graph.inputs.map((v) => v.shape)).toEqual([['batch', 'seq', 4], ['batch', 'seq', 4]]);
});

describe('--check says what it fed and what it could not prove', () => {
  /** A text encoder's front: token ids → embedding rows (through a Cast), plus an output that is always zero. */
  function embedding(): string {
    const b = new ModelBuilder();
    const ids = b.input('input_ids', ['batch', 'sequence'], DataType.INT64);
    const table = b.const('embed', [100, 4], randomFloats(400, 3));
    const hidden = b.op('Gather', [table, b.op('Cast', [ids], { to: DataType.INT32 })], { axis: 0 });
    b.output(b.op('Tanh', [hidden], {}, { name: 'hidden' }), ['batch', 'sequence', 4]);
    b.output(b.op('Mul', [hidden, b.scalar('zero', 0)]), ['batch', 'sequence', 4]);
    return saveModel(b.model, path.join(dir, 'embedding.onnx'));
  }

  test('integer inputs that index an embedding table get ids across it, not one repeated id', () => {
    const file = embedding();
    const ranges = indexRanges(readModel(file));
    expect([...ranges]).toEqual([['input_ids', { size: 100, table: 'embed' }]]);
    const ids = syntheticInputs([{ name: 'input_ids', type: 'int64', dims: [2, 64], range: 100 }]).input_ids.data as BigInt64Array;
    const values = new Set(Array.from(ids, Number));
    expect(values.size).toBeGreaterThan(30);
    expect(Math.min(...values)).toBeGreaterThanOrEqual(0);
    expect(Math.max(...values)).toBeLessThan(100);
    // without a range, integers stay 1 (a count, a valid index)
    expect([...new Set(syntheticInputs([{ name: 'n', type: 'int64', dims: [8] }]).n.data as BigInt64Array)]).toEqual([1n]);
  });

  test('the report names each input\'s values and warns about an output that held one value everywhere', async () => {
    const r = await compileChecked(embedding(), { output: path.join(dir, 'embedding.sdc.onnx'), check: 2 });
    expect(r.check).toMatchObject({ passed: true, inputs: ["input_ids: ids uniform in [0, 100) (the rows of 'embed')"], notes: [] });
    const out = r.check!.constantOutputs;
    expect(out).toHaveLength(1);
    expect(out[0]).toMatch(/ \(0 everywhere\)$/);
    expect(r.warnings).toContainEqual(expect.stringMatching(/^--check: output \S+ \(0 everywhere\) of the original held one value over every input set: the comparison says little about it/));
  });

  test('an fp16 output checked on the CPU says fp16 arithmetic was not exercised', async () => {
    const r = await compileChecked(tinyPath('unet_sdpa_op17'), { output: path.join(dir, 'fp16.cpu.onnx'), precision: 'fp16', check: 1 });
    expect(r.check!.passed).toBe(true);
    expect(r.check!.notes).toEqual([expect.stringMatching(/^fp16 arithmetic not exercised: onnxruntime's CPU provider computes the float16 ops in float32/)]);
    expect(r.check!.inputs).toEqual(['sample: uniform in [-1, 1)', 'timestep: timesteps 500, 0, 999 by set', 'encoder_hidden_states: uniform in [-1, 1)']);
    expect(r.check!.constantOutputs).toEqual([]);
  });
});

test('a cuda fp16 output (onnxruntime words its missing kernel differently under fp16) is checked by structure, not an internal error', async () => {
  const r = await compileChecked(tinyPath('unet_sdpa_op17'), { output: path.join(dir, 'cuda-fp16.onnx'), target: 'cuda', precision: 'fp16' });
  expect(r.loaded!.by).toMatch(/^structure only: onnxruntime's CPU provider has no kernel for NhwcConv/);
});

test('--check without --shape on a standalone ControlNet: the conditioning image is scaled until its embedding meets the latent (no clash in the shape analysis)', async () => {
  const src = path.join(FIXTURES, 'models', 'pipelines', 'tiny-controlnet', 'controlnet', 'model.onnx');
  const r = await compileChecked(src, { output: path.join(dir, 'controlnet.onnx'), check: 1 });
  expect(r.check).toMatchObject({ derivedDims: true, dims: { sample: [1, 4, 8, 8], controlnet_cond: [1, 3, 16, 16] }, passed: true });
});
