/**
 * The float64 references and seeded random data the backend conformance suites (backend.case.test.ts,
 * backend-vision.case.test.ts) and the native backend's own tests check against: quantized weights with sane scale
 * fields, row dequantization through the registered codecs, matmul, attention, exact erf, NMSE and bit comparisons.
 */
import assert from 'node:assert/strict';
import type { AttentionShape, DType, KvData, KvType } from '../tensor/index.ts';
import { DTYPES, allocKv, byteSize, dequantizeRow, encodeKv, f32ToBf16, f32ToF16, hasDequantizer, kvElements } from '../tensor/index.ts';

/** Deterministic xorshift32 generator: uniform [0, 1) and standard normal values. */
export function rng(seed: number): { u(): number; n(): number } {
  let s = seed >>> 0 || 1;
  const u = (): number => {
    s ^= s << 13;
    s >>>= 0;
    s ^= s >>> 17;
    s ^= s << 5;
    s >>>= 0;
    return s / 4294967296;
  };
  return { u, n: () => Math.sqrt(-2 * Math.log(u() + 1e-12)) * Math.cos(2 * Math.PI * u()) };
}
export function randn(r: ReturnType<typeof rng>, n: number, scale = 1): Float32Array {
  const a = new Float32Array(n);
  for (let i = 0; i < n; i++) a[i] = r.n() * scale;
  return a;
}
export function nmse(out: ArrayLike<number>, ref: ArrayLike<number>): number {
  let e = 0,
    s = 0;
  for (let i = 0; i < ref.length; i++) {
    e += (out[i]! - ref[i]!) ** 2;
    s += ref[i]! ** 2;
  }
  return s === 0 ? e : e / s;
}
export function close(out: ArrayLike<number>, ref: ArrayLike<number>, tol: number, what: string): void {
  assert.equal(out.length >= ref.length, true, `${what}: output too short`);
  for (let i = 0; i < ref.length; i++) assert.ok(Number.isFinite(out[i]!), `${what}: element ${i} is ${out[i]}`);
  const e = nmse(out, ref);
  assert.ok(e <= tol, `${what}: NMSE ${e.toExponential(2)} > ${tol.toExponential(0)}`);
}

// Offsets of the half-precision scale fields inside one block of each format (ggml-common.h); everything else in
// a block is codes and packed sub-scales, for which any byte value is valid.
// The second offset, where present, is the block minimum's scale: kept small, as in real quantized weights
// (whose minimums roughly cancel the codes' mean), so dot products are not dominated by one large offset term.
const HALF_SCALES: Partial<Record<DType, number[]>> = {
  q4_0: [0],
  q4_1: [0, 2],
  q5_0: [0],
  q5_1: [0, 2],
  q8_0: [0],
  q2_k: [80, 82],
  q3_k: [108],
  q4_k: [0, 2],
  q5_k: [0, 2],
  q6_k: [208],
  iq2_xxs: [0],
  iq2_xs: [0],
  iq2_s: [0],
  iq3_xxs: [0],
  iq3_s: [0],
  iq1_s: [0],
  iq4_nl: [0],
  iq4_xs: [0],
};

