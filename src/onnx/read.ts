import * as fs from 'fs';
import * as path from 'path';
import { SdcError } from '../ir/errors';
import { DataType, bitsOf, byteSize, dtypeName } from '../ir/dtype';
import { AttrType, Attribute, AttributeMeta, Dim, Graph, Node, Value, ValueType } from '../ir/graph';
import { KeyValue, Tensor, TensorData } from '../ir/tensor';
import { Model } from '../ir/model';
import { MAX_IR_VERSION, ModelProto, TensorProto, int64 } from './schema';
import type { onnx } from './onnx-types';

/** 2^34 elements (64 GB of float32): a declared size beyond it is corrupt, refused before allocating. */
const MAX_ELEMENTS = 2 ** 34;

export interface ReadOptions {
  /** Folder that external data `location`s are relative to (default: the model's folder). */
  baseDir?: string;
  /**
   * Accept external tensors whose data file is absent (graph-only models, like the SD1.5 graphs whose
   * weights are synthesized): they read as unavailable until a caller replaces their data.
   */
  allowMissingData?: boolean;
}

/**
 * Read a model from a file. Inline tensors stay views of the file buffer; external tensors become byte
 * ranges that nothing reads until asked, so a 3.4 GB UNet opens in the time its graph takes.
 */
export function readModel(file: string, opts: ReadOptions = {}): Model {
  const abs = path.resolve(file);
  let buf: Buffer;
  try {
    // A FIFO or a device would block or never end: only regular files are models.
    const st = fs.statSync(abs);
    if (!st.isFile() && !st.isDirectory()) throw new SdcError(file, 'is not a regular file (a FIFO, socket or device); sdc reads model files');
    buf = fs.readFileSync(abs);
  } catch (e) {
    if (e instanceof SdcError) throw e;
    const err = e as NodeJS.ErrnoException;
    // a pipeline folder goes through its own door (src/pipeline/), which this layer sits below
    const folder = fs.existsSync(path.join(abs, 'model_index.json')) ? 'is a pipeline folder, not an ONNX file: compile it whole with `sdc compile DIR -o OUTDIR` (library: compilePipeline())' : 'is a folder, not an ONNX file';
    throw new SdcError(file, err.code === 'ENOENT' ? 'no such file' : err.code === 'EISDIR' ? folder : `cannot read: ${err.message}`);
  }
  return decodeModel(buf, file, opts.baseDir ?? path.dirname(abs), opts.allowMissingData);
}

/**
 * The data files in its own folder that the model now at `file` reads; none when there is no model
 * there or sdc cannot read it (whoever replaces it then touches nothing beside it).
 */
export function weightsBeside(file: string): string[] {
  if (!fs.existsSync(file)) return [];
  try {
    const dir = path.dirname(path.resolve(file));
    return readModel(file, { allowMissingData: true }).externalFiles().filter((f) => path.dirname(f) === dir);
  } catch {
    return [];
  }
}

export function decodeModel(buf: Uint8Array, file: string, baseDir: string, allowMissingData = false): Model {
  if (buf.byteLength === 0) throw new SdcError(file, 'is empty, not an ONNX model');
  let proto: onnx.ModelProto;
  try {
    proto = ModelProto.decode(buf);
  } catch (e) {
    throw new SdcError(file, `is not a valid ONNX protobuf or is truncated (${(e as Error).message})`);
  }
  const ir = Number(int64(proto.irVersion ?? 0));
  if (!proto.graph) throw new SdcError(file, 'holds no graph: not an ONNX model, or truncated');
  if (ir <= 0) throw new SdcError(file, 'has no ir_version: not an ONNX model, or truncated');
  if (ir > MAX_IR_VERSION) throw new SdcError(file, `uses ONNX IR version ${ir}; sdc reads up to ${MAX_IR_VERSION}`);
  const ctx = new ReadContext(file, baseDir, allowMissingData);
  const graph = ctx.graph(proto.graph, null);
  const model = new Model(graph);
  model.irVersion = ir;
  for (const o of proto.opsetImport ?? []) model.opsets.set(o.domain ?? '', Number(int64(o.version ?? 0)));
  model.producerName = proto.producerName ?? '';
  model.producerVersion = proto.producerVersion ?? '';
  model.domain = proto.domain ?? '';
  model.modelVersion = int64(proto.modelVersion ?? 0);
  model.docString = proto.docString ?? '';
  model.metadataProps = kv(proto.metadataProps);
  model.functions = proto.functions ?? [];
  model.trainingInfo = proto.trainingInfo ?? [];
  model.configuration = proto.configuration ?? [];
  model.source = path.resolve(file);
  return model;
}

