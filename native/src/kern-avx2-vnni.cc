// AVX2 + VNNI kernels: the AVX2 table with the q4_0/q8_0 family (file layout and repacked R8) and the q4_K/q5_K/IQ4_XS
// R16 kernels recompiled so that their u8·i8 sums are VPDPBUSD instead of maddubs + madd (L4_VNNI256). For AVX2 CPUs with
// AVX-VNNI and without AVX-512 (Intel Alder Lake and later client cores); the same integer sums, so the same bits as
// the AVX2 set. Everything else (q6_K, the other i-quants, attention) is the AVX2 set's.
//
// Built twice from this file (binding.gyp): kern_avx2_vnni with -mavxvnni (the VEX instruction, L4_VNNI256 = 1),
// and kern_avx2_vnni_evex (kern-avx2-vnni-evex.cc: AVX512-VNNI's 256-bit EVEX form of the same operation,
// L4_VNNI256 = 2). The addon uses the VEX table where the CPU has AVX-VNNI, else the EVEX one where it has
// AVX512-VNNI + VL: AVX-512 machines never pick this set by default, but the conformance suite runs it there
// (LLAMA4_NATIVE_ISA=avx2-vnni), so the set's code is tested on every machine that can execute either encoding.
#ifndef L4_VNNI256
#define L4_VNNI256 1
#define L4_VNNI_NS avx2vnni
#define L4_VNNI_TABLE kernels_avx2_vnni
#endif
#include "common.h"
#include <algorithm>
#include <vector>
#if defined(__x86_64__)
#include <immintrin.h>
#endif
#if (defined(__x86_64__) || defined(_M_X64)) && !(L4_VNNI256 == 1 && defined(L4_NO_FLAG_avxvnni))
namespace l4 {
namespace L4_VNNI_NS {
#include "kern-generic.h"
#include "kern-x86.h"
#include "kern-x86-r8.h"
#include "kern-iquant.h"
#include "kern-kquant-r16-avx2.h"
}  // namespace L4_VNNI_NS

const KernelTable* L4_VNNI_TABLE() {
  static KernelTable t = [] {
    const KernelTable* base = kernels_avx2();
    KernelTable k = base ? *base : KernelTable{};
    k.isa = "avx2-vnni";
    // The entries whose kernels sum u8·i8 blocks (dot_u8i8 / r8_q4_sums); every other entry stays the AVX2 set's.
    using namespace L4_VNNI_NS;
    k.rows[T_Q8_0] = x_rows8_q0<false>;
    k.rows[T_Q4_0] = x_rows8_q0<true>;
    k.rows[T_Q4_1] = x_rows_q4_1;
    k.rows[T_Q5_0] = x_rows_q5_0;
    k.rows[T_Q5_1] = x_rows_q5_1;
    k.tile[T_Q8_0] = x_tile8_q0<false>;
    k.tile[T_Q4_0] = x_tile8_q0<true>;
    fill_x86_r8(k);
    fill_kquant_r16_avx2(k);  // q4_K, q5_K, IQ4_XS R16: sub-block sums in int32, one VPMULLD by the scales
    return k;
  }();
  return kernels_avx2() ? &t : nullptr;
}
}  // namespace l4
#else
namespace l4 { const KernelTable* L4_VNNI_TABLE() { return nullptr; } }
#endif
