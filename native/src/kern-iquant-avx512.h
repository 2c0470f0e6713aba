// AVX-512 VNNI kernels for IQ4_XS and IQ2_XXS (decode rows and prefill tiles), included by kern-avx512.cc after
// kern-iquant-x86.h; they replace that file's AVX2 kernels of these two types in the AVX-512 table.
//
// Why: the AVX2 kernels spend most of their time outside the multiply — IQ4_XS does the sign trick (|v|, y·sign(v))
// and a 16-bit scale multiply per 32 weights, IQ2_XXS assembles its grid rows and sign patterns with 64 scalar table
// loads per 256 weights — so decode ran at ~45% (IQ4_XS) and ~12% (IQ2_XXS) of the read bandwidth of one core.
//  * IQ4_XS: VPSHUFB looks up value + 128 (1..241, unsigned) so VPDPBUSD takes the codes directly; the +128 is taken
//    back through the activations' per-16 sums (−128·Σy per 32-block, preloaded into the accumulator). The
//    activations are re-laid once per call so one 512-bit load of 64 nibble bytes lines up with them unshuffled.
//  * IQ2_XXS: the 256-entry grid lives in registers as 2-bit codes (8 elements × {8, 25, 43}) looked up with
//    VPERMI2W, expanded with a shift and VPSHUFB; the 7-bit sign fields become a 64-bit mask (PDEP + parity) that
//    negates the activations with one masked subtract.
// Float structure (both types): per super-block the exact integer sums of the 256 products × sub-block scales sit
// in 16 int32 lanes; one FMA adds d_w·d_y × lanes into 16 float lanes, reduced once per row. The prefill tile runs
// the same integer sums and the same float steps per (row, token), so a token's result is bit-identical whatever
// its batch (batch invariance); leftover tokens go to the row kernel.

// Prefetch distance along a chunk's weight stream (bytes): decode reads the chunk's rows as one contiguous stream.
#ifndef L4_PF_IQ
#define L4_PF_IQ 2048
#endif
#define ZI_PF(cur)                                                                                            \
  do {                                                                                                        \
    if (pf) for (const uint8_t* e_ = (const uint8_t*)(cur) + L4_PF_IQ; pfp < e_; pfp += 64) _mm_prefetch((const char*)pfp, _MM_HINT_NTA); \
  } while (0)

static inline float zi_half(uint16_t h) { return _cvtsh_ss(h); }

// The prefill tiles' and small-batch kernels' token loop (here and in kern-kquant-avx512.h): tokens in passes of
// 8, then 4; each pass first re-lays its tokens' activations (prep(token, slot)), then runs pass(NT, first token);
// the rest (< 4) go one by one through rest(token), the row kernel. Per (row, token) every pass kernel runs the row
// kernel's steps, so how tokens are split into passes never changes a result.
template <class Prep, class Pass, class Rest>
static inline void zi_token_passes(int ntok, Prep prep, Pass pass, Rest rest) {
  const int n4 = ntok / 4 * 4;
  int t0 = 0;
  for (; t0 < n4; t0 += 4) {
    const int nt = t0 + 8 <= n4 ? 8 : 4;
    for (int t = 0; t < nt; t++) prep(t0 + t, t);
    if (nt == 8) { pass(std::integral_constant<int, 8>{}, t0); t0 += 4; }
    else pass(std::integral_constant<int, 4>{}, t0);
  }
  for (; t0 < ntok; t0++) rest(t0);
}

