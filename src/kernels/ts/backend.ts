/**
 * The TypeScript reference backend: plain loops over typed arrays, float32 storage with float64 accumulation.
 * It is the specification every faster backend is checked against (backend.case.test.ts), and the fallback when
 * the native addon cannot load. Quantized weights stay quantized; matmul dequantizes one weight row at a time.
 */
import * as rowOps from '../../tensor/row-ops.ts';
import type { AttentionJob, AttentionShape, Backend, KvData, MatmulJob, RawTensor, Weight, WeightOptions } from '../../tensor/index.ts';
import { DTYPES, byteSize, checkKvArray, decodeKv, dequantizeRow, kvElements } from '../../tensor/index.ts';

/** A weight as this backend keeps it: the stored bytes plus a float32 view when the bytes are plain aligned f32. */
class TsWeight implements Weight {
  readonly rows: number; // N
  readonly cols: number; // K
  readonly experts: number; // E (1 for a plain matrix)
  readonly rowBytes: number;
  readonly f32: Float32Array | null;
  constructor(
    readonly dtype: RawTensor['dtype'],
    readonly shape: readonly number[],
    readonly bytes: Uint8Array,
  ) {
    const s = shape.length === 1 ? [1, shape[0]!] : shape;
    this.cols = s[s.length - 1]!;
    this.rows = s[s.length - 2]!;
    this.experts = s.length === 3 ? s[0]! : 1;
    if (s.length > 3) throw new RangeError(`weights have 1 to 3 dimensions, got [${shape.join(', ')}]`);
    this.rowBytes = byteSize(dtype, this.cols);
    const want = this.rowBytes * this.rows * this.experts;
    if (bytes.length !== want) throw new RangeError(`weight [${shape.join(', ')}] ${dtype} needs ${want} bytes, got ${bytes.length}`);
    this.f32 = dtype === 'f32' ? asF32(bytes) : null;
  }
}

function asF32(bytes: Uint8Array): Float32Array {
  if (bytes.byteOffset % 4 === 0) return new Float32Array(bytes.buffer, bytes.byteOffset, bytes.length / 4);
  const copy = new Uint8Array(bytes); // unaligned view: one aligned copy
  return new Float32Array(copy.buffer);
}

function own(w: Weight): TsWeight {
  if (!(w instanceof TsWeight)) throw new TypeError('weight was not created by the TypeScript backend');
  return w;
}

export class TsBackend implements Backend {
  readonly name = 'typescript';
  private row = new Float32Array(0);

  /** products 'bf16' is a permission this reference never takes: every product here is exact. */
  weight(t: RawTensor, _opts?: WeightOptions): Weight {
    if (!DTYPES[t.dtype]) throw new RangeError(`unknown dtype ${t.dtype}`);
    return new TsWeight(t.dtype, t.shape, t.bytes);
  }

  private scratchRow(k: number): Float32Array {
    if (this.row.length < k) this.row = new Float32Array(k);
    return this.row;
  }

  attentionMany(jobs: readonly AttentionJob[]): void {
    for (const j of jobs) this.attention(j.out, j.q, j.k, j.v, j.shape);
  }

  matmulMany(jobs: readonly MatmulJob[]): void {
    for (const j of jobs) this.matmul(j.out, j.x, j.w, j.T, j.expert);
  }

  matmul(out: Float32Array, x: Float32Array, wAny: Weight, T: number, expert = 0): void {
    const w = own(wAny);
    const N = w.rows,
      K = w.cols;
    if (expert < 0 || expert >= w.experts) throw new RangeError(`expert ${expert} out of range ${w.experts}`);
    const base = expert * N;
    if (w.f32) {
      const W = w.f32;
      for (let n = 0; n < N; n++) {
        const wo = (base + n) * K;
        for (let t = 0; t < T; t++) {
          const xo = t * K;
          let s = 0;
          for (let k = 0; k < K; k++) s += x[xo + k]! * W[wo + k]!;
          out[t * N + n] = s;
        }
      }
      return;
    }
    const row = this.scratchRow(K);
    for (let n = 0; n < N; n++) {
      dequantizeRow(w.dtype, w.bytes, (base + n) * w.rowBytes, K, row, 0);
      for (let t = 0; t < T; t++) {
        const xo = t * K;
        let s = 0;
        for (let k = 0; k < K; k++) s += x[xo + k]! * row[k]!;
        out[t * N + n] = s;
      }
    }
  }

