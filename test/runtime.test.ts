import { spawn, spawnSync } from 'child_process';
import * as fs from 'fs';
import * as path from 'path';
import * as ort from 'onnxruntime-node';
import { SdcError } from '../src/ir/errors';
import { readModel } from '../src/onnx/read';
import { load } from '../src/runtime';
import { relError, runModel, tinyPath, tmpDir, unetFeeds } from './helpers/ort';
import { legacyCnn } from './helpers/graphs';

const dir = tmpDir();
afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));
const MODEL = tinyPath('unet_sdpa_op17');
const CHILD = path.join(__dirname, 'helpers', 'runtime-child.js');
const manifests = (d: string) => fs.readdirSync(d).filter((f) => f.endsWith('.json'));

test('three shape keys: three specializations on disk and in memory, each equal to the uncompiled model', async () => {
  const cacheDir = path.join(dir, 'three');
  const m = await load(MODEL, { cacheDir, warn: () => {} });
  for (const [b, s, seq] of [[1, 32, 16], [2, 32, 16], [2, 64, 16]]) {
    const feeds = unetFeeds(b, s, seq, 32);
    const [a, c] = [await runModel(MODEL, feeds), await m.run(feeds)];
    expect(relError(a.out_sample, c.out_sample)).toBeLessThan(1e-4);
  }
  await m.run(unetFeeds(1, 32, 16, 32)); // seen before: a memory hit
  expect(m.stats()).toMatchObject({ compiles: 3, specializations: 3, openSessions: 3, memoryHits: 1, diskHits: 0 });
  expect([...m.captureReports().values()].every((c) => c?.capturable)).toBe(true);
  expect(m.explain().at(-1)).toMatch(/ignores enableGraphCapture.*: capturable/);
  expect(manifests(cacheDir)).toHaveLength(3);
  const why = m.explain();
  expect(why[1]).toMatch(/sample\[0\] \(batch\) 1→2/);
  expect(why[2]).toMatch(/sample\[2\] \(height\) 32→64/);
  await m.release();
});

test('past maxSpecializations a new key runs on the generic model, with one warning', async () => {
  const warnings: string[] = [];
  const m = await load(MODEL, { cacheDir: path.join(dir, 'limit'), maxSpecializations: 3, warn: (w) => warnings.push(w) });
  for (const seq of [8, 16, 24]) await m.run(unetFeeds(1, 32, seq, 32));
  const feeds = unetFeeds(1, 32, 40, 32);
  const out = await m.run(feeds);
  await m.run(unetFeeds(1, 32, 48, 32));
  expect(warnings).toHaveLength(1);
  expect(warnings[0]).toMatch(/encoder_hidden_states:float32\[1x40x32\].*limit of 3/);
  expect(m.stats()).toMatchObject({ specializations: 3, genericRuns: 2 });
  expect(relError((await runModel(MODEL, feeds)).out_sample, out.out_sample)).toBeLessThan(1e-4);
  expect(m.explain().join('\n')).toMatch(/generic model \(over maxSpecializations=3\)/);
  await m.release();
});

test('a second process reuses the disk cache instead of compiling', () => {
  const cacheDir = path.join(dir, 'shared-cache');
  const first = JSON.parse(spawnSync(process.execPath, [CHILD, MODEL, cacheDir, '2'], { encoding: 'utf8' }).stdout);
  const second = JSON.parse(spawnSync(process.execPath, [CHILD, MODEL, cacheDir, '2'], { encoding: 'utf8' }).stdout);
  expect(first.stats).toMatchObject({ compiles: 1, diskHits: 0 });
  expect(second.stats).toMatchObject({ compiles: 0, diskHits: 1 });
  expect(second.sum).toBe(first.sum);
});

test('two processes specializing the same key at once leave one valid entry', async () => {
  const cacheDir = path.join(dir, 'race');
  const runChild = () => new Promise<string>((resolve, reject) => {
    const c = spawn(process.execPath, [CHILD, MODEL, cacheDir, '1']);
    let out = '';
    c.stdout.on('data', (d) => (out += d));
    c.on('exit', (code) => (code === 0 ? resolve(out) : reject(new Error(`child exited ${code}`))));
  });
  const [a, b] = (await Promise.all([runChild(), runChild()])).map((s) => JSON.parse(s));
  expect(a.sum).toBe(b.sum);
  expect(manifests(cacheDir)).toHaveLength(1);
  expect(fs.readdirSync(cacheDir).filter((f) => f.includes('.tmp-'))).toEqual([]);
  const third = JSON.parse(spawnSync(process.execPath, [CHILD, MODEL, cacheDir, '1'], { encoding: 'utf8' }).stdout);
  expect(third.stats).toMatchObject({ compiles: 0, diskHits: 1 });
  expect(third.sum).toBe(a.sum);
});