/** Decode one serialized TensorProto (the ONNX test data sets' input_N.pb). */
export function readTensorFile(file: string): Tensor {
  const buf = fs.readFileSync(file);
  let proto: onnx.TensorProto;
  try {
    proto = TensorProto.decode(buf);
  } catch (e) {
    throw new SdcError(file, `is not a serialized TensorProto (${(e as Error).message})`);
  }
  return new ReadContext(file, path.dirname(path.resolve(file))).tensor(proto);
}

function kv(list: onnx.IStringStringEntryProto[] | null | undefined): KeyValue[] {
  return (list ?? []).map((e) => ({ key: e.key ?? '', value: e.value ?? '' }));
}

class ReadContext {
  private fileSizes = new Map<string, number>();

  constructor(private file: string, private baseDir: string, private allowMissing = false) {}

  graph(gp: onnx.IGraphProto, parent: Graph | null): Graph {
    const g = new Graph(gp.name ?? '', parent);
    g.docString = gp.docString ?? '';
    for (const key of ['sparseInitializer', 'quantizationAnnotation', 'metadataProps'] as const) {
      if (gp[key]?.length) g.extra[key] = gp[key];
    }
    const define = (name: string, what: string): Value => {
      if (g.values.has(name)) throw new SdcError(this.file, `duplicate value name '${name}' (${what}) in graph '${g.name}'`);
      const v = new Value(g, name);
      g.values.set(name, v);
      return v;
    };
    for (const vi of gp.input ?? []) {
      const v = define(vi.name ?? '', 'graph input');
      this.valueInfo(v, vi);
      g.inputs.push(v);
    }
    for (const tp of gp.initializer ?? []) {
      const t = this.tensor(tp);
      // Before IR 4 an initializer may share its name with a graph input: it is that input's default.
      const v = g.values.get(t.name) && g.inputs.some((i) => i.name === t.name) ? g.values.get(t.name)! : define(t.name, 'initializer');
      v.initializer = t;
      if (!v.type) v.type = { kind: 'tensor', elemType: t.dtype, shape: [...t.dims] };
    }
    const nodes: [Node, onnx.INodeProto][] = [];
    for (const np of gp.node ?? []) {
      const n = new Node(g, np.opType ?? '', np.domain ?? '', np.name ?? '');
      n.overload = np.overload ?? '';
      n.docString = np.docString ?? '';
      n.metadataProps = kv(np.metadataProps);
      if (np.deviceConfigurations?.length) n.extra.deviceConfigurations = np.deviceConfigurations;
      for (const out of np.output ?? []) {
        if (out === '') {
          // An omitted optional output: keep its position with a private name nothing reads.
          const v = g.newValue(`${n.name || n.opType}__unused_out`);
          v.producer = n;
          n.outputs.push(v);
          v.omitted = true;
          continue;
        }
        const v = define(out, `output of node '${n.name || n.opType}'`);
        v.producer = n;
        n.outputs.push(v);
      }
      g.nodes.push(n);
      nodes.push([n, np]);
    }
    // Attributes (subgraphs among them) after every local name exists: a subgraph may read any of them.
    for (const [n, np] of nodes) {
      for (const ap of np.attribute ?? []) {
        const a = this.attribute(ap, g);
        n.attrs.set(a.name, a);
      }
      (np.input ?? []).forEach((name, i) => {
        if (name === '') {
          n.inputs.push(null);
          return;
        }
        let v = g.lookup(name);
        if (!v) {
          // Left dangling on purpose: the validator names it with its node.
          v = new Value(g, name);
          g.values.set(name, v);
        }
        n.inputs.push(v);
        v.uses.push({ node: n, index: i });
      });
    }
    for (const vi of gp.valueInfo ?? []) {
      const v = g.values.get(vi.name ?? '');
      if (v) this.valueInfo(v, vi);
      else {
        // value_info for a name produced nowhere in this graph: keep it so a write loses nothing.
        const kept = (g.extra.orphanValueInfo as onnx.IValueInfoProto[] | undefined) ?? [];
        kept.push(vi);
        g.extra.orphanValueInfo = kept;
      }
    }
    for (const vi of gp.output ?? []) {
      const name = vi.name ?? '';
      let v = g.lookup(name);
      if (!v) {
        v = new Value(g, name);
        g.values.set(name, v);
      }
      this.valueInfo(v, vi);
      g.outputs.push(v);
    }
    return g;
  }

