// BF16 products for weights adopted with `products: 'bf16'` (src/tensor/backend.ts WeightOptions): the vision tower's
// matrices, T = 577 tokens per tile. out[T, N] = bf16(x)[T, K] · W[N, K]ᵀ with the activations rounded to bf16 once
// per call (round to nearest even) and every product of two bf16 values summed in f32 by VDPBF16PS (AVX-512 BF16)
// or TDPBF16PS (AMX-BF16). Not bit-identical to the exact f32 path (which widens bf16 weights and keeps x in f32).
//
// Batch invariance: each output (t, n) is one accumulator that starts at 0 and takes the K/2 pairs in order, whatever
// the token count, the tile it lands in or the thread that runs it, so a token's result never depends on the call.
#pragma once
#include <cstddef>
#include <cstdint>

namespace l4 {

// Packed "P16" layout, made once at load: ceil(N/16) panels of 16 columns (columns past N are zero). Panel p holds
// Kp/2 groups of 64 bytes (Kp = K rounded up to even, the pad element is 0): group j = [col 0: w[2j], w[2j+1]]
// [col 1: …] … [col 15: …] — the B operand of VDPBF16PS as is, and 16 consecutive groups are one VNNI-packed AMX B tile.
static inline int64_t bf16p_even(int64_t K) { return (K + 1) & ~int64_t(1); }
static inline size_t bf16p_bytes(int64_t N, int64_t K) { return (size_t)((N + 15) / 16) * 16 * (size_t)bf16p_even(K) * 2; }

// One block of the product: tokens [t0, t1) × panels [p0, p1). xb: activations as bf16, [T][Kp]; wp: the packed
// weight; out: [T][N] f32 (columns past N are not written).
using GemmBf16Fn = void (*)(const uint16_t* xb, int Kp, int t0, int t1, const uint16_t* wp, int p0, int p1, int N, float* out);
// f32 -> bf16, round to nearest even (n values).
using CvtBf16Fn = void (*)(const float* x, uint16_t* y, int64_t n);

struct Bf16Gemm {
  const char* name;  // "avx512-bf16", "amx-bf16"
  GemmBf16Fn block;
  CvtBf16Fn cvt;
  int tokensPerBlock;  // token granularity the kernel prefers for a work unit (a multiple of its tile height)
};

// Null when not compiled in or when the CPU (or, for AMX, the OS) does not allow it. Call only on x86-64.
const Bf16Gemm* gemm_bf16_avx512();
const Bf16Gemm* gemm_bf16_amx();

}  // namespace l4
