/**
 * GGML's 32-element block formats (ggml-common.h), dequantizers and the reference quantizers
 * (ggml-quants.c quantize_row_*_ref) that llama-quantize uses when no importance matrix is given.
 *
 * Layouts (bytes, little-endian):
 *   q4_0 [d f16][qs 16]          x = (q - 8)·d          low nibbles: elements 0..15, high nibbles: 16..31
 *   q4_1 [d f16][m f16][qs 16]   x = q·d + m
 *   q5_0 [d f16][qh u32][qs 16]  x = (q - 16)·d         bit j of qh is bit 4 of element j
 *   q5_1 [d f16][m f16][qh u32][qs 16]  x = q·d + m
 *   q8_0 [d f16][qs i8 ×32]      x = q·d
 * Every arithmetic step is rounded to float32 (`fr`) in the C order so our bytes equal llama.cpp's.
 */
import { checkBlocks, fr, readF16, roundf, writeF16 } from './f32-math.ts';

const QK = 32;
const toI8 = (v: number): number => (v << 24) >> 24;
/** C `(int8_t)(float)`: truncation toward zero, then wrap to 8 bits. */
const truncI8 = (v: number): number => toI8(Math.trunc(v));

// ---- q4_0 -------------------------------------------------------------------------------------------------

export function dequantQ4_0(src: Uint8Array, off: number, n: number, out: Float32Array, o: number): void {
  const nb = checkBlocks(n, QK, 'q4_0');
  for (let i = 0, p = off; i < nb; i++, p += 18, o += QK) {
    const d = readF16(src, p);
    for (let j = 0; j < 16; j++) {
      const q = src[p + 2 + j]!;
      out[o + j] = ((q & 15) - 8) * d;
      out[o + j + 16] = ((q >> 4) - 8) * d;
    }
  }
}

/** Absolute maximum and the signed value that has it (the first one, as the C loop keeps `<`). */
function signedMax(x: Float32Array, s: number, n: number): number {
  let amax = 0,
    max = 0;
  for (let j = 0; j < n; j++) {
    const v = x[s + j]!;
    if (amax < Math.abs(v)) {
      amax = Math.abs(v);
      max = v;
    }
  }
  return max;
}

export function quantQ4_0(x: Float32Array, s: number, n: number, out: Uint8Array, off: number): void {
  const nb = checkBlocks(n, QK, 'q4_0');
  for (let i = 0, p = off; i < nb; i++, p += 18, s += QK) {
    // d = max / -8: the largest-magnitude value lands exactly on level -8 (the asymmetric end of int4).
    const d = fr(signedMax(x, s, QK) / -8);
    const id = d ? fr(1 / d) : 0;
    writeF16(out, p, d);
    for (let j = 0; j < 16; j++) {
      const x0 = fr(x[s + j]! * id),
        x1 = fr(x[s + 16 + j]! * id);
      const q0 = Math.min(15, truncI8(fr(x0 + 8.5))),
        q1 = Math.min(15, truncI8(fr(x1 + 8.5)));
      out[p + 2 + j] = (q0 & 0xff) | ((q1 << 4) & 0xff);
    }
  }
}

// ---- q4_1 -------------------------------------------------------------------------------------------------

export function dequantQ4_1(src: Uint8Array, off: number, n: number, out: Float32Array, o: number): void {
  const nb = checkBlocks(n, QK, 'q4_1');
  for (let i = 0, p = off; i < nb; i++, p += 20, o += QK) {
    const d = readF16(src, p),
      m = readF16(src, p + 2);
    for (let j = 0; j < 16; j++) {
      const q = src[p + 4 + j]!;
      out[o + j] = (q & 15) * d + m;
      out[o + j + 16] = (q >> 4) * d + m;
    }
  }
}

function minMax(x: Float32Array, s: number, n: number): [number, number] {
  let min = Infinity,
    max = -Infinity;
  for (let j = 0; j < n; j++) {
    const v = x[s + j]!;
    if (v < min) min = v;
    if (v > max) max = v;
  }
  return [min, max];
}

export function quantQ4_1(x: Float32Array, s: number, n: number, out: Uint8Array, off: number): void {
  const nb = checkBlocks(n, QK, 'q4_1');
  for (let i = 0, p = off; i < nb; i++, p += 20, s += QK) {
    const [min, max] = minMax(x, s, QK);
    const d = fr(fr(max - min) / 15);
    const id = d ? fr(1 / d) : 0;
    writeF16(out, p, d);
    writeF16(out, p + 2, min);
    for (let j = 0; j < 16; j++) {
      const x0 = fr(fr(x[s + j]! - min) * id),
        x1 = fr(fr(x[s + 16 + j]! - min) * id);
      const q0 = Math.min(15, truncI8(fr(x0 + 0.5))),
        q1 = Math.min(15, truncI8(fr(x1 + 0.5)));
      out[p + 4 + j] = (q0 & 0xff) | ((q1 << 4) & 0xff);
    }
  }
}

// ---- q5_0 / q5_1 ------------------------------------------------------------------------------------------

