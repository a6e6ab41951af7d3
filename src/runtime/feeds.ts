import * as ort from 'onnxruntime-node';
import { ShapeSpec, toShapeMap } from '../compiler/compile';
import { SdcError } from '../ir/errors';
import { Model } from '../ir/model';
import { ORT_TYPE, dtypeName } from '../ir/dtype';
import { Value } from '../ir/graph';

/** Each input's element type as onnxruntime names it (`float32`, `int64`), for syntheticFeeds. */
export function inputTypes(inputs: Value[]): Map<string, string> {
  return new Map(inputs.map((v) => [v.name, v.elemType === null ? 'of no declared type' : ORT_TYPE[v.elemType] ?? dtypeName(v.elemType)]));
}

/**
 * Refuse, naming the model (`file`), an input syntheticFeeds cannot make: the model is the user's, so
 * this is their mistake to hear about before anything compiles, not a crash.
 */
export function refuseUnfeedable(types: Map<string, string>, file: string): void {
  for (const [name, type] of types) {
    if (type !== 'float32') throw new SdcError(file, `input '${name}' is ${type}: sdc run, bench, inspect --placement and max-autotune feed synthetic float32 inputs only`);
  }
}

/** Deterministic inputs of the given shapes (uniform in [-1, 1); an input named timestep gets 500). */
export function syntheticFeeds(shapes: Map<string, number[]>, types: Map<string, string>, file = ''): Record<string, ort.Tensor> {
  refuseUnfeedable(new Map([...shapes.keys()].map((name) => [name, types.get(name) ?? 'float32'])), file);
  const feeds: Record<string, ort.Tensor> = {};
  let seed = 12345;
  for (const [name, dims] of shapes) {
    const n = dims.reduce((a, b) => a * b, 1);
    const data = new Float32Array(n);
    for (let i = 0; i < n; i++) {
      seed = (seed * 1103515245 + 12345) >>> 0;
      data[i] = /timestep/i.test(name) ? 500 : seed / 2 ** 31 - 1;
    }
    feeds[name] = new ort.Tensor('float32', data, dims);
  }
  return feeds;
}

/**
 * Dims to check at: the given shapes, else each input's static dims with symbolic ones at 1 for a batch
 * and 8 otherwise (8 survives three stride-2 downsamplings: SD1.5 latents, sequence lengths).
 */
export function checkDims(model: Model, shapes: ShapeSpec | null | undefined, file: string): { dims: Map<string, number[]>; derived: boolean } {
  const given = shapes ? toShapeMap(shapes, file, model) : null;
  const dims = new Map<string, number[]>();
  let derived = false;
  for (const v of model.graph.inputs.filter((i) => !i.initializer)) {
    const g = given?.get(v.name);
    if (g) {
      dims.set(v.name, g);
      continue;
    }
    if (!v.shape) throw new SdcError(file, `input '${v.name}' has no declared shape: give --shape to check at`);
    dims.set(v.name, v.shape.map((d) => (typeof d === 'number' ? d : /batch|^n$|^b$/i.test(String(d)) ? 1 : 8)));
    if (v.shape.some((d) => typeof d !== 'number')) derived = true;
  }
  return { dims, derived };
}