// ---- IQ4_XS ----
// One super-block of activations re-laid for the nibble order of the weights: a 64-byte load of qs holds 4
// sub-blocks (16 bytes each: low nibbles = values 0..15, high nibbles = 16..31), so for h = 0, 1:
//   lo[h] 128-bit lane k = y values 0..15 of sub-block 4h+k, hi[h] lane k = values 16..31,
//   bias[h] int32 lane i = −32·Σy of sub-block 4h + i/4 (each of the 4 lanes of a sub-block takes a quarter of the
//   −128·Σy that undoes the +128 of the looked-up values).
struct alignas(64) Iq4xAct { __m512i lo[2], hi[2], bias[2]; };
// sub-block of int32 lane i of half h: 4h + i/4
static inline __m512i zi_quad_idx(int h) {
  return _mm512_setr_epi32(4 * h, 4 * h, 4 * h, 4 * h, 4 * h + 1, 4 * h + 1, 4 * h + 1, 4 * h + 1, 4 * h + 2, 4 * h + 2,
                           4 * h + 2, 4 * h + 2, 4 * h + 3, 4 * h + 3, 4 * h + 3, 4 * h + 3);
}
static void iq4x_prep(const ActQ8K* y, int nb, Iq4xAct* a) {
  for (int i = 0; i < nb; i++) {
    const __m512i y0 = _mm512_loadu_si512(y[i].qs), y1 = _mm512_loadu_si512(y[i].qs + 64);
    const __m512i y2 = _mm512_loadu_si512(y[i].qs + 128), y3 = _mm512_loadu_si512(y[i].qs + 192);
    a[i].lo[0] = _mm512_shuffle_i64x2(y0, y1, 0x88); a[i].hi[0] = _mm512_shuffle_i64x2(y0, y1, 0xdd);
    a[i].lo[1] = _mm512_shuffle_i64x2(y2, y3, 0x88); a[i].hi[1] = _mm512_shuffle_i64x2(y2, y3, 0xdd);
    // −32·(bsums[2j] + bsums[2j+1]) = −32·Σy of sub-block j, j = 0..7 (|Σy| ≤ 32·127: no overflow)
    const __m256i b8 = _mm256_madd_epi16(_mm256_loadu_si256((const __m256i*)y[i].bsums), _mm256_set1_epi16(-32));
    a[i].bias[0] = _mm512_permutexvar_epi32(zi_quad_idx(0), _mm512_castsi256_si512(b8));
    a[i].bias[1] = _mm512_permutexvar_epi32(zi_quad_idx(1), _mm512_castsi256_si512(b8));
  }
}
// Per-thread scratch for re-laid activations (decode: one token; prefill tile: its tokens).
static Iq4xAct* iq4x_scratch(size_t n) {
  thread_local std::vector<Iq4xAct> buf;
  if (buf.size() < n) buf.resize(n);
  return buf.data();
}
// One weight super-block decoded: values + 128 in the nibble order, sub-block scales per int32 lane (as bias).
struct Iq4xW { __m512i wl[2], wh[2], ls[2]; };
static inline void iq4x_decode(const BlockIQ4XS& x, __m512i tbl, Iq4xW& w) {
  const __m512i m4 = _mm512_set1_epi8(15);
  for (int h = 0; h < 2; h++) {
    const __m512i q = _mm512_loadu_si512(x.qs + 64 * h);
    w.wl[h] = _mm512_shuffle_epi8(tbl, _mm512_and_si512(q, m4));
    w.wh[h] = _mm512_shuffle_epi8(tbl, _mm512_and_si512(_mm512_srli_epi16(q, 4), m4));
  }
  // ls_j = (4 bits of scales_l | 2 bits of scales_h << 4) − 32, j = 0..7
  uint32_t sl; std::memcpy(&sl, x.scales_l, 4);
  const __m256i lo = _mm256_srlv_epi32(_mm256_set1_epi32((int)sl), _mm256_setr_epi32(0, 4, 8, 12, 16, 20, 24, 28));
  const __m256i hi = _mm256_srlv_epi32(_mm256_set1_epi32((int)x.scales_h << 4), _mm256_setr_epi32(0, 2, 4, 6, 8, 10, 12, 14));
  const __m256i ls = _mm256_sub_epi32(_mm256_or_si256(_mm256_and_si256(lo, _mm256_set1_epi32(15)), _mm256_and_si256(hi, _mm256_set1_epi32(0x30))),
                                      _mm256_set1_epi32(32));
  w.ls[0] = _mm512_permutexvar_epi32(zi_quad_idx(0), _mm512_castsi256_si512(ls));
  w.ls[1] = _mm512_permutexvar_epi32(zi_quad_idx(1), _mm512_castsi256_si512(ls));
}
// Σ over the super-block of value·y·scale, spread over 16 int32 lanes (exact)
static inline __m512i iq4x_dot(const Iq4xW& w, const Iq4xAct& a) {
  __m512i s0 = _mm512_dpbusd_epi32(a.bias[0], w.wl[0], a.lo[0]);
  __m512i s1 = _mm512_dpbusd_epi32(a.bias[1], w.wl[1], a.lo[1]);
  s0 = _mm512_dpbusd_epi32(s0, w.wh[0], a.hi[0]);
  s1 = _mm512_dpbusd_epi32(s1, w.wh[1], a.hi[1]);
  return _mm512_add_epi32(_mm512_mullo_epi32(s0, w.ls[0]), _mm512_mullo_epi32(s1, w.ls[1]));
}
// kvalues_iq4nl + 128 in every 128-bit lane
struct Iq4xTable {
  uint8_t v[64];
  constexpr Iq4xTable() : v{} { for (int i = 0; i < 64; i++) v[i] = (uint8_t)(kvalues_iq4nl[i % 16] + 128); }
};
alignas(64) static constexpr Iq4xTable iq4x_values{};
static inline __m512i iq4x_table() { return _mm512_loadu_si512(iq4x_values.v); }

