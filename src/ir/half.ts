import { halfKernel } from './half-simd';

const f32 = new Float32Array(1);
const u32 = new Uint32Array(f32.buffer);

/** float32 → float16 bits, rounded to nearest even; overflow gives ±Inf, NaN stays NaN. */
export function toHalfBits(x: number): number {
  f32[0] = x;
  return halfOfFloatBits(u32[0]);
}

/** The float16 bits of the float32 with bits `b` (round to nearest even). */
function halfOfFloatBits(b: number): number {
  const a = b & 0x7fffffff;
  // a normal fp16 result (the common case): rebias the exponent, round to nearest even by adding 0xfff
  // plus the kept mantissa's last bit, shift. Everything else (subnormal, overflow, NaN) below.
  if (a >= 0x38800000 && a < 0x477ff000) return ((b >>> 16) & 0x8000) | ((a - 0x38000000 + 0xfff + ((a >>> 13) & 1)) >>> 13);
  const sign = (b >>> 16) & 0x8000;
  const exp = (b >>> 23) & 0xff;
  const mant = b & 0x7fffff;
  if (exp === 0xff) return sign | 0x7c00 | (mant ? 0x200 : 0);
  const e = exp - 127 + 15;
  if (e >= 0x1f) return sign | 0x7c00;
  if (e <= 0) {
    if (e < -10) return sign;
    const m = mant | 0x800000;
    const shift = 14 - e;
    const half = m >>> shift;
    const rest = m & ((1 << shift) - 1);
    const mid = 1 << (shift - 1);
    return sign | (half + (rest > mid || (rest === mid && half & 1) ? 1 : 0));
  }
  const half = (e << 10) | (mant >>> 13);
  const rest = mant & 0x1fff;
  return sign | (half + (rest > 0x1000 || (rest === 0x1000 && half & 1) ? 1 : 0));
}

/** float16 bits → number. */
export function fromHalfBits(h: number): number {
  const sign = h & 0x8000 ? -1 : 1;
  const e = (h >>> 10) & 0x1f;
  const m = h & 0x3ff;
  if (e === 0) return sign * m * 2 ** -24;
  if (e === 0x1f) return m ? NaN : sign * Infinity;
  return sign * (1 + m / 1024) * 2 ** (e - 15);
}

const LITTLE_ENDIAN = new Uint8Array(new Uint16Array([1]).buffer)[0] === 1;

/** Packed little-endian float32 bytes → packed float16 bytes. */
export function halfBytes(bytes: Uint8Array): Uint8Array {
  return halfBytesFrom(bytes.byteLength, (into) => into.set(bytes));
}

/**
 * The float16 bytes of `byteLength` bytes of packed little-endian float32s that `fill` writes into the
 * array it is given: a reader fills the SIMD kernel's memory directly (half-simd.ts), where it can run.
 */
export function halfBytesFrom(byteLength: number, fill: (into: Uint8Array) => void): Uint8Array {
  const simd = halfKernel();
  if (simd) return simd.convert(byteLength, fill);
  const bytes = new Uint8Array(byteLength);
  fill(bytes);
  const n = byteLength >> 2;
  const out = new Uint8Array(n * 2);
  if (LITTLE_ENDIAN) {
    // typed arrays in the platform's order, which then is the files' order: no DataView per element
    const words = new Int32Array(bytes.buffer, 0, n);
    const halves = new Uint16Array(out.buffer);
    for (let i = 0; i < n; i++) halves[i] = halfOfFloatBits(words[i]);
    return out;
  }
  const view = new DataView(bytes.buffer, 0, byteLength);
  const ov = new DataView(out.buffer);
  for (let i = 0; i < n; i++) ov.setUint16(i * 2, halfOfFloatBits(view.getUint32(i * 4, true)), true);
  return out;
}

/** The scalar conversion of halfBytesFrom, where no SIMD kernel runs: for tests that compare the two. */
export function halfBytesScalar(bytes: Uint8Array): Uint8Array {
  const n = bytes.byteLength >> 2;
  const out = new Uint16Array(n);
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  for (let i = 0; i < n; i++) out[i] = halfOfFloatBits(view.getUint32(i * 4, true));
  return new Uint8Array(out.buffer);
}
