/**
 * float32 → float16 conversion in WebAssembly SIMD: eight elements an iteration, ~1.2 ns an element on
 * this project's 2-core machines where the scalar loop in half.ts takes 3–6 ns. It is most of an fp16
 * compile's time (SD1.5: 860 M weights). The module is assembled here from its instructions (no toolchain,
 * no binary in the repository) and used only where the runtime validates it: elsewhere half.ts's loop runs.
 *
 * Per lane, with a = |x| as bits (the same cases as halfOfFloatBits, rounding to nearest even):
 *   normal result:    (a − 0x38000000 + 0xfff + ((a >>> 13) & 1)) >>> 13, capped at 0x7c00 (overflow → Inf)
 *   NaN:              that | 0x200 (a quiet NaN)
 *   subnormal result: bits(float(a) + 0.5) − bits(0.5): the float adder rounds the 10 kept bits to
 *                     nearest even (WebAssembly floats never flush subnormals)
 *   sign:             (x >>> 16) & 0x8000
 */

const SIMD = 0xfd;
const I32 = 0x7f;
const V128 = 0x7b;

/** Unsigned LEB128. */
function uleb(n: number): number[] {
  const out: number[] = [];
  do {
    let b = n & 0x7f;
    n >>>= 7;
    if (n) b |= 0x80;
    out.push(b);
  } while (n);
  return out;
}

/** Signed LEB128 of an int32. */
function sleb(n: number): number[] {
  const out: number[] = [];
  n |= 0;
  for (;;) {
    const b = n & 0x7f;
    n >>= 7;
    if ((n === 0 && !(b & 0x40)) || (n === -1 && b & 0x40)) return [...out, b];
    out.push(b | 0x80);
  }
}

const vec = (items: number[][]) => [...uleb(items.length), ...items.flat()];
const section = (id: number, body: number[]) => [id, ...uleb(body.length), ...body];
const name = (s: string) => vec([...s].map((c) => [c.charCodeAt(0)]));
const simd = (op: number) => [SIMD, ...uleb(op)];

// instructions (opcodes from the WebAssembly 2.0 core spec)
const get = (i: number) => [0x20, ...uleb(i)];
const set = (i: number) => [0x21, ...uleb(i)];
const i32 = (v: number) => [0x41, ...sleb(v)];
const splat = (v: number) => [...i32(v), ...simd(0x11)]; // i32x4.splat
const load = (offset: number) => [...simd(0x00), 4, ...uleb(offset)]; // v128.load align=16
const store = (offset: number) => [...simd(0x0b), 4, ...uleb(offset)]; // v128.store
const AND = simd(0x4e);
const OR = simd(0x50);
const SELECT = simd(0x52); // v128.bitselect: (v1, v2, mask) → mask ? v1 : v2, bit by bit
const LT_S = simd(0x39);
const GT_S = simd(0x3b);
const SHR_U = simd(0xad);
const ADD = simd(0xae);
const SUB = simd(0xb1);
const MIN_U = simd(0xb7);
const F32_ADD = simd(0xe4);
const NARROW_U = simd(0x86); // i16x8.narrow_i32x4_u: two i32x4 → one i16x8 (our values fit 16 bits)

// half(src, dst, end): converts the float32s at src..end (bytes, a multiple of 32) to float16s at dst
const P_SRC = 0;
const P_DST = 1;
const P_END = 2;
const L_X = 3;
const L_A = 4;

/** One i32x4 of float32 bits at src+offset → their float16 bits, as i32x4, left on the stack. */
const convert = (offset: number) => [
  ...get(P_SRC), ...load(offset), ...set(L_X),
  ...get(L_X), ...splat(0x7fffffff), ...AND, ...set(L_A),
  // subnormal result (taken where a < 2^-14)
  ...get(L_A), ...splat(0x3f000000), ...F32_ADD, ...splat(0x3f000000), ...SUB,
  // normal result, Inf on overflow and for Inf itself, with the NaN bit
  ...get(L_A), ...splat(0xc8000fff), ...ADD,
  ...get(L_A), ...i32(13), ...SHR_U, ...splat(1), ...AND, ...ADD,
  ...i32(13), ...SHR_U, ...splat(0x7c00), ...MIN_U,
  ...get(L_A), ...splat(0x7f800000), ...GT_S, ...splat(0x200), ...AND, ...OR,
  ...get(L_A), ...splat(0x38800000), ...LT_S, ...SELECT,
  ...get(L_X), ...i32(16), ...SHR_U, ...splat(0x8000), ...AND, ...OR,
];