  private valueInfo(v: Value, vi: onnx.IValueInfoProto): void {
    v.docString = vi.docString ?? '';
    v.metadataProps = kv(vi.metadataProps);
    if (vi.type) v.type = valueType(vi.type);
  }

  private attribute(ap: onnx.IAttributeProto, g: Graph): Attribute & AttributeMeta {
    const name = ap.name ?? '';
    // The schema's AttributeType and the IR's AttrType are both ONNX's codes.
    const code: number = ap.type ?? AttrType.UNDEFINED;
    let type: AttrType = code;
    if (type === AttrType.UNDEFINED) type = inferAttrType(ap);
    const meta: AttributeMeta = {};
    if (ap.docString) meta.docString = ap.docString;
    if (ap.refAttrName) meta.refAttrName = ap.refAttrName;
    const a = ((): Attribute => {
      switch (type) {
        case AttrType.FLOAT: return { name, type, value: ap.f ?? 0 };
        case AttrType.INT: return { name, type, value: int64(ap.i ?? 0) };
        case AttrType.STRING: return { name, type, value: ap.s ?? new Uint8Array(0) };
        case AttrType.TENSOR: return { name, type, value: this.tensor(ap.t ?? {}) };
        case AttrType.GRAPH: return { name, type, value: this.graph(ap.g ?? {}, g) };
        case AttrType.FLOATS: return { name, type, value: [...(ap.floats ?? [])] };
        case AttrType.INTS: return { name, type, value: (ap.ints ?? []).map(int64) };
        case AttrType.STRINGS: return { name, type, value: ap.strings ?? [] };
        case AttrType.TENSORS: return { name, type, value: (ap.tensors ?? []).map((t) => this.tensor(t)) };
        case AttrType.GRAPHS: return { name, type, value: (ap.graphs ?? []).map((s) => this.graph(s, g)) };
        default: return { name, type: type as AttrType.UNDEFINED, value: ap };
      }
    })();
    return Object.assign(a, meta);
  }

  tensor(tp: onnx.ITensorProto): Tensor {
    const dtype: DataType = tp.dataType ?? DataType.UNDEFINED;
    const name = tp.name ?? '';
    const dims = (tp.dims ?? []).map((d) => Number(int64(d)));
    const bad = dims.find((d) => !Number.isSafeInteger(d) || d < 0);
    if (bad !== undefined) throw new SdcError(this.file, `tensor '${name}' has an invalid dim ${bad} in [${dims.join(',')}]`);
    const count = dims.reduce((a, b) => a * b, 1);
    if (count > MAX_ELEMENTS) throw new SdcError(this.file, `tensor '${name}' declares ${dims.join('x')} = ${count} elements, more than any model holds`);
    const t = new Tensor(name, dtype, dims, { kind: 'bytes', bytes: new Uint8Array(0) });
    t.docString = tp.docString ?? '';
    t.metadataProps = kv(tp.metadataProps);
    if (tp.segment) t.extra.segment = tp.segment;
    t.data = tp.dataLocation === 1 ? this.externalData(t, tp) : inlineData(t, tp, this.file);
    const want = t.expectedByteLength();
    if (want !== null && t.data.kind !== 'strings' && t.byteLength !== want && !tp.segment) {
      throw new SdcError(this.file, `tensor '${name}' holds ${t.byteLength} bytes but ${dtypeName(dtype)}[${dims.join(',')}] needs ${want}`);
    }
    return t;
  }

