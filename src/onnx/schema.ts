import * as path from 'path';
import * as protobuf from 'protobufjs';

/**
 * The project's own copy of onnx.proto (see the file's header), parsed once. Passes never see these
 * messages: read.ts and write.ts translate between them and the IR.
 */
const root = protobuf.loadSync(path.join(__dirname, 'onnx.proto'));

export const ModelProto = root.lookupType('onnx.ModelProto');
export const TensorProto = root.lookupType('onnx.TensorProto');
export const SequenceProto = root.lookupType('onnx.SequenceProto');

/** The newest IR version this schema describes; newer models may carry fields it would drop. */
export const MAX_IR_VERSION = 12;

/** protobufjs hands out int64 as Long (or number when small); the IR wants numbers, bigint past 2^53. */
export function int64(x: unknown): number | bigint {
  if (typeof x === 'number') return x;
  if (typeof x === 'bigint') return x;
  if (x && typeof x === 'object' && 'low' in x && 'high' in x) {
    const l = x as { low: number; high: number; unsigned?: boolean };
    const big = (BigInt(l.high >>> 0) << 32n) | BigInt(l.low >>> 0);
    const v = l.unsigned ? big : BigInt.asIntN(64, big);
    return v >= BigInt(Number.MIN_SAFE_INTEGER) && v <= BigInt(Number.MAX_SAFE_INTEGER) ? Number(v) : v;
  }
  if (typeof x === 'string') return int64(BigInt(x));
  return 0;
}

/** The inverse of int64(): a value protobufjs encodes exactly. */
export function toProtoInt64(x: number | bigint): number | protobuf.Long {
  if (typeof x === 'number' && Number.isSafeInteger(x)) return x;
  const b = BigInt.asUintN(64, BigInt(x));
  return new protobuf.util.Long(Number(b & 0xffffffffn) | 0, Number(b >> 32n) | 0, false);
}
