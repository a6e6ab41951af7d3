import { execFile } from 'child_process';
import * as fs from 'fs';
import * as path from 'path';
import { promisify } from 'util';
import { fileURLToPath } from 'url';
import { ModelBuilder } from '../../src/ir/builder';
import { readModel } from '../../src/onnx/read';
import { saveModel } from '../../src/onnx/write';
import { tmpDir } from './ort';

/**
 * The plugin in a real bundler: a project importing two models with `?sdc` is built by Vite, Rollup,
 * webpack or esbuild (test/helpers/bundle.mjs, a child process), and the bundle is loaded to read the
 * import objects. Used by test/plugin-bundlers.test.ts (esbuild, the error paths) and
 * test/full/plugin-bundlers.test.ts (the other bundlers, rebuilds, the dev server).
 */
const ROOT = path.resolve(__dirname, '..', '..');
export const run = promisify(execFile);
/** This test file's scratch folder (each test file loads its own copy of this module). */
export const dir = tmpDir('sdc-bundlers-');
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
export interface BuildResult {
  stats: { compiled: number; fromCache: number; models: { source: string; compiled: boolean }[] };
  log: string[];
  models: Record<string, ImportObject>;
}

/** x[n, 64] · W[64, 64] (+ Relu): with its weights in a data file, or inline. */
export function writeModel(file: string, external: boolean, scale = 1): void {
  const b = new ModelBuilder();
  const x = b.input('x', ['n', 64]);
  const w = b.const('w', [64, 64], Float32Array.from({ length: 64 * 64 }, (_, i) => scale * Math.sin(i)));
  b.output(b.op('Relu', [b.op('MatMul', [x, w])]), ['n', 64]);
  fs.mkdirSync(path.dirname(file), { recursive: true });
  saveModel(b.model, file, external ? { externalData: 'always', sizeThreshold: 0 } : {});
}

export function project(name: string): string {
  const p = path.join(dir, name);
  writeModel(path.join(p, 'models', 'a.onnx'), true);
  writeModel(path.join(p, 'models', 'sub', 'b.onnx'), false);
  fs.writeFileSync(
    path.join(p, 'main.js'),
    "import a from './models/a.onnx?sdc';\nimport b from './models/sub/b.onnx?sdc&precision=fp16';\nexport const models = { a, b };\n",
  );
  return p;
}

export const RULES = {
  mode: 'reduce-overhead',
  models: [
    { include: 'a.onnx', shapes: 'x=2x64' },
    { include: 'models/sub/*.onnx', shapes: 'x=3x64', target: 'webgpu' },
  ],
};

export async function build(bundler: string, proj: string, out: string, options: object = RULES): Promise<BuildResult> {
  const { stdout } = await run(process.execPath, [path.join(ROOT, 'test', 'helpers', 'bundle.mjs'), bundler, proj, out, JSON.stringify({ cacheDir: path.join(proj, '.sdc-cache'), ...options })], { cwd: proj, maxBuffer: 1 << 24 });
  return JSON.parse(stdout.trim().split('\n').pop()!);
}

/** The file an import object's URL points to inside the build output. */
function fileOf(url: string, out: string): string {
  if (url.startsWith('file:')) return fileURLToPath(url);
  return path.join(out, url.replace(/^\.?\//, ''));
}

/**
 * Build the two-model project with one bundler: each model compiled and specialized by its own rule,
 * emitted with an import object that opens it (external weights beside it under a content-hashed name).
 */
export async function expectEmitted(bundler: string): Promise<void> {
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
}
