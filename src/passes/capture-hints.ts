import { analyzeShapes } from '../analysis/shapes';
import { DataType } from '../ir/dtype';
import { Pass } from '../rewrite/pass';

/** Ops whose output shape depends on the data: a captured graph replays fixed shapes, so these block it. */
const DATA_DEPENDENT = new Set(['NonZero', 'Unique', 'Compress', 'NonMaxSuppression', 'StringSplit', 'RegexFullMatch']);
const CONTROL_FLOW = new Set(['If', 'Loop', 'Scan', 'SequenceMap']);
const INT_TYPES = new Set([DataType.INT64, DataType.INT32]);

interface CaptureInfo {
  capturable: boolean;
  blockers: string[];
}

const CAPTURE_KEY = 'sdc.capture';

/**
 * Graph capture (CUDA graphs, WebGPU capture) replays one recorded launch sequence: it needs static
 * shapes, every node on the device, no control flow and no data-dependent shapes. This pass records in
 * the model's metadata whether the graph qualifies and, if not, which nodes block it. It changes no node.
 */
export const captureHints: Pass = {
  name: 'capture-hints',
  description: 'record in the metadata whether the graph is capturable (CUDA graphs / WebGPU capture) and what blocks it',
  run(graph, ctx) {
    const sa = analyzeShapes(ctx.model, graph);
    const blockers: string[] = [];
    const add = (what: string) => blockers.length < 50 && blockers.push(what);
    for (const v of graph.inputs) {
      if (v.initializer) continue;
      const s = sa.get(v).shape;
      if (!s || s.some((d) => d.value === null)) add(`input '${v.name}' has dynamic dims [${(v.shape ?? []).join(', ')}]`);
    }
    for (const n of graph.nodes) {
      const label = `${n.opType} '${n.name}'`;
      if (CONTROL_FLOW.has(n.opType)) add(`${label}: control flow`);
      else if (DATA_DEPENDENT.has(n.opType)) add(`${label}: output shape depends on the data`);
      else if (n.opType === 'Shape' || n.opType === 'Size') add(`${label}: shape arithmetic at run time (onnxruntime places it on the CPU)`);
      else if (n.outputs.some((o) => INT_TYPES.has(sa.get(o).dtype ?? 0) && (sa.get(o).shape?.length ?? 2) <= 1) && !['ArgMax', 'ArgMin', 'Cast'].includes(n.opType)) {
        add(`${label}: int64 shape computation (onnxruntime places it on the CPU)`);
      }
    }
    const info: CaptureInfo = { capturable: blockers.length === 0, blockers };
    ctx.model.setMetadata(CAPTURE_KEY, JSON.stringify(info));
    return { changed: false, counts: { capturable: info.capturable ? 1 : 0, blockers: blockers.length } };
  },
};
