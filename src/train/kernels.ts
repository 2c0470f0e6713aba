/**
 * f32 kernels for training: every op goes through the training backend (src/tensor/train-backend.ts: the TypeScript
 * reference or the native core, set by the caller). A global timer counts the time spent in matrix products so the
 * trainer can report its share, and an optional per-op profile (trainProfile) times every op.
 */

import type { AdamWStep, AttnShape, MatmulLayout, TrainBackend } from '../tensor/train-backend.ts';
import { transpose as tsTranspose, TsTrainBackend } from '../tensor/train-reference.ts';

export const matmulStats = { ms: 0, flops: 0 };

/**
 * Per-op wall time of training steps (bench:train --profile): `on` turns the timers on; `ms` maps op → total ms.
 * Off by default, when each op pays one boolean test.
 */
export const trainProfile = { on: false, ms: new Map<string, number>() };
/** Start time of a profiled section (0 when profiling is off). */
export function profStart(): number {
  return trainProfile.on ? performance.now() : 0;
}
/** Adds the time since `t0` to `op`. */
export function profEnd(op: string, t0: number): void {
  if (trainProfile.on) trainProfile.ms.set(op, (trainProfile.ms.get(op) ?? 0) + performance.now() - t0);
}

let backend: TrainBackend = new TsTrainBackend();
/** The backend training's products and attention run on (the TypeScript reference until a caller picks another). */
export function setTrainBackend(b: TrainBackend): void {
  backend = b;
}
export function trainBackend(): TrainBackend {
  return backend;
}

export function attnForward(q: Float32Array, k: Float32Array, v: Float32Array, P: Float32Array, O: Float32Array, s: AttnShape): void {
  const t0 = profStart();
  backend.attnForward(q, k, v, P, O, s);
  profEnd('attention fwd', t0);
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
  const t0 = profStart();
  backend.attnBackward(q, k, v, P, dO, dq, dk, dv, s);
  profEnd('attention bwd', t0);
}

/** C[m, n] (+)= A[m, k] · B[n, k]ᵀ on the current training backend; offsets address sub-matrices (expert slices). */
function matmulNT(
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
  const dt = performance.now() - t0;
  matmulStats.ms += dt;
  matmulStats.flops += 2 * m * n * k;
  if (trainProfile.on) trainProfile.ms.set('matmul', (trainProfile.ms.get('matmul') ?? 0) + dt);
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

/** RMSNorm over rows: y = x·r·w (w null = none), r = 1/√(mean(x²)+eps) kept per row for the backward. */
export function rmsNormFwd(
  y: Float32Array,
  r: Float32Array,
  x: Float32Array,
  w: Float32Array | null,
  rows: number,
  dim: number,
  eps: number,
): void {
  const t0 = profStart();
  backend.rmsNormFwd(y, r, x, w, rows, dim, eps);
  profEnd('rmsnorm', t0);
}

/** RMSNorm backward: dx (+)= r·g − x·r³·mean(g·x) with g = dy·w; dw += Σ_rows dy·x·r. dx may alias dy. */
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
): void {
  const t0 = profStart();
  backend.rmsNormBwd(dx, dw, dy, x, r, w, rows, dim, accumulate);
  profEnd('rmsnorm', t0);
}

/** m[t, j] = silu(g)·u, g/u rows at t·stride + gOff / uOff (one fused [gate|up] buffer, or two of stride I). */
export function swigluFwd(
  m: Float32Array,
  G: Float32Array,
  U: Float32Array,
  rows: number,
  I: number,
  stride = I,
  gOff = 0,
  uOff = 0,
): void {
  const t0 = profStart();
  backend.swigluFwd(m, G, U, rows, I, stride, gOff, uOff);
  profEnd('swiglu', t0);
}

/** Backward of swigluFwd: dG = dm·u·σ(g)(1 + g(1−σ(g))), dU = dm·silu(g), in G/U's layout. */
export function swigluBwd(
  dG: Float32Array,
  dU: Float32Array,
  dm: Float32Array,
  G: Float32Array,
  U: Float32Array,
  rows: number,
  I: number,
  stride = I,
  gOff = 0,
  uOff = 0,
): void {
  const t0 = profStart();
  backend.swigluBwd(dG, dU, dm, G, U, rows, I, stride, gOff, uOff);
  profEnd('swiglu', t0);
}

/** Softmax cross-entropy (see TrainBackend.softmaxXent): returns Σ −log p(target) over kept rows. */
export function softmaxXent(
  dLogits: Float32Array,
  logits: Float32Array,
  targets: Int32Array,
  rows: number,
  V: number,
  scale: number,
): number {
  const t0 = profStart();
  const loss = backend.softmaxXent(dLogits, logits, targets, rows, V, scale);
  profEnd('cross-entropy', t0);
  return loss;
}

export function adamwStep(w: Float32Array, g: Float32Array, m: Float32Array, v: Float32Array, h: AdamWStep): void {
  const t0 = profStart();
  backend.adamw(w, g, m, v, h);
  profEnd('adamw', t0);
}
export function sumSquares(g: Float32Array, div: number): number {
  const t0 = profStart();
  const s = backend.sumSquares(g, div);
  profEnd('adamw', t0);
  return s;
}

/** out[j] = src[idx[j]]·scale[idx[j]] (scale null = 1): embeddings, tokens grouped by expert. */
export function gatherRows(
  out: Float32Array,
  src: Float32Array,
  idx: Int32Array,
  scale: Float32Array | null,
  rows: number,
  dim: number,
): void {
  const t0 = profStart();
  backend.gatherRows(out, src, idx, scale, rows, dim);
  profEnd('gather/scatter', t0);
}
/** out[idx[j]] += src[j]·scale[idx[j]], in row order (indices may repeat). */
export function scatterAddRows(
  out: Float32Array,
  src: Float32Array,
  idx: Int32Array,
  scale: Float32Array | null,
  rows: number,
  dim: number,
): void {
  const t0 = profStart();
  backend.scatterAddRows(out, src, idx, scale, rows, dim);
  profEnd('gather/scatter', t0);
}
/** out[j] = a[j]·b[idx[j]] (row dot products). */
export function rowDots(out: Float32Array, a: Float32Array, b: Float32Array, idx: Int32Array, rows: number, dim: number): void {
  const t0 = profStart();
  backend.rowDots(out, a, b, idx, rows, dim);
  profEnd('gather/scatter', t0);
}
/** y[i] += x[i] (residual streams). */
export function add(y: Float32Array, x: Float32Array, n: number): void {
  const t0 = profStart();
  backend.add(y, x, n);
  profEnd('residual/softmax', t0);
}
/** y = softmax over each row of x [rows, dim] (router probabilities of the balancing loss). */
export function softmaxRows(y: Float32Array, x: Float32Array, rows: number, dim: number): void {
  const t0 = profStart();
  backend.softmaxRows(y, x, rows, dim);
  profEnd('residual/softmax', t0);
}
/** RoPE in place on x [rows, nH, d] (position = row mod T); `inverse` for the backward. */
export function rope(
  x: Float32Array,
  cos: Float32Array,
  sin: Float32Array,
  rows: number,
  T: number,
  nH: number,
  d: number,
  inverse: boolean,
): void {
  const t0 = profStart();
  backend.rope(x, cos, sin, rows, T, nH, d, inverse);
  profEnd('rope', t0);
}
