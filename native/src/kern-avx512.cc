// AVX-512 (F/BW/VL/DQ + VNNI) kernels for Ice Lake / Sapphire Rapids / Zen 4. The AVX2 kernels are compiled here too
// (the compiler may use EVEX encodings for them); the decode-critical formats get 512-bit versions:
//  * q8_0 and q4_0 use VPDPBUSD (unsigned·signed 8-bit dot, 4 products per int32 lane), two blocks per instruction.
//    VPDPBUSD needs an unsigned operand: q4_0 codes are 0..15 already; q8_0 codes are biased by +128 (xor 0x80) and
//    the bias is removed through the activation block's integer sum (Σ(q+128)·v = Σq·v + 128·Σv).
//  * f32/f16/bf16 use 16-wide FMA. bf16 weights are widened to f32 rather than using VDPBF16PS, which would round
//    the activations to bf16 too; decode is memory-bound, so the wider arithmetic costs nothing.
#include "common.h"
#if defined(__x86_64__)
#include <immintrin.h>
#endif
#if defined(__x86_64__) || defined(_M_X64)
namespace l4 {
namespace avx512 {
#include "kern-generic.h"
#include "kern-x86.h"

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
// Two 32-byte code vectors (blocks i, i+1) in one zmm.
static inline __m512i pair256(__m256i a, __m256i b) { return _mm512_inserti64x4(_mm512_castsi256_si512(a), b, 1); }
static inline __m512 pair_scale(float a, float b) {
  return _mm512_insertf32x8(_mm512_castps256_ps512(_mm256_set1_ps(a)), _mm256_set1_ps(b), 1);
}
template <bool Q4>
static void z_rows_q0(int K, const uint8_t* w, size_t rowBytes, int nrows, const void* act, float* out, bool pf) {
  const int nb = K / 32;
  const __m256i bias = _mm256_set1_epi8((char)0x80);
  constexpr int BB = Q4 ? 18 : 34;
  for (int r = 0; r < nrows; r++) {
    const uint8_t* row = w + (size_t)r * rowBytes;
    const ActQ8* y = (const ActQ8*)act;
    __m512 acc = _mm512_setzero_ps();
    float corr = 0;  // Σ d·(offset·Σv): 8 for q4_0 codes, 128 for biased q8_0 codes
    auto codes = [&](int i) -> __m256i {
      const uint8_t* b = row + (size_t)i * BB + 2;
      return Q4 ? unpack_nibbles16(b) : _mm256_xor_si256(_mm256_loadu_si256((const __m256i*)b), bias);
    };
    int i = 0;
    for (; i + 2 <= nb; i += 2) {
      if (pf) { L4_PF(row + (size_t)i * BB); if (!Q4) L4_PF(row + (size_t)i * BB + 64); }
      const __m512i u = pair256(codes(i), codes(i + 1));
      const __m512i v = pair256(_mm256_loadu_si256((const __m256i*)y[i].qs), _mm256_loadu_si256((const __m256i*)y[i + 1].qs));
      const __m512i p = _mm512_dpbusd_epi32(_mm512_setzero_si512(), u, v);
      const float d0 = half_to_float(rd16(row + (size_t)i * BB)) * y[i].d;
      const float d1 = half_to_float(rd16(row + (size_t)(i + 1) * BB)) * y[i + 1].d;
      acc = _mm512_fmadd_ps(_mm512_cvtepi32_ps(p), pair_scale(d0, d1), acc);
      corr += d0 * (float)y[i].isum + d1 * (float)y[i + 1].isum;
    }
    float s = hsum16(acc);
    for (; i < nb; i++) {  // odd block count: 256-bit, unbiased codes (biased ones would saturate maddubs)
      const uint8_t* b = row + (size_t)i * BB + 2;
      const __m256i v = _mm256_loadu_si256((const __m256i*)y[i].qs);
      const float d = half_to_float(rd16(row + (size_t)i * BB)) * y[i].d;
      if (Q4) { s += d * (float)hsum8i(dot_u8i8(unpack_nibbles16(b), v)); corr += d * (float)y[i].isum; }
      else { const __m256i q = _mm256_loadu_si256((const __m256i*)b); s += d * (float)hsum8i(dot_u8i8(_mm256_sign_epi8(q, q), _mm256_sign_epi8(v, q))); }
    }
    out[r] = s - (Q4 ? 8.f : 128.f) * corr;
  }
}
}  // namespace avx512

const KernelTable* kernels_avx512() {
  static KernelTable t = [] {
    KernelTable k{}; k.isa = "avx512";
    avx512::fill_generic(k);
    avx512::fill_x86(k);
    k.rows[T_F32] = avx512::z_rows_f32;
    k.rows[T_F16] = avx512::z_rows_half<false>;
    k.rows[T_BF16] = avx512::z_rows_half<true>;
    k.rows[T_Q8_0] = avx512::z_rows_q0<false>;
    k.rows[T_Q4_0] = avx512::z_rows_q0<true>;
    return k;
  }();
  return &t;
}
}  // namespace l4
#else
namespace l4 { const KernelTable* kernels_avx512() { return nullptr; } }
#endif
