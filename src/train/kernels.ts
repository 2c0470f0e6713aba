/**
 * f32 kernels for training. Matrix products and attention go through the training backend (src/tensor/
 * train-backend.ts: the TypeScript reference or the native core, set by the caller); norms and SwiGLU stay here.
 * A global timer counts the time spent in matrix products so the trainer can report its share.
 */

import type { AttnShape, MatmulLayout, TrainBackend } from '../tensor/train-backend.ts';
import { transpose as tsTranspose, TsTrainBackend } from '../tensor/train-reference.ts';

export const matmulStats = { ms: 0, flops: 0 };

let backend: TrainBackend = new TsTrainBackend();
/** The backend training's products and attention run on (the TypeScript reference until a caller picks another). */
export function setTrainBackend(b: TrainBackend): void {
  backend = b;
}
export function trainBackend(): TrainBackend {
  return backend;
}

export function attnForward(q: Float32Array, k: Float32Array, v: Float32Array, P: Float32Array, O: Float32Array, s: AttnShape): void {
  backend.attnForward(q, k, v, P, O, s);
}
export function attnBackward(
  q: Float32Array,
  k: Float32Array,
  v: Float32Array,
  P: Float32Array,
  dO: Float32Array,
  dq: Float32Array,
  dk: Float32Array,
  dv: Float32Array,
  s: AttnShape,
): void {
  backend.attnBackward(q, k, v, P, dO, dq, dk, dv, s);
}

/** C[m, n] (+)= A[m, k] · B[n, k]ᵀ on the current training backend; offsets address sub-matrices (expert slices). */
export function matmulNT(
  C: Float32Array,
  A: Float32Array,
  B: Float32Array,
  m: number,
  n: number,
  k: number,
  accumulate = false,
  aOff = 0,
  bOff = 0,
  cOff = 0,
): void {
  mm('nt', C, A, B, m, n, k, accumulate, aOff, bOff, cOff);
}

function mm(
  layout: MatmulLayout,
  C: Float32Array,
  A: Float32Array,
  B: Float32Array,
  m: number,
  n: number,
  k: number,
  accumulate: boolean,
  aOff = 0,
  bOff = 0,
  cOff = 0,
): void {
  const t0 = performance.now();
  const sub = (x: Float32Array, off: number, len: number): Float32Array => (off === 0 && x.length === len ? x : x.subarray(off, off + len));
  backend.matmul(layout, sub(C, cOff, m * n), sub(A, aOff, m * k), sub(B, bOff, n * k), m, n, k, accumulate);
  matmulStats.ms += performance.now() - t0;
  matmulStats.flops += 2 * m * n * k;
}

/** out[cols, rows] = in[rows, cols]ᵀ (offset into `src` for sub-matrices). */
export function transpose(out: Float32Array, src: Float32Array, rows: number, cols: number, srcOff = 0): Float32Array {
  return tsTranspose(out, srcOff ? src.subarray(srcOff, srcOff + rows * cols) : src, rows, cols);
}

/** Linear layer y[N, O] = x[N, K] · W[O, K]ᵀ. */
export function linear(y: Float32Array, x: Float32Array, W: Float32Array, N: number, O: number, K: number, wOff = 0): void {
  matmulNT(y, x, W, N, O, K, false, 0, wOff, 0);
}

/**
 * Backward of y = x·Wᵀ: dx[N, K] (+)= dy·W and dW[O, K] += dyᵀ·x. `scratch` grows as needed.
 * dx may be null when the input needs no gradient (token embeddings are handled elsewhere).
 */
export function linearBackward(
  dx: Float32Array | null,
  dW: Float32Array,
  dy: Float32Array,
  x: Float32Array,
  W: Float32Array,
  N: number,
  O: number,
  K: number,
  accumulateDx: boolean,
  wOff = 0,
): void {
  if (dx) mm('nn', dx, dy, W, N, K, O, accumulateDx, 0, wOff, 0);
  mm('tn', dW, dy, x, O, K, N, true, 0, 0, wOff);
}

const scratches: Float32Array[] = [];
/** Reusable scratch buffers (slot-indexed) so the hot loop allocates nothing. */
export function scratch(slot: number, n: number): Float32Array {
  let s = scratches[slot];
  if (!s || s.length < n) {
    s = new Float32Array(Math.max(n, Math.ceil((s?.length ?? 0) * 1.5)));
    scratches[slot] = s;
  }
  return s;
}