static void zi_rows_iq4_xs(int K, const uint8_t* w, size_t rb, int nrows, const void* act, float* out, bool pf) {
  const int nb = K / 256;
  const ActQ8K* y = (const ActQ8K*)act;
  Iq4xAct* a = iq4x_scratch((size_t)nb);
  iq4x_prep(y, nb, a);
  const __m512i tbl = iq4x_table();
  const uint8_t* pfp = w;
  for (int r = 0; r < nrows; r++) {
    const BlockIQ4XS* x = (const BlockIQ4XS*)(w + (size_t)r * rb);
    __m512 acc = _mm512_setzero_ps();
    for (int i = 0; i < nb; i++) {
      ZI_PF(x + i);
      Iq4xW wt;
      iq4x_decode(x[i], tbl, wt);
      acc = _mm512_fmadd_ps(_mm512_set1_ps(zi_half(x[i].d) * y[i].d), _mm512_cvtepi32_ps(iq4x_dot(wt, a[i])), acc);
    }
    out[r] = _mm512_reduce_add_ps(acc);
  }
}
// Prefill: NT tokens (activations re-laid in a, y for the scales) × every row; each weight super-block is decoded
// once for the NT tokens, and per (row, token) the operations are the row kernel's.
template <int NT>
static void iq4x_pass(int nb, const uint8_t* w, size_t rb, int nrows, const ActQ8K* const* y, const Iq4xAct* a, float* out,
                      size_t outStride) {
  const __m512i tbl = iq4x_table();
  for (int r = 0; r < nrows; r++) {
    const BlockIQ4XS* x = (const BlockIQ4XS*)(w + (size_t)r * rb);
    __m512 acc[NT];
    for (int t = 0; t < NT; t++) acc[t] = _mm512_setzero_ps();
    for (int i = 0; i < nb; i++) {
      Iq4xW wt;
      iq4x_decode(x[i], tbl, wt);
      const float d = zi_half(x[i].d);
      for (int t = 0; t < NT; t++)
        acc[t] = _mm512_fmadd_ps(_mm512_set1_ps(d * y[t][i].d), _mm512_cvtepi32_ps(iq4x_dot(wt, a[(size_t)t * nb + i])), acc[t]);
    }
    for (int t = 0; t < NT; t++) out[(size_t)t * outStride + r] = _mm512_reduce_add_ps(acc[t]);
  }
}
// Tokens in passes of 8, then 4; the rest (< 4) through the row kernel.
static void zi_tile_iq4_xs(int K, const uint8_t* w, size_t rb, int nrows, const uint8_t* act, size_t actStride, int ntok,
                           float* out, size_t outStride) {
  const int nb = K / 256;
  Iq4xAct* a = iq4x_scratch((size_t)nb * 8);
  const ActQ8K* y[8];
  zi_token_passes(
      ntok,
      [&](int t, int slot) {
        y[slot] = (const ActQ8K*)(act + (size_t)t * actStride);
        iq4x_prep(y[slot], nb, a + (size_t)slot * nb);
      },
      [&](auto nt, int t0) { iq4x_pass<decltype(nt)::value>(nb, w, rb, nrows, y, a, out + (size_t)t0 * outStride, outStride); },
      [&](int t) { zi_rows_iq4_xs(K, w, rb, nrows, act + (size_t)t * actStride, out + (size_t)t * outStride, false); });
}

