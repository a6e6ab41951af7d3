import { spawnSync } from 'child_process';
import * as fs from 'fs';
import * as path from 'path';
import { readModel } from '../src/onnx/read';
import { saveModel } from '../src/onnx/write';
import { readPipeline } from '../src/pipeline/layout';
import { planDims } from '../src/pipeline/dims';
import { compilePipeline, PipelineReport } from '../src/pipeline/compile-pipeline';
import { loadPipeline } from '../src/pipeline/load';
import { benchPipeline, formatPipelineBench } from '../src/pipeline/bench-pipeline';
import { relError, runModel, tmpDir } from './helpers/ort';
import { AttrType } from '../src/ir/graph';
import { DataType } from '../src/ir/dtype';
import { Tensor } from '../src/ir/tensor';
import { filesUnder, PIPELINES, pipelinePath, referenceCase } from './helpers/pipelines';

const dir = tmpDir('sdc-pipeline-');
afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));
const SDC = path.resolve(__dirname, '..', 'bin', 'sdc');

const ROLES: Record<string, string> = {
  text_encoder: 'text-encoder', text_encoder_2: 'text-encoder', unet: 'unet', controlnet: 'controlnet', vae_encoder: 'vae-encoder', vae_decoder: 'vae-decoder',
};

/** Write an edited model over the file it was read from (sdc refuses to write over its input). */
function replaceModel(m: ReturnType<typeof readModel>, file: string): void {
  saveModel(m, `${file}.new`);
  fs.renameSync(`${file}.new`, file);
}

/** A copy of a fixture pipeline the test may edit (the fixtures are never written). */
function copyOf(name: string, as = name): string {
  const to = path.join(dir, 'copies', as);
  fs.cpSync(pipelinePath(name), to, { recursive: true });
  return to;
}

test.each(PIPELINES)('readPipeline finds every component of %s with the role its inputs confirm, and the other files', (name) => {
  const p = readPipeline(pipelinePath(name));
  expect(p.className).toMatch(/^StableDiffusion.*Pipeline$/);
  for (const c of p.components) expect([c.name, c.role, c.unrecognized]).toEqual([c.name, ROLES[c.name], undefined]);
  expect(p.components.map((c) => c.name)).toEqual(expect.arrayContaining(['text_encoder', 'unet', 'vae_encoder', 'vae_decoder']));
  // every file is a component's or copied: none lost, none twice
  const all = filesUnder(pipelinePath(name));
  expect([...p.components.flatMap((c) => c.files), ...p.otherFiles].sort()).toEqual(all);
  expect(p.otherFiles).toEqual(expect.arrayContaining(['model_index.json', 'unet/config.json', path.join('scheduler', 'scheduler_config.json')]));
});

test('a folder sdc does not know, or one whose inputs contradict its name, is compiled as a plain model and said so', () => {
  const p0 = copyOf('tiny-sd15', 'odd');
  fs.cpSync(path.join(p0, 'vae_decoder'), path.join(p0, 'safety_checker'), { recursive: true });
  fs.rmSync(path.join(p0, 'unet', 'model.onnx'));
  fs.cpSync(path.join(p0, 'text_encoder', 'model.onnx'), path.join(p0, 'unet', 'model.onnx'));
  const p = readPipeline(p0);
  const odd = p.components.find((c) => c.name === 'safety_checker')!;
  expect(odd.role).toBe('other');
  expect(odd.unrecognized).toMatch(/does not know a 'safety_checker' component \(its inputs look like a vae-decoder\)/);
  const unet = p.components.find((c) => c.name === 'unet')!;
  expect(unet.role).toBe('other');
  expect(unet.unrecognized).toMatch(/'unet' should be a unet, but its inputs input_ids/);
});

test('compile() and the other one-model doors given a pipeline folder point to the pipeline door', async () => {
  const { compile } = await import('../src/compiler/compile');
  expect(() => compile(pipelinePath('tiny-sd15'), { output: path.join(dir, 'one.onnx') })).toThrow(/tiny-sd15: is a pipeline folder, not an ONNX file: compile it whole with `sdc compile DIR -o OUTDIR` \(library: compilePipeline\(\)\)/);
});

