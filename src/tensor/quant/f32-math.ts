/**
 * Float32 arithmetic helpers for bit-exact ports of GGML's C quantizers.
 *
 * C evaluates `float` expressions in single precision, one rounding per operation (x86-64 SSE, no FMA
 * contraction in ggml-base). A double result of one +,-,*,/ or sqrt on float operands, rounded once with
 * Math.fround, equals the single-precision result (53 >= 2*24+2), so every C operation becomes `fr(a op b)`.
 */
import { f16ToF32, f32ToF16 } from '../half.ts';

export const fr = Math.fround;

const nf = new Float32Array(1);
const ni = new Int32Array(nf.buffer);

/**
 * GGML's nearest_int: adds 1.5·2²³ in float32 and reads the low mantissa bits — round half to even, and for
 * |v| > 2²² the same garbage the C code produces (release builds do not assert), so outputs stay identical.
 */
export function nearestInt(v: number): number {
  if (v <= 4194303 && v >= -4194303) {
    // Fast path, same result: v is a float32 value, so v ± 0.5 is exact in double and only ties need care.
    const r = Math.round(v);
    return r - v === 0.5 && (r & 1) !== 0 ? r - 1 : r;
  }
  nf[0] = v + 12582912;
  return (ni[0]! & 0x007fffff) - 0x00400000;
}

/** C roundf: half away from zero. */
export function roundf(v: number): number {
  return v < 0 ? -Math.floor(-v + 0.5) : Math.floor(v + 0.5);
}

/** float -> fp16 -> float, as GGML_FP16_TO_FP32(GGML_FP32_TO_FP16(v)). */
export function viaF16(v: number): number {
  return f16ToF32(f32ToF16(v));
}

export function readF16(src: Uint8Array, p: number): number {
  return f16ToF32(src[p]! | (src[p + 1]! << 8));
}

export function writeF16(out: Uint8Array, p: number, v: number): void {
  const h = f32ToF16(v);
  out[p] = h & 0xff;
  out[p + 1] = h >> 8;
}

/** Throws unless n is a whole number of blocks (callers pass row lengths from validated shapes). */
export function checkBlocks(n: number, block: number, name: string): number {
  if (n % block !== 0) throw new RangeError(`${n} elements is not a whole number of ${name} blocks of ${block}`);
  return n / block;
}
