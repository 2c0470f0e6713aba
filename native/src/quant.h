// Weight quantizers for the GGUF writer: byte-exact ports of src/tensor/quant (legacy.ts, kquants.ts, iquants.ts),
// which themselves port ggml-quants.c's reference quantizers (quantize_row_*_ref, quantize_iq4_nl/xs without an
// importance matrix). Exactness rests on doing the same float32 operations in the same order: quant.cc is compiled
// without -ffast-math and with -ffp-contract=off (no FMA contraction), and every expression below rounds to float
// exactly where the TypeScript `fr(...)` does.
#pragma once
#include <cstddef>
#include <cstdint>

namespace l4 {

// True when quantize_row can write `type` (a GGML type id of common.h).
bool can_quantize(int type);
// Quantizes one row of K floats (K a whole number of the type's blocks) into row_bytes(type, K) bytes. `simd` lets
// the scale searches run 8 sub-blocks at once where the CPU has AVX2 (quant-avx2.cc; the same bytes).
void quantize_row(int type, const float* x, uint8_t* out, int K, bool simd = true);

// quant-avx2.cc: make_qkx2_quants of quant.cc for the 8 sub-blocks x[n·j ..], j < 8, weights w[n·j ..], one per
// lane; writes L[n·j + i], mins[j] (= -min) and scales[j] exactly as 8 scalar calls would.
void qkx2_x8_avx2(int n, int nmax, const float* x, const float* w, uint8_t* L, float* mins, float* scales, float rmin, float rdelta,
                  int nstep, bool use_mad);
// quant-avx2.cc: make_qx_quants (rmse_type 1) for the 8 sub-blocks x[n·j ..]; L[n·j + i] = level + nmax, scales[j].
void qx_x8_avx2(int n, int nmax, const float* x, int8_t* L, float* scales);

}  // namespace l4
