// AVX2 kernels for the q4_K, q5_K and IQ4_XS R16 layouts (common.h; the AVX-512 kernels are kern-kquant-r16-avx512.h), included by
// kern-avx2.cc: the AVX2-only machines read q4_K, q5_K and IQ4_XS in the same layouts, with the same bits.
//
// Why: the file-layout AVX2 kernel (x_rows_q45_k) spends ~95 instructions per (row, super-block), most of them on
// nibble unpacking, scale broadcasts and horizontal adds, so q4_K decode is compute-bound on an AVX2 core. A
// 32-byte half of an R16 vector holds one 4-byte word of 8 rows (lane r = row r), so VPMADDUBSW with a broadcast
// activation word gives each row two int16 pair sums, which add up over a whole sub-block in int16 and meet the
// rows' scales in one VPMADDWD: ~17 instructions per (8 rows, sub-block of 32) and no horizontal adds.
// int16 bounds (|y| ≤ 128, codes 0..15): a pair ≤ 2·15·128 = 3,840, a sub-block's eight chunks ≤ 30,720.
// The integers per (row, token, super-block) are the AVX-512 kernel's exactly, and so are the float steps
// (acc = fma(d_w·d_y, float(t), acc); acc = fnmadd(dmin_w·d_y, float(m), acc)), so a result is bit-identical across
// the two kernel sets as well as batch-invariant. A 16-row group is done as two 8-row halves.
//
// q6_K stays on the file layout here: the same scheme for its 6-bit codes (two chunks per VPMADDWD, the −32 offset
// as −32·Σ scale·Σy afterwards) ran 8-token batches 1.35x faster but decode 1.4x slower than x_rows_q6_k (2048 x
// 2048, one thread, Zen 4 running the AVX2 set: 244-248 against 168-183 µs), and decode is what an AVX2 machine
// mostly runs. Measured the same way, q4_K: T = 1 202-226 -> 142-155 µs, T = 8 793-883 -> 530-581 µs; q5_K:
// T = 1 246-287 -> 194-207 µs, T = 8 1013 -> 635-639 µs; IQ4_XS (below): T = 1 186-197 -> 164-171 µs, T = 8
// 801-810 -> 662-712 µs.

#ifndef L4_PF_A2R16
#define L4_PF_A2R16 1
#endif

// 8 bytes at p (one per row of a half) as int32 lanes.
static inline __m256i a2_u8x8(const uint8_t* p) { return _mm256_cvtepu8_epi32(_mm_loadl_epi64((const __m128i*)p)); }
// An int32 lane v (|v| < 2^15) as the int16 pair (v, v), for VPMADDWD against two int16 partial sums of a row.
static inline __m256i a2_pair(__m256i v) { return _mm256_or_si256(_mm256_and_si256(v, _mm256_set1_epi32(0xffff)), _mm256_slli_epi32(v, 16)); }
static inline __m256i a2_bcast(const int8_t* q, int word) { return _mm256_set1_epi32(((const int32_t*)q)[word]); }

