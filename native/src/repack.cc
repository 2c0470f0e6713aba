// Repacked weight layouts <-> the file layout (layouts in common.h, declarations in repack.h). All moves are
// fixed-size copies of whole words (a libc call per 16-byte piece made repacking a 1 GB model take seconds).
#include "repack.h"

#include <cstring>

#include "common.h"

namespace l4 {

// Row r of a q4_0 R16 matrix back in the file layout.
static void q4_0_r16_row(const uint8_t* w, int64_t r, int K, uint8_t* dst) {
  const int nb = K / 32, j = (int)(r % 16);
  const size_t rb = (size_t)nb * 18;
  for (int i = 0; i < nb; i++) {
    const uint8_t* blk = w + (size_t)(r / 16) * 16 * rb + (size_t)i * kQ40R16Block;
    std::memcpy(dst + (size_t)i * 18, blk + 2 * j, 2);
    for (int c = 0; c < 4; c++) std::memcpy(dst + (size_t)i * 18 + 2 + 4 * c, blk + kQ40R16Codes + 64 * c + 4 * j, 4);
  }
}
// A row of an R8 matrix back in its file layout (common.h).
static void r8_row(int type, const uint8_t* w, int64_t r, int K, uint8_t* dst) {
  const int base = r8_base(type), bb = type_block_bytes(base), nb = K / 32;
  const size_t rb = (size_t)nb * bb, gb = 8 * (size_t)bb;
  const int j = (int)(r % 8), slot = base == T_Q4_0 ? (j < 4 ? 2 * j : 2 * (j - 4) + 1) : j, qb = bb - 2;
  for (int i = 0; i < nb; i++) {
    const uint8_t* blk = r8_block(w, r / 8, i, rb, gb);
    std::memcpy(dst + (size_t)i * bb, blk + 2 * j, 2);
    std::memcpy(dst + (size_t)i * bb + 2, blk + 16 + (size_t)slot * qb, qb);
  }
}

// ---- Q6_K R16 (common.h) <-> the file layout: word transposes ----
// Rows 16g..16g+15 of a q6_K matrix (file layout, nb super-blocks per row) -> group g of the R16 layout.
static void q6_r16_groups(uint8_t* dst, const uint8_t* src, int64_t g0, int64_t g1, int nb) {
  const size_t rb = (size_t)nb * 210;
  for (int64_t g = g0; g < g1; g++)
    for (int i = 0; i < nb; i++) {
      uint8_t* d = dst + (size_t)g * 16 * rb + (size_t)i * kQ6R16Block;
      for (int r = 0; r < 16; r++) {
        const BlockQ6_K& b = *(const BlockQ6_K*)(src + (size_t)(16 * g + r) * rb + (size_t)i * 210);
        std::memcpy(d + 2 * r, &b.d, 2);
        for (int j = 0; j < 4; j++) {
          for (int M = 0; M < 4; M++) d[q6r16_scale_at(M, j, r)] = (uint8_t)b.scales[q6r16_subblock(M, j)];
          for (int v = 0; v < 4; v++) {
            for (int h = 0; h < 2; h++) std::memcpy(d + q6r16_ql_at(j, h, v, r), b.ql + 4 * q6r16_ql_word(j, h, v), 4);
            std::memcpy(d + q6r16_qh_at(j, v, r), b.qh + 4 * q6r16_qh_word(j, v), 4);
          }
        }
      }
    }
}
// Row r of a Q6_K R16 matrix back in the file layout.
static void q6_r16_row(const uint8_t* w, int64_t r, int K, uint8_t* dst) {
  const int nb = K / 256;
  const size_t rb = (size_t)nb * 210;
  const int rr = (int)(r % 16);
  for (int i = 0; i < nb; i++) {
    const uint8_t* d = w + (size_t)(r / 16) * 16 * rb + (size_t)i * kQ6R16Block;
    BlockQ6_K& b = *(BlockQ6_K*)(dst + (size_t)i * 210);
    std::memcpy(&b.d, d + 2 * rr, 2);
    for (int j = 0; j < 4; j++) {
      for (int M = 0; M < 4; M++) b.scales[q6r16_subblock(M, j)] = (int8_t)d[q6r16_scale_at(M, j, rr)];
      for (int v = 0; v < 4; v++) {
        for (int h = 0; h < 2; h++) std::memcpy(b.ql + 4 * q6r16_ql_word(j, h, v), d + q6r16_ql_at(j, h, v, rr), 4);
        std::memcpy(b.qh + 4 * q6r16_qh_word(j, v), d + q6r16_qh_at(j, v, rr), 4);
      }
    }
  }
}
// ---- Q4_K, Q5_K and IQ4_XS R16 (common.h) <-> the file layout ----
// A header (q4_K, q5_K: d, dmin, 12 scale bytes; IQ4_XS: d, then 6 scale bytes), q5_K's 32 bytes of 5th bits and
// 128 bytes of 4-bit codes; the words of the last two are transposed (vector u, lane r = row r's word u).
template <int TYPE>
struct Q4Layout {
  static constexpr bool IQ4 = TYPE == T_IQ4_XS, Q5 = TYPE == T_Q5_K;
  static constexpr int BB = IQ4 ? 136 : Q5 ? 176 : 144, FSC = IQ4 ? 2 : 4, SCALES = IQ4 ? 6 : 12, FQH = 16, FQS = IQ4 ? 8 : Q5 ? 48 : 16;
  static constexpr R16Q4Layout R = IQ4 ? kR16IQ4XS : Q5 ? kR16Q5K : kR16Q4K;
  static constexpr size_t GB = R.block, SC = R.scales, QH = R.qh, DMIN = R.dmin, CODES = R.codes;
};
template <int TYPE>
static void q4_r16_groups(uint8_t* dst, const uint8_t* src, int64_t g0, int64_t g1, int nb) {
  using F = Q4Layout<TYPE>;
  const size_t rb = (size_t)nb * F::BB;
  for (int64_t g = g0; g < g1; g++)
    for (int i = 0; i < nb; i++) {
      uint8_t* d = dst + (size_t)g * 16 * rb + (size_t)i * F::GB;
      for (int r = 0; r < 16; r++) {
        const uint8_t* b = src + (size_t)(16 * g + r) * rb + (size_t)i * F::BB;
        std::memcpy(d + 2 * r, b, 2);
        if (!F::IQ4) std::memcpy(d + F::DMIN + 2 * r, b + 2, 2);
        for (int p = 0; p < F::SCALES; p++) d[F::SC + 16 * p + r] = b[F::FSC + p];
        if (F::Q5) for (int u = 0; u < 8; u++) std::memcpy(d + F::QH + 64 * u + 4 * r, b + F::FQH + 4 * u, 4);
        for (int u = 0; u < 32; u++) std::memcpy(d + F::CODES + 64 * u + 4 * r, b + F::FQS + 4 * u, 4);
      }
    }
}
template <int TYPE>
static void q4_r16_row(const uint8_t* w, int64_t r, int K, uint8_t* dst) {
  using F = Q4Layout<TYPE>;
  const int nb = K / 256;
  const size_t rb = (size_t)nb * F::BB;
  const int rr = (int)(r % 16);
  for (int i = 0; i < nb; i++) {
    const uint8_t* d = w + (size_t)(r / 16) * 16 * rb + (size_t)i * F::GB;
    uint8_t* b = dst + (size_t)i * F::BB;
    std::memcpy(b, d + 2 * rr, 2);
    if (!F::IQ4) std::memcpy(b + 2, d + F::DMIN + 2 * rr, 2);
    for (int p = 0; p < F::SCALES; p++) b[F::FSC + p] = d[F::SC + 16 * p + rr];
    if (F::Q5) for (int u = 0; u < 8; u++) std::memcpy(b + F::FQH + 4 * u, d + F::QH + 64 * u + 4 * rr, 4);
    for (int u = 0; u < 32; u++) std::memcpy(b + F::FQS + 4 * u, d + F::CODES + 64 * u + 4 * rr, 4);
  }
}

// Any repacked row back in its file layout.
void repacked_row(int type, const uint8_t* w, int64_t r, int K, uint8_t* dst) {
  if (type == T_Q6_K_R16) q6_r16_row(w, r, K, dst);
  else if (type == T_Q4_K_R16) q4_r16_row<T_Q4_K>(w, r, K, dst);
  else if (type == T_Q5_K_R16) q4_r16_row<T_Q5_K>(w, r, K, dst);
  else if (type == T_IQ4_XS_R16) q4_r16_row<T_IQ4_XS>(w, r, K, dst);
  else if (type == T_Q4_0_R16) q4_0_r16_row(w, r, K, dst);
  else r8_row(type, w, r, K, dst);
}


// q4_0/q8_0 rows [rows, K] -> the R8 layout (common.h); rows % 8 == 0. Each group is written whole by one thread,
// with fixed-size copies (a libc call per 16-byte piece made repacking a 1 GB model take seconds).
template <int BB>
static void r8_groups(uint8_t* dst, const uint8_t* src, int64_t g0, int64_t g1, int nb) {
  constexpr int QB = BB - 2;
  const size_t rb = (size_t)nb * BB;
  for (int64_t g = g0; g < g1; g++) {
    const uint8_t* s0 = src + (size_t)g * 8 * rb;
    for (int i = 0; i < nb; i++) {
      uint8_t* d = (uint8_t*)r8_block(dst, g, i, rb, 8 * BB);
      for (int j = 0; j < 8; j++) {
        const uint8_t* blk = s0 + (size_t)j * rb + (size_t)i * BB;
        const int slot = BB == 18 ? (j < 4 ? 2 * j : 2 * (j - 4) + 1) : j;
        std::memcpy(d + 2 * j, blk, 2);
        std::memcpy(d + 16 + slot * QB, blk + 2, QB);
      }
    }
  }
}
// q4_0 rows -> R16 (common.h): per 16 rows and block, the 16 scales, then the code words transposed.
static void repack_q4_0_r16(uint8_t* dst, const uint8_t* src, int64_t p0, int64_t p1, int nb) {
  const size_t rb = (size_t)nb * 18;
  for (int64_t p = p0; p < p1; p++)
    for (int i = 0; i < nb; i++) {
      uint8_t* d = dst + (size_t)p * 16 * rb + (size_t)i * kQ40R16Block;
      for (int r = 0; r < 16; r++) {
        const uint8_t* blk = src + (size_t)(16 * p + r) * rb + (size_t)i * 18;
        std::memcpy(d + 2 * r, blk, 2);
        for (int c = 0; c < 4; c++) std::memcpy(d + kQ40R16Codes + 64 * c + 4 * r, blk + 2 + 4 * c, 4);
      }
    }
}
void repack_groups(uint8_t* dst, const uint8_t* src, int type, int K, int to, int64_t g0, int64_t g1) {
  switch (to) {
    case T_Q6_K_R16: q6_r16_groups(dst, src, g0, g1, K / 256); break;
    case T_Q4_K_R16: q4_r16_groups<T_Q4_K>(dst, src, g0, g1, K / 256); break;
    case T_Q5_K_R16: q4_r16_groups<T_Q5_K>(dst, src, g0, g1, K / 256); break;
    case T_IQ4_XS_R16: q4_r16_groups<T_IQ4_XS>(dst, src, g0, g1, K / 256); break;
    case T_Q4_0_R16: repack_q4_0_r16(dst, src, g0, g1, K / 32); break;
    default:
      if (type == T_Q4_0) r8_groups<18>(dst, src, g0, g1, K / 32);
      else r8_groups<34>(dst, src, g0, g1, K / 32);
  }
}

}  // namespace l4
