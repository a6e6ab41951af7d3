import * as fs from 'fs';
import * as path from 'path';
import { dtypeName } from '../ir/dtype';
import { Dim, Graph, Value } from '../ir/graph';
import { Model } from '../ir/model';
import { fmtBytes } from './progress';
import { RecommendedSession, recommendedSession } from '../targets/session-options';

export interface IoInfo {
  name: string;
  dtype: string;
  dims: Dim[] | null;
}

export interface InspectReport {
  file: string;
  irVersion: number;
  producer: string;
  opsets: Record<string, number>;
  nodes: number;
  /** `domain::op` → count, ai.onnx for the default domain, subgraphs included. */
  ops: Record<string, number>;
  inputs: IoInfo[];
  outputs: IoInfo[];
  weights: { count: number; inlineBytes: number; externalBytes: number };
  externalFiles: { location: string; tensors: number; bytes: number; exists: boolean }[];
  metadata: Record<string, string>;
  /** From an sdc-compiled model's metadata: can the graph be captured (CUDA graphs / WebGPU)? */
  capture: { capturable: boolean; blockers: string[] } | null;
  /** From an sdc-compiled model's metadata: the onnxruntime session options to open it with, and why. */
  sessionOptions: RecommendedSession | null;
}

export function opHistogram(g: Graph): Record<string, number> {
  const ops: Record<string, number> = {};
  for (const sub of g.allGraphs()) for (const n of sub.nodes) ops[n.qualifiedOp] = (ops[n.qualifiedOp] ?? 0) + 1;
  return Object.fromEntries(Object.entries(ops).sort((a, b) => b[1] - a[1] || a[0].localeCompare(b[0])));
}

const io = (v: Value): IoInfo => ({
  name: v.name,
  dtype: v.type?.kind === 'tensor' ? dtypeName(v.type.elemType).toLowerCase() : v.type ? 'non-tensor' : 'unknown',
  dims: v.shape,
});

/** Everything here comes from the graph: no weight byte is read. */
export function inspect(model: Model): InspectReport {
  const g = model.graph;
  const weights = { count: 0, inlineBytes: 0, externalBytes: 0 };
  const files = new Map<string, { tensors: number; bytes: number }>();
  const dir = path.dirname(model.source);
  for (const sub of g.allGraphs()) {
    for (const v of sub.initializers()) {
      const t = v.initializer!;
      weights.count++;
      if (t.data.kind === 'external') {
        weights.externalBytes += t.byteLength;
        const loc = path.relative(dir, t.data.file);
        const f = files.get(loc) ?? { tensors: 0, bytes: 0 };
        f.tensors++;
        f.bytes += t.byteLength;
        files.set(loc, f);
      } else {
        weights.inlineBytes += t.byteLength;
      }
    }
  }
  const initNames = new Set(g.initializers().map((v) => v.name));
  return {
    file: model.source,
    irVersion: model.irVersion,
    producer: `${model.producerName} ${model.producerVersion}`.trim(),
    opsets: Object.fromEntries([...model.opsets].map(([d, v]) => [d || 'ai.onnx', v])),
    nodes: g.countNodes(),
    ops: opHistogram(g),
    inputs: g.inputs.filter((v) => !initNames.has(v.name)).map(io),
    outputs: g.outputs.map(io),
    weights,
    externalFiles: [...files].map(([location, f]) => ({ location, ...f, exists: fs.existsSync(path.join(dir, location)) })),
    metadata: Object.fromEntries(model.metadataProps.map((p) => [p.key, p.value])),
    capture: captureOf(model),
    sessionOptions: model.getMetadata('sdc.target') ? recommendedSession((k) => model.getMetadata(k)) : null,
  };
}

function captureOf(model: Model): InspectReport['capture'] {
  const raw = model.getMetadata('sdc.capture');
  if (!raw) return null;
  try {
    return JSON.parse(raw);
  } catch {
    return null;
  }
}

const dims = (d: Dim[] | null) => (d ? `[${d.map((x) => (x === null ? '?' : x)).join(', ')}]` : '(unknown shape)');

/** The readable form of inspect(), for people. */
export function formatInspect(r: InspectReport): string {
  const lines: string[] = [];
  lines.push(`${r.file}`);
  lines.push(`  IR ${r.irVersion}, opsets ${Object.entries(r.opsets).map(([d, v]) => `${d} ${v}`).join(', ')}${r.producer ? `, from ${r.producer}` : ''}`);
  lines.push(`  ${r.nodes} nodes, ${Object.keys(r.ops).length} distinct ops`);
  lines.push('inputs:');
  for (const i of r.inputs) lines.push(`  ${i.name}: ${i.dtype} ${dims(i.dims)}`);
  lines.push('outputs:');
  for (const o of r.outputs) lines.push(`  ${o.name}: ${o.dtype} ${dims(o.dims)}`);
  lines.push(`weights: ${r.weights.count} tensors, ${fmtBytes(r.weights.inlineBytes)} inline, ${fmtBytes(r.weights.externalBytes)} external`);
  const missing = r.externalFiles.filter((f) => !f.exists);
  for (const f of r.externalFiles.slice(0, 20)) lines.push(`  ${f.location}: ${f.tensors} tensors, ${fmtBytes(f.bytes)}${f.exists ? '' : ' (MISSING)'}`);
  if (r.externalFiles.length > 20) lines.push(`  ... and ${r.externalFiles.length - 20} more files`);
  if (missing.length) lines.push(`  ${missing.length} external data file(s) missing: the graph can be inspected, not run or compiled`);
  lines.push('ops:');
  for (const [op, n] of Object.entries(r.ops)) lines.push(`  ${String(n).padStart(6)}  ${op}`);
  if (r.capture) {
    lines.push(`graph capture: ${r.capture.capturable ? 'capturable (static shapes, no CPU-side shape work, no control flow)' : `not capturable, ${r.capture.blockers.length} blocker(s):`}`);
    for (const b of r.capture.blockers.slice(0, 10)) lines.push(`  ${b}`);
    if (r.capture.blockers.length > 10) lines.push(`  ... and ${r.capture.blockers.length - 10} more`);
  }
  if (r.sessionOptions) {
    lines.push(`open with: ${JSON.stringify(r.sessionOptions.options)}`);
    for (const why of r.sessionOptions.reasons) lines.push(`  ${why}`);
  }
  const meta = Object.entries(r.metadata).filter(([k]) => k !== 'sdc.capture');
  if (meta.length) {
    lines.push('metadata:');
    for (const [k, v] of meta) lines.push(`  ${k}: ${v.length > 200 ? v.slice(0, 200) + '…' : v}`);
  }
  return lines.join('\n');
}
