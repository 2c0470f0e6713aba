// AVX-512 (F/BW/VL/DQ + VNNI) kernels for Ice Lake / Sapphire Rapids / Zen 4. The AVX2 kernels are compiled here too
// (the compiler may use EVEX encodings for them); f32/f16/bf16 get 512-bit versions:
//  * f32/f16/bf16 use 16-wide FMA (no prefill tile, so prefill runs these same row kernels token by token).
//    bf16 weights are widened to f32 rather than using VDPBF16PS, which would round the activations to bf16 too;
//    decode is memory-bound, so the wider arithmetic costs nothing.
//  * q8_0/q4_0 use the AVX2 8-row kernels (x_rows8_q0 / x_tile8_q0). A VPDPBUSD row kernel (two blocks per
//    instruction) used to replace the decode one, but its float accumulation (16 lanes over block pairs) differed
//    from the prefill tile's, so a token's result depended on the batch size; the pair keeps decode and prefill
//    bit-identical (batch invariance, see kern-x86.h) and is the one measured with callgrind.
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
#include "kern-iquant-avx512.h"

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
    k.rows[T_F32] = avx512::z_rows_f32;
    k.rows[T_F16] = avx512::z_rows_half<false>;
    k.rows[T_BF16] = avx512::z_rows_half<true>;
    return k;
  }();
  return &t;
}
}  // namespace l4
#else
namespace l4 { const KernelTable* kernels_avx512() { return nullptr; } }
#endif