function readU32(src: Uint8Array, p: number): number {
  return (src[p]! | (src[p + 1]! << 8) | (src[p + 2]! << 16) | (src[p + 3]! << 24)) >>> 0;
}

function writeU32(out: Uint8Array, p: number, v: number): void {
  out[p] = v & 0xff;
  out[p + 1] = (v >>> 8) & 0xff;
  out[p + 2] = (v >>> 16) & 0xff;
  out[p + 3] = v >>> 24;
}

export function dequantQ5_0(src: Uint8Array, off: number, n: number, out: Float32Array, o: number): void {
  const nb = checkBlocks(n, QK, 'q5_0');
  for (let i = 0, p = off; i < nb; i++, p += 22, o += QK) {
    const d = readF16(src, p);
    const qh = readU32(src, p + 2);
    for (let j = 0; j < 16; j++) {
      const q = src[p + 6 + j]!;
      out[o + j] = (((q & 15) | (((qh >>> j) << 4) & 16)) - 16) * d;
      out[o + j + 16] = (((q >> 4) | ((qh >>> (j + 12)) & 16)) - 16) * d;
    }
  }
}

export function quantQ5_0(x: Float32Array, s: number, n: number, out: Uint8Array, off: number): void {
  const nb = checkBlocks(n, QK, 'q5_0');
  for (let i = 0, p = off; i < nb; i++, p += 22, s += QK) {
    const d = fr(signedMax(x, s, QK) / -16);
    const id = d ? fr(1 / d) : 0;
    writeF16(out, p, d);
    let qh = 0;
    for (let j = 0; j < 16; j++) {
      const x0 = fr(x[s + j]! * id),
        x1 = fr(x[s + 16 + j]! * id);
      const q0 = Math.min(31, truncI8(fr(x0 + 16.5))) & 0xff,
        q1 = Math.min(31, truncI8(fr(x1 + 16.5))) & 0xff;
      out[p + 6 + j] = (q0 & 15) | ((q1 & 15) << 4);
      qh |= ((q0 & 16) >> 4) << j;
      qh |= ((q1 & 16) >> 4) << (j + 16);
    }
    writeU32(out, p + 2, qh >>> 0);
  }
}

export function dequantQ5_1(src: Uint8Array, off: number, n: number, out: Float32Array, o: number): void {
  const nb = checkBlocks(n, QK, 'q5_1');
  for (let i = 0, p = off; i < nb; i++, p += 24, o += QK) {
    const d = readF16(src, p),
      m = readF16(src, p + 2);
    const qh = readU32(src, p + 4);
    for (let j = 0; j < 16; j++) {
      const q = src[p + 8 + j]!;
      out[o + j] = ((q & 15) | (((qh >>> j) << 4) & 16)) * d + m;
      out[o + j + 16] = ((q >> 4) | ((qh >>> (j + 12)) & 16)) * d + m;
    }
  }
}

export function quantQ5_1(x: Float32Array, s: number, n: number, out: Uint8Array, off: number): void {
  const nb = checkBlocks(n, QK, 'q5_1');
  for (let i = 0, p = off; i < nb; i++, p += 24, s += QK) {
    const [min, max] = minMax(x, s, QK);
    const d = fr(fr(max - min) / 31);
    const id = d ? fr(1 / d) : 0;
    writeF16(out, p, d);
    writeF16(out, p + 2, min);
    let qh = 0;
    for (let j = 0; j < 16; j++) {
      const x0 = fr(fr(x[s + j]! - min) * id),
        x1 = fr(fr(x[s + 16 + j]! - min) * id);
      // C: (uint8_t)(x + 0.5f) — no clamp in the reference (the max lands on 31 exactly or just below).
      const q0 = Math.trunc(fr(x0 + 0.5)) & 0xff,
        q1 = Math.trunc(fr(x1 + 0.5)) & 0xff;
      out[p + 8 + j] = (q0 & 15) | ((q1 & 15) << 4);
      qh |= ((q0 & 16) >> 4) << j;
      qh |= ((q1 & 16) >> 4) << (j + 16);
    }
    writeU32(out, p + 4, qh >>> 0);
  }
}

// ---- q8_0 -------------------------------------------------------------------------------------------------

export function dequantQ8_0(src: Uint8Array, off: number, n: number, out: Float32Array, o: number): void {
  const nb = checkBlocks(n, QK, 'q8_0');
  for (let i = 0, p = off; i < nb; i++, p += 34, o += QK) {
    const d = readF16(src, p);
    for (let j = 0; j < QK; j++) out[o + j] = toI8(src[p + 2 + j]!) * d;
  }
}

export function quantQ8_0(x: Float32Array, s: number, n: number, out: Uint8Array, off: number): void {
  const nb = checkBlocks(n, QK, 'q8_0');
  for (let i = 0, p = off; i < nb; i++, p += 34, s += QK) {
    let amax = 0;
    for (let j = 0; j < QK; j++) amax = Math.max(amax, Math.abs(x[s + j]!));
    const d = fr(amax / 127);
    const id = d ? fr(1 / d) : 0;
    writeF16(out, p, d);
    for (let j = 0; j < QK; j++) out[p + 2 + j] = roundf(fr(x[s + j]! * id)) & 0xff;
  }
}