/** Random weight bytes [rows, K] of any dtype, and their float32 values per the registered codecs. */
export function randomWeight(dtype: DType, rows: number, K: number, seed: number): { bytes: Uint8Array; values: Float32Array } {
  const r = rng(seed);
  const n = rows * K;
  const bytes = new Uint8Array(byteSize(dtype, n));
  if (dtype === 'f32') new Float32Array(bytes.buffer).set(randn(r, n, 0.1));
  else if (dtype === 'f16' || dtype === 'bf16') {
    const h = new Uint16Array(bytes.buffer);
    for (let i = 0; i < n; i++) h[i] = (dtype === 'f16' ? f32ToF16 : f32ToBf16)(r.n() * 0.1);
  } else {
    for (let i = 0; i < bytes.length; i++) bytes[i] = Math.floor(r.u() * 256);
    const { bytesPerBlock } = DTYPES[dtype];
    const dv = new DataView(bytes.buffer);
    for (let b = 0; b < bytes.length / bytesPerBlock; b++) {
      (HALF_SCALES[dtype] ?? []).forEach((off, i) => {
        const mag = (0.002 + 0.02 * r.u()) * (i === 1 ? 0.1 : 1);
        dv.setUint16(b * bytesPerBlock + off, f32ToF16(mag * (r.u() < 0.5 ? -1 : 1)), true);
      });
      if (dtype === 'q8_k') dv.setFloat32(b * bytesPerBlock, 0.001 + 0.01 * r.u(), true);
      if (dtype === 'iq1_m') {
        // its f16 scale is the top nibble of each of the 4 u16 words at bytes 48..55
        const h = f32ToF16((0.002 + 0.02 * r.u()) * (r.u() < 0.5 ? -1 : 1));
        for (let k = 0; k < 4; k++) {
          const p = b * bytesPerBlock + 48 + 2 * k;
          dv.setUint16(p, (dv.getUint16(p, true) & 0x0fff) | (((h >> (4 * k)) & 15) << 12), true);
        }
      }
    }
  }
  const values = new Float32Array(n);
  const rb = byteSize(dtype, K);
  for (let i = 0; i < rows; i++) refDequantRow(dtype, bytes, i * rb, K, values, i * K);
  return { bytes, values };
}

// Test-side decoders for the two formats the suite must cover before the full codec set is registered.
export function refDequantRow(dtype: DType, src: Uint8Array, off: number, K: number, out: Float32Array, o: number): void {
  if (hasDequantizer(dtype)) return dequantizeRow(dtype, src, off, K, out, o);
  const dv = new DataView(src.buffer, src.byteOffset);
  const half = (p: number): number => {
    const h = dv.getUint16(p, true);
    const e = (h >> 10) & 31,
      m = h & 1023,
      s = h & 0x8000 ? -1 : 1;
    return e === 0 ? s * m * 2 ** -24 : s * (1 + m / 1024) * 2 ** (e - 15);
  };
  for (let b = 0; b < K / 32; b++) {
    if (dtype === 'q8_0') {
      const p = off + b * 34,
        d = half(p);
      for (let j = 0; j < 32; j++) out[o + b * 32 + j] = dv.getInt8(p + 2 + j) * d;
    } else if (dtype === 'q4_0') {
      const p = off + b * 18,
        d = half(p);
      for (let j = 0; j < 16; j++) {
        const q = src[p + 2 + j]!;
        out[o + b * 32 + j] = ((q & 15) - 8) * d;
        out[o + b * 32 + j + 16] = ((q >> 4) - 8) * d;
      }
    } else throw new Error(`no codec for ${dtype}`);
  }
}
export function canDecode(dtype: DType): boolean {
  return hasDequantizer(dtype) || dtype === 'q8_0' || dtype === 'q4_0';
}

/** out[t, n] = Σ_k x[t, k] · W[n, k] in float64. */
export function refMatmul(x: Float32Array, W: Float32Array, T: number, N: number, K: number, wOff = 0): Float64Array {
  const out = new Float64Array(T * N);
  for (let t = 0; t < T; t++)
    for (let n = 0; n < N; n++) {
      let s = 0;
      for (let k = 0; k < K; k++) s += x[t * K + k]! * W[wOff + n * K + k]!;
      out[t * N + n] = s;
    }
  return out;
}