// q4_K and (Q5) q5_K, whose codes take a 5th bit from the word-transposed qh vectors: codes 0..31, a pair ≤
// 2·31·128 = 7,936, so q5_K meets its scales every 4 chunks (≤ 31,744) instead of every 8.
template <bool Q5>
struct A2Q45 {
  static constexpr R16Q4Layout R = Q5 ? kR16Q5K : kR16Q4K;
  static constexpr size_t SB = R.block, QS = R.codes, QH = R.qh;
  static constexpr int VS = Q5 ? 4 : 8;  // chunks summed in int16 before VPMADDWD
  static constexpr int kPrep = 4;  // (Σy of sub-block 2k, of 2k + 1) as an int16 pair, k = 0..3: Q4R<Q4K>'s
  static void prep(const ActQ8K* y, int nb, int32_t* dst) {
    for (int i = 0; i < nb; i++)
      for (int k = 0; k < 4; k++) {
        const int a = y[i].bsums[4 * k] + y[i].bsums[4 * k + 1], b = y[i].bsums[4 * k + 2] + y[i].bsums[4 * k + 3];
        dst[4 * i + k] = (int32_t)((uint32_t)(uint16_t)a | (uint32_t)(uint16_t)b << 16);
      }
  }
  // Rows of half h: scale and minimum of sub-block j (ggml's get_scale_min_k4), int32 lanes.
  static inline void scale_min(const uint8_t* blk, int h, int j, __m256i& sc, __m256i& m) {
    auto sb = [&](int p) { return a2_u8x8(blk + R.scales + 16 * p + 8 * h); };
    const __m256i m63 = _mm256_set1_epi32(63), m15 = _mm256_set1_epi32(15);
    if (j < 4) {
      sc = _mm256_and_si256(sb(j), m63);
      m = _mm256_and_si256(sb(j + 4), m63);
    } else {
      const __m256i q = sb(j + 4);
      sc = _mm256_or_si256(_mm256_and_si256(q, m15), _mm256_slli_epi32(_mm256_srli_epi32(sb(j - 4), 6), 4));
      m = _mm256_or_si256(_mm256_srli_epi32(q, 4), _mm256_slli_epi32(_mm256_srli_epi32(sb(j), 6), 4));
    }
  }
  // Codes of chunk v of sub-blocks 2k (V0: low nibbles) and 2k + 1 (V1: high) for the 8 rows of half h; q5_K adds
  // bits 2k and 2k + 1 of qh word v, moved to bit 4 (16-bit shifts).
  static inline void codes(const uint8_t* blk, int h, int k, int v, __m256i& V0, __m256i& V1) {
    const __m256i m4 = _mm256_set1_epi8(15), b16 = _mm256_set1_epi8(16);
    const __m256i L = _mm256_loadu_si256((const __m256i*)(blk + QS + 64 * (8 * k + v) + 32 * h));
    V0 = _mm256_and_si256(L, m4);
    V1 = _mm256_and_si256(_mm256_srli_epi16(L, 4), m4);
    if (Q5) {
      const __m256i Hq = _mm256_loadu_si256((const __m256i*)(blk + QH + 64 * v + 32 * h));
      const int b0 = 2 * k, b1 = 2 * k + 1;
      V0 = _mm256_or_si256(V0, _mm256_and_si256(b0 <= 4 ? _mm256_slli_epi16(Hq, 4 - b0) : _mm256_srli_epi16(Hq, b0 - 4), b16));
      V1 = _mm256_or_si256(V1, _mm256_and_si256(b1 <= 4 ? _mm256_slli_epi16(Hq, 4 - b1) : _mm256_srli_epi16(Hq, b1 - 4), b16));
    }
  }
  template <int NT>
  static inline void block(const uint8_t* blk, int h, const ActQ8K* const* y, int i, const int32_t* const* p, __m256* acc) {
    __m256i tot[NT], M[NT];
    for (int t = 0; t < NT; t++) { tot[t] = _mm256_setzero_si256(); M[t] = _mm256_setzero_si256(); }
    for (int k = 0; k < 4; k++) {  // sub-blocks 2k (low nibbles of vectors 8k..8k+7) and 2k + 1 (high)
      __m256i sc0, m0, sc1, m1;
      scale_min(blk, h, 2 * k, sc0, m0);
      scale_min(blk, h, 2 * k + 1, sc1, m1);
      const __m256i mp = _mm256_or_si256(m0, _mm256_slli_epi32(m1, 16));
#ifdef L4_VNNI256
      // avx2-vnni: each row's sub-block sum straight into int32 (VPDPBUSD), times its scale (VPMULLD): the same
      // integers as the pair sums through VPMADDWD below
      __m256i S0[NT], S1[NT];
      for (int t = 0; t < NT; t++) { S0[t] = _mm256_setzero_si256(); S1[t] = _mm256_setzero_si256(); }
      for (int v = 0; v < 8; v++) {
        __m256i V0, V1;
        codes(blk, h, k, v, V0, V1);
        for (int t = 0; t < NT; t++) {
          S0[t] = l4_dpbusd256(S0[t], V0, a2_bcast(y[t][i].qs, 16 * k + v));
          S1[t] = l4_dpbusd256(S1[t], V1, a2_bcast(y[t][i].qs, 16 * k + 8 + v));
        }
      }
      for (int t = 0; t < NT; t++)
        tot[t] = _mm256_add_epi32(tot[t], _mm256_add_epi32(_mm256_mullo_epi32(S0[t], sc0), _mm256_mullo_epi32(S1[t], sc1)));
#else
      const __m256i p0 = a2_pair(sc0), p1 = a2_pair(sc1);
      for (int v0 = 0; v0 < 8; v0 += VS) {
        __m256i S0[NT], S1[NT];
        for (int t = 0; t < NT; t++) { S0[t] = _mm256_setzero_si256(); S1[t] = _mm256_setzero_si256(); }
        for (int v = v0; v < v0 + VS; v++) {
          __m256i V0, V1;
          codes(blk, h, k, v, V0, V1);
          for (int t = 0; t < NT; t++) {
            S0[t] = _mm256_add_epi16(S0[t], _mm256_maddubs_epi16(V0, a2_bcast(y[t][i].qs, 16 * k + v)));
            S1[t] = _mm256_add_epi16(S1[t], _mm256_maddubs_epi16(V1, a2_bcast(y[t][i].qs, 16 * k + 8 + v)));
          }
        }
        for (int t = 0; t < NT; t++)
          tot[t] = _mm256_add_epi32(tot[t], _mm256_add_epi32(_mm256_madd_epi16(S0[t], p0), _mm256_madd_epi16(S1[t], p1)));
      }
#endif
      for (int t = 0; t < NT; t++) M[t] = _mm256_add_epi32(M[t], _mm256_madd_epi16(mp, _mm256_set1_epi32(p[t][4 * i + k])));
    }
    const __m256 dw = _mm256_cvtph_ps(_mm_loadu_si128((const __m128i*)(blk + 16 * h)));
    const __m256 dm = _mm256_cvtph_ps(_mm_loadu_si128((const __m128i*)(blk + R.dmin + 16 * h)));
    for (int t = 0; t < NT; t++) {
      const __m256 dy = _mm256_set1_ps(y[t][i].d);
      acc[t] = _mm256_fmadd_ps(_mm256_mul_ps(dw, dy), _mm256_cvtepi32_ps(tot[t]), acc[t]);
      acc[t] = _mm256_fnmadd_ps(_mm256_mul_ps(dm, dy), _mm256_cvtepi32_ps(M[t]), acc[t]);
    }
  }
};