  getRows(out: Float32Array, wAny: Weight, ids: ArrayLike<number>): void {
    const w = own(wAny);
    const K = w.cols;
    for (let i = 0; i < ids.length; i++) {
      const id = ids[i]!;
      if (!(id >= 0 && id < w.rows * w.experts)) throw new RangeError(`row ${id} out of range ${w.rows}`);
      if (w.f32) out.set(w.f32.subarray(id * K, id * K + K), i * K);
      else dequantizeRow(w.dtype, w.bytes, id * w.rowBytes, K, out, i * K);
    }
  }

  toF32(wAny: Weight): Float32Array {
    const w = own(wAny);
    const n = w.rows * w.cols * w.experts;
    if (w.f32) return w.f32.slice();
    const out = new Float32Array(n);
    for (let r = 0; r < w.rows * w.experts; r++) dequantizeRow(w.dtype, w.bytes, r * w.rowBytes, w.cols, out, r * w.cols);
    return out;
  }

  rmsNorm(out: Float32Array, x: Float32Array, weight: Float32Array | null, rows: number, dim: number, eps: number): void {
    for (let r = 0; r < rows; r++) {
      const o = r * dim;
      let ss = 0;
      for (let i = 0; i < dim; i++) ss += x[o + i]! * x[o + i]!;
      const inv = 1 / Math.sqrt(Math.fround(ss / dim) + eps);
      if (weight) for (let i = 0; i < dim; i++) out[o + i] = Math.fround(x[o + i]! * inv) * weight[i]!;
      else for (let i = 0; i < dim; i++) out[o + i] = x[o + i]! * inv;
    }
  }

  layerNorm(out: Float32Array, x: Float32Array, weight: Float32Array, bias: Float32Array, rows: number, dim: number, eps: number): void {
    for (let r = 0; r < rows; r++) {
      const o = r * dim;
      let mean = 0;
      for (let i = 0; i < dim; i++) mean += x[o + i]!;
      mean /= dim;
      let v = 0;
      for (let i = 0; i < dim; i++) v += (x[o + i]! - mean) ** 2;
      const inv = 1 / Math.sqrt(v / dim + eps);
      for (let i = 0; i < dim; i++) out[o + i] = (x[o + i]! - mean) * inv * weight[i]! + bias[i]!;
    }
  }

  rope(x: Float32Array, T: number, nHeads: number, headDim: number, cos: Float32Array, sin: Float32Array): void {
    const half = headDim / 2;
    for (let t = 0; t < T; t++) {
      for (let h = 0; h < nHeads; h++) {
        const o = (t * nHeads + h) * headDim;
        for (let j = 0; j < half; j++) {
          const c = cos[t * half + j]!,
            s = sin[t * half + j]!;
          const a = x[o + 2 * j]!,
            b = x[o + 2 * j + 1]!;
          x[o + 2 * j] = a * c - b * s;
          x[o + 2 * j + 1] = a * s + b * c;
        }
      }
    }
  }

