import { spawnSync } from 'child_process';
import * as fs from 'fs';
import * as path from 'path';
import { compileAssets } from '../src/assets/compile-assets';
import { readModel } from '../src/onnx/read';
import { ModelBuilder } from '../src/ir/builder';
import { relError, runModel, tinyPath, tmpDir, unetFeeds } from './helpers/ort';
import { saveModel } from '../src/onnx/write';

const dir = tmpDir();
afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));

test('build step: compiles every model once, reuses by content hash, recompiles what changed', async () => {
  const src = path.join(dir, 'src');
  fs.mkdirSync(path.join(src, 'unet'), { recursive: true });
  fs.copyFileSync(tinyPath('unet_sdpa_op17'), path.join(src, 'unet', 'model.onnx'));
  const small = new ModelBuilder();
  const x = small.input('x', [2, 3]);
  small.output(small.op('Relu', [small.op('Identity', [x])]), [2, 3]);
  saveModel(small.model, path.join(src, 'small.onnx'), { externalData: 'always', sizeThreshold: 0 });
  fs.writeFileSync(path.join(src, 'README.txt'), 'not a model');
  const opts = { srcDir: src, outDir: path.join(dir, 'out'), cacheDir: path.join(dir, 'cache') };

  const first = await compileAssets({ ...opts, check: 1 }); // checked once compiled; later builds reuse it
  expect(first.map((r) => [path.relative(src, r.source), r.cached])).toEqual([['small.onnx', false], ['unet/model.onnx', false]]);
  const feeds = unetFeeds(2, 32, 16, 32);
  const out = path.join(dir, 'out', 'unet', 'model.onnx');
  expect(relError((await runModel(tinyPath('unet_sdpa_op17'), feeds)).out_sample, (await runModel(out, feeds)).out_sample)).toBeLessThan(1e-4);
  expect(readModel(out).getMetadata('sdc.version')).toBeDefined();

  const second = await compileAssets(opts);
  expect(second.every((r) => r.cached)).toBe(true);

  const changed = new ModelBuilder();
  const y = changed.input('x', [2, 3]);
  changed.output(changed.op('Sigmoid', [y]), [2, 3]);
  saveModel(changed.model, path.join(src, 'small.onnx'));
  const third = await compileAssets(opts);
  expect(third.map((r) => r.cached)).toEqual([false, true]);
  expect(Object.keys((await import('../src/compiler/inspect')).inspect(readModel(path.join(dir, 'out', 'small.onnx'))).ops)).toEqual(['ai.onnx::Sigmoid']);
});

test('per-model rules: a folder with two models of different input shapes specializes each', async () => {
  const src = path.join(dir, 'rsrc');
  fs.mkdirSync(path.join(src, 'vae'), { recursive: true });
  fs.copyFileSync(tinyPath('unet_sdpa_op17'), path.join(src, 'unet.onnx'));
  const b = new ModelBuilder();
  const x = b.input('latent', ['b', 4, 'h', 'w']);
  b.output(b.op('Sigmoid', [x]), ['b', 4, 'h', 'w']);
  saveModel(b.model, path.join(src, 'vae', 'decoder.onnx'));
  const r = await compileAssets({
    srcDir: src,
    outDir: path.join(dir, 'rout'),
    cacheDir: path.join(dir, 'rcache'),
    mode: 'reduce-overhead',
    models: [
      { include: 'unet.onnx', shapes: 'sample=1x4x8x8,timestep=1,encoder_hidden_states=1x16x32' },
      { include: 'vae/**', shapes: { latent: [2, 4, 16, 16] }, target: 'webgpu' },
    ],
  });
  expect(r.map((x) => [path.relative(src, x.source), x.options.target, x.options.shapes])).toEqual([
    ['unet.onnx', 'cpu', 'sample=1x4x8x8,timestep=1,encoder_hidden_states=1x16x32'],
    ['vae/decoder.onnx', 'webgpu', 'latent=2x4x16x16'],
  ]);
  expect(readModel(path.join(dir, 'rout', 'unet.onnx')).graph.inputs.map((v) => v.shape)).toEqual([[1, 4, 8, 8], [1], [1, 16, 32]]);
  expect(readModel(path.join(dir, 'rout', 'vae', 'decoder.onnx')).graph.inputs[0].shape).toEqual([2, 4, 16, 16]);
});

test('a missing folder or a bad option is one clear error', async () => {
  await expect(compileAssets({ srcDir: path.join(dir, 'no-such-folder'), outDir: path.join(dir, 'x') })).rejects.toThrow(/no-such-folder: model folder not found \(srcDir\)/);
  fs.mkdirSync(path.join(dir, 'empty'), { recursive: true });
  await expect(compileAssets({ srcDir: path.join(dir, 'empty'), outDir: path.join(dir, 'x'), models: [{ include: '*.onnx', mode: 'fast' as never }] })).rejects.toThrow(/unknown mode 'fast'/);
});

