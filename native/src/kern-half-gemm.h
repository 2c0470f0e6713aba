// f16 / bf16 weights multiplied exactly in f32 as a GEMM (KernelTable::half_gemm, AVX-512 set): the products of
// weights adopted with products 'bf16' (the vision tower, T = 577 tokens per tile) that the BF16 kernels cannot take —
// f16 weights (GGUF vision projectors are usually F16), and bf16 weights on AVX-512 CPUs without AVX-512 BF16 —
// which otherwise run the row kernels token by token. Measured on 1 thread (AMD EPYC, Zen 4 class, [5632, 1408] ×
// 577 tokens, CPU time): f16 48 -> 109 GFLOP/s. An AVX2 version (6 tokens × 16 columns in 12 ymm) was no faster
// than the AVX2 row kernels (42 vs 40-50 GFLOP/s), so the AVX2 and scalar sets keep their row kernels.
//
// Packed "H16" layout, made once at load (Engine::packHalf): ceil(N/16) panels of 16 columns (zero past N); panel p
// is K groups of 16 halves, group k = (w[16p + c][k], c = 0..15). Weights are widened exactly (f16 by F16C, bf16 by
// a shift), activations stay f32, and output (t, n) is one accumulator: acc = fma(x[t][k], w[n][k], acc) for k
// ascending from 0, whatever the token count or the block a token lands in, so results are batch-invariant bit for
// bit. Not bit-identical to the row kernels' order, so only weights adopted with products 'bf16' take it (their
// contract allows any fixed order).

namespace half_gemm {

constexpr int kMR = 6, kNP = 4;  // 6 tokens × 4 panels (64 columns): 24 zmm accumulators
template <bool BF16>
static inline __m512 widen16(const uint16_t* p) {
  const __m256i h = _mm256_loadu_si256((const __m256i*)p);
  if constexpr (BF16) return _mm512_castsi512_ps(_mm512_slli_epi32(_mm512_cvtepu16_epi32(h), 16));
  else return _mm512_cvtph_ps(h);
}
template <bool BF16, int MR, int NP>
static void micro(const float* x, int K, const uint16_t* wp, size_t pstride, float* out, int N, int col0) {
  __m512 acc[MR][NP];
  for (int m = 0; m < MR; m++)
    for (int p = 0; p < NP; p++) acc[m][p] = _mm512_setzero_ps();
  for (int k = 0; k < K; k++) {
    __m512 w[NP];
    for (int p = 0; p < NP; p++) w[p] = widen16<BF16>(wp + p * pstride + (size_t)k * 16);
    for (int m = 0; m < MR; m++) {
      const __m512 a = _mm512_set1_ps(x[(size_t)m * K + k]);
      for (int p = 0; p < NP; p++) acc[m][p] = _mm512_fmadd_ps(a, w[p], acc[m][p]);
    }
  }
  for (int m = 0; m < MR; m++)
    for (int p = 0; p < NP; p++) {
      const int c = col0 + 16 * p, left = N - c;
      float* o = out + (size_t)m * N + c;
      if (left >= 16) _mm512_storeu_ps(o, acc[m][p]);
      else _mm512_mask_storeu_ps(o, (__mmask16)((1u << left) - 1), acc[m][p]);
    }
}

template <bool BF16, int MR>
static void micro_np(int np, const float* x, int K, const uint16_t* wp, size_t pstride, float* out, int N, int col0) {
  switch (np) {
    case 4: micro<BF16, MR, 4>(x, K, wp, pstride, out, N, col0); break;
    case 3: micro<BF16, MR, 3>(x, K, wp, pstride, out, N, col0); break;
    case 2: micro<BF16, MR, 2>(x, K, wp, pstride, out, N, col0); break;
    default: micro<BF16, MR, 1>(x, K, wp, pstride, out, N, col0); break;
  }
}

template <bool BF16>
static void block_t(const float* x, int K, int t0, int t1, const uint16_t* wp, int p0, int p1, int N, float* out) {
  const size_t pstride = (size_t)K * 16;  // halves per panel
  for (int p = p0; p < p1; p += kNP) {
    const int np = std::min(kNP, p1 - p);
    for (int t = t0; t < t1; t += kMR) {
      const int mr = std::min(kMR, t1 - t);
      const float* xt = x + (size_t)t * K;
      const uint16_t* w = wp + (size_t)p * pstride;
      float* o = out + (size_t)t * N;
      switch (mr) {
        case 1: micro_np<BF16, 1>(np, xt, K, w, pstride, o, N, 16 * p); break;
        case 2: micro_np<BF16, 2>(np, xt, K, w, pstride, o, N, 16 * p); break;
        case 3: micro_np<BF16, 3>(np, xt, K, w, pstride, o, N, 16 * p); break;
        case 4: micro_np<BF16, 4>(np, xt, K, w, pstride, o, N, 16 * p); break;
        case 5: micro_np<BF16, 5>(np, xt, K, w, pstride, o, N, 16 * p); break;
        default: micro_np<BF16, 6>(np, xt, K, w, pstride, o, N, 16 * p); break;
      }
    }
  }
}

// HalfGemmFn (common.h): out[t][n] for tokens [t0, t1) × panels [p0, p1) of a packed weight.
static void half_gemm(const float* x, int K, int t0, int t1, const uint16_t* wp, int p0, int p1, int N, float* out, bool bf16) {
  if (bf16) block_t<true>(x, K, t0, t1, wp, p0, p1, N, out);
  else block_t<false>(x, K, t0, t1, wp, p0, p1, N, out);
}

}  // namespace half_gemm
