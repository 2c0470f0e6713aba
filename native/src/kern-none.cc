// Architectures without hand-written kernels (arm64 until a NEON table exists): only the portable table.
#include "common.h"
#include "gemm-bf16.h"
namespace l4 {
const KernelTable* kernels_avx2() { return nullptr; }
const KernelTable* kernels_avx512() { return nullptr; }
const KernelTable* kernels_avx2_vnni() { return nullptr; }
const KernelTable* kernels_avx2_vnni_evex() { return nullptr; }
const KernelTable* kernels_avx512_amx() { return nullptr; }
const KernelTable* kernels_avx512_amx_emulated() { return nullptr; }
const Bf16Gemm* gemm_bf16_avx512() { return nullptr; }
const Bf16Gemm* gemm_bf16_amx() { return nullptr; }
}  // namespace l4
