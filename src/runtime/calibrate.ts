import * as ort from 'onnxruntime-node';
import * as path from 'path';
import { analyzeShapes } from '../analysis/shapes';
import { ShapeSpec } from '../compiler/compile';
import { DataType } from '../ir/dtype';
import { SdcError } from '../ir/errors';
import { Value } from '../ir/graph';
import { readModel } from '../onnx/read';
import { encodeReferencingWeights } from '../onnx/write';
import { ValueRange } from '../rewrite/pass';
import { checkDims, modelInputSpecs, syntheticInputs } from './feeds';

export interface CalibrationReport {
  /** Timesteps of the input sets (one set each). */
  timesteps: number[];
  dims: Record<string, number[]>;
  /** Dims chosen by sdc (the model's were symbolic and no --shape was given). */
  derived: boolean;
  /** Float tensors measured. */
  values: number;
  /** Float tensors too large to fetch (estimated bytes over 256 MB), not measured. */
  skipped: number;
  /** onnxruntime runs (input sets × fetch groups). */
  runs: number;
  ms: number;
}

const SMALLEST_NORMAL_FP16 = 2 ** -14;
/**
 * Bytes of tensors fetched per run: all of SD1.5's at once would hold every activation of the graph in
 * memory. A tensor larger than MAX_TENSOR_BYTES (an unfused attention score matrix of a static 64×64
 * model: 1 GB) is not measured: attention fuses into kernels that accumulate in fp32, and the report
 * counts what was left out.
 */
const FETCH_BYTES = 1536 << 20;
const MAX_TENSOR_BYTES = 256 << 20;

/**
 * Runs the fp32 model on the CPU with representative inputs and records, for every float tensor the
 * graph computes, its largest magnitude and how much of it lies below fp16's normal range. Inputs:
 * Gaussian latent noise and conditioning (unit scale), timesteps 0, 500 and 999 (one set each), at the
 * model's static dims, with batch 1 and 8 for each free dim (`shapes` only for inputs that declare no
 * dims). The weights are read by onnxruntime where they are.
 */
export async function calibrate(file: string, o: { shapes?: ShapeSpec | null; timesteps?: number[] } = {}): Promise<{ ranges: Map<string, ValueRange>; report: CalibrationReport }> {
  const t0 = performance.now();
  const model = readModel(file);
  if ([...model.graph.allGraphs()].length > 1) throw new SdcError(file, 'calibration of a model with control flow (If/Loop/Scan subgraphs) is not supported');
  // small dims where the model's are free: ranges barely depend on batch or resolution, and at SD1.5's
  // 64×64 one unfused attention score tensor is a gigabyte
  const undeclared = model.graph.inputs.some((v) => !v.initializer && !v.shape);
  const { dims, derived } = checkDims(model, undeclared ? o.shapes : null, file);
  const sa = analyzeShapes(model);
  const measured: Value[] = [];
  const bytes = new Map<Value, number>();
  let skipped = 0;
  const outputs = new Set(model.graph.outputs);
  for (const n of model.graph.nodes) {
    for (const v of n.outputs) {
      if (v.omitted || sa.get(v).dtype !== DataType.FLOAT) continue;
      const shape = sa.get(v).shape;
      // free dims run at 8 (checkDims); an unknown shape counts as 1 MB
      const size = shape ? shape.reduce((a, d) => a * (d.value ?? 8), 4) : 1 << 20;
      if (size > MAX_TENSOR_BYTES) {
        skipped++;
        continue;
      }
      bytes.set(v, size);
      measured.push(v);
    }
  }
  const groups: Value[][] = [];
  let room = 0;
  for (const v of measured) {
    if (!groups.length || room < bytes.get(v)!) {
      groups.push([]);
      room = FETCH_BYTES;
    }
    groups[groups.length - 1].push(v);
    room -= bytes.get(v)!;
  }
  const folder = path.dirname(path.resolve(file));
  const timesteps = o.timesteps ?? [0, 500, 999];
  // the one input generator (feeds.ts): Gaussian floats, the set's timestep, integer inputs 1
  const specs = modelInputSpecs(model, dims, 'calibration');
  const feeds = timesteps.map((t, set) => syntheticInputs(specs, { set, floats: 'gaussian', timestep: t }));
  const ranges = new Map<string, ValueRange>();
  const original = [...model.graph.outputs];
  // one session per group whose graph outputs are that group: onnxruntime keeps every graph output
  // alive for the whole run, fetched or not (all of a static 64×64 SD1.5's at once: ~20 GB)
  for (const group of groups) {
    for (const v of group) if (!outputs.has(v)) v.type = { kind: 'tensor', elemType: DataType.FLOAT, shape: null };
    model.graph.outputs.splice(0, model.graph.outputs.length, ...group);
    let session: ort.InferenceSession;
    try {
      session = await ort.InferenceSession.create(encodeReferencingWeights(model, folder), {
        graphOptimizationLevel: 'disabled',
        extra: { session: { model_external_initializers_file_folder_path: folder } },
      } as ort.InferenceSession.SessionOptions);
    } catch (e) {
      throw new SdcError(file, `calibration: onnxruntime cannot open the model: ${(e as Error).message.split('\n')[0]}`);
    }
    try {
      for (const f of feeds) {
        const out = await session.run(f);
        for (const v of group) {
          const r = measure(out[v.name].data as Float32Array);
          const prev = ranges.get(v.name);
          ranges.set(v.name, prev ? { maxAbs: Math.max(prev.maxAbs, r.maxAbs), tinyFraction: Math.max(prev.tinyFraction, r.tinyFraction) } : r);
        }
      }
    } finally {
      await session.release();
    }
  }
  model.graph.outputs.splice(0, model.graph.outputs.length, ...original);
  return {
    ranges,
    report: { timesteps, dims: Object.fromEntries(dims), derived, values: measured.length, skipped, runs: timesteps.length * groups.length, ms: Math.round(performance.now() - t0) },
  };
}

function measure(data: Float32Array): ValueRange {
  let maxAbs = 0;
  let nonzero = 0;
  let tiny = 0;
  for (let i = 0; i < data.length; i++) {
    const a = Math.abs(data[i]);
    // a NaN or an Inf in the fp32 model is the model's own; it says nothing about fp16
    if (!Number.isFinite(a)) continue;
    if (a > maxAbs) maxAbs = a;
    if (a !== 0) {
      nonzero++;
      if (a < SMALLEST_NORMAL_FP16) tiny++;
    }
  }
  return { maxAbs, tinyFraction: nonzero ? tiny / nonzero : 0 };
}
