// The AVX2 + VNNI set with AVX512-VNNI's 256-bit EVEX instruction instead of AVX-VNNI's VEX one (see
// kern-avx2-vnni.cc): same source, same operations, runnable on AVX-512 CPUs without AVX-VNNI (AMD Zen 4).
#define L4_VNNI256 2
#define L4_VNNI_NS avx2vnni_evex
#define L4_VNNI_TABLE kernels_avx2_vnni_evex
#include "kern-avx2-vnni.cc"
