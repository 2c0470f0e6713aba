/**
 * Attention key/value storage types (KvType in backend.ts): sizes, row encoders for the KV cache and row decoders
 * for the TypeScript backend and tests. q8_0 and f16 use the registered GGML codecs (quant/), so cache bytes are
 * exactly what ggml's quantize_row_q8_0_ref / fp32→fp16 (round to nearest even) would store.
 */
import type { KvData, KvType } from './backend.ts';
import { f16ToF32, f32ToF16 } from './half.ts';
import { dequantizeRow, quantizeRow } from './quant/index.ts';

export const KV_TYPES: readonly KvType[] = ['f32', 'f16', 'q8_0'];

export function isKvType(s: string): s is KvType {
  return (KV_TYPES as readonly string[]).includes(s);
}

/** Typed-array elements holding `values` K or V values (bytes for q8_0: 34 per 32 values). */
export function kvElements(type: KvType, values: number): number {
  return type === 'q8_0' ? (values / 32) * 34 : values;
}

/** Bytes per stored value on average (4, 2, 34/32). */
export function kvBytesPerValue(type: KvType): number {
  return type === 'f32' ? 4 : type === 'f16' ? 2 : 34 / 32;
}

/** A new zeroed array of `elements` elements of the type's storage kind. */
export function allocKv(type: KvType, elements: number): KvData {
  return type === 'f32' ? new Float32Array(elements) : type === 'f16' ? new Uint16Array(elements) : new Uint8Array(elements);
}

/** The typed-array kind each type must be passed as; a mismatch is a TypeError at the backend seam. */
export function checkKvArray(type: KvType, a: KvData, what: string): void {
  const ok = type === 'f32' ? a instanceof Float32Array : type === 'f16' ? a instanceof Uint16Array : a instanceof Uint8Array;
  if (!ok)
    throw new TypeError(
      `${what}: kvType ${type} needs a ${type === 'f32' ? 'Float32Array' : type === 'f16' ? 'Uint16Array' : 'Uint8Array'}, got ${a.constructor.name}`,
    );
}

/**
 * Encodes `values` float32 values src[so ..] into dst starting at element `o` (values a multiple of 32 for q8_0,
 * with blocks aligned to head rows by the caller).
 */
export function encodeKv(type: KvType, src: Float32Array, so: number, values: number, dst: KvData, o: number): void {
  if (type === 'f32') (dst as Float32Array).set(src.subarray(so, so + values), o);
  else if (type === 'f16') encodeF16(src, so, values, dst as Uint16Array, o);
  else quantizeRow('q8_0', src, so, values, dst as Uint8Array, o);
}

/**
 * f32 -> f16 (round to nearest even) of a run of values: f32ToF16's results, with the common case — a normal half,
 * 2^-14 <= |x| < 2^16 — done on the bits in the loop (rebias the exponent, add half an ulp minus one plus the odd
 * bit, shift; a carry into the exponent is the correct rounding up, to infinity at the top). Decode steps encode
 * every new K/V row, so this loop runs layers × 2 × kv width times per token.
 */
function encodeF16(src: Float32Array, so: number, values: number, dst: Uint16Array, o: number): void {
  const bits = new Uint32Array(src.buffer, src.byteOffset + so * 4, values);
  for (let i = 0; i < values; i++) {
    const b = bits[i]!;
    const a = b & 0x7fffffff;
    if (a >= 0x38800000 && a < 0x47800000) dst[o + i] = ((b >>> 16) & 0x8000) | ((a - 0x38000000 + 0xfff + ((a >>> 13) & 1)) >>> 13);
    else dst[o + i] = f32ToF16(src[so + i]!);
  }
}

/** Decodes `values` values starting at value index `first` (a multiple of 32 for q8_0) into out[oo ..]. */
export function decodeKv(type: KvType, src: KvData, first: number, values: number, out: Float32Array | Float64Array, oo = 0): void {
  if (type === 'f32') {
    for (let i = 0; i < values; i++) out[oo + i] = src[first + i]!;
    return;
  }
  if (type === 'f16') {
    for (let i = 0; i < values; i++) out[oo + i] = f16ToF32(src[first + i]!);
    return;
  }
  if (out instanceof Float32Array) {
    dequantizeRow('q8_0', src as Uint8Array, (first / 32) * 34, values, out, oo);
    return;
  }
  const tmp = new Float32Array(values);
  dequantizeRow('q8_0', src as Uint8Array, (first / 32) * 34, values, tmp, 0);
  out.set(tmp, oo);
}
