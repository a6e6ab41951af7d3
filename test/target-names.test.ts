import * as fs from 'fs';
import * as path from 'path';
import { assetInfo } from '../src/assets/asset-compiler';
import { compile } from '../src/compiler/compile';
import { ModelBuilder } from '../src/ir/builder';
import { readModel } from '../src/onnx/read';
import { saveModel } from '../src/onnx/write';
import { TARGETS, TargetName } from '../src/targets';
import { defaultLayout, recommendedSession } from '../src/targets/session-options';
import { tmpDir } from './helpers/ort';

/**
 * What a target is lives in src/targets/ (kernels.ts, traits.ts); everything else asks it a question
 * (`target.traits.dispatchBound`, `targetTraits(t).hostCpu`) instead of comparing its name, so that a
 * new target is a row and a column there, not a hunt through the doors for `=== 'webgpu'`.
 */
const ROOT = path.resolve(__dirname, '..');
const SCANNED = ['src', 'bench', 'plugin'];

const NAME = `'(?:${TARGETS.join('|')})'`;
const COMPARISONS = [
  /\btarget\.name\s*[!=]==/, // target.name === anything
  new RegExp(`[!=]==\\s*${NAME}`), // x === 'webgpu'
  new RegExp(`${NAME}\\s*[!=]==`), // 'webgpu' === x
  new RegExp(`\\bcase\\s+${NAME}\\s*:`), // switch (target) { case 'cuda': }
  new RegExp(`\\[\\s*${NAME}(?:\\s*,\\s*${NAME})*\\s*\\]\\.includes\\(`), // ['webgpu', 'cuda'].includes(target)
];

function sources(dir: string): string[] {
  if (!fs.existsSync(dir)) return [];
  return fs.readdirSync(dir, { withFileTypes: true }).flatMap((e) => {
    const p = path.join(dir, e.name);
    return e.isDirectory() ? sources(p) : e.name.endsWith('.ts') ? [p] : [];
  });
}

function comparisonsIn(file: string): string[] {
  return fs
    .readFileSync(file, 'utf8')
    .split('\n')
    .map((line, i) => ({ line, i }))
    .filter(({ line }) => COMPARISONS.some((re) => re.test(line)))
    .map(({ line, i }) => `${path.relative(ROOT, file)}:${i + 1}: ${line.trim()}`);
}

const files = SCANNED.flatMap((d) => sources(path.join(ROOT, d)))
  .map((f) => path.relative(ROOT, f).split(path.sep).join('/'))
  .filter((f) => !f.startsWith('src/targets/'));

test('the patterns catch what they are for (and not an onnxruntime provider name held in a constant)', () => {
  const hits = (line: string) => COMPARISONS.some((re) => re.test(line));
  for (const line of ["if (target.name === 'webgpu')", "o.target !== 'cpu'", "'cuda' === t", "case 'webgpu':", "['webgpu', 'cuda'].includes(target)", 'target.name !== other.name']) expect([line, hits(line)]).toEqual([line, true]);
  for (const line of ['if (target.traits.hostCpu)', 'where === CPU_EP', "mode === 'reduce-overhead'", "const t: TargetName = 'cpu'"]) expect([line, hits(line)]).toEqual([line, false]);
});

test('no target-name comparison outside src/targets/: doors, runtime and benchmarks ask the traits', () => {
  const found = files.flatMap((f) => comparisonsIn(path.join(ROOT, f)));
  expect(found).toEqual([]);
});

describe('the trait questions answer as the name comparisons did', () => {
  const dir = tmpDir();
  afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));
  // a model small enough to compile for every target in milliseconds
  const source = () => {
    const b = new ModelBuilder();
    b.output(b.op('Relu', [b.input('x', [2, 64])]), [2, 64]);
    return saveModel(b.model, path.join(dir, 'relu.onnx'));
  };

  test('provider layout: recorded for webgpu only, --layout elsewhere is said to do nothing', () => {
    expect(TARGETS.map((t) => [t, defaultLayout(t)])).toEqual([['cpu', null], ['webgpu', 'NCHW'], ['cuda', null]]);
    const src = source();
    for (const target of TARGETS) {
      const out = path.join(dir, `${target}.onnx`);
      const r = compile(src, { output: out, target, preferredLayout: 'NHWC' });
      const meta = readModel(out).getMetadata('sdc.session.preferredLayout');
      expect([target, meta ?? null, r.warnings.some((w) => /--layout is a WebGPU provider option/.test(w))]).toEqual([target, target === 'webgpu' ? 'NHWC' : null, target !== 'webgpu']);
    }
  });

  test('recommended session: the provider, its layout where it takes one; an unknown recorded target passes through', () => {
    const meta = (m: Record<string, string>) => (k: string) => m[k];
    expect(recommendedSession(meta({ 'sdc.target': 'cpu' })).options.executionProviders).toEqual(['cpu']);
    expect(recommendedSession(meta({ 'sdc.target': 'cuda' })).options.executionProviders).toEqual(['cuda']);
    expect(recommendedSession(meta({ 'sdc.target': 'webgpu' })).options.executionProviders).toEqual([{ name: 'webgpu', preferredLayout: 'NCHW' }]);
    const nhwc = recommendedSession(meta({ 'sdc.target': 'webgpu', 'sdc.session.preferredLayout': 'NHWC' }));
    expect(nhwc.options.executionProviders).toEqual([{ name: 'webgpu', preferredLayout: 'NHWC' }]);
    expect(nhwc.reasons).toContain("WebGPU preferredLayout 'NHWC' (recorded by sdc)");
    expect(recommendedSession(meta({ 'sdc.target': 'tpu' })).options.executionProviders).toEqual(['tpu']);
  });

  test('what a bundled app opens a model with: wasm for cpu, WebGPU with its layout and capture, cuda by name; shader-f16 for fp16 WebGPU', () => {
    const src = source();
    const info = (target: TargetName, precision: 'fp32' | 'fp16' = 'fp32') => {
      const out = path.join(dir, `asset-${target}-${precision}.onnx`);
      compile(src, { output: out, target, precision, mode: 'reduce-overhead' });
      return assetInfo(out, { mode: 'reduce-overhead', target, precision, shapes: null, check: 0 });
    };
    const cpu = info('cpu');
    expect([cpu.sessionOptions.executionProviders, cpu.captureOptions, cpu.gpuFeatures]).toEqual([['wasm'], null, []]);
    const cuda = info('cuda');
    expect([cuda.sessionOptions.executionProviders, cuda.captureOptions, cuda.gpuFeatures]).toEqual([['cuda'], null, []]);
    const web = info('webgpu');
    expect([web.sessionOptions.executionProviders, web.captureOptions, web.gpuFeatures]).toEqual([[{ name: 'webgpu', preferredLayout: 'NCHW' }], { enableGraphCapture: true, preferredOutputLocation: 'gpu-buffer' }, []]);
    expect(info('webgpu', 'fp16').gpuFeatures).toEqual(['shader-f16']);
    expect(info('cpu', 'fp16').gpuFeatures).toEqual([]);
  });
});
