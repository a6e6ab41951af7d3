import * as fs from 'fs';
import * as path from 'path';
import * as ort from 'onnxruntime-node';
import { readModel } from '../../src/onnx/read';
import { compilePipeline, PipelineCompileOptions, PipelineReport } from '../../src/pipeline/compile-pipeline';
import { modelInputSpecs, syntheticInputs } from '../../src/runtime/feeds';
import { profilePlacement } from '../../src/runtime/placement';
import { recommendedSession } from '../../src/targets/session-options';
import { relError, runModel, tmpDir } from '../helpers/ort';
import { filesUnder, hasTorchWeights, PIPELINES, pipelinePath, referenceCase } from '../helpers/pipelines';
import { gpuTest } from '../helpers/webgpu';

const dir = tmpDir('sdc-pipelines-');
afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));

/** The acceptance of issue 24: every tiny pipeline × these three, checked; `npm test` runs one pipeline on the CPU. */
const CONFIGS: [string, PipelineCompileOptions][] = [
  ['cpu default', { target: 'cpu' }],
  ['webgpu reduce-overhead 32x48 batch 1', { target: 'webgpu', mode: 'reduce-overhead', shape: { height: 32, width: 48, batch: 1 } }],
  ['cuda default', { target: 'cuda' }],
];
const CASES = PIPELINES.flatMap((p) => CONFIGS.map(([label, o]) => [p, label, o] as const));

const compiled = new Map<string, Promise<PipelineReport>>();
function compiledPipeline(name: string, label: string, o: PipelineCompileOptions): Promise<PipelineReport> {
  const key = `${name}|${label}`;
  if (!compiled.has(key)) compiled.set(key, compilePipeline(pipelinePath(name), { ...o, output: path.join(dir, name, label.replace(/ /g, '-')), check: 1 }));
  return compiled.get(key)!;
}

describe.each(CASES)('sdc compile %s (%s) --check 1', (name, label, o) => {
  test('passes its check, writes the same files (the others byte for byte), and leaves no attention unfused', async () => {
    const r = await compiledPipeline(name, label, o);
    // a component's weights are written under the name Optimum uses, whatever the input called them
    expect(filesUnder(r.output)).toEqual(filesUnder(pipelinePath(name)).map((f) => f.replace(/model\.onnx\.data$/, 'model.onnx_data')));
    for (const f of r.copied) expect(fs.readFileSync(path.join(r.output, f)).equals(fs.readFileSync(path.join(pipelinePath(name), f)))).toBe(true);
    for (const c of r.components) {
      expect([c.name, c.compile.check!.passed]).toEqual([c.name, true]);
      const m = readModel(path.join(r.output, c.name, 'model.onnx'));
      expect([c.name, m.getMetadata('sdc.target')]).toEqual([c.name, o.target]);
      expect([c.name, m.graph.nodes.filter((n) => n.opType === 'Softmax').length]).toEqual([c.name, 0]);
      if (o.mode === 'reduce-overhead') for (const v of m.graph.inputs) expect([c.name, v.name, v.shape!.every((d) => typeof d === 'number')]).toEqual([c.name, v.name, true]);
    }
  }, 600000);

  if (o.target === 'cpu') {
    test('every component equals the original (1e-4) and PyTorch (1e-3) on the reference inputs: batch 1, 77 tokens, 16x24 latents', async () => {
      const r = await compiledPipeline(name, label, o);
      for (const c of r.components) {
        const ref = referenceCase(name, c.name);
        const original = await runModel(path.join(pipelinePath(name), c.name, 'model.onnx'), ref.feeds);
        const got = await runModel(path.join(r.output, c.name, 'model.onnx'), ref.feeds);
        for (const [k, want] of Object.entries(ref.outputs)) {
          expect([c.name, k, relError(original[k], got[k]) < 1e-4]).toEqual([c.name, k, true]);
          if (hasTorchWeights(name, c.name)) expect([c.name, k, relError(want, got[k]) < 1e-3]).toEqual([c.name, k, true]);
        }
      }
    }, 600000);
  }
});

/**
 * On the real WebGPU provider (SwiftShader here): every component of a static webgpu pipeline runs with no
 * CPU node and no copy. The text encoder's int64 Cast of its token ids (CLIP's pooled-token ArgMax), which
 * onnxruntime's WebGPU Cast takes only under graph capture, is a Gather from a table (cast-by-lookup).
 */
gpuTest('webgpu reduce-overhead tiny-sdxl: every component placed on the GPU, 0 CPU nodes, 0 copies', async () => {
  const [label, o] = CONFIGS[1];
  const r = await compiledPipeline('tiny-sdxl', label, o);
  for (const c of r.components) {
    const file = path.join(r.output, c.name, 'model.onnx');
    const m = readModel(file);
    const feeds = syntheticInputs(modelInputSpecs(m, new Map(Object.entries(c.dims!)), 'placement'));
    const options = recommendedSession((k) => m.getMetadata(k)).options as ort.InferenceSession.SessionOptions;
    const p = await profilePlacement(file, feeds, options);
    expect([c.name, p.cpuNodes, p.memcpy]).toEqual([c.name, [], 0]);
  }
}, 1200000);
