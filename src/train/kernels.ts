/**
 * f32 kernels for training. Every matrix product goes through one routine, `matmulNT` (C = A·Bᵀ, both operands
 * row-major with the reduction dimension contiguous), because a dot product over contiguous memory is what V8 runs
 * fastest; the other layouts transpose an operand first (O(n²) against the product's O(n³)).
 * A global timer counts the time spent in matrix products so the trainer can report its share.
 */

export const matmulStats = { ms: 0, flops: 0 };

/**
 * C[m, n] (+)= A[m, k] · B[n, k]ᵀ, register-blocked 2×4.
 * aOff/bOff/cOff let callers address sub-matrices (per-expert slices) without copying.
 */
export function matmulNT(
  C: Float32Array, A: Float32Array, B: Float32Array, m: number, n: number, k: number, accumulate = false,
  aOff = 0, bOff = 0, cOff = 0,
): void {
  const t0 = performance.now();
  let i = 0;
  for (; i + 1 < m; i += 2) {
    const a0 = aOff + i * k, a1 = a0 + k;
    const c0 = cOff + i * n, c1 = c0 + n;
    let j = 0;
    // 2×4 register block: 6 loads feed 8 multiply-adds (measured ~30% faster than 2×2 in V8).
    for (; j + 3 < n; j += 4) {
      const b0 = bOff + j * k, b1 = b0 + k, b2 = b1 + k, b3 = b2 + k;
      let s00 = 0, s01 = 0, s02 = 0, s03 = 0, s10 = 0, s11 = 0, s12 = 0, s13 = 0;
      for (let p = 0; p < k; p++) {
        const x0 = A[a0 + p]!, x1 = A[a1 + p]!, y0 = B[b0 + p]!, y1 = B[b1 + p]!, y2 = B[b2 + p]!, y3 = B[b3 + p]!;
        s00 += x0 * y0; s01 += x0 * y1; s02 += x0 * y2; s03 += x0 * y3;
        s10 += x1 * y0; s11 += x1 * y1; s12 += x1 * y2; s13 += x1 * y3;
      }
      if (accumulate) {
        C[c0 + j] = C[c0 + j]! + s00; C[c0 + j + 1] = C[c0 + j + 1]! + s01; C[c0 + j + 2] = C[c0 + j + 2]! + s02; C[c0 + j + 3] = C[c0 + j + 3]! + s03;
        C[c1 + j] = C[c1 + j]! + s10; C[c1 + j + 1] = C[c1 + j + 1]! + s11; C[c1 + j + 2] = C[c1 + j + 2]! + s12; C[c1 + j + 3] = C[c1 + j + 3]! + s13;
      } else {
        C[c0 + j] = s00; C[c0 + j + 1] = s01; C[c0 + j + 2] = s02; C[c0 + j + 3] = s03;
        C[c1 + j] = s10; C[c1 + j + 1] = s11; C[c1 + j + 2] = s12; C[c1 + j + 3] = s13;
      }
    }
    for (; j < n; j++) {
      const b0 = bOff + j * k;
      let s0 = 0, s1 = 0;
      for (let p = 0; p < k; p++) { const y = B[b0 + p]!; s0 += A[a0 + p]! * y; s1 += A[a1 + p]! * y; }
      if (accumulate) { C[c0 + j] = C[c0 + j]! + s0; C[c1 + j] = C[c1 + j]! + s1; } else { C[c0 + j] = s0; C[c1 + j] = s1; }
    }
  }
  if (i < m) {
    const a0 = aOff + i * k, c0 = cOff + i * n;
    for (let j = 0; j < n; j++) {
      const b0 = bOff + j * k;
      let s = 0;
      for (let p = 0; p < k; p++) s += A[a0 + p]! * B[b0 + p]!;
      if (accumulate) C[c0 + j] = C[c0 + j]! + s; else C[c0 + j] = s;
    }
  }
  matmulStats.ms += performance.now() - t0;
  matmulStats.flops += 2 * m * n * k;
}