  private externalData(t: Tensor, tp: onnx.ITensorProto): TensorData {
    const info: Record<string, string> = {};
    for (const e of tp.externalData ?? []) info[e.key ?? ''] = e.value ?? '';
    const loc = info.location;
    const what = `tensor '${t.name}'`;
    if (!loc) throw new SdcError(this.file, `${what} is external but names no location`);
    if (path.isAbsolute(loc) || path.win32.isAbsolute(loc) || loc.includes('\0')) {
      throw new SdcError(this.file, `${what}: external data location '${loc}' is absolute; ONNX requires a path relative to the model's folder`);
    }
    const full = path.resolve(this.baseDir, loc.replace(/\\/g, '/'));
    const rel = path.relative(this.baseDir, full);
    if (rel === '' || rel.startsWith('..') || path.isAbsolute(rel)) {
      throw new SdcError(this.file, `${what}: external data location '${loc}' escapes the model's folder`);
    }
    // The path as written stays inside; so must the file it reaches through links (onnxruntime refuses
    // both): a link to /etc/passwd or a folder link to .. must not be read into an output.
    if (fs.existsSync(full)) {
      const real = fs.realpathSync(full);
      const realBase = fs.realpathSync(this.baseDir);
      const realRel = path.relative(realBase, real);
      if (realRel === '' || realRel.startsWith('..') || path.isAbsolute(realRel)) {
        throw new SdcError(this.file, `${what}: external data '${loc}' leads outside the model's folder through a link (to ${real})`);
      }
    }
    const offset0 = info.offset !== undefined ? Number(info.offset) : 0;
    if (this.allowMissing && !fs.existsSync(full)) {
      return { kind: 'external', file: full, offset: offset0, length: t.expectedByteLength() ?? Number(info.length ?? 0) };
    }
    const size = this.fileSize(full, what, loc);
    const offset = info.offset !== undefined ? Number(info.offset) : 0;
    const expected = t.expectedByteLength();
    const length = info.length !== undefined ? Number(info.length) : expected ?? size - offset;
    if (!Number.isSafeInteger(offset) || offset < 0 || !Number.isSafeInteger(length) || length < 0) {
      throw new SdcError(this.file, `${what}: external data offset/length '${info.offset}'/'${info.length}' are not valid byte counts`);
    }
    if (offset + length > size) {
      throw new SdcError(this.file, `${what}: external data range ${offset}+${length} runs past the end of '${loc}' (${size} bytes)`);
    }
    return { kind: 'external', file: full, offset, length };
  }

  private fileSize(full: string, what: string, loc: string): number {
    let size = this.fileSizes.get(full);
    if (size === undefined) {
      try {
        const st = fs.statSync(full);
        if (!st.isFile()) throw new SdcError(this.file, `${what}: external data '${loc}' is not a file`);
        size = st.size;
      } catch (e) {
        if (e instanceof SdcError) throw e;
        throw new SdcError(this.file, `${what}: external data file '${loc}' is missing (looked in ${path.dirname(full)})`);
      }
      this.fileSizes.set(full, size);
    }
    return size;
  }
}

