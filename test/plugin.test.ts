import * as fs from 'fs';
import * as path from 'path';
import { compileAssets, sdcPlugin } from '../src/plugin/plugin';
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

test('the bundler plugin runs the same step when the build starts', async () => {
  const src = path.join(dir, 'psrc');
  fs.mkdirSync(src);
  const b = new ModelBuilder();
  const x = b.input('x', [4]);
  b.output(b.op('Neg', [b.op('Neg', [x])]), [4]);
  saveModel(b.model, path.join(src, 'm.onnx'));
  const plugin = sdcPlugin({ srcDir: src, outDir: path.join(dir, 'pout'), cacheDir: path.join(dir, 'pcache') });
  expect(plugin.name).toBe('sdc');
  const log = jest.spyOn(process.stdout, 'write').mockImplementation(() => true);
  await plugin.buildStart();
  log.mockRestore();
  expect(fs.existsSync(path.join(dir, 'pout', 'm.onnx'))).toBe(true);
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
  const out = await runModel(path.join(opts.outDir, 'm.onnx'), { x: new (require('onnxruntime-node').Tensor)('float32', new Float32Array(4096).fill(1), [4096]) });
  expect(Array.from(out[Object.keys(out)[0]].data as Float32Array).every((v) => v === 3)).toBe(true);
});
