// AVX2 + FMA + F16C kernels (Haswell and later, Zen). Built with per-file flags (binding.gyp target kern_avx2);
// only called after __builtin_cpu_supports confirmed the features, so the rest of the addon stays baseline x86-64.
#include "common.h"
#include <algorithm>
#include <vector>
#if defined(__x86_64__)
#include <immintrin.h>
#endif
#if defined(__x86_64__) || defined(_M_X64)
namespace l4 {
namespace avx2 {
#include "kern-generic.h"
#include "kern-x86.h"
#include "kern-x86-r8.h"
#include "kern-iquant.h"
#include "kern-iquant-x86.h"
#include "kern-kquant-r16-avx2.h"
}  // namespace avx2

const KernelTable* kernels_avx2() {
  static KernelTable t = [] {
    KernelTable k{}; k.isa = "avx2";
    avx2::fill_generic(k);  // q2_K/q3_K and dequantizers: generic code, auto-vectorized for AVX2
    avx2::fill_x86(k);      // hand-written integer/FMA kernels for the hot formats
    avx2::fill_iquant(k);      // i-quants: portable integer kernels, then AVX2 ones (kern-iquant*.h)
    avx2::fill_iquant_x86(k);
    avx2::fill_x86_r8(k);   // repacked q4_0/q8_0 (kern-x86-r8.h)
    avx2::fill_kquant_r16_avx2(k);  // q4_K / q5_K / IQ4_XS in 16-row groups (kern-kquant-r16-avx2.h)
    return k;
  }();
  return &t;
}
}  // namespace l4
#else
namespace l4 { const KernelTable* kernels_avx2() { return nullptr; } }
#endif
