/**
 * Row codecs for every stored element type: dequantizeRow turns n elements starting at a byte offset into float32.
 * Plain floats live here; the GGML block formats (q4_0 … q6_k) are registered by ./blocks.ts.
 * Used by the TypeScript backend (matmul on quantized rows), the readers and the GGUF writer.
 */
import type { DType } from '../dtype.ts';
import { DTYPES } from '../dtype.ts';
import { bf16ToF32, f16ToF32, f32ToBf16, f32ToF16 } from '../half.ts';
import { BLOCK_CODECS } from './blocks.ts';

export type RowDequantizer = (src: Uint8Array, byteOffset: number, n: number, out: Float32Array, outOffset: number) => void;
export type RowQuantizer = (src: Float32Array, srcOffset: number, n: number, out: Uint8Array, byteOffset: number) => void;

const dequantizers = new Map<DType, RowDequantizer>();
const quantizers = new Map<DType, RowQuantizer>();

export function registerCodec(dtype: DType, dequant: RowDequantizer, quant?: RowQuantizer): void {
  dequantizers.set(dtype, dequant);
  if (quant) quantizers.set(dtype, quant);
}

export function hasDequantizer(dtype: DType): boolean {
  return dequantizers.has(dtype);
}

export function dequantizeRow(dtype: DType, src: Uint8Array, byteOffset: number, n: number, out: Float32Array, outOffset = 0): void {
  const f = dequantizers.get(dtype);
  if (!f) throw new Error(`no dequantizer for ${dtype}`);
  f(src, byteOffset, n, out, outOffset);
}

export function quantizeRow(dtype: DType, src: Float32Array, srcOffset: number, n: number, out: Uint8Array, byteOffset = 0): void {
  const f = quantizers.get(dtype);
  if (!f) throw new Error(`no quantizer for ${dtype}`);
  f(src, srcOffset, n, out, byteOffset);
}

/**
 * A faster quantizer for whole tensors (the native core's, src/kernels/native/quantizer.ts) that writes exactly the
 * bytes of quantize(): the GGUF writer hands it the types it supports and keeps the TypeScript codecs as fallback.
 */
export interface BulkQuantizer {
  /** Whether quantize() takes this type. */
  supports(dtype: DType): boolean;
  /** Same bytes as quantize(dtype, src, rowLength); src stays untouched and must not change until it settles. */
  quantize(dtype: DType, src: Float32Array, rowLength: number): Promise<Uint8Array>;
  /** Releases its threads (pending calls finish first). */
  close(): void;
}

/** Dequantizes a whole tensor's bytes (n elements) to float32. */
export function dequantize(dtype: DType, src: Uint8Array, n: number): Float32Array {
  const out = new Float32Array(n);
  dequantizeRow(dtype, src, 0, n, out, 0);
  return out;
}

/** Quantizes float32 values (rows of `rowLength`) into a new byte array of the target type. */
export function quantize(dtype: DType, src: Float32Array, rowLength: number): Uint8Array {
  const { blockSize, bytesPerBlock } = DTYPES[dtype];
  const rows = src.length / rowLength;
  const rowBytes = (rowLength / blockSize) * bytesPerBlock;
  const out = new Uint8Array(rows * rowBytes);
  for (let r = 0; r < rows; r++) quantizeRow(dtype, src, r * rowLength, rowLength, out, r * rowBytes);
  return out;
}

registerCodec(
  'f32',
  (src, off, n, out, o) => {
    const dv = new DataView(src.buffer, src.byteOffset + off, n * 4);
    for (let i = 0; i < n; i++) out[o + i] = dv.getFloat32(i * 4, true);
  },
  (src, so, n, out, off) => {
    const dv = new DataView(out.buffer, out.byteOffset + off, n * 4);
    for (let i = 0; i < n; i++) dv.setFloat32(i * 4, src[so + i]!, true);
  },
);
registerCodec(
  'f16',
  (src, off, n, out, o) => {
    for (let i = 0, p = off; i < n; i++, p += 2) out[o + i] = f16ToF32(src[p]! | (src[p + 1]! << 8));
  },
  (src, so, n, out, off) => {
    for (let i = 0, p = off; i < n; i++, p += 2) {
      const h = f32ToF16(src[so + i]!);
      out[p] = h & 0xff;
      out[p + 1] = h >> 8;
    }
  },
);
registerCodec(
  'bf16',
  (src, off, n, out, o) => {
    for (let i = 0, p = off; i < n; i++, p += 2) out[o + i] = bf16ToF32(src[p]! | (src[p + 1]! << 8));
  },
  (src, so, n, out, off) => {
    for (let i = 0, p = off; i < n; i++, p += 2) {
      const h = f32ToBf16(src[so + i]!);
      out[p] = h & 0xff;
      out[p + 1] = h >> 8;
    }
  },
);

// GGML block formats (q4_0 … q6_k, q8_k): exact ports of ggml-quants.c, registered here.
for (const [dtype, dequant, quant] of BLOCK_CODECS) registerCodec(dtype, dequant, quant);
