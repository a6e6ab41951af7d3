import * as fs from 'fs';
import * as path from 'path';
import { SdcError } from '../ir/errors';
import { AttrType, Attribute, AttributeMeta, Graph, Value, ValueType } from '../ir/graph';
import { KeyValue, Tensor, keepingFilesOpen } from '../ir/tensor';
import { Model } from '../ir/model';
import { ModelProto, toProtoInt64 } from './schema';
import type { onnx } from './onnx-types';
import { WeightsCopy, copyAsNew } from './weights-copy';
import { WriteBehind } from './write-behind';

export interface WriteOptions {
  /**
   * 'auto' (default): weights go to one external data file when the source kept any external data or the
   * weights pass 1 GiB (written inline they would be encoded in memory whole, then read back whole: a
   * 1.9 GB inline model peaked at 3.9× its size; streamed to a data file, about 1.3×); 'always' /
   * 'never' force the choice.
   */
  externalData?: 'auto' | 'always' | 'never';
  /** Initializers smaller than this stay inline even in an external-data model (bytes; default 1024). */
  sizeThreshold?: number;
  /** Name of the data file beside the model (default: `<model file name>.data`). */
  dataFileName?: string;
  /**
   * A copy of a source weights file already under way (weights-copy.ts): taken as the start of the data
   * file when that is the file the writer would start from, else discarded.
   */
  startFrom?: WeightsCopy;
  /** Called as weight bytes are written: (bytesDone, bytesTotal). */
  onProgress?: (done: number, total: number) => void;
}

export interface WriteResult {
  modelFile: string;
  modelBytes: number;
  dataFile: string | null;
  dataBytes: number;
}

const PROTOBUF_LIMIT = 2 ** 31 - 1;
/** Inline weights past this are written to a data file under 'auto' (streamed, never encoded whole). */
const INLINE_LIMIT = 2 ** 30;
const ALIGN = 64;
const COPY_CHUNK = 16 << 20;
/** Bytes to write through memory from which a writing thread (WriteBehind) pays for its start. */
const WRITE_BEHIND_MIN = 64 << 20;
/**
 * Bytes of a derived tensor computed at once when written. Small, because what bounds a compile's peak is
 * garbage awaiting collection: 8 MB pieces peaked ~60 MB higher than 1–2 MB on SD1.5 fp16.
 */
const PIECE = 2 << 20;

/**
 * Write a model atomically: the data file and the model go to temporary names and are renamed into place
 * only once complete, so a crash or a full disk never leaves a half-written output. Unchanged external
 * weights are copied from their source file (in the kernel when most of it stays in place, else in
 * chunks); they are never all in memory.
 */
export function writeModel(model: Model, out: string, opts: WriteOptions = {}): WriteResult {
  const outAbs = path.resolve(out);
  const dataName = opts.dataFileName ?? `${path.basename(outAbs)}.data`;
  const dataAbs = path.join(path.dirname(outAbs), dataName);
  refuseToClobber(model, outAbs, dataAbs, out);

  const initializers = [...model.graph.allGraphs()].flatMap((g) => g.initializers().map((v) => v.initializer!));
  const weightBytes = initializers.reduce((s, t) => s + t.byteLength, 0);
  const mode = opts.externalData ?? 'auto';
  const external =
    mode === 'always' || (mode === 'auto' && (initializers.some((t) => t.fromExternal) || weightBytes > INLINE_LIMIT));
  const threshold = opts.sizeThreshold ?? 1024;

  const tmpSuffix = `.tmp-${process.pid}-${Math.random().toString(36).slice(2, 8)}`;
  const tmpModel = outAbs + tmpSuffix;
  const tmpData = dataAbs + tmpSuffix;
  const placement = new Map<Tensor, { offset: number; length: number }>();
  try {
    let dataBytes = 0;
    if (external) {
      const big = initializers.filter((t) => t.data.kind !== 'strings' && t.byteLength >= threshold);
      if (big.length) dataBytes = keepingFilesOpen(() => writeDataFile(big, tmpData, placement, opts.onProgress, opts.startFrom));
    }
    opts.startFrom?.discard();
    const proto = modelToProto(model, placement, dataName);
    const bytes = ModelProto.encode(proto).finish();
    if (bytes.byteLength > PROTOBUF_LIMIT) {
      throw new SdcError(out, 'the model would exceed protobuf\'s 2 GB limit; write it with external data');
    }
    fs.writeFileSync(tmpModel, bytes);
    if (placement.size) fs.renameSync(tmpData, dataAbs);
    fs.renameSync(tmpModel, outAbs);
    return { modelFile: outAbs, modelBytes: bytes.byteLength, dataFile: placement.size ? dataAbs : null, dataBytes };
  } catch (e) {
    opts.startFrom?.discard();
    for (const f of [tmpModel, tmpData]) fs.rmSync(f, { force: true });
    if (e instanceof SdcError) throw e;
    const code = (e as NodeJS.ErrnoException).code;
    if (code === 'ENOENT' && !fs.existsSync(path.dirname(outAbs))) throw new SdcError(out, `output folder ${path.dirname(outAbs)} does not exist`);
    if (code === 'ENOSPC') throw new SdcError(out, 'no space left on the device; nothing was written');
    if (code === 'EACCES' || code === 'EROFS') throw new SdcError(out, `cannot write here (${code}); nothing was written`);
    throw e;
  }
}