/** Any typed field (float_data, int32_data, ...) becomes the raw little-endian bytes ONNX defines. */
function inlineData(t: Tensor, tp: onnx.ITensorProto, file: string): TensorData {
  const dt = t.dtype;
  const count = t.size;
  if (dt === DataType.STRING) {
    const strings = tp.stringData ?? [];
    if (strings.length !== count) throw new SdcError(file, `tensor '${t.name}' holds ${strings.length} strings but [${t.dims.join(',')}] needs ${count}`);
    return { kind: 'strings', strings };
  }
  if (tp.rawData && tp.rawData.byteLength > 0) return { kind: 'bytes', bytes: tp.rawData };
  // The typed field must hold exactly the declared count: checked before anything is allocated.
  const field = typedField(dt);
  const values: unknown[] = field ? tp[field] ?? [] : [];
  const want = field === 'int32Data' && bitsOf(dt) < 8 ? byteSize(dt, count) : dt === DataType.COMPLEX64 || dt === DataType.COMPLEX128 ? count * 2 : count;
  if (values.length !== want) {
    throw new SdcError(file, `tensor '${t.name}' holds ${values.length} values in ${field ?? 'its data'} but ${dtypeName(dt)}[${t.dims.join(',')}] needs ${want}`);
  }
  const nbytes = byteSize(dt, count);
  const out = new Uint8Array(nbytes);
  const dv = new DataView(out.buffer);
  switch (dt) {
    case DataType.FLOAT:
    case DataType.COMPLEX64:
      (tp.floatData ?? []).forEach((x, i) => dv.setFloat32(i * 4, x, true));
      break;
    case DataType.DOUBLE:
    case DataType.COMPLEX128:
      (tp.doubleData ?? []).forEach((x, i) => dv.setFloat64(i * 8, x, true));
      break;
    case DataType.INT64:
      (tp.int64Data ?? []).forEach((x, i) => dv.setBigInt64(i * 8, BigInt(int64(x)), true));
      break;
    case DataType.UINT32:
      (tp.uint64Data ?? []).forEach((x, i) => dv.setUint32(i * 4, Number(int64(x)) >>> 0, true));
      break;
    case DataType.UINT64:
      (tp.uint64Data ?? []).forEach((x, i) => dv.setBigUint64(i * 8, BigInt.asUintN(64, BigInt(int64(x))), true));
      break;
    case DataType.INT32:
      (tp.int32Data ?? []).forEach((x, i) => dv.setInt32(i * 4, x, true));
      break;
    case DataType.INT16:
    case DataType.UINT16:
    case DataType.FLOAT16:
    case DataType.BFLOAT16:
      (tp.int32Data ?? []).forEach((x, i) => dv.setUint16(i * 2, x & 0xffff, true));
      break;
    default:
      // 8-bit types (one element per int32) and 4/2-bit types (int32_data holds the packed bytes).
      (tp.int32Data ?? []).forEach((x, i) => {
        if (i < nbytes) out[i] = x & 0xff;
      });
  }
  return { kind: 'bytes', bytes: out };
}

type TypedField = 'floatData' | 'doubleData' | 'int64Data' | 'uint64Data' | 'int32Data';

/** Which typed field of a TensorProto carries this element type's values (ONNX's table). */
function typedField(dt: DataType): TypedField | null {
  switch (dt) {
    case DataType.FLOAT: case DataType.COMPLEX64: return 'floatData';
    case DataType.DOUBLE: case DataType.COMPLEX128: return 'doubleData';
    case DataType.INT64: return 'int64Data';
    case DataType.UINT32: case DataType.UINT64: return 'uint64Data';
    case DataType.UNDEFINED: return null;
    default: return 'int32Data';
  }
}

function inferAttrType(ap: onnx.IAttributeProto): AttrType {
  if (ap.t) return AttrType.TENSOR;
  if (ap.g) return AttrType.GRAPH;
  if (ap.floats?.length) return AttrType.FLOATS;
  if (ap.ints?.length) return AttrType.INTS;
  if (ap.strings?.length) return AttrType.STRINGS;
  if (ap.s?.length) return AttrType.STRING;
  if (ap.i !== undefined && int64(ap.i) !== 0) return AttrType.INT;
  if (ap.f !== undefined && ap.f !== 0) return AttrType.FLOAT;
  return AttrType.UNDEFINED;
}

function valueType(tp: onnx.ITypeProto): ValueType {
  if (tp.tensorType) {
    const tt = tp.tensorType;
    let shape: Dim[] | null = null;
    let dimDenotations: (string | undefined)[] | undefined;
    if (tt.shape) {
      const dims = tt.shape.dim ?? [];
      shape = dims.map((d): Dim => {
        // The oneof's discriminator, not the fields: proto2 gives unset fields a default of 0. Decoded
        // messages carry it (the generated class has it; the property interface does not).
        const set = (d as onnx.TensorShapeProto.Dimension).value;
        if (set === 'dimValue') return Number(int64(d.dimValue));
        if (set === 'dimParam') return d.dimParam ?? null;
        return null;
      });
      if (dims.some((d) => d.denotation)) dimDenotations = dims.map((d) => d.denotation || undefined);
    }
    const t: ValueType = { kind: 'tensor', elemType: tt.elemType ?? 0, shape };
    if (tp.denotation) t.denotation = tp.denotation;
    if (dimDenotations) t.dimDenotations = dimDenotations;
    return t;
  }
  return { kind: 'other', proto: tp };
}
