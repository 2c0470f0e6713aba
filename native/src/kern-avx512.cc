// AVX-512 (F/BW/VL/DQ + VNNI) kernels for Ice Lake / Sapphire Rapids / Zen 4. The AVX2 kernels are compiled here too
// (the compiler may use EVEX encodings for them); f32/f16/bf16 get 512-bit versions:
//  * f32/f16/bf16 use 16-wide FMA (no prefill tile, so prefill runs these same row kernels token by token).
//    bf16 weights are widened to f32 rather than using VDPBF16PS, which would round the activations to bf16 too;
//    decode is memory-bound, so the wider arithmetic costs nothing.
//  * q8_0/q4_0 use the AVX2 8-row kernels (x_rows8_q0 / x_tile8_q0). A VPDPBUSD row kernel (two blocks per
//    instruction) used to replace the decode one, but its float accumulation (16 lanes over block pairs) differed
//    from the prefill tile's, so a token's result depended on the batch size; the pair keeps decode and prefill
//    bit-identical (batch invariance, see kern-x86.h) and is the one measured with callgrind.
//  * q4_K, q5_K, q6_K and IQ4_XS matrices with N % 16 == 0 are repacked at load into 16-row groups
//    (kern-kquant-r16-avx512.h).
//  * q4_K/q5_K/q6_K and IQ4_XS/IQ2_XXS take VNNI kernels (kern-kquant-avx512.h, kern-iquant-avx512.h) for decode,
//    prefill and small batches.
#include "common.h"
#include <vector>
#if defined(__x86_64__)
#include <immintrin.h>
#endif
#if defined(__x86_64__) || defined(_M_X64)
namespace l4 {
namespace avx512 {
#include "kern-generic.h"
#include "kern-x86.h"
#include "kern-x86-r8.h"
#include "kern-avx512-batch.h"
#include "kern-iquant.h"
#include "kern-iquant-x86.h"
#include "kern-avx512-attn.h"
#include "kern-iquant-avx512.h"
#include "kern-kquant-avx512.h"
#include "kern-kquant-r16-avx512.h"
#include "kern-half-gemm.h"

static inline float hsum16(__m512 v) { return _mm512_reduce_add_ps(v); }

static void z_rows_f32(int K, const uint8_t* w, size_t rowBytes, int nrows, const void* act, float* out, bool pf) {
  const float* x = (const float*)act;
  for (int r = 0; r < nrows; r++) {
    const float* row = (const float*)(w + (size_t)r * rowBytes);
    __m512 a0 = _mm512_setzero_ps(), a1 = a0;
    int k = 0;
    for (; k + 32 <= K; k += 32) {
      if (pf) { L4_PF(row + k); L4_PF(row + k + 16); }
      a0 = _mm512_fmadd_ps(_mm512_loadu_ps(row + k), _mm512_loadu_ps(x + k), a0);
      a1 = _mm512_fmadd_ps(_mm512_loadu_ps(row + k + 16), _mm512_loadu_ps(x + k + 16), a1);
    }
    float s = hsum16(_mm512_add_ps(a0, a1));
    for (; k < K; k++) { float v; std::memcpy(&v, row + k, 4); s += v * x[k]; }
    out[r] = s;
  }
}
template <bool BF>
static inline __m512 load_half16(const uint8_t* p) {
  const __m256i h = _mm256_loadu_si256((const __m256i*)p);
  return BF ? _mm512_castsi512_ps(_mm512_slli_epi32(_mm512_cvtepu16_epi32(h), 16)) : _mm512_cvtph_ps(h);
}
template <bool BF>
static void z_rows_half(int K, const uint8_t* w, size_t rowBytes, int nrows, const void* act, float* out, bool pf) {
  const float* x = (const float*)act;
  for (int r = 0; r < nrows; r++) {
    const uint8_t* row = w + (size_t)r * rowBytes;
    __m512 a0 = _mm512_setzero_ps(), a1 = a0;
    int k = 0;
    for (; k + 32 <= K; k += 32) {
      if (pf) L4_PF(row + 2 * k);
      a0 = _mm512_fmadd_ps(load_half16<BF>(row + 2 * k), _mm512_loadu_ps(x + k), a0);
      a1 = _mm512_fmadd_ps(load_half16<BF>(row + 2 * k + 32), _mm512_loadu_ps(x + k + 16), a1);
    }
    float s = hsum16(_mm512_add_ps(a0, a1));
    for (; k < K; k++) s += (BF ? bf16_to_float(rd16(row + 2 * k)) : half_to_float(rd16(row + 2 * k))) * x[k];
    out[r] = s;
  }
}

// Exact-form GELU, 0.5·x·(1 + erf(x/√2)), 16 lanes: 1 + erf(x/√2) = erfc(−x/√2), and erfc by Numerical Recipes'
// Chebyshev fit (erfcc: t = 1/(1 + z/2), relative error < 1.2e-7 for every z ≥ 0) with exp16; erfc(−z) = 2 − erfc(z).
// Measured relative error ≤ 1.8e-6 for x ≥ −5, growing like 1.2e-7·x²/2 below (the float32 argument of e^(−x²/2));
// the float32 std::erf it replaces cancels in 1 + erf for x ≪ 0 (4.7e-2 relative at x = −5). 14x faster than
// std::erf per element, which was a third of the vision tower's non-matmul time. The tail takes the same vector
// code under a mask, so no element depends on where a thread's chunk ends.
static void z_gelu(float* x, int64_t n) {
  const __m512 half = _mm512_set1_ps(0.5f), two = _mm512_set1_ps(2.f), one = _mm512_set1_ps(1.f);
  for (int64_t i = 0; i < n; i += 16) {
    const __mmask16 m = n - i >= 16 ? (__mmask16)0xffff : (__mmask16)((1u << (n - i)) - 1);
    const __m512 v = _mm512_maskz_loadu_ps(m, x + i);
    const __m512 z = _mm512_mul_ps(_mm512_abs_ps(v), _mm512_set1_ps(0.70710678118654752f));
    const __m512 t = _mm512_div_ps(one, _mm512_fmadd_ps(z, half, one));
    __m512 p = _mm512_set1_ps(0.17087277f);
    p = _mm512_fmadd_ps(p, t, _mm512_set1_ps(-0.82215223f));
    p = _mm512_fmadd_ps(p, t, _mm512_set1_ps(1.48851587f));
    p = _mm512_fmadd_ps(p, t, _mm512_set1_ps(-1.13520398f));
    p = _mm512_fmadd_ps(p, t, _mm512_set1_ps(0.27886807f));
    p = _mm512_fmadd_ps(p, t, _mm512_set1_ps(-0.18628806f));
    p = _mm512_fmadd_ps(p, t, _mm512_set1_ps(0.09678418f));
    p = _mm512_fmadd_ps(p, t, _mm512_set1_ps(0.37409196f));
    p = _mm512_fmadd_ps(p, t, _mm512_set1_ps(1.00002368f));
    p = _mm512_fmadd_ps(p, t, _mm512_set1_ps(-1.26551223f));
    const __m512 erfc = _mm512_mul_ps(t, exp16(_mm512_fnmadd_ps(z, z, p)));  // erfc(|x|/√2)
    const __mmask16 pos = _mm512_cmp_ps_mask(v, _mm512_setzero_ps(), _CMP_GT_OQ);
    const __m512 onePlusErf = _mm512_mask_sub_ps(erfc, pos, two, erfc);
    _mm512_mask_storeu_ps(x + i, m, _mm512_mul_ps(_mm512_mul_ps(half, v), onePlusErf));
  }
}
}  // namespace avx512

const KernelTable* kernels_avx512() {
  static KernelTable t = [] {
    KernelTable k{}; k.isa = "avx512";
    avx512::fill_generic(k);
    avx512::fill_x86(k);
    avx512::fill_iquant(k);      // i-quants: portable integer kernels, then AVX2 ones (kern-iquant*.h)
    avx512::fill_iquant_x86(k);
    avx512::fill_iquant_avx512(k);  // IQ4_XS / IQ2_XXS with VNNI (kern-iquant-avx512.h)
    avx512::fill_x86_r8(k);  // repacked q4_0/q8_0 (kern-x86-r8.h)
    avx512::fill_avx512_batch(k);  // small-batch decode (kern-avx512-batch.h)
    avx512::fill_kquant_avx512(k);  // q4_K / q5_K / q6_K with VNNI (kern-kquant-avx512.h)
    avx512::fill_kquant_r16(k);  // q4_K / q5_K / q6_K / IQ4_XS repacked into 16-row groups (kern-kquant-r16-avx512.h)
    k.rows[T_F32] = avx512::z_rows_f32;
    k.rows[T_F16] = avx512::z_rows_half<false>;
    k.rows[T_BF16] = avx512::z_rows_half<true>;
    k.attn_full = avx512::z_attn_full;
    k.attn_rows = avx512::z_attn_rows;  // register-blocked causal/chunked attention (kern-avx512-attn.h)
    k.attn_rows_f16 = true;
    k.attn_rows_kv[0] = avx512::z_attn_rows_t<0>;
    k.attn_rows_kv[1] = avx512::z_attn_rows_t<1>;
    k.attn_rows_kv[2] = avx512::z_attn_rows_t<2>;
    k.attn_heads[0] = avx512::z_attn_heads_t<0>;
    k.attn_heads[1] = avx512::z_attn_heads_t<1>;
    k.attn_heads[2] = avx512::z_attn_heads_t<2>;
    k.half_gemm = avx512::half_gemm::half_gemm;  // f16 vision products (kern-half-gemm.h)
    k.gelu = avx512::z_gelu;  // unmasked attention (vision), kern-avx512-attn.h
    return k;
  }();
  return &t;
}
}  // namespace l4
#else
namespace l4 { const KernelTable* kernels_avx512() { return nullptr; } }
#endif
