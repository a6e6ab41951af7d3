import { spawnSync } from 'child_process';
import * as fs from 'fs';
import * as path from 'path';
import { readText, writeText } from '../src/serving/pbtxt';
import { Message } from '../src/serving/model-config';
import { exportTriton } from '../src/serving/export-triton';
import { compilePipeline } from '../src/pipeline/compile-pipeline';
import { compiledTiny } from './helpers/compiled';
import { TINY, tinyPath, tmpDir } from './helpers/ort';
import { PIPELINES, pipelinePath } from './helpers/pipelines';
import { expectRepository, readConfig, readSimpleYaml } from './helpers/triton';
import { compile } from '../src/compiler/compile';

const dir = tmpDir('sdc-serving-');
afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));
const SDC = path.resolve(__dirname, '..', 'bin', 'sdc');
const TINY_SHAPES = 'sample=2x4x32x32,timestep=2,encoder_hidden_states=2x16x32';

describe('protobuf text format under the model-config schema', () => {
  const config: Message = {
    name: 'm "q" \\ é\n',
    max_batch_size: 0,
    input: [{ name: 't', data_type: 'TYPE_FP32', dims: [1], reshape: { shape: [] } }],
    instance_group: [{ count: 2, gpus: [0, 1], kind: 'KIND_GPU' }],
    dynamic_batching: {},
    optimization: { graph: { level: 2 } },
    parameters: { a: { string_value: 'x' }, 'b.c': { string_value: '' } },
    model_warmup: [{ name: 'w', batch_size: 1, inputs: { t: { data_type: 'TYPE_INT64', dims: [1], zero_data: true } } }],
  };

  test('what is written reads back to the same structure, and writes back to the same text', () => {
    const text = writeText('ModelConfig', config);
    expect(readText('ModelConfig', text)).toEqual(config);
    expect(writeText('ModelConfig', readText('ModelConfig', text))).toBe(text);
  });

  test('the other spellings of text format read the same: ":" before a message, <>, one entry per repeat, separators, comments', () => {
    const text = `# a comment
      name: "m \\"q\\" \\\\ é\\n"  max_batch_size: 0;
      input: < name: 't', data_type: TYPE_FP32, dims: 1 reshape: { shape: [] } >
      instance_group { count: 2 gpus: 0 gpus: [1] kind: KIND_GPU }
      dynamic_batching: { }
      optimization { graph: { level: 2 } }
      parameters: [{ key: "a" value: { string_value: "x" } }, { key: "b.c", value { string_value: "" } }]
      model_warmup { name: "w" batch_size: 1 inputs { key: "t" value { data_type: TYPE_INT64 dims: [ 1 ] zero_data: true } } }`;
    expect(readText('ModelConfig', text)).toEqual(config);
  });

  test.each([
    ['an unknown field', 'nmae: "x"', /line 1: ModelConfig has no field 'nmae'/],
    ['an unknown enum value', 'input [{ data_type: TYPE_FLOAT32 }]', /TYPE_FLOAT32" is not a DataType/],
    ['an enum in another enum\'s field', 'instance_group [{ kind: TYPE_FP32 }]', /is not a Kind/],
    ['a string where an integer goes', 'max_batch_size: "4"', /max_batch_size takes an integer/],
    ['an integer out of range', 'max_batch_size: 4294967296', /out of int32's range/],
    ['a negative unsigned', 'model_warmup [{ batch_size: -1 }]', /out of uint32's range/],
    ['a singular field twice', 'name: "a" name: "b"', /ModelConfig.name is set twice/],
    ['an unclosed message', 'optimization { graph { level: 1 }', /ends inside a ModelOptimizationPolicy/],
    ['a scalar without its colon', 'name "a"', /'name' needs ':'/],
    ['a map key twice', 'parameters { key: "a" value { } } parameters { key: "a" value { } }', /key "a" twice/],
  ])('the reader refuses %s, naming it', (_what, text, message) => {
    expect(() => readText('ModelConfig', text)).toThrow(message);
  });

  test('the writer refuses a field or value the schema does not have', () => {
    expect(() => writeText('ModelConfig', { nmae: 'x' })).toThrow(/ModelConfig has no field nmae/);
    expect(() => writeText('ModelConfig', { input: [{ data_type: 'FP32' }] })).toThrow(/is not a DataType/);
    expect(() => writeText('ModelConfig', { max_batch_size: 1.5 })).toThrow(/is not an integer/);
  });
});

describe('the tiny UNets, every style, default and reduce-overhead', () => {
  test.each(TINY.flatMap((style) => (['default', 'reduce-overhead'] as const).map((mode) => [style, mode] as const)))('%s %s: the repository agrees with the model onnxruntime opens', async (style, mode) => {
    const { file } = compiledTiny(style, { mode, shapes: mode === 'reduce-overhead' ? TINY_SHAPES : undefined });
    const repo = path.join(dir, 'tiny', `${style}-${mode}`);
    const r = await exportTriton([file], { output: repo, name: 'unet', kserve: true });
    const [m] = await expectRepository(repo, ['unet'], { kserve: true });
    const dynamicBatch = mode === 'default' && style !== 'unet_dynamo_op18'; // the dynamo export is static
    expect(r.models[0].maxBatchSize).toBe(dynamicBatch ? 4 : 0);
    if (dynamicBatch) {
      // timestep is [batch]: without its batch dim it is declared [1] and reshaped to a scalar
      expect((m.config.input as Message[])[1]).toEqual({ name: 'timestep', data_type: 'TYPE_FP32', dims: [1], reshape: { shape: [] } });
      expect(m.config.dynamic_batching).toEqual({});
    } else {
      expect((m.config.input as Message[]).map((e) => e.dims)).toEqual([[2, 4, 32, 32], [2], [2, 16, 32]]);
      expect((m.config.model_warmup as Message[])[0].batch_size).toBe(1);
    }
    // sdc's compile already ran onnxruntime's level 'all' decision: the backend's default, so no graph level
    expect(m.config.optimization).toBeUndefined();
    expect(m.config.instance_group).toEqual([{ count: 1, kind: 'KIND_CPU' }]);
    const manifest = readSimpleYaml(fs.readFileSync(path.join(repo, 'inferenceservice.yaml'), 'utf8'));
    expect(manifest).toEqual({
      apiVersion: 'serving.kserve.io/v1beta1', kind: 'InferenceService', metadata: { name: 'unet' },
      spec: { predictor: { model: { modelFormat: { name: 'onnx' }, runtime: 'kserve-tritonserver', protocolVersion: 'v2', storageUri: expect.any(String) } } },
    });
  });

  test('--max-batch 0 turns batching off (dims keep their -1); a finalized model (level disabled) gets graph level 2', async () => {
    const { file } = compiledTiny('unet_sdpa_op17');
    const repo = path.join(dir, 'nobatch');
    await exportTriton([file], { output: repo, maxBatch: 0 });
    const name = path.basename(file).replace(/\.onnx$/, '');
    const [m] = await expectRepository(repo, [name]);
    expect(m.config.max_batch_size).toBe(0);
    expect((m.config.input as Message[])[0].dims).toEqual([-1, 4, -1, -1]);
    // the runtime's finalized models record level 'disabled': onnxruntime must not optimize them again
    const finalized = path.join(dir, 'finalized.onnx');
    compile(tinyPath('unet_sdpa_op17'), { output: finalized, sessionLevel: 'disabled' });
    await exportTriton([finalized], { output: path.join(dir, 'finalized-repo') });
    expect(readConfig(path.join(dir, 'finalized-repo', 'finalized', 'config.pbtxt')).optimization).toEqual({ graph: { level: 2 } });
  });

  test('several shape specializations of one model become separately named models (config dims are per model, not per version)', async () => {
    const b1 = path.join(dir, 'spec', 'unet-b1.onnx');
    const b2 = path.join(dir, 'spec', 'unet-b2.onnx');
    compile(tinyPath('unet_sdpa_op17'), { output: b1, mode: 'reduce-overhead', shapes: 'sample=1x4x32x32,timestep=1,encoder_hidden_states=1x16x32' });
    compile(tinyPath('unet_sdpa_op17'), { output: b2, mode: 'reduce-overhead', shapes: TINY_SHAPES });
    const repo = path.join(dir, 'spec-repo');
    await exportTriton([b1, b2], { output: repo });
    const [m1, m2] = await expectRepository(repo, ['unet-b1', 'unet-b2']);
    expect((m1.config.input as Message[])[0].dims).toEqual([1, 4, 32, 32]);
    expect((m2.config.input as Message[])[0].dims).toEqual([2, 4, 32, 32]);
  });

  test('a cuda model: KIND_GPU on the GPUs named, instances per GPU, and the manifest asks for that many GPUs', async () => {
    const out = path.join(dir, 'cuda', 'unet.onnx');
    compile(tinyPath('unet_sdpa_op17'), { output: out, target: 'cuda', mode: 'reduce-overhead', shapes: TINY_SHAPES });
    const repo = path.join(dir, 'cuda-repo');
    await exportTriton([out], { output: repo, gpus: [0, 2], instances: 3 });
    // NhwcConv has no CPU kernel: onnxruntime-node here cannot open it, so the config is checked against sdc's reading
    const [m] = await expectRepository(repo, ['unet'], { openable: false });
    expect(m.config.instance_group).toEqual([{ count: 3, gpus: [0, 2], kind: 'KIND_GPU' }]);
    expect((m.config.input as Message[]).map((e) => e.dims)).toEqual([[2, 4, 32, 32], [2], [2, 16, 32]]);
    // a KServe pod that requests 2 GPUs sees them as 0 and 1: GPU 2 would not be there
    await expect(exportTriton([out], { output: repo, gpus: [0, 2], kserve: true })).rejects.toThrow(/a KServe pod that requests 2 GPUs sees them as 0\.\.1, so GPU 2 is not there; give --gpus 0,1$/);
    await exportTriton([out], { output: repo, gpus: [0, 1], instances: 3, kserve: true });
    await expectRepository(repo, ['unet'], { kserve: true, openable: false });
    const manifest = readSimpleYaml(fs.readFileSync(path.join(repo, 'inferenceservice.yaml'), 'utf8')) as { spec: { predictor: { model: { resources: unknown } } } };
    expect(manifest.spec.predictor.model.resources).toEqual({ limits: { 'nvidia.com/gpu': '2' }, requests: { 'nvidia.com/gpu': '2' } });
  });
});

describe('each tiny pipeline', () => {
  test.each(PIPELINES.flatMap((p) => (['default', 'reduce-overhead'] as const).map((mode) => [p, mode] as const)))('%s %s: one model per component, each agreeing with its model file', async (name, mode) => {
    const compiled = path.join(dir, 'pipelines', `${name}-${mode}`);
    const report = await compilePipeline(pipelinePath(name), { output: compiled, mode });
    const repo = path.join(dir, 'pipeline-repos', `${name}-${mode}`);
    const r = await exportTriton([compiled], { output: repo, name: 'sd' });
    const names = report.components.map((c) => `sd_${c.name}`);
    const models = await expectRepository(repo, names);
    expect(r.models.map((m) => m.component)).toEqual(report.components.map((c) => c.name));
    for (const m of models) {
      const timestep = (m.config.input as Message[]).find((e) => e.name === 'timestep');
      // the UNet's (and ControlNet's) timestep is a scalar in Optimum's export: dims [1] and no reshape (Triton
      // refuses an empty reshape where the model does not batch), never batched
      if (timestep && m.session!.inputs.find((i) => i.name === 'timestep' && i.isTensor && i.shape.length === 0)) {
        expect(timestep).toEqual({ name: 'timestep', data_type: 'TYPE_FP32', dims: [1] });
        expect(m.config.max_batch_size).toBe(0);
      }
      if (mode === 'reduce-overhead') expect(m.config.max_batch_size).toBe(0);
    }
    if (mode === 'default') expect(models.find((m) => m.name === 'sd_text_encoder')!.config.max_batch_size).toBe(4);
  });
});

describe('bad input: one sdc: line, exit 2, nothing written', () => {
  const run = (...args: string[]) => spawnSync(SDC, ['export', 'triton', ...args], { encoding: 'utf8' });
  const nothingWritten = (repo: string) => {
    expect(fs.existsSync(repo)).toBe(false);
    expect(fs.readdirSync(path.dirname(repo)).filter((f) => f.includes('.sdc-'))).toEqual([]);
  };

  test.each([
    ['a model sdc did not compile', () => [tinyPath('unet_sdpa_op17')], /unet_sdpa_op17.onnx: is not an sdc output \(no sdc.version in its metadata\)/],
    ['a file that is not a model', () => [path.resolve(__dirname, '..', 'README.md')], /README.md: is not a valid ONNX protobuf/],
    ['a folder that is not a pipeline', () => [path.resolve(__dirname, '..', 'docs')], /docs: is a folder without a pipeline in it/],
    ['a pipeline sdc did not compile', () => [pipelinePath('tiny-sd15')], /is not an sdc output .* is not a compiled pipeline: compile it with sdc compile/],
    ['a webgpu model', () => [webgpuModel()], /was compiled for webgpu; Triton's onnxruntime backend runs the CPU and CUDA providers/],
    ['--max-batch -1', () => [compiledTiny('unet_sdpa_op17').file, '--max-batch', '-1'], /^sdc: --max-batch takes a batch size/],
    ['--max-batch on static models', () => [compiledTiny('unet_dynamo_op18').file, '--max-batch', '8'], /--max-batch 8: no model here has a dynamic batch dim/],
    ['--instances 0', () => [compiledTiny('unet_sdpa_op17').file, '--instances', '0'], /--instances takes a number of model instances/],
    ['--gpus x', () => [compiledTiny('unet_sdpa_op17').file, '--gpus', '0,x'], /--gpus takes comma-separated GPU indices, e.g. 0,1 \(got '0,x'\)/],
    ['--gpus on a cpu model', () => [compiledTiny('unet_sdpa_op17').file, '--gpus', '0'], /--gpus places instances on GPUs, but this model was compiled for cpu/],
    ['--name with a slash', () => [compiledTiny('unet_sdpa_op17').file, '--name', 'a/b'], /--name 'a\/b': a model name is/],
  ])('%s', (_what, args, message) => {
    const repo = path.join(dir, 'bad', `repo-${Math.random().toString(36).slice(2)}`);
    fs.mkdirSync(path.dirname(repo), { recursive: true });
    const r = run(...args(), '-o', repo);
    expect(r.status).toBe(2);
    expect(r.stderr.trim().split('\n').filter((l) => l.startsWith('sdc:'))).toHaveLength(1);
    expect(r.stderr).toMatch(message);
    expect(r.stdout).toBe('');
    nothingWritten(repo);
  });

  let webgpu: string | null = null;
  function webgpuModel(): string {
    webgpu ??= path.join(dir, 'webgpu', 'unet.onnx');
    if (!fs.existsSync(webgpu)) compile(tinyPath('unet_sdpa_op17'), { output: webgpu, target: 'webgpu' });
    return webgpu;
  }

  test('REPO overlapping the input (inside the pipeline, holding the pipeline or the model) is refused', async () => {
    const compiled = path.join(dir, 'overlap', 'sd15');
    await compilePipeline(pipelinePath('tiny-sd15'), { output: compiled });
    for (const repo of [path.join(compiled, 'repo'), path.dirname(compiled)]) {
      const r = run(compiled, '-o', repo);
      expect([r.status, r.stderr]).toEqual([2, expect.stringMatching(/^sdc: .*: overlaps the pipeline folder .*; write the repository to a folder outside it\n$/)]);
    }
    expect(fs.readdirSync(path.dirname(compiled))).toEqual(['sd15']);
    const model = compiledTiny('unet_sdpa_op17').file;
    const r = run(model, '-o', path.dirname(model));
    expect([r.status, r.stderr]).toEqual([2, expect.stringMatching(/holds .*, which the repository is made from/)]);
    const same = run(model, '-o', model);
    expect([same.status, same.stderr]).toEqual([2, expect.stringMatching(/exists and is not a folder/)]);
  });

  test('REPO holding files sdc did not write is refused and left as it was; an earlier export is replaced whole', async () => {
    const model = compiledTiny('unet_sdpa_op17').file;
    const repo = path.join(dir, 'foreign');
    fs.mkdirSync(path.join(repo, 'mine', '1'), { recursive: true });
    fs.writeFileSync(path.join(repo, 'mine', 'config.pbtxt'), 'name: "mine"\n');
    const r = run(model, '-o', repo, '--name', 'unet');
    expect([r.status, r.stderr]).toEqual([2, expect.stringMatching(/^sdc: .*foreign: exists and holds mine\/config.pbtxt, which sdc did not write/)]);
    expect(fs.readdirSync(repo)).toEqual(['mine']);
    expect(fs.readdirSync(dir).filter((f) => f.includes('.sdc-'))).toEqual([]);

    const ours = path.join(dir, 'replaced');
    await exportTriton([model], { output: ours, name: 'first', kserve: true });
    const again = run(model, '-o', ours, '--name', 'second');
    expect([again.status, again.stderr]).toEqual([0, '']);
    await expectRepository(ours, ['second']);
    // a file added to sdc's repository makes it somebody's: refused
    fs.writeFileSync(path.join(ours, 'second', 'notes.txt'), 'mine');
    expect(run(model, '-o', ours).status).toBe(2);
    expect(fs.readFileSync(path.join(ours, 'second', 'notes.txt'), 'utf8')).toBe('mine');
  });

  test('two inputs that would get one name are refused naming both', () => {
    const a = compiledTiny('unet_sdpa_op17').file;
    const b = path.join(dir, 'same-name', path.basename(a));
    fs.mkdirSync(path.dirname(b), { recursive: true });
    fs.copyFileSync(a, b);
    const repo = path.join(dir, 'same-name-repo');
    const r = run(a, b, '-o', repo);
    expect([r.status, r.stderr]).toEqual([2, expect.stringMatching(/would be model '.*', like .*; rename one of the files/)]);
    nothingWritten(repo);
  });
});
