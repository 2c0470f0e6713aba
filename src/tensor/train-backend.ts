/**
 * The training compute seam: every operation of a training step that touches whole activations (matrix products in
 * the three layouts a linear layer's forward and backward need, attention forward and backward, RMSNorm and SwiGLU
 * forward and backward, softmax cross-entropy, AdamW, RoPE and the row gathers / scatters of MoE routing and
 * embeddings). A TypeScript
 * reference (src/kernels/ts/train-ops.ts) and the native core (src/kernels/native/train-backend.ts) implement it
 * and pass one conformance suite (src/kernels/train-backend.case.test.ts). f32, row-major throughout.
 */

/** Matrix-product layouts: NT C[m,n] = A[m,k]·B[n,k]ᵀ; NN C = A[m,k]·B[k,n]; TN C = A[k,m]ᵀ·B[k,n]. */
export type MatmulLayout = 'nt' | 'nn' | 'tn';

/** Attention shapes: q/O [B·T, nh, d], k/v [B·T, nkv, d], P [B, nh, T, T]; chunk 0 = causal over the whole row. */
export interface AttnShape {
  B: number;
  T: number;
  nh: number;
  nkv: number;
  d: number;
  scale: number;
  chunk: number;
}

/** One AdamW step's scalars: g' = g·gmul; m, v moments; w −= lr·(m/bc1 / (√(v/bc2) + eps) + wd·w). */
export interface AdamWStep {
  lr: number;
  beta1: number;
  beta2: number;
  eps: number;
  wd: number;
  /** Bias corrections 1 − β1^step, 1 − β2^step. */
  bc1: number;
  bc2: number;
  /** Gradient multiplier (the clipping factor). */
  gmul: number;
}

export interface TrainBackend {
  readonly name: string;
  /** C (+)= product; `accumulate` adds into C instead of overwriting it. Operands may be subarray views. */
  matmul(
    layout: MatmulLayout,
    C: Float32Array,
    A: Float32Array,
    B: Float32Array,
    m: number,
    n: number,
    k: number,
    accumulate: boolean,
  ): void;
  /** Softmax(q·kᵀ·scale) under the causal (and chunk) mask into P (every entry written: zeros outside the mask), P·v into O. */
  attnForward(q: Float32Array, k: Float32Array, v: Float32Array, P: Float32Array, O: Float32Array, s: AttnShape): void;
  /** Backward of attnForward given dO: adds into dq, dk, dv. */
  attnBackward(
    q: Float32Array,
    k: Float32Array,
    v: Float32Array,
    P: Float32Array,
    dO: Float32Array,
    dq: Float32Array,
    dk: Float32Array,
    dv: Float32Array,
    s: AttnShape,
  ): void;
  /** RMSNorm over rows of x [rows, dim]: y = x·r·w (w null = no weight), r[row] = 1/√(mean(x²) + eps) kept. */
  rmsNormFwd(y: Float32Array, r: Float32Array, x: Float32Array, w: Float32Array | null, rows: number, dim: number, eps: number): void;
  /**
   * RMSNorm backward: with g = dy·w, dx = r·g − x·r³·mean(g·x) (added into dx when `accumulate`), dw += Σ_rows dy·x·r.
   * dx may alias dy.
   */
  rmsNormBwd(
    dx: Float32Array,
    dw: Float32Array | null,
    dy: Float32Array,
    x: Float32Array,
    r: Float32Array,
    w: Float32Array | null,
    rows: number,
    dim: number,
    accumulate: boolean,
  ): void;
  /** m[t, j] = silu(g)·u with g = G[t·stride + gOff + j], u = U[t·stride + uOff + j] (G and U may be one fused buffer). */
  swigluFwd(m: Float32Array, G: Float32Array, U: Float32Array, rows: number, I: number, stride: number, gOff: number, uOff: number): void;
  /** Backward of swigluFwd: dG = dm·u·σ(g)(1 + g(1−σ(g))), dU = dm·silu(g), written in G/U's layout. */
  swigluBwd(
    dG: Float32Array,
    dU: Float32Array,
    dm: Float32Array,
    G: Float32Array,
    U: Float32Array,
    rows: number,
    I: number,
    stride: number,
    gOff: number,
    uOff: number,
  ): void;
  /**
   * Softmax cross-entropy over logits [rows, V]: dLogits = scale·(softmax − onehot(target)), zero rows where the
   * target is < 0 (ignored). Returns Σ over kept rows of −log softmax[target] (unscaled).
   */
  softmaxXent(dLogits: Float32Array, logits: Float32Array, targets: Int32Array, rows: number, V: number, scale: number): number;
  /** One AdamW update of a parameter tensor w with gradient g and moments m, v (all the same length). */
  adamw(w: Float32Array, g: Float32Array, m: Float32Array, v: Float32Array, h: AdamWStep): void;
  /** Σ g², after dividing g in place by `div` when div ≠ 1 (the mean over accumulated micro-batches). */
  sumSquares(g: Float32Array, div: number): number;
  /** out[j] = src[idx[j]]·(scale ? scale[idx[j]] : 1) for rows of `dim`, j < rows. */
  gatherRows(out: Float32Array, src: Float32Array, idx: Int32Array, scale: Float32Array | null, rows: number, dim: number): void;
  /** out[idx[j]] += src[j]·(scale ? scale[idx[j]] : 1), j < rows in order (an index may repeat). */
  scatterAddRows(out: Float32Array, src: Float32Array, idx: Int32Array, scale: Float32Array | null, rows: number, dim: number): void;
  /** out[j] = Σ_c a[j, c]·b[idx[j], c]. */
  rowDots(out: Float32Array, a: Float32Array, b: Float32Array, idx: Int32Array, rows: number, dim: number): void;
  /**
   * RoPE in place on x [rows, nH, d], row i at position i mod T, interleaved pairs (x[2j], x[2j+1]) rotated by
   * θ = (cos, sin)[t, j] (tables [T, d/2]); `inverse` rotates by −θ (the backward).
   */
  rope(x: Float32Array, cos: Float32Array, sin: Float32Array, rows: number, T: number, nH: number, d: number, inverse: boolean): void;
  /** y[i] += x[i] for i < n (residual streams). */
  add(y: Float32Array, x: Float32Array, n: number): void;
  /** y = softmax over each row of x [rows, dim] (y may alias x). */
  softmaxRows(y: Float32Array, x: Float32Array, rows: number, dim: number): void;
}
