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
// Quantizes one row of K floats (K a whole number of the type's blocks) into row_bytes(type, K) bytes.
void quantize_row(int type, const float* x, uint8_t* out, int K);

}  // namespace l4