test('overlapping source and output folders are refused before anything is written', async () => {
  const src = path.join(dir, 'osrc');
  fs.mkdirSync(path.join(src, 'sub'), { recursive: true });
  saveModel((() => { const b = new ModelBuilder(); const x = b.input('x', [4]); b.output(b.op('Add', [x, b.const('w', [4], new Float32Array(4).fill(2))]), [4]); return b.model; })(), path.join(src, 'm.onnx'), { externalData: 'always', sizeThreshold: 0 });
  fs.symlinkSync(src, path.join(dir, 'osrc-link'));
  const before = fs.readdirSync(src).sort();
  for (const [outDir, why] of [
    [src, /the outputs would replace the sources/],
    [path.join(dir, 'osrc-link'), /the outputs would replace the sources/],
    [path.join(src, 'compiled'), /outDir is inside srcDir/],
    [path.join(src, 'sub'), /outDir is inside srcDir/],
    [dir, /srcDir is inside outDir/],
  ] as const) {
    await expect(compileAssets({ srcDir: src, outDir, cacheDir: path.join(dir, 'ocache') })).rejects.toThrow(why);
  }
  expect(fs.readdirSync(src).sort()).toEqual(before);
  expect(fs.existsSync(path.join(src, 'compiled'))).toBe(false);
  // a sibling whose name starts like the source folder is not inside it
  await expect(compileAssets({ srcDir: src, outDir: `${src}-out`, cacheDir: path.join(dir, 'ocache') })).resolves.toHaveLength(1);
});

test('a model with external weights that changes leaves exactly one data file beside it', async () => {
  const src = path.join(dir, 'wsrc');
  fs.mkdirSync(src);
  const model = (scale: number) => {
    const b = new ModelBuilder();
    const x = b.input('x', [4096]);
    b.output(b.op('Mul', [x, b.const('w', [4096], new Float32Array(4096).fill(scale))]), [4096]);
    saveModel(b.model, path.join(src, 'm.onnx'), { externalData: 'always', sizeThreshold: 0 });
  };
  const opts = { srcDir: src, outDir: path.join(dir, 'wout'), cacheDir: path.join(dir, 'wcache') };
  const dataFiles = () => fs.readdirSync(opts.outDir).filter((f) => f.endsWith('.data'));
  model(2);
  await compileAssets(opts);
  expect(dataFiles()).toHaveLength(1);
  model(3);
  const r = await compileAssets(opts);
  expect(r[0].cached).toBe(false);
  expect(dataFiles()).toHaveLength(1);
  const x = { x: new (require('onnxruntime-node').Tensor)('float32', new Float32Array(4096).fill(1), [4096]) };
  const out = await runModel(path.join(opts.outDir, 'm.onnx'), x);
  expect(Array.from(out[Object.keys(out)[0]].data as Float32Array).every((v) => v === 3)).toBe(true);
  // a model the user saved beside the output that reads its weights keeps them when the output is rebuilt
  fs.copyFileSync(path.join(opts.outDir, 'm.onnx'), path.join(opts.outDir, 'mine.onnx'));
  model(4);
  await compileAssets(opts);
  expect(dataFiles()).toHaveLength(2);
  const mine = await runModel(path.join(opts.outDir, 'mine.onnx'), x);
  expect(Array.from(mine[Object.keys(mine)[0]].data as Float32Array).every((v) => v === 3)).toBe(true);
});