/** A path with links resolved where it exists (else just made absolute): for comparing paths. */
export function realPath(p: string): string {
  try {
    return fs.realpathSync(p);
  } catch {
    return path.resolve(p);
  }
}

/** Refuse an output (model or data file) that is one of the model's own inputs, links resolved. */
export function refuseToClobber(model: Model, outAbs: string, dataAbs: string, out: string): void {
  const real = realPath;
  const sources = new Set<string>();
  if (model.source) sources.add(real(model.source));
  for (const f of model.externalFiles()) sources.add(real(f));
  for (const target of [outAbs, dataAbs]) {
    if (sources.has(real(target))) {
      throw new SdcError(out, `refusing to overwrite ${target}: it is an input of this compile (the model or its weights)`);
    }
  }
}

interface Slot {
  tensor: Tensor;
  /** Where the tensor goes in the data file (after its alignment padding). */
  offset: number;
  /** Zero padding that precedes it. */
  gap: number;
}

/** Each tensor's place in the data file: in order, each aligned to ALIGN bytes with zero padding. */
function layOut(tensors: Tensor[]): { slots: Slot[]; end: number } {
  let end = 0;
  const slots = tensors.map((tensor) => {
    const gap = (ALIGN - (end % ALIGN)) % ALIGN;
    const offset = end + gap;
    end = offset + tensor.byteLength;
    return { tensor, offset, gap };
  });
  return { slots, end };
}

/** Of the output, at most this share may be the zeroed places of dropped tensors in a layout kept in place. */
const HOLES_SHARE = 1 / 16;

/**
 * The layout that keeps the source's: tensors of its main weights file stay at the offsets they have there
 * (in order, while they rise), the places of tensors the compile dropped (duplicates, dead weights) become
 * zeroed gaps, and every other tensor follows, aligned, after the last of them. Dropping a 2.5 KB tensor
 * near the start of a 3.4 GB file then moves nothing (packed in order, everything after it would shift, and
 * Node has no ranged kernel copy: ~1 GB of SD1.5 went through memory). Null when the gaps would pass
 * HOLES_SHARE of the output: packing it then saves more than it costs.
 */
function layOutInPlace(tensors: Tensor[]): { slots: Slot[]; end: number } | null {
  const bytesBy = new Map<string, number>();
  for (const t of tensors) if (t.data.kind === 'external') bytesBy.set(t.data.file, (bytesBy.get(t.data.file) ?? 0) + t.byteLength);
  const file = [...bytesBy].sort((a, b) => b[1] - a[1])[0]?.[0];
  if (!file) return null;
  const slots: Slot[] = [];
  const rest: Tensor[] = [];
  let end = 0;
  let holes = 0;
  for (const tensor of tensors) {
    const d = tensor.data;
    if (d.kind === 'external' && d.file === file && d.offset >= end && d.offset % ALIGN === 0) {
      slots.push({ tensor, offset: d.offset, gap: d.offset - end });
      // alignment padding is in both layouts; what passes it is a dropped tensor's place
      holes += Math.max(0, d.offset - end - (ALIGN - 1));
      end = d.offset + tensor.byteLength;
    } else rest.push(tensor);
  }
  // the rest after the last of them, aligned
  const shift = end + ((ALIGN - (end % ALIGN)) % ALIGN);
  const after = layOut(rest);
  after.slots.forEach((s, j) => slots.push({ tensor: s.tensor, offset: shift + s.offset, gap: j === 0 ? shift - end : s.gap }));
  const total = rest.length ? shift + after.end : end;
  return holes <= total * HOLES_SHARE ? { slots, end: total } : null;
}

