// AVX-512 BF16 GEMM (VDPBF16PS, Zen 4 / Cooper Lake / Sapphire Rapids) for bf16-products weights (gemm-bf16.h).
// Built with -mavx512bf16 in its own library (binding.gyp kern_bf16) and used only after the CPU check below.
//
// Outer-product micro-kernel: 6 tokens × 4 panels (64 columns) = 24 zmm accumulators; per pair of k it loads the 4
// panels' 64-byte groups and broadcasts each token's (x[2j], x[2j+1]) as one dword, then issues 24 VDPBF16PS
// (each 16 lanes × 2 products). A work unit runs every 6-token tile of its token range against the same 4 panels,
// so the 64 × Kp weight block (180 KB at K = 1408, 720 KB at K = 5632) stays in L2 while the tokens stream by.
#include "gemm-bf16.h"

#include <algorithm>
#include <cstring>
#if defined(__x86_64__)
#include <cpuid.h>
#include <immintrin.h>
#endif

namespace l4 {
#if defined(__x86_64__)
namespace {

constexpr int kMR = 6, kNP = 4;

template <int MR, int NP>
void micro(const uint16_t* xb, int Kp, const uint16_t* wp, size_t pstride, float* out, int N, int col0) {
  __m512 acc[MR][NP];
  for (int m = 0; m < MR; m++)
    for (int p = 0; p < NP; p++) acc[m][p] = _mm512_setzero_ps();
  const int K2 = Kp / 2;
  for (int j = 0; j < K2; j++) {
    __m512bh w[NP];
    for (int p = 0; p < NP; p++) w[p] = (__m512bh)_mm512_loadu_si512(wp + p * pstride + (size_t)j * 32);
    for (int m = 0; m < MR; m++) {
      int32_t v;
      std::memcpy(&v, xb + (size_t)m * Kp + 2 * j, 4);
      const __m512bh a = (__m512bh)_mm512_set1_epi32(v);
      for (int p = 0; p < NP; p++) acc[m][p] = _mm512_dpbf16_ps(acc[m][p], a, w[p]);
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

using MicroFn = void (*)(const uint16_t*, int, const uint16_t*, size_t, float*, int, int);
template <int MR>
constexpr MicroFn row_of(int np) {
  return np == 1 ? micro<MR, 1> : np == 2 ? micro<MR, 2> : np == 3 ? micro<MR, 3> : micro<MR, 4>;
}
MicroFn micro_fn(int mr, int np) {
  switch (mr) {
    case 1: return row_of<1>(np);
    case 2: return row_of<2>(np);
    case 3: return row_of<3>(np);
    case 4: return row_of<4>(np);
    case 5: return row_of<5>(np);
    default: return row_of<6>(np);
  }
}

void block(const uint16_t* xb, int Kp, int t0, int t1, const uint16_t* wp, int p0, int p1, int N, float* out) {
  const size_t pstride = (size_t)Kp * 16;  // bf16 elements per panel
  for (int p = p0; p < p1; p += kNP) {
    const int np = std::min(kNP, p1 - p);
    for (int t = t0; t < t1; t += kMR) {
      const int mr = std::min(kMR, t1 - t);
      micro_fn(mr, np)(xb + (size_t)t * Kp, Kp, wp + (size_t)p * pstride, pstride, out + (size_t)t * N, N, 16 * p);
    }
  }
}

void cvt(const float* x, uint16_t* y, int64_t n) {
  for (int64_t i = 0; i < n; i += 32) {  // the tail through masks, so every value takes the same instruction
    const int64_t left = n - i;
    const __mmask16 lo = left >= 16 ? 0xffff : (__mmask16)((1u << left) - 1);
    const __mmask16 hi = left >= 32 ? 0xffff : left <= 16 ? 0 : (__mmask16)((1u << (left - 16)) - 1);
    const __m512bh v = _mm512_cvtne2ps_pbh(_mm512_maskz_loadu_ps(hi, x + i + 16), _mm512_maskz_loadu_ps(lo, x + i));
    _mm512_mask_storeu_epi16(y + i, left >= 32 ? ~(__mmask32)0 : (__mmask32)((1ull << left) - 1), (__m512i)v);
  }
}

}  // namespace

const Bf16Gemm* gemm_bf16_avx512() {
  static const Bf16Gemm g{"avx512-bf16", block, cvt, 96};
  // AVX512_BF16 is CPUID.(EAX=7, ECX=1):EAX bit 5 (read directly: older compilers' __builtin_cpu_supports lack the
  // name). The engine uses this only with the avx512 kernel set, whose check covers AVX-512 F/BW and the OS state.
  unsigned a = 0, b = 0, c = 0, d = 0;
  __builtin_cpu_init();
  if (!__builtin_cpu_supports("avx512f") || !__get_cpuid_count(7, 1, &a, &b, &c, &d) || !(a & (1u << 5))) return nullptr;
  return &g;
}
#else
const Bf16Gemm* gemm_bf16_avx512() { return nullptr; }
#endif
}  // namespace l4