test('a cache folder that cannot be written degrades to memory-only with a warning', async () => {
  const blocked = path.join(dir, 'not-a-folder');
  fs.writeFileSync(blocked, 'a file where the cache folder should be');
  const warnings: string[] = [];
  const m = await load(MODEL, { cacheDir: path.join(blocked, 'cache'), warn: (w) => warnings.push(w) });
  const feeds = unetFeeds(1, 32, 16, 32);
  expect(relError((await runModel(MODEL, feeds)).out_sample, (await m.run(feeds)).out_sample)).toBeLessThan(1e-4);
  expect(warnings.join('\n')).toMatch(/not writable.*this process only/);
  await m.release();
});

describe('graph-capture hints', () => {
  test.each(['unet_sdpa_op17', 'unet_vanilla_op17', 'unet_dynamo_op18'])('%s: a specialization is capturable, the generic model lists blockers', async (name) => {
    const cacheDir = path.join(dir, `capture-${name}`);
    const spec = await load(tinyPath(name), { cacheDir, warn: () => {} });
    await spec.run(unetFeeds(2, 32, 16, 32));
    await spec.release();
    const generic = await load(tinyPath(name), { cacheDir, mode: 'default', warn: () => {} });
    await generic.run(unetFeeds(2, 32, 16, 32));
    await generic.release();
    const captures = manifests(cacheDir).map((f) => {
      const entry = JSON.parse(fs.readFileSync(path.join(cacheDir, f), 'utf8'));
      const m = readModel(path.join(cacheDir, entry.folder, entry.model));
      return { mode: m.getMetadata('sdc.mode'), capture: JSON.parse(m.getMetadata('sdc.capture')!), shapes: m.graph.nodes.filter((n) => n.opType === 'Shape').length };
    });
    const s = captures.find((c) => c.mode === 'reduce-overhead')!;
    const g = captures.find((c) => c.mode === 'default')!;
    expect(s.capture).toEqual({ capturable: true, blockers: [] });
    expect(s.shapes).toBe(0);
    if (name.includes('dynamo')) {
      expect(g.capture.capturable).toBe(true); // the dynamo export is static already
    } else {
      expect(g.capture.capturable).toBe(false);
      expect(g.capture.blockers.join('\n')).toMatch(/dynamic dims/);
    }
  });
});

test('browser session options turn WebGPU graph capture on only for a capturable model', async () => {
  const { webCaptureOptions } = await import('../src/runtime/session');
  const on = webCaptureOptions({ capturable: true, blockers: [] });
  expect(on.options).toMatchObject({ enableGraphCapture: true, preferredOutputLocation: 'gpu-buffer' });
  const off = webCaptureOptions({ capturable: false, blockers: ["input 'sample' has dynamic dims [batch, 4, height, width]"] });
  expect(off.options.enableGraphCapture).toBeUndefined();
  expect(off.reason).toMatch(/dynamic dims/);
});

test('load() with a target sdc does not know is refused naming the model, not probed as a provider', async () => {
  await expect(load(MODEL, { target: 'tpu' as never, cacheDir: null })).rejects.toThrow(/unet_sdpa_op17\.onnx: unknown target 'tpu' \(choose cpu, webgpu, cuda\)/);
  await expect(load(MODEL, { target: 'tpu' as never, cacheDir: null })).rejects.toBeInstanceOf(SdcError);
});