/**
 * The packed layout, unless the source's own layout keeps more of the source file's bytes in place
 * (layOutInPlace): then the output is mostly one kernel copy of that file. When nothing was dropped the two
 * are the same layout.
 */
function chooseLayout(tensors: Tensor[]): { slots: Slot[]; end: number; base: { file: string; holds: Set<Slot> } | null } {
  const packed = layOut(tensors);
  const packedBase = baseFile(packed.slots);
  const kept = layOutInPlace(tensors);
  const keptBase = kept && baseFile(kept.slots);
  const held = (b: { holds: Set<Slot> } | null) => (b ? [...b.holds].reduce((n, s) => n + s.tensor.byteLength, 0) : 0);
  if (kept && keptBase && held(keptBase) > held(packedBase)) return { ...kept, base: keptBase };
  return { ...packed, base: packedBase };
}

/**
 * The source weights file to start the output from, when copying it whole in the kernel (copy_file_range
 * through fs.copyFileSync, never through this process's memory) and then overwriting what differs is
 * cheaper than writing everything: when the unchanged tensors lying in the output exactly where they lie
 * in that file make up at least half of it. This is the common case of a compile that rewrites few
 * weights (and, when nothing moved, the whole output is that one copy). Node has no ranged
 * copy_file_range, so a file whose kept tensors moved is copied through memory instead. Returns the file
 * and the slots it already holds; a tensor past the file's end is not among them (it is read, and refused).
 */
function baseFile(slots: Slot[]): { file: string; holds: Set<Slot> } | null {
  const bySource = new Map<string, Slot[]>();
  for (const s of slots) {
    const d = s.tensor.data;
    if (d.kind === 'external' && d.offset === s.offset) bySource.set(d.file, [...(bySource.get(d.file) ?? []), s]);
  }
  let best: { file: string; holds: Set<Slot> } | null = null;
  let bestBytes = 0;
  for (const [file, candidates] of bySource) {
    const size = fs.statSync(file, { throwIfNoEntry: false })?.size ?? 0;
    const holds = candidates.filter((s) => s.offset + s.tensor.byteLength <= size);
    const bytes = holds.reduce((n, s) => n + s.tensor.byteLength, 0);
    if (bytes > bestBytes && bytes * 2 >= size) [best, bestBytes] = [{ file, holds: new Set(holds) }, bytes];
  }
  return best;
}

/** Where the writer's bytes go: straight to the file, or through a writing thread (WriteBehind). */
type Sink = Pick<WriteBehind, 'write' | 'writeFrom' | 'finish' | 'stop'>;

/** A writing thread for `fd`, or null where threads cannot start (then this one writes). */
function writeBehind(fd: number): WriteBehind | null {
  try {
    return new WriteBehind(fd);
  } catch {
    return null;
  }
}

/** Writes on this thread, for data files small enough that starting a thread would cost more. */
class DirectWrites implements Sink {
  private chunk: Buffer | null = null;
  constructor(private readonly fd: number) {}
  write(b: Uint8Array, at: number): void {
    for (let done = 0; done < b.byteLength; ) done += fs.writeSync(this.fd, b, done, b.byteLength - done, at + done);
  }
  writeFrom(fill: (into: Buffer) => number, at: number): number {
    this.chunk ??= Buffer.allocUnsafe(COPY_CHUNK);
    const n = fill(this.chunk);
    this.write(this.chunk.subarray(0, n), at);
    return n;
  }
  finish(): void {}
  stop(): void {}
}

