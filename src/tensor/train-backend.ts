/**
 * The training compute seam: the operations whose cost grows fastest in a training step (matrix products in the
 * three layouts a linear layer's forward and backward need, attention forward and backward). A TypeScript
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
  /** Softmax(q·kᵀ·scale) under the causal (and chunk) mask into P, P·v into O (both overwritten on the masked rows). */
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
}