test('a folder without a pipeline, or with a broken model_index.json, is refused naming it', () => {
  const empty = path.join(dir, 'empty');
  fs.mkdirSync(empty, { recursive: true });
  expect(() => readPipeline(empty)).toThrow(/is a folder without a pipeline in it: no <component>\/model.onnx/);
  const broken = copyOf('tiny-sd15', 'broken-index');
  fs.writeFileSync(path.join(broken, 'model_index.json'), '{"_class_name": ');
  expect(() => readPipeline(broken)).toThrow(/model_index.json: is not valid JSON/);
});

describe('dims from one description of the images', () => {
  test('latents from the VAE graph\'s own factor, tokens from the position table, batch doubled for guidance', () => {
    const plan = planDims(readPipeline(pipelinePath('tiny-sd15')), { height: 32, width: 48, batch: 3 });
    expect([plan.vaeFactor, plan.textLength]).toEqual([2, 77]);
    const dims = (c: string) => Object.fromEntries(plan.components.get(c)!.dims!);
    expect(dims('unet')).toEqual({ sample: [6, 4, 16, 24], timestep: [], encoder_hidden_states: [6, 77, 32] });
    expect(dims('text_encoder')).toEqual({ input_ids: [3, 77] });
    expect(dims('vae_encoder')).toEqual({ sample: [3, 3, 32, 48] });
    expect(dims('vae_decoder')).toEqual({ latent_sample: [3, 4, 16, 24] });
    const noCfg = planDims(readPipeline(pipelinePath('tiny-sd15')), { height: 32, width: 48, batch: 3, cfg: false });
    expect(noCfg.components.get('unet')!.dims!.get('sample')).toEqual([3, 4, 16, 24]);
  });

  test('inpainting takes 9 channels, ControlNet its image at full size, and the UNet its residuals at the dims they are added to', () => {
    const inpaint = planDims(readPipeline(pipelinePath('tiny-inpaint')), { height: 32, width: 48 });
    expect(inpaint.components.get('unet')!.dims!.get('sample')).toEqual([2, 9, 16, 24]);
    const cn = planDims(readPipeline(pipelinePath('tiny-controlnet')), { height: 32, width: 48 });
    expect(cn.components.get('controlnet')!.dims!.get('controlnet_cond')).toEqual([2, 3, 32, 48]);
    const unet = cn.components.get('unet')!.dims!;
    expect(unet.get('down_block_additional_residuals.0')).toEqual([2, 32, 16, 24]);
    expect(unet.get('down_block_additional_residuals.5')).toEqual([2, 64, 8, 12]);
    expect(unet.get('mid_block_additional_residual')).toEqual([2, 64, 8, 12]);
  });

  test('SDXL: text_embeds\' width comes from the UNet\'s weights, not from the axis Optimum names sequence_length', () => {
    const p0 = copyOf('tiny-sdxl', 'sdxl-optimum-axes');
    const file = path.join(p0, 'unet', 'model.onnx');
    const m = readModel(file);
    const te = m.graph.inputs.find((v) => v.name === 'text_embeds')!;
    te.type = { kind: 'tensor', elemType: te.elemType!, shape: ['batch_size', 'sequence_length'] };
    replaceModel(m, file);
    const plan = planDims(readPipeline(p0), { height: 32, width: 48 });
    const unet = plan.components.get('unet')!;
    expect(unet.dims!.get('text_embeds')).toEqual([2, 32]);
    expect(unet.dims!.get('encoder_hidden_states')).toEqual([2, 77, 64]);
    expect(unet.notes).toEqual(['text_embeds dim 1 = 32, from the weights that read it']);
  });

  test('an image size the VAE cannot divide is refused naming the factor; one the UNet cannot halve, naming the node', () => {
    const p = readPipeline(pipelinePath('tiny-sd15'));
    expect(() => planDims(p, { height: 33, width: 48 })).toThrow(/--height 33 is not a multiple of the VAE's down-sampling factor 2/);
    expect(() => planDims(p, { height: 0 })).toThrow(/--height takes a whole number/);
    // 2x2 pixels: one latent pixel, which the UNet's down-sampling and up-sampling cannot bring back to size
    expect(() => planDims(p, { height: 2, width: 2 })).toThrow(/unet\/model.onnx: cannot run at sample=2x4x1x1.*node '/);
  });
});

/** The report's component, and the compiled model's file. */
function component(r: PipelineReport, name: string) {
  return { c: r.components.find((x) => x.name === name)!, file: path.join(r.output, name, 'model.onnx') };
}

/**
 * One pipeline here, ControlNet's (the most components, residual inputs); test/full/pipelines.test.ts
 * takes every pipeline on every target.
 */
describe('sdc compile tiny-controlnet -o OUT (cpu default)', () => {
  const name = 'tiny-controlnet';
  let report: PipelineReport;
  const out = path.join(dir, 'cpu', name);
  beforeAll(async () => {
    report = await compilePipeline(pipelinePath(name), { output: out, check: 1 });
  }, 120000);

  test('writes the same layout: every component model.onnx, every other file byte for byte', () => {
    expect(filesUnder(out)).toEqual(filesUnder(pipelinePath(name)));
    for (const f of report.copied) expect(fs.readFileSync(path.join(out, f)).equals(fs.readFileSync(path.join(pipelinePath(name), f)))).toBe(true);
    for (const c of report.components) {
      expect(c.compile.check!.passed).toBe(true);
      expect(readModel(component(report, c.name).file).getMetadata('sdc.target')).toBe('cpu');
    }
    expect(report.components.find((c) => c.name === 'unet')!.compile.check!.dims['down_block_additional_residuals.5']).toEqual([2, 64, 4, 8]);
  });

  test('each compiled component computes what PyTorch computed on the reference inputs (dims other than the traced ones)', async () => {
    for (const c of report.components) {
      const ref = referenceCase(name, c.name);
      const original = await runModel(path.join(pipelinePath(name), c.name, 'model.onnx'), ref.feeds);
      const compiled = await runModel(component(report, c.name).file, ref.feeds);
      for (const [k, want] of Object.entries(ref.outputs)) {
        expect([c.name, k, relError(original[k], compiled[k]) < 1e-4]).toEqual([c.name, k, true]);
        expect([c.name, k, relError(want, compiled[k]) < 1e-3]).toEqual([c.name, k, true]);
      }
    }
  });
});

test('loadPipeline: one runtime model per component with shared options; the UNet and text encoder match PyTorch', async () => {
  const p = await loadPipeline(pipelinePath('tiny-sd15'), { cacheDir: null });
  try {
    expect([...p.components.keys()]).toEqual(['text_encoder', 'unet', 'vae_decoder', 'vae_encoder']);
    expect(p.roles.get('vae_decoder')).toBe('vae-decoder');
    for (const name of ['text_encoder', 'unet']) {
      const ref = referenceCase('tiny-sd15', name);
      const got = await p.get(name).run(ref.feeds);
      for (const [k, want] of Object.entries(ref.outputs)) expect([name, k, relError(want, got[k]) < 1e-3]).toEqual([name, k, true]);
    }
    expect(p.explain().unet.join('\n')).toMatch(/compiled/);
    expect(() => p.get('transformer')).toThrow(/no component 'transformer' \(components: text_encoder, unet, vae_decoder, vae_encoder\)/);
  } finally {
    await p.release();
  }
}, 60000);

describe('the output folder', () => {
  const sd15 = pipelinePath('tiny-sd15');
  const run = (...args: string[]) => spawnSync(SDC, ['compile', ...args], { encoding: 'utf8' });

  test('inside the pipeline, or holding it, is refused before anything is written', async () => {
    const src = copyOf('tiny-sd15', 'overlap');
    const before = filesUnder(src);
    const r = run(src, '-o', path.join(src, 'out'));
    expect([r.status, r.stderr.trim().split('\n').length]).toEqual([2, 1]);
    expect(r.stderr).toMatch(/^sdc: .*overlap\/out: overlaps the pipeline folder/);
    for (const o of [src, path.dirname(src)]) await expect(compilePipeline(src, { output: o, passes: [] })).rejects.toThrow(/overlaps the pipeline folder/);
    expect(filesUnder(src)).toEqual(before);
  });

  test('a file, or a folder holding what sdc did not write, is refused and left as it was; sdc\'s own output is replaced', async () => {
    const file = path.join(dir, 'a-file');
    fs.writeFileSync(file, 'mine');
    await expect(compilePipeline(sd15, { output: file, passes: [] })).rejects.toThrow(/a-file: exists and is not a folder/);
    expect(fs.readFileSync(file, 'utf8')).toBe('mine');

    const out = path.join(dir, 'replace', 'sd15');
    await compilePipeline(sd15, { output: out, passes: [] });
    await compilePipeline(sd15, { output: out, passes: [], target: 'webgpu' });
    expect(readModel(path.join(out, 'unet', 'model.onnx')).getMetadata('sdc.target')).toBe('webgpu');
    // the output folder takes the user's umask like any folder they make (mkdtemp's 0700 would lock others out)
    const sibling = path.join(dir, 'replace', 'made-by-hand');
    fs.mkdirSync(sibling);
    expect(fs.statSync(out).mode & 0o777).toBe(fs.statSync(sibling).mode & 0o777);
    fs.rmdirSync(sibling);

    fs.writeFileSync(path.join(out, 'notes.txt'), 'the user\'s');
    await expect(compilePipeline(sd15, { output: out, passes: [] })).rejects.toThrow(/exists and holds notes.txt, which sdc did not write/);
    expect(fs.readFileSync(path.join(out, 'notes.txt'), 'utf8')).toBe('the user\'s');
    fs.rmSync(path.join(out, 'notes.txt'));
    fs.appendFileSync(path.join(out, 'model_index.json'), ' ');
    await expect(compilePipeline(sd15, { output: out, passes: [] })).rejects.toThrow(/holds model_index.json, which sdc did not write/);
    // nothing of sdc's own is left beside it
    expect(fs.readdirSync(path.dirname(out))).toEqual(['sd15']);
  }, 60000);

  test('a component that fails leaves no output and no stage folder', async () => {
    const src = copyOf('tiny-sd15', 'failing');
    // the last component compiled reads a value nothing defines: the three before it were already staged
    const file = path.join(src, 'vae_encoder', 'model.onnx');
    const m = readModel(file);
    const n = m.graph.nodes.find((x) => x.opType === 'Conv')!;
    m.graph.setInput(n, 0, m.graph.newValue('ghost'));
    replaceModel(m, file);
    const out = path.join(dir, 'failing-out', 'sd');
    await expect(compilePipeline(src, { output: out })).rejects.toThrow(/vae_encoder\/model.onnx: is not a valid model/);
    expect(fs.existsSync(out)).toBe(false);
    expect(fs.readdirSync(path.dirname(out))).toEqual([]);
  });

  test('--height on a single model and a plain --shape name on a pipeline are usage mistakes, exit 2', () => {
    let r = run(path.join(sd15, 'unet', 'model.onnx'), '-o', path.join(dir, 'x.onnx'), '--height', '64');
    expect([r.status, r.stderr.split('\n')[0]]).toEqual([2, expect.stringMatching(/^sdc: --height describes a pipeline's images/)]);
    r = run(sd15, '-o', path.join(dir, 'y'), '--shape', 'sample=2x4x8x8');
    expect([r.status, r.stderr.trim()]).toEqual([2, expect.stringMatching(/^sdc: .*tiny-sd15: --shape 'sample=2x4x8x8': for a pipeline, name the component too/)]);
    expect(fs.existsSync(path.join(dir, 'y'))).toBe(false);
  });
});

/**
 * Retype graph input `name` (older exports' contracts: timestep int64 [1], input_ids int32): the new input
 * is cast (and for a scalar, squeezed) into the value the graph read before.
 */
function retypeInput(file: string, name: string, dtype: DataType, shape: (number | string)[]): void {
  const m = readModel(file);
  const g = m.graph;
  const old = g.inputs.find((v) => v.name === name)!;
  const rank0 = old.shape!.length === 0;
  g.values.delete(name);
  old.name = `${name}_sdc_test_old`;
  g.values.set(old.name, old);
  const fresh = g.newValue(name);
  fresh.type = { kind: 'tensor', elemType: dtype, shape };
  g.inputs[g.inputs.indexOf(old)] = fresh;
  const oldType = old.elemType!;
  old.type = null;
  const cast = g.addNode({ op: 'Cast', inputs: [fresh], outputs: [rank0 ? `${name}_cast` : old], attrs: [{ name: 'to', type: AttrType.INT, value: oldType }] });
  if (rank0) g.addNode({ op: 'Squeeze', inputs: [cast.outputs[0], g.addInitializer('axes0', Tensor.fromValues('axes0', DataType.INT64, [1], [0n]))], outputs: [old] });
  g.topoSort();
  replaceModel(m, file);
}

test('older input contracts: timestep int64 [1] and input_ids int32 are planned, compiled and run as declared', async () => {
  const src = copyOf('tiny-sd15', 'old-contracts');
  retypeInput(path.join(src, 'unet', 'model.onnx'), 'timestep', DataType.INT64, [1]);
  retypeInput(path.join(src, 'text_encoder', 'model.onnx'), 'input_ids', DataType.INT32, ['batch_size', 'sequence_length']);
  const p = readPipeline(src);
  const plan = planDims(p, { height: 32, width: 48 });
  expect(Object.fromEntries(plan.components.get('unet')!.dims!)).toEqual({ sample: [2, 4, 16, 24], timestep: [1], encoder_hidden_states: [2, 77, 32] });
  // the benchmark compiles it (reduce-overhead at these dims) and runs both variants on the declared types
  const b = await benchPipeline(src, { shape: { height: 32, width: 48 }, steps: 1, runs: 1, workloads: ['txt2img'] });
  expect(b.workloads[0].imagesAgree).toBe(true);
}, 120000);

describe('sdc bench DIR', () => {
  test('txt2img on the SDXL pipeline, as exported and compiled: the same image, every stage timed', async () => {
    const r = await benchPipeline(pipelinePath('tiny-sdxl'), { shape: { height: 32, width: 48 }, steps: 2, runs: 1, workloads: ['txt2img'] });
    expect(r.workloads.map((w) => w.workload)).toEqual(['txt2img']);
    const w = r.workloads[0];
    expect([w.imagesAgree, w.imageRelError < 1e-3]).toEqual([true, true]);
    expect(Object.keys(w.compiled.stages).sort()).toEqual(['text_encoder', 'text_encoder_2', 'unet', 'vae_decoder']);
    for (const v of [w.exported, w.compiled]) expect(v.image.median).toBeGreaterThan(0);
    expect(formatPipelineBench(r)).toMatch(/txt2img: exported .* per image, sdc .*: \d+\.\d\dx .*images agree/);
  }, 120000);

  test('a workload the pipeline cannot run, or one sdc does not know, is refused', async () => {
    await expect(benchPipeline(pipelinePath('tiny-sd15'), { workloads: ['inpaint'] })).rejects.toThrow(/cannot run inpaint: this pipeline runs txt2img, img2img/);
    const r = spawnSync(SDC, ['bench', pipelinePath('tiny-sd15'), '--workload', 'txt2vid'], { encoding: 'utf8' });
    expect([r.status, r.stderr.split('\n')[0]]).toEqual([2, "sdc: --workload 'txt2vid': choose from txt2img, img2img, inpaint, controlnet"]);
  });
});

test('a network model_index.json names whose model is missing (unet/model.onnx deleted) is refused, naming it: a pipeline without it cannot run', async () => {
  const src = path.join(dir, 'no-unet');
  fs.cpSync(pipelinePath('tiny-sd15'), src, { recursive: true });
  fs.rmSync(path.join(src, 'unet', 'model.onnx'));
  const out = path.join(dir, 'no-unet-out');
  await expect(compilePipeline(src, { output: out, passes: [] })).rejects.toThrow(/model_index\.json: names 'unet' \(UNet2DConditionModel\), but unet\/model\.onnx is missing from .*no-unet: a pipeline without it cannot run$/);
  expect(fs.existsSync(out)).toBe(false);
});