function writeDataFile(
  tensors: Tensor[],
  file: string,
  placement: Map<Tensor, { offset: number; length: number }>,
  onProgress?: (done: number, total: number) => void,
  startFrom?: WeightsCopy,
): number {
  const total = tensors.reduce((s, t) => s + t.byteLength, 0);
  const { slots, end, base } = chooseLayout(tensors);
  // every byte of the output is either a tensor lying in place in the base copy or written below
  if (base && startFrom && realPath(startFrom.source) === realPath(base.file)) startFrom.take(file);
  else {
    // not the file to start from: its disk space back before this one takes as much
    startFrom?.discard();
    if (base) copyAsNew(base.file, file);
  }
  const fd = fs.openSync(file, base ? 'r+' : 'w');
  const pad = Buffer.alloc(Math.min(1 << 20, slots.reduce((n, s) => Math.max(n, s.gap), ALIGN)));
  const moved = slots.reduce((n, s) => (base?.holds.has(s) ? n : n + s.tensor.byteLength), 0);
  let sink: Sink = new DirectWrites(fd);
  try {
    if (moved >= WRITE_BEHIND_MIN) sink = writeBehind(fd) ?? sink;
    let written = 0;
    for (const s of slots) {
      const t = s.tensor;
      // zeros: alignment, or the place of a dropped tensor in a layout kept in place
      for (let at = s.offset - s.gap; at < s.offset; at += pad.byteLength) sink.write(pad.subarray(0, Math.min(pad.byteLength, s.offset - at)), at);
      const d = t.data;
      if (base?.holds.has(s)) {
        // already there
      } else if (d.kind === 'external') {
        const src = fs.openSync(d.file, 'r');
        try {
          for (let done = 0; done < d.length; ) {
            const fill = (into: Buffer) => {
              const n = fs.readSync(src, into, 0, Math.min(into.byteLength, d.length - done), d.offset + done);
              if (n === 0) throw new SdcError(d.file, `ends before the ${d.length} bytes of tensor '${t.name}'`);
              return n;
            };
            done += sink.writeFrom(fill, s.offset + done);
          }
        } finally {
          fs.closeSync(src);
        }
      } else if (d.kind === 'lazy' && d.rows && d.rowBytes) {
        // a derived weight, computed and written a block of rows at a time
        const step = Math.max(d.rowBytes, Math.floor(PIECE / d.rowBytes) * d.rowBytes);
        for (let at = 0; at < t.byteLength; at += step) {
          const len = Math.min(step, t.byteLength - at);
          const b = t.bytesIn(at, len);
          if (b.byteLength !== len) throw new Error(`tensor ${t.name} produced ${b.byteLength} bytes at ${at}, expected ${len}`);
          sink.write(b, s.offset + at);
        }
      } else {
        const b = t.bytes();
        if (b.byteLength !== t.byteLength) throw new Error(`tensor ${t.name} produced ${b.byteLength} bytes, expected ${t.byteLength}`);
        sink.write(b, s.offset);
      }
      placement.set(t, { offset: s.offset, length: t.byteLength });
      written += t.byteLength;
      onProgress?.(written, total);
    }
    sink.finish();
    if (base) fs.ftruncateSync(fd, end);
    fs.fsyncSync(fd);
  } catch (e) {
    sink.stop();
    throw e;
  } finally {
    fs.closeSync(fd);
  }
  return end;
}

/**
 * The model's bytes with its external weights referenced where they are, relative to `folder` (no byte of
 * them is read or copied): for opening a variant of a model in onnxruntime from memory, with
 * `session.model_external_initializers_file_folder_path` set to `folder`.
 */
export function encodeReferencingWeights(model: Model, folder: string): Uint8Array {
  return ModelProto.encode(modelToProto(model, new Map(), '', folder)).finish();
}

/**
 * A part of a message that the IR carries unread (`extra`, model functions, non-tensor types, attributes it
 * does not model): read.ts stored it as decoded, so it is written back as the message it was.
 */
function carried<T>(decoded: unknown): T {
  return decoded as T;
}