/** out[cols, rows] = in[rows, cols]ᵀ (offset into `src` for sub-matrices). */
export function transpose(out: Float32Array, src: Float32Array, rows: number, cols: number, srcOff = 0): Float32Array {
  for (let r = 0; r < rows; r++) {
    const base = srcOff + r * cols;
    for (let c = 0; c < cols; c++) out[c * rows + r] = src[base + c]!;
  }
  return out;
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
  dx: Float32Array | null, dW: Float32Array, dy: Float32Array, x: Float32Array, W: Float32Array, N: number, O: number, K: number,
  accumulateDx: boolean, wOff = 0,
): void {
  if (dx) {
    const Wt = transpose(scratch(0, O * K), W, O, K, wOff);
    matmulNT(dx, dy, Wt, N, K, O, accumulateDx);
  }
  const dyT = transpose(scratch(1, N * O), dy, N, O);
  const xT = transpose(scratch(2, N * K), x, N, K);
  matmulNT(dW, dyT, xT, O, K, N, true, 0, 0, wOff);
}

const scratches: Float32Array[] = [];
/** Reusable scratch buffers (slot-indexed) so the hot loop allocates nothing. */
export function scratch(slot: number, n: number): Float32Array {
  let s = scratches[slot];
  if (!s || s.length < n) { s = new Float32Array(Math.max(n, Math.ceil((s?.length ?? 0) * 1.5))); scratches[slot] = s; }
  return s;
}

/** RMSNorm forward over rows: y = x · r · w, r = rsqrt(mean(x²)+eps); stores r per row for the backward. */
export function rmsNormFwd(y: Float32Array, r: Float32Array, x: Float32Array, w: Float32Array | null, rows: number, dim: number, eps: number, off = 0): void {
  for (let i = 0; i < rows; i++) {
    const b = off + i * dim;
    let ss = 0;
    for (let j = 0; j < dim; j++) { const v = x[b + j]!; ss += v * v; }
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
  dx: Float32Array, dw: Float32Array | null, dy: Float32Array, x: Float32Array, r: Float32Array, w: Float32Array | null,
  rows: number, dim: number, accumulate: boolean, off = 0,
): void {
  for (let i = 0; i < rows; i++) {
    const b = off + i * dim;
    const rr = r[i]!;
    let dot = 0;
    for (let j = 0; j < dim; j++) {
      const g = w ? dy[b + j]! * w[j]! : dy[b + j]!;
      dot += g * x[b + j]!;
      if (dw) dw[j] = dw[j]! + (dy[b + j]! * x[b + j]! * rr);
    }
    const c = (rr * rr * rr * dot) / dim;
    for (let j = 0; j < dim; j++) {
      const g = w ? dy[b + j]! * w[j]! : dy[b + j]!;
      const v = rr * g - x[b + j]! * c;
      if (accumulate) dx[b + j] = dx[b + j]! + v; else dx[b + j] = v;
    }
  }
}

export function silu(x: number): number { return x / (1 + Math.exp(-x)); }
export function sigmoid(x: number): number { return 1 / (1 + Math.exp(-x)); }

/** m = silu(g)·u over n elements (gate/up read with strides so fused [gate|up] rows work). */
export function swigluFwd(m: Float32Array, gu: Float32Array, rows: number, I: number, gStride: number, gOff: number, uOff: number, g?: Float32Array, u?: Float32Array): void {
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
export function swigluBwdPair(dg: Float32Array, du: Float32Array, dm: Float32Array, g: Float32Array, u: Float32Array, n: number,
  gStride = 0, gOff = 0, uOff = 0, I = n): void {
  // Fused layout when gStride > 0: g/u (and dg/du) are the same [rows, 2I] buffer with gate at gOff, up at uOff.
  if (gStride === 0) {
    for (let i = 0; i < n; i++) {
      const gv = g[i]!, s = sigmoid(gv);
      dg[i] = dm[i]! * u[i]! * s * (1 + gv * (1 - s));
      du[i] = dm[i]! * gv * s;
    }
    return;
  }
  const rows = n / I;
  for (let t = 0; t < rows; t++) {
    for (let j = 0; j < I; j++) {
      const gi = t * gStride + gOff + j, ui = t * gStride + uOff + j;
      const gv = g[gi]!, uv = u[ui]!, s = sigmoid(gv), d = dm[t * I + j]!;
      dg[gi] = d * uv * s * (1 + gv * (1 - s));
      du[ui] = d * gv * s;
    }
  }
}