  /**
   * Keys/values stored as f32 are read in place; f16 / q8_0 rows are dequantized on the fly into a float32 scratch
   * row (their values are exact in float32), so compressed attention equals f32 attention on the dequantized cache.
   */
  attention(out: Float32Array, q: Float32Array, k: KvData, v: KvData, p: AttentionShape): void {
    const kvType = p.kvType ?? 'f32';
    const { nHeads, nKvHeads, headDim: d, T, S, qPos0, kPos0, scale, mask } = p;
    checkKvArray(kvType, k, 'k');
    checkKvArray(kvType, v, 'v');
    if (kvType !== 'f32') {
      if (kvType === 'q8_0' && d % 32 !== 0) throw new RangeError(`q8_0 keys/values need headDim a multiple of 32, got ${d}`);
      const need = kvElements(kvType, S * nKvHeads * d);
      if (k.length < need || v.length < need)
        throw new RangeError(`k/v have ${Math.min(k.length, v.length)} elements, ${kvType} [${S}, ${nKvHeads}, ${d}] needs ${need}`);
    }
    // (key, kv head) row `r` of x as (rowArr, returned offset)
    const scratch = new Float32Array(d);
    let rowArr: Float32Array = scratch;
    const rowAt = (x: KvData, r: number): number => {
      if (kvType === 'f32') {
        rowArr = x as Float32Array;
        return r * d;
      }
      decodeKv(kvType, x, r * d, d, scratch);
      rowArr = scratch;
      return 0;
    };
    const group = nHeads / nKvHeads;
    const scores = new Float64Array(S);
    const acc = new Float64Array(d);
    for (let t = 0; t < T; t++) {
      const qp = qPos0 + t;
      // Visible keys form one contiguous range [lo, hi) of key indices.
      let lo = 0,
        hi = S;
      if (mask.causal) hi = Math.min(S, qp - kPos0 + 1);
      if (mask.chunkSize > 0) lo = Math.max(0, Math.floor(qp / mask.chunkSize) * mask.chunkSize - kPos0);
      for (let h = 0; h < nHeads; h++) {
        const kvh = Math.floor(h / group);
        const qo = (t * nHeads + h) * d;
        let max = -Infinity;
        for (let s = lo; s < hi; s++) {
          const ko = rowAt(k, s * nKvHeads + kvh);
          let dot = 0;
          for (let i = 0; i < d; i++) dot += q[qo + i]! * rowArr[ko + i]!;
          const sc = dot * scale;
          scores[s] = sc;
          if (sc > max) max = sc;
        }
        let sum = 0;
        for (let s = lo; s < hi; s++) {
          const e = Math.exp(scores[s]! - max);
          scores[s] = e;
          sum += e;
        }
        for (let i = 0; i < d; i++) out[qo + i] = 0;
        if (hi <= lo) continue; // no visible key (cannot happen for causal self-attention)
        acc.fill(0);
        for (let s = lo; s < hi; s++) {
          const pw = scores[s]! / sum;
          const vo = rowAt(v, s * nKvHeads + kvh);
          for (let i = 0; i < d; i++) acc[i]! += pw * rowArr[vo + i]!;
        }
        for (let i = 0; i < d; i++) out[qo + i] = acc[i]!;
      }
    }
  }

  siluMul(out: Float32Array, gate: Float32Array, up: Float32Array, n: number): void {
    for (let i = 0; i < n; i++) {
      const g = gate[i]!;
      out[i] = (g / (1 + Math.exp(-g))) * up[i]!;
    }
  }

  gelu(x: Float32Array, n: number): void {
    for (let i = 0; i < n; i++) {
      const v = x[i]!;
      x[i] = 0.5 * v * (1 + erf(v / Math.SQRT2));
    }
  }

  addInPlace(x: Float32Array, y: Float32Array, n: number): void {
    for (let i = 0; i < n; i++) x[i]! += y[i]!;
  }

  addBias(x: Float32Array, bias: Float32Array, rows: number, dim: number): void {
    for (let r = 0; r < rows; r++) for (let i = 0; i < dim; i++) x[r * dim + i]! += bias[i]!;
  }
  scaleRows(x: Float32Array, scale: Float32Array, rows: number, dim: number): void {
    rowOps.scaleRows(x, scale, rows, dim);
  }

  gatherRows(out: Float32Array, src: Float32Array, idx: Int32Array, scale: Float32Array | null, rows: number, dim: number): void {
    rowOps.gatherRows(out, src, idx, scale, rows, dim);
  }

  scatterAddRows(out: Float32Array, src: Float32Array, idx: Int32Array, rows: number, dim: number): void {
    rowOps.scatterAddRows(out, src, idx, rows, dim);
  }

  routeTop1(logits: Float32Array, rows: number, E: number, choice: Int32Array, score: Float32Array): void {
    rowOps.routeTop1(logits, rows, E, choice, score);
  }
}

/** erf to ~1e-15 (W. J. Cody's rational approximations are overkill here; this series/continued-fraction pair suffices). */
export function erf(x: number): number {
  const ax = Math.abs(x);
  if (ax < 2.5) {
    // Maclaurin series: converges quickly for |x| < 2.5.
    let sum = x,
      term = x;
    const x2 = x * x;
    for (let n = 1; n < 80; n++) {
      term *= -x2 / n;
      const add = term / (2 * n + 1);
      sum += add;
      if (Math.abs(add) < 1e-17 * Math.abs(sum)) break;
    }
    return (2 / Math.sqrt(Math.PI)) * sum;
  }
  // Continued fraction for erfc at larger |x|.
  let f = 0;
  for (let n = 60; n >= 1; n--) f = n / 2 / (ax + f);
  const erfc = Math.exp(-ax * ax) / Math.sqrt(Math.PI) / (ax + f);
  return x > 0 ? 1 - erfc : erfc - 1;
}
