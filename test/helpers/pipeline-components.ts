import * as fs from 'fs';
import * as path from 'path';
import { readModel } from '../../src/onnx/read';
import * as ort from 'onnxruntime-node';
import { compile } from '../../src/compiler/compile';
import { Mode } from '../../src/rewrite/pass';
import { fusedSiteCounts } from '../../src/passes';
import { TargetName } from '../../src/targets';
import { lowerToCpu } from '../../src/verify/lower';
import { FIXTURES, Feeds, relError, runModel } from './ort';
import { hasTorchWeights, pipelinePath } from './pipelines';

/**
 * The components of the tiny Optimum-layout pipelines (fixtures/models/pipelines/) compiled per target:
 * cpu in default mode, webgpu in reduce-overhead at the reference dims (batch 1, 77 tokens, 16×24
 * latents, a 32×48 image), cuda in default mode. Each is checked against PyTorch's reference outputs
 * (reference/, dims other than the traced ones), GPU-only ops lowered to CPU ops.
 */
const PIPELINES = path.join(FIXTURES, 'models', 'pipelines');

export const TARGET_MODES: readonly [TargetName, Mode][] = [['cpu', 'default'], ['webgpu', 'reduce-overhead'], ['cuda', 'default']];

/** Fused sites per component (pipeline/component) and target: every attention site fused, and the rest. */
const CLIP = {
  cpu: { attention: 2, attentionBias: 2, skipLayerNorm: 4, quickGelu: 2 },
  webgpu: { attention: 2, attentionBias: 2, skipLayerNorm: 5, quickGelu: 2, projectionsMerged: 6, castByLookup: 1 },
  cuda: { attention: 2, attentionBias: 2, skipLayerNorm: 4, quickGelu: 2 },
};
const VAE_ENCODER = {
  cpu: { attention: 1, attentionBias: 1 },
  webgpu: { attention: 1, attentionBias: 1, packedAttention: 1, channelAffine: 9 },
  cuda: { attention: 1, attentionBias: 1, groupNorm: 9, withSilu: 9, skipGroupNorm: 3, nhwcConv: 11 },
};
const VAE_DECODER = {
  cpu: { attention: 1, attentionBias: 1 },
  webgpu: { attention: 1, attentionBias: 1, packedAttention: 1, channelAffine: 13 },
  cuda: { attention: 1, attentionBias: 1, groupNorm: 13, withSilu: 13, skipGroupNorm: 5, nhwcConv: 15 },
};
const UNET = {
  cpu: { attention: 12, skipLayerNorm: 12, gelu: 6 },
  webgpu: { attention: 12, packedAttention: 6, affineIntoConv: 6, channelAffine: 25, skipLayerNorm: 12, gelu: 6, projectionsMerged: 24 },
  cuda: { attention: 12, groupNorm: 31, withSilu: 25, skipGroupNorm: 11, skipLayerNorm: 12, gelu: 6, nhwcConv: 46 },
};
const FUSED: Record<string, Record<TargetName, Record<string, number>>> = {
  'tiny-sd15/text_encoder': CLIP,
  'tiny-sd15/vae_encoder': VAE_ENCODER,
  'tiny-sd15/vae_decoder': VAE_DECODER,
  'tiny-sd15/unet': UNET,
  'tiny-sdxl/text_encoder': CLIP,
  'tiny-sdxl/text_encoder_2': {
    cpu: { attention: 2, attentionBias: 2, skipLayerNorm: 4, gelu: 2 },
    webgpu: { attention: 2, attentionBias: 2, skipLayerNorm: 5, gelu: 2, projectionsMerged: 6, castByLookup: 1 },
    cuda: { attention: 2, attentionBias: 2, skipLayerNorm: 4, gelu: 2 },
  },
  'tiny-sdxl/vae_encoder': VAE_ENCODER,
  'tiny-sdxl/vae_decoder': VAE_DECODER,
  'tiny-sdxl/unet': {
    cpu: { attention: 24, skipLayerNorm: 30, gelu: 12 },
    webgpu: { attention: 24, packedAttention: 12, channelAffine: 31, skipLayerNorm: 30, gelu: 12, projectionsMerged: 36 },
    cuda: { attention: 24, groupNorm: 31, withSilu: 25, skipGroupNorm: 11, skipLayerNorm: 30, gelu: 12, nhwcConv: 34 },
  },
  'tiny-inpaint/text_encoder': CLIP,
  'tiny-inpaint/vae_encoder': VAE_ENCODER,
  'tiny-inpaint/vae_decoder': VAE_DECODER,
  'tiny-inpaint/unet': UNET,
  'tiny-controlnet/text_encoder': CLIP,
  'tiny-controlnet/vae_encoder': VAE_ENCODER,
  'tiny-controlnet/vae_decoder': VAE_DECODER,
  'tiny-controlnet/controlnet': {
    cpu: { attention: 6, skipLayerNorm: 6, gelu: 3 },
    webgpu: { attention: 6, packedAttention: 3, affineIntoConv: 3, channelAffine: 12, skipLayerNorm: 6, gelu: 3, projectionsMerged: 12 },
    cuda: { attention: 6, groupNorm: 15, withSilu: 12, skipGroupNorm: 7, skipLayerNorm: 6, gelu: 3, nhwcConv: 30 },
  },
  'tiny-controlnet/unet': UNET,
};