// IQ4_XS: its codes index signed values (kvalues_iq4nl, −127..113, never 0) that VPMADDUBSW cannot take as its
// unsigned operand, and value + 128 would saturate its pair sums. So the sign goes onto the activation word
// (VPSIGNB) and |value| is the unsigned operand: a pair ≤ 2·127·127, one VPMADDWD per chunk with the rows' scales
// (ls − 32). VPSIGNB would turn an activation of −128 into −128, so the ActQ8K quantizers keep every code in
// −127..127 (x_quant_q8k, g_quant_q8k; −128 came from NaN/inf products, including those of blocks so small that
// 1/d overflowed, which now count as zero). Same integers as Q4R<IQ4XS> on AVX-512, same float step.
// kvalues_iq4nl and their magnitudes, in both 128-bit lanes (VPSHUFB tables)
struct A2Iq4Tables {
  int8_t value[32], mag[32];
  constexpr A2Iq4Tables() : value{}, mag{} {
    for (int i = 0; i < 32; i++) {
      value[i] = kvalues_iq4nl[i % 16];
      mag[i] = (int8_t)(kvalues_iq4nl[i % 16] < 0 ? -kvalues_iq4nl[i % 16] : kvalues_iq4nl[i % 16]);
    }
  }
};
alignas(32) static constexpr A2Iq4Tables a2_iq4_tables{};
struct A2IQ4XS {
  static constexpr R16Q4Layout R = kR16IQ4XS;
  static constexpr size_t SB = R.block, QS = R.codes;
  static constexpr int kPrep = 1;  // unused: no minimums, no offset
  static void prep(const ActQ8K*, int nb, int32_t* dst) { for (int i = 0; i < nb; i++) dst[i] = 0; }
  // Chunk v of sub-block j for the 8 rows of half h: |value| (a) and value (s, its sign for VPSIGNB) of the low
  // nibbles (chunk 8j + v) and of the high ones (8j + 4 + v).
  static inline void chunk(const uint8_t* blk, int h, int j, int v, __m256i& alo, __m256i& slo, __m256i& ahi, __m256i& shi) {
    const __m256i m4 = _mm256_set1_epi8(15);
    const __m256i vals = _mm256_load_si256((const __m256i*)a2_iq4_tables.value), mags = _mm256_load_si256((const __m256i*)a2_iq4_tables.mag);
    const __m256i L = _mm256_loadu_si256((const __m256i*)(blk + QS + 64 * (4 * j + v) + 32 * h));
    const __m256i lo = _mm256_and_si256(L, m4), hi = _mm256_and_si256(_mm256_srli_epi16(L, 4), m4);
    alo = _mm256_shuffle_epi8(mags, lo);
    slo = _mm256_shuffle_epi8(vals, lo);
    ahi = _mm256_shuffle_epi8(mags, hi);
    shi = _mm256_shuffle_epi8(vals, hi);
  }
  template <int NT>
  static inline void block(const uint8_t* blk, int h, const ActQ8K* const* y, int i, const int32_t* const*, __m256* acc) {
    const __m256i m15 = _mm256_set1_epi32(15), m3 = _mm256_set1_epi32(3);
    auto sb = [&](int p) { return a2_u8x8(blk + R.scales + 16 * p + 8 * h); };
    const __m256i sh = _mm256_or_si256(sb(0), _mm256_slli_epi32(sb(1), 8));  // scales_h, 2 bits per sub-block
    __m256i tot[NT];
    for (int t = 0; t < NT; t++) tot[t] = _mm256_setzero_si256();
    for (int j = 0; j < 8; j++) {  // sub-block j: vectors 4j..4j+3, chunks 8j + v (low nibbles) and 8j + 4 + v
      const __m256i ls = _mm256_or_si256(_mm256_and_si256(_mm256_srli_epi32(sb(2 + j / 2), 4 * (j % 2)), m15),
                                         _mm256_slli_epi32(_mm256_and_si256(_mm256_srli_epi32(sh, 2 * j), m3), 4));
#ifdef L4_VNNI256
      // avx2-vnni: the sub-block's eight chunks straight into int32 (VPDPBUSD), times (ls − 32) once (VPMULLD)
      __m256i S[NT];
      for (int t = 0; t < NT; t++) S[t] = _mm256_setzero_si256();
      for (int v = 0; v < 4; v++) {
        __m256i alo, slo, ahi, shi;
        chunk(blk, h, j, v, alo, slo, ahi, shi);
        for (int t = 0; t < NT; t++) {
          S[t] = l4_dpbusd256(S[t], alo, _mm256_sign_epi8(a2_bcast(y[t][i].qs, 8 * j + v), slo));
          S[t] = l4_dpbusd256(S[t], ahi, _mm256_sign_epi8(a2_bcast(y[t][i].qs, 8 * j + 4 + v), shi));
        }
      }
      const __m256i s32 = _mm256_sub_epi32(ls, _mm256_set1_epi32(32));
      for (int t = 0; t < NT; t++) tot[t] = _mm256_add_epi32(tot[t], _mm256_mullo_epi32(S[t], s32));
#else
      const __m256i sp = a2_pair(_mm256_sub_epi32(ls, _mm256_set1_epi32(32)));
      for (int v = 0; v < 4; v++) {
        __m256i alo, slo, ahi, shi;
        chunk(blk, h, j, v, alo, slo, ahi, shi);
        for (int t = 0; t < NT; t++) {
          const __m256i plo = _mm256_maddubs_epi16(alo, _mm256_sign_epi8(a2_bcast(y[t][i].qs, 8 * j + v), slo));
          const __m256i phi = _mm256_maddubs_epi16(ahi, _mm256_sign_epi8(a2_bcast(y[t][i].qs, 8 * j + 4 + v), shi));
          tot[t] = _mm256_add_epi32(tot[t], _mm256_add_epi32(_mm256_madd_epi16(plo, sp), _mm256_madd_epi16(phi, sp)));
        }
      }
#endif
    }
    const __m256 dw = _mm256_cvtph_ps(_mm_loadu_si128((const __m128i*)(blk + 16 * h)));
    for (int t = 0; t < NT; t++)
      acc[t] = _mm256_fmadd_ps(_mm256_mul_ps(dw, _mm256_set1_ps(y[t][i].d)), _mm256_cvtepi32_ps(tot[t]), acc[t]);
  }
};