function modelToProto(model: Model, placement: Map<Tensor, { offset: number; length: number }>, dataName: string, referenceFolder?: string): onnx.IModelProto {
  const tensorProto = (t: Tensor): onnx.ITensorProto => {
    const p: onnx.ITensorProto = { name: t.name, dims: t.dims.map(toProtoInt64), dataType: t.dtype };
    if (t.docString) p.docString = t.docString;
    if (t.metadataProps.length) p.metadataProps = t.metadataProps;
    if (t.extra.segment) p.segment = carried(t.extra.segment);
    const at = placement.get(t);
    if (referenceFolder !== undefined && t.data.kind === 'external') {
      p.dataLocation = 1;
      p.externalData = [
        { key: 'location', value: path.relative(referenceFolder, t.data.file).split(path.sep).join('/') },
        { key: 'offset', value: String(t.data.offset) },
        { key: 'length', value: String(t.data.length) },
      ];
    } else if (at) {
      p.dataLocation = 1;
      p.externalData = [
        { key: 'location', value: dataName },
        { key: 'offset', value: String(at.offset) },
        { key: 'length', value: String(at.length) },
      ];
    } else if (t.data.kind === 'strings') {
      p.stringData = t.data.strings;
    } else {
      p.rawData = t.bytes();
    }
    return p;
  };
  const typeProto = (t: ValueType): onnx.ITypeProto => {
    if (t.kind === 'other') return carried(t.proto);
    const tt: onnx.TypeProto.ITensor = { elemType: t.elemType };
    if (t.shape) {
      tt.shape = {
        dim: t.shape.map((d, i) => {
          const dp: onnx.TensorShapeProto.IDimension = typeof d === 'number' ? { dimValue: toProtoInt64(d) } : typeof d === 'string' ? { dimParam: d } : {};
          const den = t.dimDenotations?.[i];
          if (den) dp.denotation = den;
          return dp;
        }),
      };
    }
    const p: onnx.ITypeProto = { tensorType: tt };
    if (t.denotation) p.denotation = t.denotation;
    return p;
  };
  const valueInfo = (v: Value): onnx.IValueInfoProto => {
    const p: onnx.IValueInfoProto = { name: v.name };
    if (v.type) p.type = typeProto(v.type);
    if (v.docString) p.docString = v.docString;
    if (v.metadataProps.length) p.metadataProps = v.metadataProps;
    return p;
  };
  const attribute = (a: Attribute & AttributeMeta): onnx.IAttributeProto => {
    // The IR's AttrType and the schema's AttributeType are both ONNX's codes.
    const code: number = a.type;
    const p: onnx.IAttributeProto = { name: a.name, type: code };
    if (a.docString) p.docString = a.docString;
    if (a.refAttrName) p.refAttrName = a.refAttrName;
    switch (a.type) {
      case AttrType.FLOAT: p.f = a.value; break;
      case AttrType.INT: p.i = toProtoInt64(a.value); break;
      case AttrType.STRING: p.s = a.value; break;
      case AttrType.TENSOR: p.t = tensorProto(a.value); break;
      case AttrType.GRAPH: p.g = graphProto(a.value); break;
      case AttrType.FLOATS: p.floats = a.value; break;
      case AttrType.INTS: p.ints = a.value.map(toProtoInt64); break;
      case AttrType.STRINGS: p.strings = a.value; break;
      case AttrType.TENSORS: p.tensors = a.value.map(tensorProto); break;
      case AttrType.GRAPHS: p.graphs = a.value.map(graphProto); break;
      default: return carried(a.value); // the whole AttributeProto, as decoded
    }
    return p;
  };
  const graphProto = (g: Graph): onnx.IGraphProto => {
    const p: onnx.IGraphProto = { name: g.name };
    if (g.docString) p.docString = g.docString;
    p.node = g.nodes.map((n) => {
      const np: onnx.INodeProto = {
        input: n.inputs.map((v) => (v ? v.name : '')),
        output: n.outputs.map((v) => (v.omitted ? '' : v.name)),
        name: n.name,
        opType: n.opType,
        attribute: [...n.attrs.values()].map(attribute),
      };
      if (n.domain) np.domain = n.domain;
      if (n.overload) np.overload = n.overload;
      if (n.docString) np.docString = n.docString;
      if (n.metadataProps.length) np.metadataProps = n.metadataProps;
      if (n.extra.deviceConfigurations) np.deviceConfigurations = carried(n.extra.deviceConfigurations);
      return np;
    });
    p.initializer = g.initializers().map((v) => tensorProto(v.initializer!));
    p.input = g.inputs.map(valueInfo);
    p.output = g.outputs.map(valueInfo);
    const io = new Set([...g.inputs, ...g.outputs]);
    p.valueInfo = [...g.values.values()]
      .filter((v) => v.type && v.producer && !v.omitted && !io.has(v) && !v.initializer)
      .map(valueInfo)
      .concat(carried<onnx.IValueInfoProto[] | undefined>(g.extra.orphanValueInfo) ?? []);
    if (g.extra.sparseInitializer) p.sparseInitializer = carried(g.extra.sparseInitializer);
    if (g.extra.quantizationAnnotation) p.quantizationAnnotation = carried(g.extra.quantizationAnnotation);
    if (g.extra.metadataProps) p.metadataProps = carried(g.extra.metadataProps);
    return p;
  };
  const kvs = (l: KeyValue[]) => l.map((e) => ({ key: e.key, value: e.value }));
  return {
    irVersion: toProtoInt64(model.irVersion),
    opsetImport: [...model.opsets].map(([domain, version]) => ({ domain, version: toProtoInt64(version) })),
    producerName: model.producerName,
    producerVersion: model.producerVersion,
    domain: model.domain,
    modelVersion: toProtoInt64(model.modelVersion),
    docString: model.docString,
    graph: graphProto(model.graph),
    metadataProps: kvs(model.metadataProps),
    trainingInfo: carried(model.trainingInfo),
    functions: carried(model.functions),
    configuration: carried(model.configuration),
  };
}

/** Write a model built in code (tests, probes) and return its path. */
export function saveModel(model: Model, file: string, opts?: WriteOptions): string {
  writeModel(model, file, opts);
  return file;
}
