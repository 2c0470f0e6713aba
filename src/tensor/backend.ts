import type { DType } from './dtype.ts';

/**
 * A stored tensor as it sits in a file: raw bytes (possibly a view of a memory-mapped file), an element type and a
 * shape in outermost-first order (torch order; the last dimension is contiguous, GGUF's `ne` reversed).
 */
export interface RawTensor {
  readonly name: string;
  readonly dtype: DType;
  readonly shape: readonly number[];
  readonly bytes: Uint8Array;
}

/**
 * A weight a backend owns: a matrix [N, K] used as `x · Wᵀ` (nn.Linear layout, GGUF layout), or a stack of
 * expert matrices [E, N, K]. Opaque to model code apart from its type and shape.
 */
export interface Weight {
  readonly dtype: DType;
  readonly shape: readonly number[];
}

/**
 * How a backend may compute products with a weight (Backend.weight's second argument).
 * - products 'exact' (default): x stays float32; the exact path every test is held to.
 * - products 'bf16': for a bf16 weight, the backend may round the activations to bf16 (nearest even) and sum the
 *   exact bf16·bf16 products in float32, in an order of its choosing that is still fixed per output (batch
 *   invariance holds). Hugging Face rounds activations to bf16 too when it runs the bf16 checkpoints in bf16; about
 *   3 significant digits on each activation instead of 7 (NMSE of a product against the exact one ≈ 2e-6, bound 1e-5
 *   in backend-vision.case.test.ts). A permission, not an order: a backend without such a kernel, or a weight of
 *   another dtype, computes exactly. The native AVX-512 set, where it has no BF16 kernel for the weight (f16 weights,
 *   or a CPU without AVX-512 BF16), widens the weight exactly and keeps x in float32, summing the products in one
 *   fixed order per output that differs from the row kernels' (kern-half-gemm.h): float32 rounding only.
 */
export interface WeightOptions {
  readonly products?: 'exact' | 'bf16';
}

/** Which keys a query may see. Positions are absolute token positions in the sequence. */
export interface AttentionMask {
  /** false: every query sees every key (vision encoder). true: key position <= query position. */
  readonly causal: boolean;
  /**
   * Llama 4 chunked attention (RoPE layers): a query at position q sees keys k with floor(k/C) == floor(q/C).
   * 0 disables chunking (NoPE / global layers).
   */
  readonly chunkSize: number;
}

/**
 * Element type of attention keys/values (the KV cache's storage, src/tensor/kv.ts):
 * - f32: Float32Array, the exact path;
 * - f16: Uint16Array of IEEE half bits (round to nearest even);
 * - q8_0: Uint8Array of GGML block_q8_0 (per 32 values: f16 scale d = amax/127, then 32 int8 q; x = q·d). Each
 *   (key, kv head) row of headDim values is headDim/32 whole blocks, so headDim must be a multiple of 32.
 */
export type KvType = 'f32' | 'f16' | 'q8_0';
export type KvData = Float32Array | Uint16Array | Uint8Array;

/**
 * Shapes for one sequence's attention. Queries are T consecutive positions starting at qPos0; keys/values are
 * S consecutive positions starting at kPos0. Query head h reads kv head floor(h / (nHeads / nKvHeads)).
 */
export interface AttentionShape {
  readonly nHeads: number;
  readonly nKvHeads: number;
  readonly headDim: number;
  readonly T: number;
  readonly S: number;
  readonly qPos0: number;
  readonly kPos0: number;
  /** Multiplies q·k before the softmax (head_dim^-0.5 in Llama 4, NoPE layers included). */
  readonly scale: number;
  readonly mask: AttentionMask;
  /** How k and v are stored (default f32); compressed K/V are read in place, never expanded to a float32 copy. */
  readonly kvType?: KvType;
}

/** One product of Backend.matmulMany: out[T, N] = x[T, K] · W[N, K]ᵀ (W = w[expert] of a stack when given). */
export interface MatmulJob {
  readonly out: Float32Array;
  readonly x: Float32Array;
  readonly w: Weight;
  readonly T: number;
  readonly expert?: number;
}

/** One sequence's part of Backend.attentionMany: the arguments of one attention call. */
export interface AttentionJob {
  readonly out: Float32Array;
  readonly q: Float32Array;
  readonly k: KvData;
  readonly v: KvData;
  readonly shape: AttentionShape;
}

/**
 * The compute seam. Model code calls only these operations; `load.ts` picks the implementation
 * (TypeScript reference in kernels/ts, native addon in kernels/native). Activations are float32, row-major,
 * and every op writes into a caller-owned `out` (which may alias an input only where stated).
 * All operations are synchronous; engines that must keep an event loop free run the model in a worker.
 */
export interface Backend {
  readonly name: string;