// NT tokens × the rows [0, nrows) (a multiple of 16) of a chunk, each 16-row group as two 8-row halves (the
// second reads the group again, from cache). PF: prefetch the chunk's stream ahead (decode, small batches).
template <class F, int NT, bool PF>
static void r16_pass(int nb, const uint8_t* w, size_t rb, int nrows, const ActQ8K* const* y, const int32_t* const* p,
                       float* out, size_t outStride) {
  const uint8_t* pfp = w;
  for (int r = 0; r < nrows; r += 16) {
    const uint8_t* g = w + (size_t)r * rb;
    for (int h = 0; h < 2; h++) {
      __m256 acc[NT];
      for (int t = 0; t < NT; t++) acc[t] = _mm256_setzero_ps();
      for (int i = 0; i < nb; i++) {
        const uint8_t* blk = g + (size_t)i * F::SB;
        if (PF && h == 0) for (const uint8_t* e = blk + L4_PF_A2R16 * F::SB; pfp < e; pfp += 64) _mm_prefetch((const char*)pfp, _MM_HINT_T0);
        F::template block<NT>(blk, h, y, i, p, acc);
      }
      for (int t = 0; t < NT; t++) _mm256_storeu_ps(out + (size_t)t * outStride + r + 8 * h, acc[t]);
    }
  }
}
constexpr int kR16MaxTokens = 4;  // 16 ymm registers
#include "kern-r16-drivers.h"

static void fill_kquant_r16_avx2(KernelTable& t) {
  fill_r16<A2Q45<false>>(t, T_Q4_K_R16);
  fill_r16<A2Q45<true>>(t, T_Q5_K_R16);
  fill_r16<A2IQ4XS>(t, T_IQ4_XS_R16);
}
