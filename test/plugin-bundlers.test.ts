import { execFile } from 'child_process';
import * as fs from 'fs';
import * as path from 'path';
import { promisify } from 'util';
import { fileURLToPath } from 'url';
import { ModelBuilder } from '../src/ir/builder';
import { readModel } from '../src/onnx/read';
import { saveModel } from '../src/onnx/write';
import { tmpDir } from './helpers/ort';

/**
 * The plugin in each bundler, for real: a project importing two models with `?sdc` is built by Vite,
 * Rollup, webpack and esbuild (test/helpers/bundle.mjs, a child process), and the bundle is loaded to
 * read the import objects. Per-model rules specialize each model to its own shapes; the one with
 * external weights gets its data file beside it.
 */
const ROOT = path.resolve(__dirname, '..');
const run = promisify(execFile);
const dir = tmpDir('sdc-bundlers-');
afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));

interface ImportObject {
  url: string;
  externalData: { path: string; data: string }[];
  inputs: { name: string; dims: (number | string)[] }[];
  mode: string;
  target: string;
  precision: string;
  sessionOptions: Record<string, unknown>;
  gpuFeatures: string[];
}
interface BuildResult {
  stats: { compiled: number; fromCache: number; models: { source: string; compiled: boolean }[] };
  log: string[];
  models: Record<string, ImportObject>;
}

/** x[n, 64] · W[64, 64] (+ Relu): with its weights in a data file, or inline. */
function writeModel(file: string, external: boolean, scale = 1): void {
  const b = new ModelBuilder();
  const x = b.input('x', ['n', 64]);
  const w = b.const('w', [64, 64], Float32Array.from({ length: 64 * 64 }, (_, i) => scale * Math.sin(i)));
  b.output(b.op('Relu', [b.op('MatMul', [x, w])]), ['n', 64]);
  fs.mkdirSync(path.dirname(file), { recursive: true });
  saveModel(b.model, file, external ? { externalData: 'always', sizeThreshold: 0 } : {});
}

function project(name: string): string {
  const p = path.join(dir, name);
  writeModel(path.join(p, 'models', 'a.onnx'), true);
  writeModel(path.join(p, 'models', 'sub', 'b.onnx'), false);
  fs.writeFileSync(
    path.join(p, 'main.js'),
    "import a from './models/a.onnx?sdc';\nimport b from './models/sub/b.onnx?sdc&precision=fp16';\nexport const models = { a, b };\n",
  );
  return p;
}

const RULES = {
  mode: 'reduce-overhead',
  models: [
    { include: 'a.onnx', shapes: 'x=2x64' },
    { include: 'models/sub/*.onnx', shapes: 'x=3x64', target: 'webgpu' },
  ],
};

async function build(bundler: string, proj: string, out: string, options: object = RULES): Promise<BuildResult> {
  const { stdout } = await run(process.execPath, [path.join(ROOT, 'test', 'helpers', 'bundle.mjs'), bundler, proj, out, JSON.stringify({ cacheDir: path.join(proj, '.sdc-cache'), ...options })], { cwd: proj, maxBuffer: 1 << 24 });
  return JSON.parse(stdout.trim().split('\n').pop()!);
}