test('load() options a caller got wrong are refused naming the option; feeds that are not tensors name the input', async () => {
  const refused = (o: object, problem: RegExp) => expect(load(MODEL, { cacheDir: null, ...o })).rejects.toMatchObject({ file: MODEL, problem: expect.stringMatching(problem) });
  await refused({ mode: 'fast' }, /^load\(\) option mode: 'fast' is not one of reduce-overhead, default$/);
  await refused({ target: 'gpu' }, /^unknown target 'gpu' \(choose cpu, webgpu, cuda\)$/);
  await refused({ precision: 'int8' }, /^load\(\) option precision: 'int8'/);
  await refused({ maxSessions: 0 }, /^load\(\) option maxSessions: 0 is not a whole number ≥ 1$/);
  await refused({ shapes: 'sample=1x4x8x8' }, /^load\(\) has no option 'shapes' \(options: target, mode, /);
  const m = await load(MODEL, { cacheDir: null, warn: () => {} });
  const feeds = unetFeeds(1, 8, 8, 32) as Record<string, unknown>;
  await expect(m.run({ ...feeds, sample: { data: new Float32Array(256), dims: [1, 4, 8, 8] } } as never)).rejects.toMatchObject({ problem: "input 'sample' is a plain object, not an onnxruntime Tensor (new ort.Tensor('float32', data, dims) from onnxruntime-node)" });
  expect(m.stats().compiles).toBe(0);
  await m.release();
});

test('inputs of a shape the model cannot take are refused with the model and the dim named', async () => {
  const m = await load(tinyPath('unet_dynamo_op18'), { cacheDir: path.join(dir, 'wrong'), warn: () => {} });
  await expect(m.run(unetFeeds(1, 32, 16, 32))).rejects.toThrow(/unet_dynamo_op18\.onnx: input 'sample' is \[1x4x32x32\], but the model fixes dim 0 at 2 \[2x4x32x32\]/);
  await m.release();
});

test('a wrong input type, an unknown or missing input, and run() after release() are refused by sdc, naming them', async () => {
  const m = await load(MODEL, { cacheDir: path.join(dir, 'types'), warn: () => {} });
  const feeds = unetFeeds(1, 32, 16, 32);
  const int64Timestep = { ...feeds, timestep: new ort.Tensor('int64', BigInt64Array.from([500n]), [1]) };
  await expect(m.run(int64Timestep)).rejects.toThrow(/unet_sdpa_op17\.onnx: input 'timestep' is int64, but the model takes float32/);
  await expect(m.run({ ...feeds, extra: feeds.timestep })).rejects.toThrow(/'extra' is not an input of the model \(inputs: sample, timestep, encoder_hidden_states\)/);
  const { timestep: _t, ...noTimestep } = feeds;
  await expect(m.run(noTimestep)).rejects.toThrow(/missing input 'timestep'/);
  await expect(m.run({ ...feeds, sample: new ort.Tensor('float32', new Float32Array(4 * 32 * 32), [4, 32, 32]) })).rejects.toThrow(/input 'sample' has 3 dims \[4x32x32\], but the model takes 4 \[batch x 4 x height x width\]|input 'sample' has 3 dims/);
  expect(m.stats().compiles).toBe(0);
  await m.release();
  await expect(m.run(feeds)).rejects.toThrow(/run\(\) after release\(\)/);
});

test('target webgpu: on the WebGPU provider where it starts, else one warning and the CPU', async () => {
  const { webgpuUnavailable } = await import('../src/runtime/session');
  const { usingSwiftShader } = await import('../src/runtime/swiftshader');
  const why = await webgpuUnavailable();
  const warnings: string[] = [];
  const m = await load(MODEL, { target: 'webgpu', cacheDir: path.join(dir, 'webgpu'), warn: (w) => warnings.push(w) });
  const feeds = unetFeeds(1, 32, 16, 32);
  const err = relError((await runModel(MODEL, feeds)).out_sample, (await m.run(feeds)).out_sample);
  // SwiftShader's flash-attention MultiHeadAttention is wrong for queries ≥ 32 (docs/webgpu.md); webgpu.test checks the rest there
  expect(err).toBeLessThan(!why && usingSwiftShader() ? 5e-2 : 1e-4);
  if (why) {
    expect(warnings).toHaveLength(1);
    expect(warnings[0]).toMatch(/WebGPU provider cannot start here.*running on the CPU/);
    expect(m.stats().provider).toBe('cpu');
  } else {
    expect(m.stats().provider).toBe('webgpu'); // a machine with a GPU adapter
  }
  await m.release();
});

test('target cuda where onnxruntime-node has no CUDA provider: one warning, compiled for and run on the CPU', async () => {
  const { providerUnavailable } = await import('../src/runtime/session');
  const why = await providerUnavailable('cuda');
  const warnings: string[] = [];
  const m = await load(MODEL, { target: 'cuda', cacheDir: path.join(dir, 'cuda'), warn: (w) => warnings.push(w) });
  const feeds = unetFeeds(1, 32, 16, 32);
  expect(relError((await runModel(MODEL, feeds)).out_sample, (await m.run(feeds)).out_sample)).toBeLessThan(1e-4);
  if (why) {
    expect(warnings).toEqual([expect.stringMatching(/CUDA provider cannot start here.*compiling for and running on the CPU/)]);
    expect(m.stats().provider).toBe('cpu');
  } else {
    expect(m.stats().provider).toBe('cuda'); // an onnxruntime-node with CUDA
  }
  await m.release();
});

describe('runtime options and cache damage', () => {
  test('maxSessions: the least recently used session is released and later reopened from disk', async () => {
    const m = await load(MODEL, { cacheDir: path.join(dir, 'evict'), maxSessions: 1, warn: () => {} });
    const a = unetFeeds(1, 32, 16, 32);
    const b = unetFeeds(2, 32, 16, 32);
    await m.run(a);
    await m.run(b);
    expect(m.stats()).toMatchObject({ openSessions: 1, compiles: 2, diskHits: 0 });
    const again = await m.run(a); // evicted: reopened from the disk cache, not compiled
    expect(m.stats()).toMatchObject({ openSessions: 1, compiles: 2, diskHits: 1 });
    expect(relError((await runModel(MODEL, a)).out_sample, again.out_sample)).toBeLessThan(1e-4);
    await m.release();
  });

  test('dynamic: a dim named there is not part of the shape key (one specialization for every sequence length)', async () => {
    const m = await load(MODEL, { cacheDir: path.join(dir, 'dynamic'), dynamic: ['sequence'], warn: () => {} });
    for (const seq of [8, 16, 24]) {
      const feeds = unetFeeds(1, 32, seq, 32);
      expect(relError((await runModel(MODEL, feeds)).out_sample, (await m.run(feeds)).out_sample)).toBeLessThan(1e-4);
    }
    expect(m.stats()).toMatchObject({ compiles: 1, specializations: 1 });
    expect(m.shapeKey(unetFeeds(1, 32, 8, 32))).toMatch(/encoder_hidden_states:float32\[1x\*x32\]/);
    await m.release();
  });

  // one entry written by the runtime per SDC_CACHE_VERIFY setting (under `full` the manifest holds the
  // data's hash); each case damages its own copy
  const pristine = new Map<string, Promise<{ folder: string; good: ort.InferenceSession.OnnxValueMapType }>>();
  const cacheWithOneEntry = async (feeds: ReturnType<typeof unetFeeds>, verify: string) => {
    const folder = path.join(dir, `damage-pristine-${verify || 'default'}`);
    const m1 = await load(MODEL, { cacheDir: folder, warn: () => {} });
    const good = await m1.run(feeds);
    await m1.release();
    const [entry] = manifests(folder);
    expect(manifests(folder)).toHaveLength(1);
    expect(JSON.parse(fs.readFileSync(path.join(folder, entry), 'utf8')).dataSha256).toMatch(/^[0-9a-f]{64}$/);
    return { folder, good };
  };

  const entryFiles = (cacheDir: string) => {
    const [entry] = manifests(cacheDir);
    const manifest = path.join(cacheDir, entry);
    const m = JSON.parse(fs.readFileSync(manifest, 'utf8'));
    return { manifest, model: path.join(cacheDir, m.folder, m.model), data: path.join(cacheDir, m.folder, m.data) };
  };

  test.each([
    ['a truncated model file', (e: { manifest: string; model: string; data: string }) => fs.truncateSync(e.model, fs.statSync(e.model).size - 1000), ''],
    ['a damaged manifest', (e: { manifest: string; data: string }) => fs.writeFileSync(e.manifest, '{ not json'), ''],
    ['a truncated data file', (e: { manifest: string; data: string }) => fs.truncateSync(e.data, fs.statSync(e.data).size - 64), ''],
    ['same-size data tampering under SDC_CACHE_VERIFY=full', (e: { manifest: string; data: string }) => {
      const fd = fs.openSync(e.data, 'r+');
      fs.writeSync(fd, Buffer.alloc(64, 0x7f), 0, 64, 128);
      fs.closeSync(fd);
    }, 'full'],
  ])('%s: the entry is rebuilt, with a warning', async (_what, damage, verify) => {
    const cacheDir = path.join(dir, `damage-${String(_what).length}`);
    const old = process.env.SDC_CACHE_VERIFY;
    if (verify) process.env.SDC_CACHE_VERIFY = verify;
    try {
      const feeds = unetFeeds(1, 32, 16, 32);
      if (!pristine.has(verify)) pristine.set(verify, cacheWithOneEntry(feeds, verify));
      const { folder, good } = await pristine.get(verify)!;
      fs.cpSync(folder, cacheDir, { recursive: true });
      damage(entryFiles(cacheDir));
      const warnings: string[] = [];
      const m2 = await load(MODEL, { cacheDir, warn: (w) => warnings.push(w) });
      const again = await m2.run(feeds);
      expect(m2.stats()).toMatchObject({ compiles: 1, diskHits: 0 });
      expect(warnings.join('\n')).toMatch(/damaged/);
      expect(relError(good.out_sample, again.out_sample)).toBe(0);
      await m2.release();
    } finally {
      if (old === undefined) delete process.env.SDC_CACHE_VERIFY;
      else process.env.SDC_CACHE_VERIFY = old;
    }
  });
});

test("the caches key on sdc's code: a copy of the build hashes alike, and differently once one file changes", () => {
  const copy = path.join(dir, 'build-copy', 'src');
  fs.cpSync(path.resolve(__dirname, '..', 'dist', 'src'), copy, { recursive: true });
  const version = path.join(copy, 'compiler', 'version.js');
  const hashOf = () => spawnSync(process.execPath, ['-e', `process.stdout.write(require(${JSON.stringify(version)}).sdcBuildHash())`], { encoding: 'utf8' }).stdout;
  const first = hashOf();
  expect(first).toMatch(/^[0-9a-f]{16}$/);
  expect(hashOf()).toBe(first);
  fs.appendFileSync(path.join(copy, 'passes', 'fold-constants.js'), '\n// a changed pass\n');
  expect(hashOf()).not.toBe(first);
});

describe('concurrency and changed sources', () => {
  /** y = x + c over x [n, 4] (n dynamic, so each n is a new shape key), saved inline at `file`. */
  const addModel = (file: string, c: number, names: [string, string] = ['x', 'y']) => {
    const { ModelBuilder } = require('../src/ir/builder');
    const { saveModel } = require('../src/onnx/write');
    const b = new ModelBuilder();
    const x = b.input(names[0], ['n', 4]);
    b.output(b.op('Add', [x, b.const('c', [4], new Float32Array(4).fill(c))], {}, { name: 'add' }), ['n', 4]);
    saveModel(b.model, file, { externalData: 'never' });
    return file;
  };
  const feed = (n: number, name = 'x') => ({ [name]: new ort.Tensor('float32', new Float32Array(n * 4), [n, 4]) });
  const first = (r: Record<string, ort.Tensor>) => (Object.values(r)[0].data as Float32Array)[0];

  test('a model file overwritten after load(): a new shape is compiled and cached under the bytes it was compiled from, so a rollback gets the old model back', async () => {
    const folder = path.join(dir, 'changed');
    fs.mkdirSync(folder, { recursive: true });
    const file = addModel(path.join(folder, 'm.onnx'), 1);
    const cacheDir = path.join(folder, 'cache');
    const warnings: string[] = [];
    const m = await load(file, { cacheDir, warn: (w) => warnings.push(w) });
    expect(first(await m.run(feed(1)))).toBe(1);
    const original = fs.readFileSync(file);
    addModel(file, 2); // a new model in its place
    expect(first(await m.run(feed(2)))).toBe(2);
    expect(warnings.join('\n')).toMatch(/m\.onnx changed since load\(\); new shapes are compiled from the file as it is now/);
    await m.release();
    fs.writeFileSync(file, original); // rolled back
    const again = await load(file, { cacheDir, warn: () => {} });
    expect(first(await again.run(feed(2)))).toBe(1);
    await again.release();
  });

  test('eight concurrent calls with one new shape compile it once and open one session; with maxSessions 1 every session opened is released', async () => {
    const folder = path.join(dir, 'concurrent');
    fs.mkdirSync(folder, { recursive: true });
    const file = addModel(path.join(folder, 'm.onnx'), 3);
    const created: ort.InferenceSession[] = [];
    let released = 0;
    const create = ort.InferenceSession.create.bind(ort.InferenceSession);
    const spy = jest.spyOn(ort.InferenceSession, 'create').mockImplementation((async (...args: unknown[]) => {
      const s = await (create as (...a: unknown[]) => Promise<ort.InferenceSession>)(...args);
      created.push(s);
      const release = s.release.bind(s);
      s.release = async () => { released++; return release(); };
      return s;
    }) as never);
    try {
      const m = await load(file, { cacheDir: path.join(folder, 'cache'), warn: () => {} });
      const outs = await Promise.all(Array.from({ length: 8 }, () => m.run(feed(5))));
      expect(outs.every((o) => first(o) === 3)).toBe(true);
      expect(m.stats()).toMatchObject({ compiles: 1, openSessions: 1 });
      await m.release();
      const one = await load(file, { cacheDir: path.join(folder, 'cache'), maxSessions: 1, warn: () => {} });
      const runs = await Promise.all(Array.from({ length: 12 }, (_, i) => one.run(feed(i % 2 ? 6 : 7))));
      expect(runs.map((o) => Object.values(o)[0].dims[0])).toEqual(Array.from({ length: 12 }, (_, i) => (i % 2 ? 6 : 7)));
      expect(one.stats().openSessions).toBe(1);
      await one.release();
      // CPU entries are finalized by onnxruntime once (a session of its own) before they are opened
      expect(created.length).toBeGreaterThanOrEqual(4);
      expect(released).toBe(created.length);
      const cache = fs.readdirSync(path.join(folder, 'cache'));
      expect(cache.filter((f) => f.endsWith('.json'))).toHaveLength(3);
      expect(cache.filter((f) => !f.endsWith('.json'))).toHaveLength(3); // one folder per entry, no orphan
    } finally {
      spy.mockRestore();
    }
  });

  test('input names holding a comma or a newline: a second shape is explained, not a TypeError', async () => {
    const folder = path.join(dir, 'names');
    fs.mkdirSync(folder, { recursive: true });
    const file = addModel(path.join(folder, 'm.onnx'), 1, ['a,b\nc:d[1]', 'y']);
    const m = await load(file, { cacheDir: path.join(folder, 'cache'), warn: () => {} });
    await m.run(feed(1, 'a,b\nc:d[1]'));
    await m.run(feed(2, 'a,b\nc:d[1]'));
    expect(m.explain()[1]).toMatch(/new shape: a,b\nc:d\[1\]\[0\] \(n\) 1→2/);
    await m.release();
  });
});

describe('IR 3 models whose initializers are graph inputs too (model-zoo ResNet-50, DenseNet-121)', () => {
  test('load() runs them like onnxruntime, twice, from a fresh compile and then from the disk cache; compile() writes the weights as constants', async () => {
    const { saveModel } = require('../src/onnx/write') as typeof import('../src/onnx/write');
    const { compile } = require('../src/compiler/compile') as typeof import('../src/compiler/compile');
    const file = saveModel(legacyCnn().model, path.join(dir, 'legacy-cnn.onnx'));
    const feeds = { data: new ort.Tensor('float32', Float32Array.from({ length: 2 * 3 * 8 * 8 }, (_, i) => Math.sin(i)), [2, 3, 8, 8]) };
    const want = (await runModel(file, feeds)).reshape_out0;
    const cacheDir = path.join(dir, 'legacy-cache');
    for (const outcome of ['compiles', 'diskHits'] as const) {
      const m = await load(file, { cacheDir, warn: () => {} });
      const out = await m.run(feeds);
      expect(relError(want, out.reshape_out0)).toBeLessThan(1e-5);
      expect(m.stats()[outcome]).toBe(1);
      await m.release();
    }
    const out = path.join(dir, 'legacy-cnn.sdc.onnx');
    compile(file, { output: out, mode: 'reduce-overhead', shapes: 'data=2x3x8x8' });
    const written = readModel(out);
    expect(written.graph.inputs.map((v) => v.name)).toEqual(['data']);
    expect(written.irVersion).toBeGreaterThanOrEqual(4);
    expect(relError(want, (await runModel(out, feeds)).reshape_out0)).toBeLessThan(1e-5);
  });
});
