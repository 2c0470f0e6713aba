// Repacked weight layouts (common.h): writing them from the file layout at load, and reading a row back in the file
// layout (getRows, dequant). Each function handles whole groups of rows (8 for R8, 16 for R16); the Engine splits
// a matrix's groups over its threads (Engine::repackR8).
#pragma once
#include <cstdint>

namespace l4 {

// Groups [g0, g1) of the `type` rows [rows, K] at src (file layout) -> the same groups of layout `to` at dst.
void repack_groups(uint8_t* dst, const uint8_t* src, int type, int K, int to, int64_t g0, int64_t g1);
// Row r of a matrix in a repacked layout, back in its file layout (row_bytes(r8_base(type), K) bytes at dst).
void repacked_row(int type, const uint8_t* w, int64_t r, int K, uint8_t* dst);

}  // namespace l4
