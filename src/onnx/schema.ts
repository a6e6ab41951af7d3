import * as path from 'path';
import Long from 'long';
import * as protobuf from 'protobufjs';
import type { onnx } from './onnx-types';

/**
 * A message type of the schema, typed with what `npm run gen:proto` generated from the same onnx.proto
 * (src/onnx/onnx-types.d.ts; test/schema.test.ts keeps the two in step). `decode` gives a message:
 * every field present, at its default when the bytes lack it (oneof members included), and nested
 * messages typed by their properties (`onnx.IGraphProto`: optional, nullable). `encode` takes plain
 * objects of those properties. int64 fields are `number | Long` either way: `int64()` below converts.
 */
export interface MessageType<Message extends object, Properties extends object> extends protobuf.Type {
  decode(reader: protobuf.Reader | Uint8Array, length?: number): Message & protobuf.Message<object>;
  encode(message: Properties, writer?: protobuf.Writer): protobuf.Writer;
}

/**
 * The project's own copy of onnx.proto (see the file's header), parsed once. Passes never see these
 * messages: read.ts and write.ts translate between them and the IR.
 */
const root = protobuf.loadSync(path.join(__dirname, 'onnx.proto'));

export const ModelProto = root.lookupType('onnx.ModelProto') as MessageType<onnx.ModelProto, onnx.IModelProto>;
export const TensorProto = root.lookupType('onnx.TensorProto') as MessageType<onnx.TensorProto, onnx.ITensorProto>;

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

/** The inverse of int64(): a value protobufjs encodes exactly (its Long is this package, `long`). */
export function toProtoInt64(x: number | bigint): number | Long {
  if (typeof x === 'number' && Number.isSafeInteger(x)) return x;
  const b = BigInt.asUintN(64, BigInt(x));
  return new Long(Number(b & 0xffffffffn) | 0, Number(b >> 32n) | 0, false);
}