// ---- IQ2_XXS ----
// Grid entry as 2-bit codes (value 8, 25, 43 -> 0, 1, 2): low byte = elements 0, 2, 4, 6, high byte = 1, 3, 5, 7
// (2 bits each), so shifting a 16-bit word right by 2m leaves element 2m's code in bits 0-1 of its low byte and
// element 2m+1's in bits 0-1 of its high byte.
struct Iq2xxsCodes {
  uint16_t v[256];
  constexpr Iq2xxsCodes() : v{} {
    for (int i = 0; i < 256; i++) {
      int c = 0;
      for (int j = 0; j < 8; j++) {
        const int b = (int)((iq2xxs_grid[i] >> (8 * j)) & 0xff);
        const int code = b == 0x08 ? 0 : b == 0x19 ? 1 : 2;
        c |= code << ((j & 1) ? 8 + (j - 1) : j);
      }
      v[i] = (uint16_t)c;
    }
  }
};
alignas(64) static constexpr Iq2xxsCodes iq2xxs_codes{};
alignas(64) static constexpr int16_t zi_iota16[32] = {0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 17, 18, 19, 20, 21, 22, 23, 24, 25, 26, 27, 28, 29, 30, 31};
struct Iq2xxsTab { __m512i t[8]; };
static inline void iq2xxs_tab(Iq2xxsTab& T) {
  for (int k = 0; k < 8; k++) T.t[k] = _mm512_loadu_si512(iq2xxs_codes.v + 32 * k);
}
// The 256 values of a super-block in 4 vectors "lane-transposed": vector h, 128-bit lane L = values 64L+16h..64L+16h+15
// (sub-block 2L + h/2). Each lane then draws only on its own lane of the 32 grid codes (entries 8L..8L+7) and of
// the scales (sub-blocks 2L, 2L+1), so broadcasts are in-lane byte shuffles, and h = 0, 1 (2, 3) share one scale
// vector. The activations are re-laid the same way once per call.
struct alignas(64) Iq2xxsAct { __m512i v[4]; };
static void iq2xxs_prep(const ActQ8K* y, int nb, Iq2xxsAct* a) {
  for (int i = 0; i < nb; i++) {
    __m512i Y[4];
    for (int L = 0; L < 4; L++) Y[L] = _mm512_loadu_si512(y[i].qs + 64 * L);
    const __m512i t0 = _mm512_shuffle_i64x2(Y[0], Y[1], 0x44), t1 = _mm512_shuffle_i64x2(Y[0], Y[1], 0xee);
    const __m512i t2 = _mm512_shuffle_i64x2(Y[2], Y[3], 0x44), t3 = _mm512_shuffle_i64x2(Y[2], Y[3], 0xee);
    a[i].v[0] = _mm512_shuffle_i64x2(t0, t2, 0x88); a[i].v[1] = _mm512_shuffle_i64x2(t0, t2, 0xdd);
    a[i].v[2] = _mm512_shuffle_i64x2(t1, t3, 0x88); a[i].v[3] = _mm512_shuffle_i64x2(t1, t3, 0xdd);
  }
}
static Iq2xxsAct* iq2xxs_scratch(size_t n) {
  thread_local std::vector<Iq2xxsAct> buf;
  if (buf.size() < n) buf.resize(n);
  return buf.data();
}
// pshufb controls, the same in every 128-bit lane: bcast[h] repeats the code words of entries 2h, 2h+1 of the lane
// (4 times each), sc[k] repeats the low word of qword k (the scale of sub-block 2L + k)
struct Iq2xxsCtl {
  uint8_t bcast[4][64], sc[2][64];
  constexpr Iq2xxsCtl() : bcast{}, sc{} {
    for (int i = 0; i < 64; i++) {
      const int j = i % 16;  // byte of the lane
      for (int h = 0; h < 4; h++) bcast[h][i] = (uint8_t)(2 * (2 * h + j / 8) + (j & 1));
      for (int k = 0; k < 2; k++) sc[k][i] = (uint8_t)(8 * k + (j & 1));
    }
  }
};
alignas(64) static constexpr Iq2xxsCtl iq2xxs_ctl{};
// One super-block decoded (lane-transposed): g[h] grid bytes, ls[k] scales 2s+1 as int16 of the vectors h = 2k, 2k+1,
// sg[h] sign mask (bit 16L+j set: value 64L+16h+j negative).
struct Iq2xxsW { __m512i g[4], ls[2]; __mmask64 sg[4]; };
// 4 × 7 sign bits of sub-blocks a (bytes 0-3) and b (bytes 4-7) -> sign bytes with their parity bit 7 (even count)
static inline uint64_t iq2xxs_signs(const BlockIQ2XXS& x, int a, int b) {
  uint32_t a0, a1;
  std::memcpy(&a0, (const uint8_t*)x.qs + 8 * a + 4, 4);
  std::memcpy(&a1, (const uint8_t*)x.qs + 8 * b + 4, 4);
  const uint64_t x7 = _pdep_u64((a0 & 0x0fffffff) | ((uint64_t)(a1 & 0x0fffffff) << 28), 0x7f7f7f7f7f7f7f7full);
  uint64_t par = x7 ^ (x7 >> 4);
  par ^= par >> 2;
  par ^= par >> 1;
  return x7 | ((par & 0x0101010101010101ull) << 7);
}
static inline void iq2xxs_decode(const BlockIQ2XXS& x, const Iq2xxsTab& T, Iq2xxsW& w) {
  const __m512i q = _mm512_loadu_si512(x.qs);  // qword ib: 4 grid indices, then 28 sign bits and the 4-bit scale
  const __m512i iw = _mm512_cvtepu8_epi16(_mm512_cvtepi64_epi32(q));  // the 32 grid indices, entry order
  const __mmask32 b6 = _mm512_test_epi16_mask(iw, _mm512_set1_epi16(0x40)), b7 = _mm512_test_epi16_mask(iw, _mm512_set1_epi16(0x80));
  const __m512i c0 = _mm512_mask_blend_epi16(b6, _mm512_permutex2var_epi16(T.t[0], iw, T.t[1]), _mm512_permutex2var_epi16(T.t[2], iw, T.t[3]));
  const __m512i c1 = _mm512_mask_blend_epi16(b6, _mm512_permutex2var_epi16(T.t[4], iw, T.t[5]), _mm512_permutex2var_epi16(T.t[6], iw, T.t[7]));
  const __m512i codes = _mm512_mask_blend_epi16(b7, c0, c1);
  const __m512i vals = _mm512_set1_epi32(0x002b1908);  // code -> grid value: 0 -> 8, 1 -> 25, 2 -> 43
  const __m512i shifts = _mm512_set1_epi64(0x0006000400020000);  // word w: 2·(w % 4)
  const __m512i m3 = _mm512_set1_epi16(0x0303);
  for (int h = 0; h < 4; h++) {
    const __m512i b = _mm512_srlv_epi16(_mm512_shuffle_epi8(codes, _mm512_load_si512(iq2xxs_ctl.bcast[h])), shifts);
    w.g[h] = _mm512_shuffle_epi8(vals, _mm512_and_si512(b, m3));
  }
  const __m512i s = _mm512_srli_epi64(q, 60), ls = _mm512_or_si512(_mm512_add_epi64(s, s), _mm512_set1_epi64(1));
  w.ls[0] = _mm512_shuffle_epi8(ls, _mm512_load_si512(iq2xxs_ctl.sc[0]));
  w.ls[1] = _mm512_shuffle_epi8(ls, _mm512_load_si512(iq2xxs_ctl.sc[1]));
  // vector h, lane L: sign word h%2 (groups 2(h%2), 2(h%2)+1) of sub-block 2L + h/2
  const uint64_t e02 = iq2xxs_signs(x, 0, 2), e46 = iq2xxs_signs(x, 4, 6), o13 = iq2xxs_signs(x, 1, 3), o57 = iq2xxs_signs(x, 5, 7);
  constexpr uint64_t W0 = 0x0000ffff0000ffffull, W1 = ~W0;
  w.sg[0] = (__mmask64)(_pext_u64(e02, W0) | (_pext_u64(e46, W0) << 32));
  w.sg[1] = (__mmask64)(_pext_u64(e02, W1) | (_pext_u64(e46, W1) << 32));
  w.sg[2] = (__mmask64)(_pext_u64(o13, W0) | (_pext_u64(o57, W0) << 32));
  w.sg[3] = (__mmask64)(_pext_u64(o13, W1) | (_pext_u64(o57, W1) << 32));
}
static inline __m512i iq2xxs_dot(const Iq2xxsW& w, const Iq2xxsAct& a) {
  __m512i p[4];
  for (int h = 0; h < 4; h++)  // grid (≤ 43) · |y| (≤ 127): pair sums ≤ 10922, two of them fit int16
    p[h] = _mm512_maddubs_epi16(w.g[h], _mm512_mask_sub_epi8(a.v[h], w.sg[h], _mm512_setzero_si512(), a.v[h]));
  const __m512i sum = _mm512_dpwssd_epi32(_mm512_setzero_si512(), _mm512_add_epi16(p[0], p[1]), w.ls[0]);
  return _mm512_dpwssd_epi32(sum, _mm512_add_epi16(p[2], p[3]), w.ls[1]);
}
static void zi_rows_iq2_xxs(int K, const uint8_t* w, size_t rb, int nrows, const void* act, float* out, bool pf) {
  const int nb = K / 256;
  const ActQ8K* y = (const ActQ8K*)act;
  Iq2xxsAct* a = iq2xxs_scratch((size_t)nb);
  iq2xxs_prep(y, nb, a);
  Iq2xxsTab T;
  iq2xxs_tab(T);
  const uint8_t* pfp = w;
  for (int r = 0; r < nrows; r++) {
    const BlockIQ2XXS* x = (const BlockIQ2XXS*)(w + (size_t)r * rb);
    __m512 acc = _mm512_setzero_ps();
    for (int i = 0; i < nb; i++) {
      ZI_PF(x + i);
      Iq2xxsW wt;
      iq2xxs_decode(x[i], T, wt);
      acc = _mm512_fmadd_ps(_mm512_set1_ps(zi_half(x[i].d) * y[i].d), _mm512_cvtepi32_ps(iq2xxs_dot(wt, a[i])), acc);
    }
    out[r] = _mm512_reduce_add_ps(acc) * 0.125f;
  }
}
template <int NT>
static void iq2xxs_pass(int nb, const uint8_t* w, size_t rb, int nrows, const ActQ8K* const* y, const Iq2xxsAct* a, float* out,
                        size_t outStride) {
  Iq2xxsTab T;
  iq2xxs_tab(T);
  for (int r = 0; r < nrows; r++) {
    const BlockIQ2XXS* x = (const BlockIQ2XXS*)(w + (size_t)r * rb);
    __m512 acc[NT];
    for (int t = 0; t < NT; t++) acc[t] = _mm512_setzero_ps();
    for (int i = 0; i < nb; i++) {
      Iq2xxsW wt;
      iq2xxs_decode(x[i], T, wt);
      const float d = zi_half(x[i].d);
      for (int t = 0; t < NT; t++)
        acc[t] = _mm512_fmadd_ps(_mm512_set1_ps(d * y[t][i].d), _mm512_cvtepi32_ps(iq2xxs_dot(wt, a[(size_t)t * nb + i])), acc[t]);
    }
    for (int t = 0; t < NT; t++) out[(size_t)t * outStride + r] = _mm512_reduce_add_ps(acc[t]) * 0.125f;
  }
}
// Prefill: tokens in passes of 8, then 4 (grid, signs and scales decoded once per pass); the rest (< 4) through the
// row kernel.
static void zi_tile_iq2_xxs(int K, const uint8_t* w, size_t rb, int nrows, const uint8_t* act, size_t actStride, int ntok,
                            float* out, size_t outStride) {
  const int nb = K / 256;
  Iq2xxsAct* a = iq2xxs_scratch((size_t)nb * 8);
  const ActQ8K* y[8];
  zi_token_passes(
      ntok,
      [&](int t, int slot) {
        y[slot] = (const ActQ8K*)(act + (size_t)t * actStride);
        iq2xxs_prep(y[slot], nb, a + (size_t)slot * nb);
      },
      [&](auto nt, int t0) { iq2xxs_pass<decltype(nt)::value>(nb, w, rb, nrows, y, a, out + (size_t)t0 * outStride, outStride); },
      [&](int t) { zi_rows_iq2_xxs(K, w, rb, nrows, act + (size_t)t * actStride, out + (size_t)t * outStride, false); });
}
#undef ZI_PF

static void fill_iquant_avx512(KernelTable& t) {
  t.rows[T_IQ4_XS] = zi_rows_iq4_xs;
  t.tile[T_IQ4_XS] = zi_tile_iq4_xs;
  t.rows[T_IQ2_XXS] = zi_rows_iq2_xxs;
  t.tile[T_IQ2_XXS] = zi_tile_iq2_xxs;
}
