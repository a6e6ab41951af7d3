import * as ort from 'onnxruntime-node';
import * as path from 'path';
import { analyzeShapes } from '../analysis/shapes';
import { ShapeSpec } from '../compiler/compile';
import { DataType, byteSize } from '../ir/dtype';
import { SdcError } from '../ir/errors';
import { Node, Value } from '../ir/graph';
import { Model } from '../ir/model';
import { Sym } from '../ir/symbolic';
import { readModel } from '../onnx/read';
import { encodeReferencingWeights } from '../onnx/write';
import { ValueRange } from '../rewrite/pass';
import { Segment, planSegments } from './calibrate-plan';
import { PROBE_NODES, measureTensor, segmentModel } from './calibrate-segment';
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
  /** Pieces the model ran in (one onnxruntime session each; calibrate-plan.ts). */
  segments: number;
  /** onnxruntime runs: input sets × segments, and one more for a segment and set whose probes saw a NaN or an Inf. */
  runs: number;
  ms: number;
}

/**
 * What one calibration session may hold: the weights its nodes read plus the tensors they compute
 * (calibrate-plan.ts). A session holds the weights of its whole graph, so the model runs in pieces.
 */
const SEGMENT_BYTES = 768 << 20;
/** Nodes per session, measuring nodes included: onnxruntime's set-up time grows with their square. */
const SEGMENT_NODES = 2000;
/**
 * A tensor larger than this (an unfused attention score matrix of a static 64×64 SD1.5: 512 MB per
 * image) is not measured: attention fuses into kernels that accumulate in fp32, and the report counts
 * what was left out.
 */
const MAX_TENSOR_BYTES = 256 << 20;

export interface CalibrateOptions {
  shapes?: ShapeSpec | null;
  timesteps?: number[];
  /** Limits of one segment, SEGMENT_BYTES and SEGMENT_NODES unless given (tests vary them). */
  segment?: { bytes?: number; nodes?: number };
}

/**
 * Runs the fp32 model on the CPU with representative inputs and records, for every float tensor the
 * graph computes, its largest magnitude and how much of it lies below fp16's normal range. Inputs:
 * Gaussian latent noise and conditioning (unit scale), timesteps 0, 500 and 999 (one set each), at the
 * model's static dims, with batch 1 and 8 for each free dim (`shapes` only for inputs that declare no
 * dims). The weights are read by onnxruntime where they are.
 *
 * The model runs in consecutive segments (calibrate-plan.ts), one session each, every segment once per
 * input set, fed what the earlier ones computed: each node runs once per set, on the same kernel and
 * inputs as in the whole model, so the ranges are those of one whole run, in bounded memory.
 */