const BODY = [
  ...vec([[2, V128]]),
  0x02, 0x40, // block
  0x03, 0x40, // loop
  ...get(P_SRC), ...get(P_END), 0x4f, 0x0d, 1, // br_if 1 when src >= end (i32.ge_u)
  ...get(P_DST), ...convert(0), ...convert(16), ...NARROW_U, ...store(0),
  ...get(P_SRC), ...i32(32), 0x6a, ...set(P_SRC), // src += 32
  ...get(P_DST), ...i32(16), 0x6a, ...set(P_DST), // dst += 16
  0x0c, 0, // br 0
  0x0b, 0x0b, 0x0b, // end loop, end block, end function
];

function moduleBytes(): Uint8Array {
  return new Uint8Array([
    0x00, 0x61, 0x73, 0x6d, 1, 0, 0, 0,
    ...section(1, vec([[0x60, ...vec([[I32], [I32], [I32]]), ...vec([])]])), // type: (i32, i32, i32) → ()
    ...section(2, vec([[...name('env'), ...name('mem'), 0x02, 0x00, ...uleb(1)]])), // import memory, ≥ 1 page
    ...section(3, vec([[0]])), // one function of type 0
    ...section(7, vec([[...name('half'), 0x00, 0]])),
    ...section(10, vec([[...uleb(BODY.length), ...BODY]])),
  ]);
}

const PAGE = 64 << 10;
/** Elements converted per call: inputs past this go through in chunks, so the kernel's memory stays ~12 MB. */
const CHUNK = 2 << 20;

export interface HalfKernel {
  /**
   * The float16 bytes of `byteLength` bytes of little-endian float32s, which `fill` writes into the array
   * it is given (the kernel's own memory when they fit one chunk: read there, they are never copied in).
   */
  convert(byteLength: number, fill: (into: Uint8Array) => void): Uint8Array;
}

let kernel: HalfKernel | null | undefined;

/** The SIMD kernel, or null where WebAssembly SIMD cannot run (then half.ts converts in JavaScript). */
export function halfKernel(): HalfKernel | null {
  if (kernel === undefined) kernel = build();
  return kernel;
}

/** The part of the WebAssembly JS API used here (this project's TypeScript libraries do not declare it). */
interface WasmApi {
  validate(bytes: Uint8Array): boolean;
  Memory: new (d: { initial: number }) => { buffer: ArrayBuffer };
  Module: new (bytes: Uint8Array) => object;
  Instance: new (m: object, imports: object) => { exports: Record<string, unknown> };
}

function build(): HalfKernel | null {
  const LITTLE_ENDIAN = new Uint8Array(new Uint16Array([1]).buffer)[0] === 1;
  const wasm = (globalThis as { WebAssembly?: WasmApi }).WebAssembly;
  if (!LITTLE_ENDIAN || !wasm) return null;
  try {
    const bytes = moduleBytes();
    // false where the engine has no SIMD (or no such opcodes): half.ts's loop runs instead
    if (!wasm.validate(bytes)) return null;
    const memory = new wasm.Memory({ initial: Math.ceil((CHUNK * 6) / PAGE) });
    const half = new wasm.Instance(new wasm.Module(bytes), { env: { mem: memory } }).exports.half as (src: number, dst: number, end: number) => void;
    const outAt = CHUNK * 4;
    /** Converts the n float32s at 0 (padded to 8 with whatever follows) to float16s at outAt. */
    const run = (n: number) => half(0, outAt, Math.ceil(n / 8) * 32);
    return {
      convert(byteLength, fill) {
        const n = byteLength >> 2;
        const out = new Uint8Array(n * 2);
        if (n <= CHUNK) {
          fill(new Uint8Array(memory.buffer, 0, n * 4));
          run(n);
          out.set(new Uint8Array(memory.buffer, outAt, n * 2));
          return out;
        }
        const all = new Uint8Array(n * 4);
        fill(all);
        for (let at = 0; at < n; at += CHUNK) {
          const m = Math.min(CHUNK, n - at);
          new Uint8Array(memory.buffer, 0, m * 4).set(all.subarray(at * 4, (at + m) * 4));
          run(m);
          out.set(new Uint8Array(memory.buffer, outAt, m * 2), at * 2);
        }
        return out;
      },
    };
  } catch {
    // a host that forbids compiling WebAssembly (a page's content security policy)
    return null;
  }
}
