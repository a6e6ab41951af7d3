import * as fs from 'fs';
import * as path from 'path';
import * as ort from 'onnxruntime-node';
import { FIXTURES } from './ort';
import { tinySdxlPipeline } from '../../fixtures/materialize';

/** The tiny Optimum-layout pipelines of fixtures/models/pipelines (README there). */
export const PIPELINES = ['tiny-sd15', 'tiny-sdxl', 'tiny-inpaint', 'tiny-controlnet'] as const;

/** A pipeline's folder; tiny-sdxl's is assembled once in the model cache (its UNet's weights are synthesized). */
export function pipelinePath(name: string): string {
  return name === 'tiny-sdxl' ? tinySdxlPipeline() : path.join(FIXTURES, 'models', 'pipelines', name);
}

/** Whether a component holds the weights PyTorch's reference outputs were computed with (not tiny-sdxl's synthesized UNet). */
export function hasTorchWeights(pipeline: string, component: string): boolean {
  return !(pipeline === 'tiny-sdxl' && component === 'unet');
}

export interface ReferenceCase {
  component: string;
  feeds: Record<string, ort.Tensor>;
  outputs: Record<string, ort.Tensor>;
}

const TYPED = { float32: Float32Array, int64: BigInt64Array, int32: Int32Array } as const;

interface CaseTensor {
  name: string;
  dtype: keyof typeof TYPED;
  shape: number[];
  file: string;
}

function load(dir: string, t: CaseTensor): ort.Tensor {
  const buf = fs.readFileSync(path.join(dir, t.file));
  const Ctor = TYPED[t.dtype];
  const data = new Ctor(buf.buffer.slice(buf.byteOffset, buf.byteOffset + buf.byteLength));
  return new ort.Tensor(t.dtype, data as Float32Array, t.shape);
}

/** PyTorch's inputs and outputs for one component of a tiny pipeline (batch 1, 77 tokens, 16x24 latents). */
export function referenceCase(pipeline: string, component: string): ReferenceCase {
  const dir = path.join(FIXTURES, 'models', 'pipelines', 'reference', pipeline, `${component}__model`);
  const c = JSON.parse(fs.readFileSync(path.join(dir, 'case.json'), 'utf8')) as { inputs: CaseTensor[]; outputs: CaseTensor[] };
  return {
    component,
    feeds: Object.fromEntries(c.inputs.map((t) => [t.name, load(dir, t)])),
    outputs: Object.fromEntries(c.outputs.map((t) => [t.name, load(dir, t)])),
  };
}

/** Every file under `dir`, relative, sorted. */
export function filesUnder(dir: string): string[] {
  const out: string[] = [];
  const walk = (rel: string) => {
    for (const e of fs.readdirSync(path.join(dir, rel), { withFileTypes: true })) {
      const r = path.join(rel, e.name);
      if (e.isDirectory()) walk(r);
      else out.push(r);
    }
  };
  walk('');
  return out.sort();
}
