import * as fs from 'fs';
import { DataType, byteSize, dtypeName } from './dtype';

/**
 * Where a tensor's bytes live. Numeric data is always little-endian packed bytes (as ONNX raw_data), so
 * passes see one representation whatever field the exporter used.
 */
export type TensorData =
  /** In memory; for a loaded model a zero-copy view of the model file's buffer. */
  | { kind: 'bytes'; bytes: Uint8Array }
  | { kind: 'strings'; strings: Uint8Array[] }
  /** A byte range of another file, read only when asked for: weights stay on disk until written. */
  | { kind: 'external'; file: string; offset: number; length: number }
  /**
   * Computed on demand (weights derived from other weights, synthesized weights); `produce` must return
   * exactly `length` bytes. `rows`, where given, computes a part of it: rows r0..r1 (exclusive) of
   * `rowBytes` each, so a writer can stream a large derived tensor in pieces instead of holding it whole.
   */
  | { kind: 'lazy'; length: number; produce: () => Uint8Array; fromExternal?: boolean; rowBytes?: number; rows?: (r0: number, r1: number) => Uint8Array };

export interface KeyValue {
  key: string;
  value: string;
}

export class Tensor {
  docString = '';
  metadataProps: KeyValue[] = [];
  /** Proto fields the compiler does not model (segment), carried through verbatim. */
  extra: Record<string, unknown> = {};

  constructor(
    public name: string,
    public dtype: DataType,
    public dims: number[],
    public data: TensorData,
  ) {}

  get size(): number {
    let n = 1;
    for (const d of this.dims) n *= d;
    return n;
  }

  get byteLength(): number {
    switch (this.data.kind) {
      case 'bytes': return this.data.bytes.byteLength;
      case 'strings': return this.data.strings.reduce((s, b) => s + b.byteLength, 0);
      default: return this.data.length;
    }
  }

  get isExternal(): boolean {
    return this.data.kind === 'external';
  }

  /**
   * Kept in (or computed from) a weights file of the source: a model holding such tensors is written with
   * external data again, so a 3.4 GB model does not become a 1.7 GB protobuf when its weights are converted.
   */
  get fromExternal(): boolean {
    return this.data.kind === 'external' || (this.data.kind === 'lazy' && !!this.data.fromExternal);
  }

  /** The packed bytes; reads them from disk for an external tensor (the caller decides when that is worth it). */
  bytes(): Uint8Array {
    const d = this.data;
    switch (d.kind) {
      case 'bytes': return d.bytes;
      case 'lazy': return d.produce();
      case 'external': return readRange(d.file, d.offset, d.length);
      case 'strings': throw new Error(`tensor ${this.name} holds strings, not bytes`);
    }
  }

  /**
   * Bytes [offset, offset + length) of the packed data, computing or reading no more than the rows that
   * hold them where the data allows (external: that range of the file; lazy with `rows`: those rows).
   */
  bytesIn(offset: number, length: number): Uint8Array {
    const d = this.data;
    if (offset < 0 || length < 0 || offset + length > this.byteLength) throw new Error(`tensor ${this.name}: bytes ${offset}+${length} outside its ${this.byteLength}`);
    switch (d.kind) {
      case 'bytes': return d.bytes.subarray(offset, offset + length);
      case 'external': return readRange(d.file, d.offset + offset, length);
      case 'strings': throw new Error(`tensor ${this.name} holds strings, not bytes`);
      case 'lazy': {
        if (!d.rows || !d.rowBytes) return d.produce().subarray(offset, offset + length);
        const r0 = Math.floor(offset / d.rowBytes);
        const r1 = Math.ceil((offset + length) / d.rowBytes);
        const b = d.rows(r0, r1);
        const at = offset - r0 * d.rowBytes;
        return b.subarray(at, at + length);
      }
    }
  }

  /**
   * bytesIn(offset, into.byteLength), written into `into`: an external tensor's bytes are read straight
   * there (into a conversion kernel's memory, say) rather than into a buffer of their own and copied.
   */
  readInto(offset: number, into: Uint8Array): void {
    const d = this.data;
    if (d.kind !== 'external') {
      into.set(this.bytesIn(offset, into.byteLength));
      return;
    }
    if (offset < 0 || offset + into.byteLength > d.length) throw new Error(`tensor ${this.name}: bytes ${offset}+${into.byteLength} outside its ${d.length}`);
    readRangeInto(d.file, d.offset + offset, into);
  }

  /** The smallest piece the data is computed in without waste (bytes): a lazy tensor's row, else 1. */
  get pieceUnit(): number {
    return this.data.kind === 'lazy' && this.data.rows && this.data.rowBytes ? this.data.rowBytes : 1;
  }

  /** A typed view of the values (copied when the bytes are not aligned for the element type). */
  values(): Float32Array | Float64Array | Int32Array | BigInt64Array | BigUint64Array | Int8Array | Uint8Array | Int16Array | Uint16Array | Uint32Array {
    const Ctor = TYPED[this.dtype];
    if (!Ctor) throw new Error(`tensor ${this.name}: no typed view for ${dtypeName(this.dtype)}`);
    return typedView(Ctor, this.bytes());
  }

  /** Expected byte length from dims and dtype; null for strings. */
  expectedByteLength(): number | null {
    return this.dtype === DataType.STRING ? null : byteSize(this.dtype, this.size);
  }

  static fromValues(name: string, dtype: DataType, dims: number[], values: ArrayLike<number> | ArrayLike<bigint>): Tensor {
    const Ctor = TYPED[dtype];
    if (!Ctor) throw new Error(`cannot build a ${dtypeName(dtype)} tensor from values`);
    const arr = new Ctor(values.length);
    for (let i = 0; i < values.length; i++) (arr as unknown as Array<unknown>)[i] = (values as ArrayLike<unknown>)[i];
    return new Tensor(name, dtype, dims, { kind: 'bytes', bytes: new Uint8Array(arr.buffer) });
  }
}