/** `npm test` takes one of each kind the UNet fixtures (fixtures/models/tiny) do not cover; test/full/ takes the rest. */
export const FAST_COMPONENTS = ['tiny-sd15/text_encoder', 'tiny-sdxl/text_encoder_2', 'tiny-sd15/vae_encoder', 'tiny-sd15/vae_decoder'];
export const REST_COMPONENTS = Object.keys(FUSED).filter((c) => !FAST_COMPONENTS.includes(c));

interface CaseFile {
  inputs: { name: string; dtype: 'float32' | 'int64'; shape: number[]; file: string }[];
  outputs: { name: string; dtype: 'float32'; shape: number[]; file: string }[];
}

function tensorOf(dir: string, t: CaseFile['inputs'][number]): ort.Tensor {
  const buf = fs.readFileSync(path.join(dir, t.file));
  const bytes = new Uint8Array(buf.buffer.slice(buf.byteOffset, buf.byteOffset + buf.byteLength));
  return t.dtype === 'int64' ? new ort.Tensor('int64', new BigInt64Array(bytes.buffer), t.shape) : new ort.Tensor('float32', new Float32Array(bytes.buffer), t.shape);
}

/** PyTorch's inputs and outputs for one component (reference/<pipeline>/<component>__model). */
function referenceCase(id: string): { feeds: Feeds; expected: Record<string, ort.Tensor>; shapes: Record<string, number[]> } {
  const [pipeline, component] = id.split('/');
  const dir = path.join(PIPELINES, 'reference', pipeline, `${component}__model`);
  const c: CaseFile = JSON.parse(fs.readFileSync(path.join(dir, 'case.json'), 'utf8'));
  return {
    feeds: Object.fromEntries(c.inputs.map((t) => [t.name, tensorOf(dir, t)])),
    expected: Object.fromEntries(c.outputs.map((t) => [t.name, tensorOf(dir, t as CaseFile['inputs'][number])])),
    shapes: Object.fromEntries(c.inputs.map((t) => [t.name, t.shape])),
  };
}

interface ComponentResult {
  ops: Record<string, number>;
  fused: Record<string, number>;
  /** Worst relative difference to PyTorch's outputs and to the original model's (onnxruntime, CPU). */
  vsReference: number | null;
  vsOriginal: number;
  /** The capture report sdc recorded (reduce-overhead), from the written model's metadata. */
  capture: { capturable: boolean; blockers: string[] } | null;
}

/**
 * Compile one component for a target (webgpu: reduce-overhead at the reference dims) and run it on the
 * reference inputs on the CPU, GPU-only ops lowered: its fused sites, and its distance to PyTorch's
 * outputs and to the original's.
 */
async function compileComponent(id: string, target: TargetName, mode: Mode, dir: string): Promise<ComponentResult> {
  const [pipeline, component] = id.split('/');
  const src = path.join(pipelinePath(pipeline), component, 'model.onnx');
  const ref = referenceCase(id);
  const out = path.join(dir, id, `${target}.onnx`);
  const report = compile(src, { output: out, target, mode, ...(mode === 'reduce-overhead' ? { shapes: ref.shapes } : {}) });
  const lowered = path.join(dir, id, `${target}.lowered.onnx`);
  lowerToCpu(out, lowered);
  const [compiled, original] = [await runModel(lowered, ref.feeds), await runModel(src, ref.feeds)];
  let vsReference = 0;
  let vsOriginal = 0;
  for (const [name, want] of Object.entries(ref.expected)) {
    vsReference = Math.max(vsReference, relError(want, compiled[name]));
    vsOriginal = Math.max(vsOriginal, relError(original[name], compiled[name]));
  }
  const capture = readModel(out, { allowMissingData: true }).getMetadata('sdc.capture');
  return { ops: report.opsAfter, fused: fusedSiteCounts(report.passes), vsReference: hasTorchWeights(pipeline, component) ? vsReference : null, vsOriginal, capture: capture ? JSON.parse(capture) : null };
}

/** A component compiled for one target: no Softmax left, the fused sites as expected, equal to the original and PyTorch (1e-4). */
export async function expectComponent(id: string, target: TargetName, mode: Mode, dir: string): Promise<void> {
  const r = await compileComponent(id, target, mode, dir);
  expect(r.ops['ai.onnx::Softmax']).toBeUndefined();
  expect(r.fused).toEqual(FUSED[id][target]);
  expect(r.vsOriginal).toBeLessThan(1e-4);
  // static: every shape computation folded (a causal mask, CLIP's pooled-token index), so the graph can be captured
  if (mode === 'reduce-overhead') expect([id, r.capture]).toEqual([id, { capturable: true, blockers: [] }]);
  // a component with synthesized weights is compared with its original only (test/helpers/pipelines.ts)
  if (r.vsReference !== null) expect(r.vsReference).toBeLessThan(1e-4);
}