/** RMSNorm forward over rows: y = x · r · w, r = rsqrt(mean(x²)+eps); stores r per row for the backward. */
export function rmsNormFwd(
  y: Float32Array,
  r: Float32Array,
  x: Float32Array,
  w: Float32Array | null,
  rows: number,
  dim: number,
  eps: number,
  off = 0,
): void {
  for (let i = 0; i < rows; i++) {
    const b = off + i * dim;
    let ss = 0;
    for (let j = 0; j < dim; j++) {
      const v = x[b + j]!;
      ss += v * v;
    }
    const rr = 1 / Math.sqrt(ss / dim + eps);
    r[i] = rr;
    if (w) for (let j = 0; j < dim; j++) y[b + j] = x[b + j]! * rr * w[j]!;
    else for (let j = 0; j < dim; j++) y[b + j] = x[b + j]! * rr;
  }
}

/**
 * RMSNorm backward: with g = dy·w, dx = r·g − x·r³·mean(g·x); dw += Σ_rows dy·x·r. dx may alias dy.
 * `accumulate` adds into dx (residual stream) instead of overwriting it.
 */
export function rmsNormBwd(
  dx: Float32Array,
  dw: Float32Array | null,
  dy: Float32Array,
  x: Float32Array,
  r: Float32Array,
  w: Float32Array | null,
  rows: number,
  dim: number,
  accumulate: boolean,
  off = 0,
): void {
  for (let i = 0; i < rows; i++) {
    const b = off + i * dim;
    const rr = r[i]!;
    let dot = 0;
    for (let j = 0; j < dim; j++) {
      const g = w ? dy[b + j]! * w[j]! : dy[b + j]!;
      dot += g * x[b + j]!;
      if (dw) dw[j] = dw[j]! + dy[b + j]! * x[b + j]! * rr;
    }
    const c = (rr * rr * rr * dot) / dim;
    for (let j = 0; j < dim; j++) {
      const g = w ? dy[b + j]! * w[j]! : dy[b + j]!;
      const v = rr * g - x[b + j]! * c;
      if (accumulate) dx[b + j] = dx[b + j]! + v;
      else dx[b + j] = v;
    }
  }
}

export function silu(x: number): number {
  return x / (1 + Math.exp(-x));
}
export function sigmoid(x: number): number {
  return 1 / (1 + Math.exp(-x));
}

/** m = silu(g)·u over n elements (gate/up read with strides so fused [gate|up] rows work). */
export function swigluFwd(
  m: Float32Array,
  gu: Float32Array,
  rows: number,
  I: number,
  gStride: number,
  gOff: number,
  uOff: number,
  g?: Float32Array,
  u?: Float32Array,
): void {
  if (g && u) {
    for (let i = 0; i < rows * I; i++) m[i] = silu(g[i]!) * u[i]!;
    return;
  }
  for (let t = 0; t < rows; t++) {
    const b = t * gStride;
    for (let j = 0; j < I; j++) m[t * I + j] = silu(gu[b + gOff + j]!) * gu[b + uOff + j]!;
  }
}

/** Backward of m = silu(g)·u: dg = dm·u·σ(g)(1 + g(1−σ(g))), du = dm·silu(g). */
export function swigluBwdPair(
  dg: Float32Array,
  du: Float32Array,
  dm: Float32Array,
  g: Float32Array,
  u: Float32Array,
  n: number,
  gStride = 0,
  gOff = 0,
  uOff = 0,
  I = n,
): void {
  // Fused layout when gStride > 0: g/u (and dg/du) are the same [rows, 2I] buffer with gate at gOff, up at uOff.
  if (gStride === 0) {
    for (let i = 0; i < n; i++) {
      const gv = g[i]!,
        s = sigmoid(gv);
      dg[i] = dm[i]! * u[i]! * s * (1 + gv * (1 - s));
      du[i] = dm[i]! * gv * s;
    }
    return;
  }
  const rows = n / I;
  for (let t = 0; t < rows; t++) {
    for (let j = 0; j < I; j++) {
      const gi = t * gStride + gOff + j,
        ui = t * gStride + uOff + j;
      const gv = g[gi]!,
        uv = u[ui]!,
        s = sigmoid(gv),
        d = dm[t * I + j]!;
      dg[gi] = d * uv * s * (1 + gv * (1 - s));
      du[ui] = d * gv * s;
    }
  }
}