test('Vite dev server: a ?sdc import outside server.fs.allow is refused before anything is compiled; inside it resolves', () => {
  const project = path.join(dir, 'fsallow', 'app');
  const outside = path.join(dir, 'fsallow', 'secret');
  for (const d of [project, outside]) fs.mkdirSync(d, { recursive: true });
  fs.copyFileSync(tinyPath('unet_sdpa_op17'), path.join(project, 'unet.onnx'));
  fs.copyFileSync(tinyPath('unet_sdpa_op17'), path.join(outside, 'x.onnx'));
  fs.symlinkSync(path.join(outside, 'x.onnx'), path.join(project, 'link.onnx'));
  const cacheDir = path.join(dir, 'fsallow', 'cache');
  // the built plugin in a process of its own (unplugin is an ES module, which jest's require cannot load)
  const script = `
    const plugin = require(${JSON.stringify(path.resolve(__dirname, '..', 'dist', 'plugin', 'index.js'))}).vite({ cacheDir: ${JSON.stringify(cacheDir)}, log: false });
    const config = (command, fs) => ({ root: ${JSON.stringify(project)}, base: '/', command, build: { assetsDir: 'assets', outDir: 'dist' }, logger: { info() {} }, server: { fs } });
    const out = [];
    const tryResolve = (id) => { try { out.push(plugin.resolveId(id)); } catch (e) { out.push('refused: ' + e.message); } };
    plugin.configResolved(config('serve', { strict: true, allow: [${JSON.stringify(project)}] }));
    for (const id of ['/../secret/x.onnx?import&sdc', ${JSON.stringify(path.join(outside, 'x.onnx'))} + '?import&sdc', '/link.onnx?sdc', '/unet.onnx?import&sdc']) tryResolve(id);
    plugin.configResolved(config('serve', { strict: false, allow: [${JSON.stringify(project)}] }));
    tryResolve('/../secret/x.onnx?sdc');
    plugin.configResolved(config('build'));
    tryResolve('/../secret/x.onnx?sdc');
    process.stdout.write(JSON.stringify(out));`;
  const r = spawnSync(process.execPath, ['-e', script], { encoding: 'utf8' });
  expect(r.stderr).toBe('');
  const out: string[] = JSON.parse(r.stdout);
  for (const refused of out.slice(0, 3)) expect(refused).toMatch(/^refused: .*: is outside Vite's server\.fs\.allow/);
  expect(out[3]).toBe(`${path.join(project, 'unet.onnx')}?import&sdc`);
  // fs.strict off, or a build (imports come from the app's code, not from requests): Vite's rules do not apply
  expect(out.slice(4)).toEqual([`${path.join(outside, 'x.onnx')}?sdc`, `${path.join(outside, 'x.onnx')}?sdc`]);
  expect(fs.existsSync(cacheDir)).toBe(false);
});

test('the build step\'s check is recorded in the cache entry: a check request on an entry cached unchecked checks it first', async () => {
  const { AssetCompiler } = await import('../src/assets/asset-compiler');
  const folder = path.join(dir, 'checkrec');
  fs.mkdirSync(folder, { recursive: true });
  const model = (scale: number, file: string) => {
    const b = new ModelBuilder();
    const x = b.input('x', [4]);
    b.output(b.op('Mul', [x, b.const('w', [4], new Float32Array(4).fill(scale))]), [4]);
    return saveModel(b.model, file, { externalData: 'never' });
  };
  const source = model(2, path.join(folder, 'm.onnx'));
  const compiler = new AssetCompiler(path.join(folder, 'cache'));
  const options = { mode: 'default' as const, target: 'cpu' as const, precision: 'fp32' as const, shapes: null, check: 0 };
  // an entry for this key that computes something else (as a bug in an unchecked build would), stored unchecked
  await compiler.cache.store(compiler.keyOf(source, options), { source, ...options }, async (f) => { model(3, path.join(f, 'model.onnx')); });
  expect((await compiler.compile(source, options)).cached).toBe(true);
  await expect(compiler.compile(source, { ...options, check: 1 })).rejects.toMatchObject({ exitCode: 3, problem: expect.stringMatching(/differs from the original by .*; the cached build \(.*\) was not used/) });
  // a checked build is recorded as such: a later request with check reuses it without checking again
  const good = new AssetCompiler(path.join(folder, 'cache2'));
  await good.compile(source, { ...options, check: 2 });
  expect(good.cache.describeOf(good.keyOf(source, options))).toMatchObject({ check: 2 });
  expect((await good.compile(source, { ...options, check: 2 })).cached).toBe(true);
});

test('a shape the model cannot take, through a bundler (rollup): one line naming the model and the import, no stack through sdc or the bundler', () => {
  const project = path.join(dir, 'oneline');
  fs.mkdirSync(project, { recursive: true });
  fs.copyFileSync(tinyPath('unet_sdpa_op17'), path.join(project, 'unet.onnx'));
  fs.writeFileSync(path.join(project, 'main.js'), "import unet from './unet.onnx?sdc&mode=reduce-overhead&shape=sample=1x4x31x31,timestep=1,encoder_hidden_states=1x16x32';\nconsole.log(unet);\n");
  const script = `
    import { rollup } from 'rollup';
    import plugin from ${JSON.stringify(path.resolve(__dirname, '..', 'dist', 'plugin', 'index.js'))};
    try {
      await rollup({ input: ${JSON.stringify(path.join(project, 'main.js'))}, plugins: [plugin.default.rollup({ cacheDir: ${JSON.stringify(path.join(project, 'cache'))}, log: false })] });
      console.log('built');
    } catch (e) {
      process.stdout.write(JSON.stringify({ message: e.message, stack: e.stack }));
    }`;
  const r = spawnSync(process.execPath, ['--input-type=module', '-e', script], { encoding: 'utf8', cwd: path.resolve(__dirname, '..') });
  const e = JSON.parse(r.stdout);
  expect(e.message).toMatch(/unet\.onnx: .*contradicts the model at node '\/m\/up_blocks\.1\/Concat'.*\(import 'unet\.onnx\?sdc&mode=reduce-overhead&shape=sample=1x4x31x31,/);
  expect(e.stack.split('\n').filter((l: string) => /^\s+at /.test(l))).toEqual([]);
});