export async function calibrate(file: string, o: CalibrateOptions = {}): Promise<{ ranges: Map<string, ValueRange>; report: CalibrationReport }> {
  const t0 = performance.now();
  const model = readModel(file);
  if ([...model.graph.allGraphs()].length > 1) throw new SdcError(file, 'calibration of a model with control flow (If/Loop/Scan subgraphs) is not supported');
  // small dims where the model's are free: ranges barely depend on batch or resolution, and at SD1.5's
  // 64×64 one unfused attention score tensor is a gigabyte
  const undeclared = model.graph.inputs.some((v) => !v.initializer && !v.shape);
  const { dims, derived } = checkDims(model, undeclared ? o.shapes : null, file);
  const sa = analyzeShapes(model);
  const dtype = (v: Value) => sa.get(v).dtype ?? v.elemType;
  const bytes = (v: Value) => estimate(sa.get(v).shape, dtype(v));
  const measured = new Set<Value>();
  let skipped = 0;
  for (const n of model.graph.nodes) {
    for (const v of n.outputs) {
      if (v.omitted || sa.get(v).dtype !== DataType.FLOAT) continue;
      if (bytes(v) > MAX_TENSOR_BYTES) skipped++;
      else measured.add(v);
    }
  }
  const folder = path.dirname(path.resolve(file));
  const timesteps = o.timesteps ?? [0, 500, 999];
  // the one input generator (feeds.ts): Gaussian floats, the set's timestep, integer inputs 1
  const specs = modelInputSpecs(model, dims, 'calibration');
  // per input set, the tensors later segments still read: the graph inputs, then what segments hand on
  const stores = timesteps.map((t, set) => new Map(Object.entries(syntheticInputs(specs, { set, floats: 'gaussian', timestep: t }))));
  const ranges = new Map<string, ValueRange>();
  const nodesOf = (n: Node) => 1 + PROBE_NODES * n.outputs.filter((v) => measured.has(v)).length;
  const segments = planSegments(model.graph, bytes, measured, { bytes: o.segment?.bytes ?? SEGMENT_BYTES, nodes: o.segment?.nodes ?? SEGMENT_NODES, nodesOf }, (v) => dtype(v) !== null);
  const open = async (m: Model): Promise<ort.InferenceSession> => {
    try {
      return await ort.InferenceSession.create(encodeReferencingWeights(m, folder), {
        graphOptimizationLevel: 'disabled',
        // no arena (it grows in powers of two and keeps its peak) and no memory pattern (one block for
        // a run's whole plan): what a run frees goes back
        enableCpuMemArena: false,
        enableMemPattern: false,
        extra: { session: { model_external_initializers_file_folder_path: folder } },
      } as ort.InferenceSession.SessionOptions);
    } catch (e) {
      throw new SdcError(file, `calibration: onnxruntime cannot open the model: ${(e as Error).message.split('\n')[0]}`);
    }
  };
  const record = (v: Value, r: ValueRange) => {
    const prev = ranges.get(v.name);
    ranges.set(v.name, prev ? { maxAbs: Math.max(prev.maxAbs, r.maxAbs), tinyFraction: Math.max(prev.tinyFraction, r.tinyFraction) } : r);
  };
  let runs = 0;
  for (const seg of segments) {
    // a segment that measures nothing and hands nothing on (integer arithmetic feeding only graph
    // outputs) has nothing to run for
    if (!seg.measured.length && !seg.handsOn.length) continue;
    const sm = segmentModel(model, seg, dtype, seg.measured);
    // per input set, the tensors whose probes saw a NaN or an Inf: fetched whole afterwards
    const fetch = stores.map(() => [] as Value[]);
    const session = await open(sm.model);
    try {
      for (const [set, store] of stores.entries()) {
        const out = await session.run(feedsOf(seg, store));
        runs++;
        for (const v of seg.measured) {
          const r = sm.read(out, v);
          if (r) record(v, r);
          else fetch[set].push(v);
        }
        for (const v of seg.handsOn) store.set(v.name, out[v.name] as ort.Tensor);
      }
    } finally {
      await session.release();
    }
    for (const [set, values] of fetch.entries()) {
      if (!values.length) continue;
      const whole = await open(segmentModel(model, seg, dtype, [], values).model);
      try {
        const out = await whole.run(feedsOf(seg, stores[set]));
        runs++;
        for (const v of values) record(v, measureTensor((out[v.name] as ort.Tensor).data as Float32Array));
      } finally {
        await whole.release();
      }
    }
    for (const store of stores) for (const v of seg.done) store.delete(v.name);
  }
  return {
    ranges,
    report: { timesteps, dims: Object.fromEntries(dims), derived, values: measured.size, skipped, segments: segments.length, runs, ms: Math.round(performance.now() - t0) },
  };
}

/** Bytes of a tensor of `dtype` (4 when unknown) and `shape`, free dims at 8 (checkDims); an unknown shape counts as 1 MB. */
function estimate(shape: Sym[] | null, dtype: DataType | null): number {
  return shape ? byteSize(dtype ?? DataType.FLOAT, shape.reduce((a, d) => a * (d.value ?? 8), 1)) : 1 << 20;
}

/** The feeds of one segment's run: its inputs from the set's store (an initializer that is an input feeds itself). */
function feedsOf(seg: Segment, store: Map<string, ort.Tensor>): Record<string, ort.Tensor> {
  const feeds: Record<string, ort.Tensor> = {};
  for (const v of seg.inputs) if (!v.initializer) feeds[v.name] = store.get(v.name)!;
  return feeds;
}
