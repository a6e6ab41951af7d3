import { DataType } from '../ir/dtype';
import { Graph, Node, Value } from '../ir/graph';
import { Sym } from '../ir/symbolic';

/**
 * One record per op sdc emits (or a target table lists): which target's kernel runs it and with what
 * limits, how its output types follow from its inputs (shape analysis, so fp16 and later rules see
 * dtypes and shapes through it), and how to lower it to ops the CPU provider runs (the `--check` oracle
 * for outputs that hold GPU-only ops). Adding a fused op is adding a record; a test fails when an op a
 * rule or pass emits has no record, or a record lacks one of the three.
 */
export type TargetName = 'cpu' | 'webgpu' | 'cuda';
export const TARGETS: TargetName[] = ['cpu', 'webgpu', 'cuda'];

export type Layout = 'NCHW' | 'NHWC';

export interface Kernel {
  /** Element types of the main input the kernel is registered for. */
  dtypes: DataType[];
  /** Named sizes the kernel is limited to (BiasAdd channels, BiasSplitGelu hidden size); absent: any. */
  sizes?: Record<string, number[]>;
  /** Named sizes the kernel needs to be a multiple of (its shader's vector width). */
  multiples?: Record<string, number>;
  /** Memory layouts the kernel computes in; absent: the op's standard layout. */
  layouts?: Layout[];
  /**
   * Optional inputs and attributes the kernel honours (attention's `attention_bias`, `unidirectional`), for
   * a rule about to use one; absent: the kernel takes none beyond the required ones.
   */
  options?: string[];
  note?: string;
}

/** What inference knows of a value: element type and symbolic shape (null: unknown). */
export interface TypeShape {
  dtype: DataType | null;
  shape: Sym[] | null;
}

/** Output types of one node from its inputs' (one entry per output; a missing entry is unknown). */
type InferFn = (n: Node, inputs: TypeShape[]) => TypeShape[];

export interface LowerContext {
  /** Opset of the default domain of the model being lowered. */
  opset: number;
  /** The static or symbolic shape of a value, from a shape analysis of the model (null: unknown). */
  shapeOf(v: Value): Sym[] | null;
}

/**
 * Replace node `n` by ops the CPU provider runs with the op's documented semantics: add nodes before `n`
 * and return the values that take the place of its outputs (the oracle moves their readers and removes
 * `n`). Throws a LoweringError for a use of the op it cannot express.
 */
export type LowerFn = (g: Graph, n: Node, ctx: LowerContext) => (Value | null)[];

export class LoweringError extends Error {}

export interface OpRecord {
  /** `domain::op`, ai.onnx for the default domain. */
  op: string;
  /**
   * The kernel of each target that has one. Absent: a standard ai.onnx op every provider runs (listed so
   * that emitting it is declared, not assumed).
   */
  kernels?: Partial<Record<TargetName, Kernel>>;
  note?: string;
  /** The output types, or 'onnx': a standard op the shape analysis (src/analysis/shapes.ts) infers itself. */
  infer: InferFn | 'onnx';
  /** The lowering to CPU ops, or 'cpu': the CPU provider runs the op itself (its kernels row says so). */
  lower: LowerFn | 'cpu';
}

/** `ai.onnx::Conv` for ('', 'Conv'), `com.microsoft::GroupNorm` for ('com.microsoft', 'GroupNorm'). */
export function opKey(domain: string, op: string): string {
  return `${domain === '' ? 'ai.onnx' : domain}::${op}`;
}

export const F32: DataType[] = [DataType.FLOAT];
export const F32_F16: DataType[] = [DataType.FLOAT, DataType.FLOAT16];

/** The same element types on the GPU targets, and `cpu` on the CPU. */
export const everywhere = (cpu: DataType[], gpu: DataType[]): Partial<Record<TargetName, Kernel>> => ({ cpu: { dtypes: cpu }, webgpu: { dtypes: gpu }, cuda: { dtypes: gpu } });

/** The first input's type, for ops whose output is shaped like their input. */
export const likeInput = (_n: Node, ins: TypeShape[]): TypeShape[] => [{ dtype: ins[0]?.dtype ?? null, shape: ins[0]?.shape ?? null }];

export const UNKNOWN_TYPE: TypeShape = { dtype: null, shape: null };