/** The file an import object's URL points to inside the build output. */
function fileOf(url: string, out: string): string {
  if (url.startsWith('file:')) return fileURLToPath(url);
  return path.join(out, url.replace(/^\.?\//, ''));
}

describe.each(['vite', 'rollup', 'webpack', 'esbuild'])('%s', (bundler) => {
  test('emits each compiled model, specialized by its own rule, with an import object to open it', async () => {
    const proj = project(bundler);
    const out = path.join(dir, `${bundler}-out`);
    const r = await build(bundler, proj, out);
    expect(r.stats.compiled).toBe(2);
    const { a, b } = r.models;

    expect(a.mode).toBe('reduce-overhead');
    expect(a.target).toBe('cpu');
    expect(a.inputs).toEqual([{ name: 'x', dtype: 'float', dims: [2, 64] }]);
    expect(a.sessionOptions.executionProviders).toEqual(['wasm']);
    expect(a.gpuFeatures).toEqual([]);
    const aFile = fileOf(a.url, out);
    expect(path.basename(aFile)).toMatch(/^a\.[0-9a-f]{16}\.onnx$/);
    expect(readModel(aFile, { allowMissingData: true }).graph.inputs[0].shape).toEqual([2, 64]);
    // external weights: beside the model, under a content-hashed name, mapped from the name the model uses
    expect(a.externalData).toHaveLength(1);
    const data = fileOf(a.externalData[0].data, out);
    expect(fs.statSync(data).size).toBe(64 * 64 * 4);
    expect(path.dirname(data)).toBe(path.dirname(aFile));
    expect(readModel(aFile, { allowMissingData: true }).externalFiles().map((f) => path.basename(f))).toEqual([a.externalData[0].path]);

    expect(b.target).toBe('webgpu');
    expect(b.precision).toBe('fp16');
    expect(b.inputs[0].dims).toEqual([3, 64]);
    expect(b.externalData).toEqual([]);
    expect(b.sessionOptions.executionProviders).toEqual([{ name: 'webgpu', preferredLayout: 'NCHW' }]);
    expect(readModel(fileOf(b.url, out)).getMetadata('sdc.precision')).toBe('fp16');
    expect(b.gpuFeatures).toEqual(['shader-f16']);
  }, 120000);
});

test('a second build compiles nothing; a changed model recompiles exactly that model, leaving one data file', async () => {
  const proj = project('rebuild');
  const out = path.join(dir, 'rebuild-out');
  expect((await build('vite', proj, out)).stats).toMatchObject({ compiled: 2, fromCache: 0 });
  const second = await build('vite', proj, out);
  expect(second.stats).toMatchObject({ compiled: 0, fromCache: 2 });
  expect(second.log.some((l) => /2 models: 0 compiled, 2 from cache/.test(l))).toBe(true);

  writeModel(path.join(proj, 'models', 'a.onnx'), true, 2);
  const third = await build('vite', proj, out);
  expect(third.stats).toMatchObject({ compiled: 1, fromCache: 1 });
  expect(third.stats.models.find((m) => m.compiled)!.source).toBe(path.join(proj, 'models', 'a.onnx'));
  expect(fs.readdirSync(path.join(out, 'assets')).filter((f) => f.endsWith('.data'))).toHaveLength(1);
}, 180000);

test('identical imports in one build compile once', async () => {
  const proj = project('twice');
  fs.writeFileSync(
    path.join(proj, 'main.js'),
    "import a from './models/a.onnx?sdc';\nimport a2 from './models/a.onnx?sdc&mode=reduce-overhead';\nexport const models = { a, a2 };\n",
  );
  const r = await build('rollup', proj, path.join(dir, 'twice-out'));
  expect(r.stats.compiled).toBe(1);
  expect(r.models.a.url).toBe(r.models.a2.url);
}, 120000);

test.each([
  ['a missing model', "import m from './models/nope.onnx?sdc';\nexport const models = { m };\n", /nope\.onnx: model not found \(imported as '\.\/models\/nope\.onnx' from main\.js\)/],
  ['a misspelt option', "import m from './models/a.onnx?sdc&mdoe=default';\nexport const models = { m };\n", /a\.onnx: unknown option 'mdoe' in the import query/],
  ['a bad target', "import m from './models/a.onnx?sdc&target=metal';\nexport const models = { m };\n", /a\.onnx: unknown target 'metal'/],
  ['a corrupt model', "import m from './models/bad.onnx?sdc';\nexport const models = { m };\n", /bad\.onnx: .*(protobuf|not an ONNX model|invalid)/i],
])('%s is a build error naming the model file', async (_name, code, message) => {
  const proj = project(`err-${_name.replace(/\W+/g, '-')}`);
  fs.writeFileSync(path.join(proj, 'models', 'bad.onnx'), Buffer.from('this is not a protobuf'));
  fs.writeFileSync(path.join(proj, 'main.js'), code);
  const err = await build('rollup', proj, path.join(proj, 'out'), {}).catch((e) => e as Error & { stderr: string });
  expect(err).toHaveProperty('stderr');
  expect((err as { stderr: string }).stderr).toMatch(message);
}, 120000);

test('Vite dev server: serves the compiled model from the cache, and recompiles when the .onnx or its weights change', async () => {
  const proj = project('dev');
  writeModel(path.join(proj, 'models', 'a2.onnx'), false, 3);
  const { stdout } = await run(process.execPath, [path.join(ROOT, 'test', 'helpers', 'vite-dev.mjs'), proj, JSON.stringify({ cacheDir: path.join(proj, '.sdc-cache'), ...RULES })], { cwd: proj, maxBuffer: 1 << 24 });
  const r = JSON.parse(stdout.trim().split('\n').pop()!);
  expect(r.first).toMatch(/^\/@sdc\/[0-9a-f]{16}\/a\.[0-9a-f]{16}\.onnx$/);
  expect(r.firstFetch.status).toBe(200);
  expect(r.firstFetch.bytes).toBeGreaterThan(0);
  expect(r.firstData).toEqual({ status: 200, bytes: 64 * 64 * 4 });
  expect(r.retrained).toMatch(/^\/@sdc\/[0-9a-f]{16}\/a\.[0-9a-f]{16}\.onnx$/);
  expect(r.retrained).not.toBe(r.first);
  expect(r.second).not.toBe(r.retrained);
  expect(r.secondFetch.status).toBe(200);
  expect(r.secondFetch.bytes).toBeGreaterThan(64 * 64 * 4); // the new model holds its weights inline
  expect(r.missing.status).toBe(404);
  expect(r.log.filter((l: string) => /a\.onnx .* compiled/.test(l))).toHaveLength(3);
}, 120000);