/** float64 attention over float32 q/k/v with the mask applied key by key (independent of the backends' ranges). */
export function refAttention(q: Float32Array, k: Float32Array, v: Float32Array, p: AttentionShape): Float64Array {
  const { nHeads, nKvHeads, headDim: d, mask } = p;
  const ref = new Float64Array(p.T * nHeads * d);
  for (let t = 0; t < p.T; t++)
    for (let h = 0; h < nHeads; h++) {
      const qp = p.qPos0 + t,
        kvh = Math.floor(h / (nHeads / nKvHeads));
      const vis: number[] = [];
      for (let s = 0; s < p.S; s++) {
        const kp = p.kPos0 + s;
        if (mask.causal && kp > qp) continue;
        if (mask.chunkSize > 0 && Math.floor(kp / mask.chunkSize) !== Math.floor(qp / mask.chunkSize)) continue;
        vis.push(s);
      }
      const sc = vis.map((s) => {
        let dot = 0;
        for (let i = 0; i < d; i++) dot += q[(t * nHeads + h) * d + i]! * k[(s * nKvHeads + kvh) * d + i]!;
        return dot * p.scale;
      });
      const mx = Math.max(...sc),
        e = sc.map((z) => Math.exp(z - mx)),
        sum = e.reduce((a, b) => a + b, 0);
      vis.forEach((s, j) => {
        for (let i = 0; i < d; i++) ref[(t * nHeads + h) * d + i]! += (e[j]! / sum) * v[(s * nKvHeads + kvh) * d + i]!;
      });
    }
  return ref;
}

/**
 * K/V rows [S, nKvHeads·d] compressed as a KV cache stores them (src/tensor/kv.ts encoders), and their values
 * decoded here by the formats' definitions (IEEE half; q8_0 x = int8 · f16 scale), independently of the codecs.
 */
export function compressKv(type: KvType, x: Float32Array, rowSize: number): { data: KvData; values: Float32Array } {
  const rows = x.length / rowSize,
    unit = kvElements(type, rowSize);
  const data = allocKv(type, rows * unit);
  for (let r = 0; r < rows; r++) encodeKv(type, x, r * rowSize, rowSize, data, r * unit);
  const half = (h: number): number => {
    const e = (h >> 10) & 31,
      m = h & 1023,
      sg = h & 0x8000 ? -1 : 1;
    return e === 0 ? sg * m * 2 ** -24 : sg * (1 + m / 1024) * 2 ** (e - 15);
  };
  const values = new Float32Array(x.length);
  if (type === 'f16') for (let i = 0; i < x.length; i++) values[i] = half(data[i]!);
  else {
    const b = data as Uint8Array,
      dv = new DataView(b.buffer, b.byteOffset);
    for (let blk = 0; blk < x.length / 32; blk++) {
      const d = half(dv.getUint16(blk * 34, true));
      for (let j = 0; j < 32; j++) values[blk * 32 + j] = dv.getInt8(blk * 34 + 2 + j) * d;
    }
  }
  return { data, values };
}

/** Bit-for-bit equality of two float32 arrays (NaN payloads and signed zeros included). */
export function assertSameBits(got: Float32Array, want: Float32Array, what: string): void {
  assert.equal(got.length, want.length, `${what}: length`);
  const a = new Uint32Array(got.buffer, got.byteOffset, got.length),
    b = new Uint32Array(want.buffer, want.byteOffset, want.length);
  for (let i = 0; i < a.length; i++) {
    if (a[i] !== b[i]) assert.fail(`${what}: element ${i} differs: ${got[i]} (batched) !== ${want[i]} (alone), diff ${got[i]! - want[i]!}`);
  }
}

/** erf via the Abramowitz–Stegun 7.1.26-free route: high-order series / continued fraction in float64. */
export function erfRef(x: number): number {
  const ax = Math.abs(x);
  if (ax < 3) {
    let sum = x,
      term = x;
    for (let n = 1; n < 200; n++) {
      term *= (-x * x) / n;
      const add = term / (2 * n + 1);
      sum += add;
      if (Math.abs(add) < 1e-17) break;
    }
    return (2 / Math.sqrt(Math.PI)) * sum;
  }
  let f = 0;
  for (let n = 80; n >= 1; n--) f = n / 2 / (ax + f);
  const erfc = Math.exp(-ax * ax) / Math.sqrt(Math.PI) / (ax + f);
  return x > 0 ? 1 - erfc : erfc - 1;
}