  /**
   * Releases what the backend holds outside the JavaScript heap (thread pool, natively allocated weight copies) now
   * rather than at garbage collection; the backend and its weights are unusable afterwards. Optional: a backend that
   * holds nothing of the kind has none.
   */
  dispose?(): void;

  /**
   * Adopts a stored tensor of shape [N, K] or [E, N, K]. The backend may keep a view of `t.bytes` (no copy), or a
   * repacked copy (opts.products 'bf16' on a bf16 matrix).
   */
  weight(t: RawTensor, opts?: WeightOptions): Weight;

  /** out[T, N] = x[T, K] · W[N, K]ᵀ. With `expert`, W is w[expert] of an [E, N, K] stack. */
  matmul(out: Float32Array, x: Float32Array, w: Weight, T: number, expert?: number): void;

  /**
   * Several matmuls, each giving exactly what matmul gives, in one call (a native backend hands them all to its
   * threads at once: one hand-off for q/k/v or for every expert of a MoE step). No job's out may overlap another
   * job's x.
   */
  matmulMany(jobs: readonly MatmulJob[]): void;

  /** out[i, :] = float32 row ids[i] of an [N, K] weight (token embeddings). */
  getRows(out: Float32Array, w: Weight, ids: ArrayLike<number>): void;

  /** The whole weight as float32 (norm weights, small tables). */
  toF32(w: Weight): Float32Array;

  /**
   * RMSNorm over rows of `dim`: out = x · rsqrt(mean(x²) + eps) [· weight]. A null weight gives Llama 4's
   * weightless qk-norm. out may alias x.
   */
  rmsNorm(out: Float32Array, x: Float32Array, weight: Float32Array | null, rows: number, dim: number, eps: number): void;

  /** LayerNorm over rows of `dim` with weight and bias (vision encoder). out may alias x. */
  layerNorm(out: Float32Array, x: Float32Array, weight: Float32Array, bias: Float32Array, rows: number, dim: number, eps: number): void;

  /**
   * Rotary embedding on interleaved pairs (x[2j], x[2j+1]) — Llama 4's "complex" layout, not rotate_half.
   * x is [T, nHeads, headDim], rotated in place; cos/sin are [T, headDim/2] angle tables.
   */
  rope(x: Float32Array, T: number, nHeads: number, headDim: number, cos: Float32Array, sin: Float32Array): void;

  /**
   * out[T, nHeads, headDim] = softmax(mask(q·kᵀ·scale)) · v, q [T, nHeads, d], k/v [S, nKvHeads, d] stored as
   * shape.kvType says (a typed array of the wrong kind is a TypeError). Compressed K/V give exactly what the f32
   * path gives on their dequantized values.
   */
  attention(out: Float32Array, q: Float32Array, k: KvData, v: KvData, shape: AttentionShape): void;

  /**
   * Several attention calls (the sequences of a batched step, each against its own cache), each giving exactly what
   * attention gives, in one call. No job's out may overlap another job's q or out.
   */
  attentionMany(jobs: readonly AttentionJob[]): void;

  /** out[i] = silu(gate[i]) · up[i] for i < n. out may alias gate or up. */
  siluMul(out: Float32Array, gate: Float32Array, up: Float32Array, n: number): void;

  /** x[i] = gelu(x[i]) with the exact erf form (torch nn.GELU()). */
  gelu(x: Float32Array, n: number): void;

  /** x[i] += y[i] for i < n. */
  addInPlace(x: Float32Array, y: Float32Array, n: number): void;

  /** x[r, :] += bias for each of `rows` rows. */
  addBias(x: Float32Array, bias: Float32Array, rows: number, dim: number): void;

  /** x[r, :] *= scale[r] for r < rows (NoPE temperature tuning). */
  scaleRows(x: Float32Array, scale: Float32Array, rows: number, dim: number): void;

  /** out[j, :] = src[idx[j], :] · (scale ? scale[idx[j]] : 1) for j < rows (MoE: tokens grouped by expert). */
  gatherRows(out: Float32Array, src: Float32Array, idx: Int32Array, scale: Float32Array | null, rows: number, dim: number): void;

  /** out[idx[j], :] += src[j, :] for j < rows, in order (MoE: expert outputs back to their tokens). */
  scatterAddRows(out: Float32Array, src: Float32Array, idx: Int32Array, rows: number, dim: number): void;

  /** Top-1 routing of logits [rows, E]: choice = argmax (lowest index on ties), score = sigmoid(logit) in float32. */
  routeTop1(logits: Float32Array, rows: number, E: number, choice: Int32Array, score: Float32Array): void;

  /**
   * Optional: `values` float32 values src[so ..] stored as `type` into dst from element `o` — exactly the bits of
   * encodeKv (src/tensor/kv.ts), which the KV caches use without it. Every decode step appends each layer's new K/V
   * rows, so a compressed cache's appends are worth a kernel.
   */
  encodeKv?(type: KvType, src: Float32Array, so: number, values: number, dst: KvData, o: number): void;
}