/**
 * A tensor computed from others a block of rows at a time (see TensorData 'lazy'): `produceRows(r0, r1)`
 * returns rows r0..r1 (exclusive) packed, `rowBytes` each. Whole, it is all rows at once.
 */
export function derivedTensor(name: string, dtype: DataType, dims: number[], rowCount: number, rowBytes: number, produceRows: (r0: number, r1: number) => Uint8Array, sources: Tensor[]): Tensor {
  return new Tensor(name, dtype, dims, {
    kind: 'lazy',
    length: rowCount * rowBytes,
    produce: () => produceRows(0, rowCount),
    rows: produceRows,
    rowBytes,
    fromExternal: sources.some((t) => t.fromExternal),
  });
}

/** Rows r0..r1 of a float32 [rows, width] part, packed. */
export type RowReader = (r0: number, r1: number) => Float32Array;

/** Rows of a row-major float32 matrix tensor [rows, width], read without the rest of it. */
export function matrixRows(t: Tensor, width: number): RowReader {
  return (r0, r1) => floats(t.bytesIn(r0 * width * 4, (r1 - r0) * width * 4));
}

/** Float32 view of packed little-endian bytes (copied when unaligned). */
export function floats(b: Uint8Array): Float32Array {
  return typedView(Float32Array, b);
}

/** A typed view of packed bytes, copied first when they are not aligned for the element type. */
function typedView(Ctor: TypedCtor, b: Uint8Array) {
  const el = Ctor.BYTES_PER_ELEMENT;
  if (b.byteOffset % el === 0) return new Ctor(b.buffer, b.byteOffset, b.byteLength / el);
  const copy = new Uint8Array(b);
  return new Ctor(copy.buffer, 0, copy.byteLength / el);
}

/**
 * A float32 [rows, Σ widths] tensor whose rows are the parts' rows side by side (concatenated weights of
 * merged projections, packed attention), produced when written, a block of rows at a time: a compile
 * never holds them, nor all of one. Its sources stay referenced (on disk for external weights) until then.
 */
export function concatColumns(name: string, rows: number, parts: { width: number; rows: RowReader }[], sources: Tensor[]): Tensor {
  const width = parts.reduce((s, p) => s + p.width, 0);
  const produceRows = (r0: number, r1: number) => {
    const out = new Float32Array((r1 - r0) * width);
    let col = 0;
    for (const p of parts) {
      const a = p.rows(r0, r1);
      for (let r = 0; r < r1 - r0; r++) out.set(a.subarray(r * p.width, (r + 1) * p.width), r * width + col);
      col += p.width;
    }
    return new Uint8Array(out.buffer);
  };
  return derivedTensor(name, DataType.FLOAT, [rows, width], rows, width * 4, produceRows, sources);
}

type TypedCtor = { new (buf: ArrayBufferLike, off: number, len: number): any; new (n: number): any; BYTES_PER_ELEMENT: number };
const TYPED: Partial<Record<DataType, TypedCtor>> = {
  [DataType.FLOAT]: Float32Array, [DataType.DOUBLE]: Float64Array, [DataType.INT32]: Int32Array,
  [DataType.INT64]: BigInt64Array, [DataType.UINT64]: BigUint64Array, [DataType.INT8]: Int8Array,
  [DataType.UINT8]: Uint8Array, [DataType.BOOL]: Uint8Array, [DataType.INT16]: Int16Array,
  [DataType.UINT16]: Uint16Array, [DataType.UINT32]: Uint32Array, [DataType.FLOAT16]: Uint16Array,
  [DataType.BFLOAT16]: Uint16Array,
};

/** Files held open across reads while a writer runs (keepingFilesOpen), else null: each read opens its file. */
const MAX_OPEN_FILES = 16;
let openFiles: Map<string, number> | null = null;

/**
 * Run `fn` with the weights files it reads kept open until it ends: a writer reads a derived tensor's
 * sources in thousands of small pieces (a transposed projection row by row), and opening the file for
 * each cost more than the reads. Outside it a read opens and closes its file, so a long-lived process
 * never holds a file the user may replace.
 */
export function keepingFilesOpen<T>(fn: () => T): T {
  if (openFiles) return fn();
  openFiles = new Map();
  try {
    return fn();
  } finally {
    for (const fd of openFiles.values()) fs.closeSync(fd);
    openFiles = null;
  }
}

function readRange(file: string, offset: number, length: number): Uint8Array {
  const out = Buffer.allocUnsafe(length);
  readRangeInto(file, offset, out);
  return out;
}

function readRangeInto(file: string, offset: number, out: Uint8Array): void {
  const length = out.byteLength;
  let fd = openFiles?.get(file);
  const own = fd === undefined;
  if (fd === undefined) {
    fd = fs.openSync(file, 'r');
    if (openFiles) {
      // a few at once: a model exported with one file per tensor would exhaust the process's descriptors
      if (openFiles.size >= MAX_OPEN_FILES) {
        const [oldest, old] = openFiles.entries().next().value as [string, number];
        openFiles.delete(oldest);
        fs.closeSync(old);
      }
      openFiles.set(file, fd);
    }
  }
  try {
    let done = 0;
    while (done < length) {
      const n = fs.readSync(fd, out, done, length - done, offset + done);
      if (n === 0) throw new Error(`${file}: unexpected end of file reading ${length} bytes at ${offset}`);
      done += n;
    }
  } finally {
    if (own && !openFiles) fs.closeSync(fd);
  }
}
