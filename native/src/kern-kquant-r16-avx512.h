// q6_K, q4_K, q5_K and IQ4_XS repacked into groups of 16 rows (T_Q6_K_R16, T_Q4_K_R16, T_Q5_K_R16, T_IQ4_XS_R16,
// layouts in common.h) on AVX-512 VNNI: decode rows, prefill tiles and 2..16-token batches, included by
// kern-avx512.cc after kern-iquant-avx512.h (IQ4_XS's value table) and kern-kquant-avx512.h.
//
// Why: on the file layout a row's super-block ends in int32 lanes that must be scaled per sub-block and folded
// (kq6_dot: 4 VPDPBUSD + 4 VPMADDWD/VPDPWSSD + reductions per row and token), so an 8-token batch of the q6_K
// output head ran at half the rate of the q4_0 batch kernel, about 4 ms of a 30 ms 8-sequence step of bench-2b;
// and q4_K decode spent ~35 instructions per (row, super-block), half of them unpacking scales, so it streamed at
// ~18 GB/s of a core's ~30. Here the codes of 16 rows are stored "chunk-major" at load: lane r of a vector holds
// row r's codes of 4 consecutive elements, so one VPDPBUSD with a broadcast activation word adds 4 products to
// each of the 16 rows' sub-block sums, and the scales of 16 rows unpack in one set of vector operations. A
// sub-block is 4 (q6_K: 16 elements) or 8 (q4_K: 32) of them, then one VPMULLD by the 16 rows' scales and one
// add; nothing is reduced across lanes.
//
// Float structure, per (row, token), decode, tile and batch alike: per super-block exact integers
//   q6_K: t = Σ_s scale_s · Σ_{e in sub-block s} (q_e − 32)·y_e      (|t| ≤ 16·128·16·32·127 < 2^31)
//         acc = fma(d_w·d_y, float(t), acc)
//   q4_K, q5_K: t = Σ_j scale_j · Σ_{e in j} q_e·y_e,  m = Σ_j min_j · Σ_{e in j} y_e
//         (|t| ≤ 8·63·32·31·127, |m| ≤ 8·63·32·127)
//         acc = fma(d_w·d_y, float(t), acc); acc = fnmadd(dmin_w·d_y, float(m), acc)
//   IQ4_XS: t = Σ_j (ls_j − 32) · Σ_{e in j} kvalue(q_e)·y_e         (|t| ≤ 8·32·32·127·127)
//         acc = fma(d_w·d_y, float(t), acc)
// and the result is acc after the last super-block. Every kernel below is one pass function per format, doing
// exactly that per (row, token) whatever its token count, so a token's result does not depend on its batch. (The
// file-layout kernels keep their own structure; a kernel set reads a matrix in one layout only.) The layouts put
// a super-block's bytes in the order they are read (common.h).
//
// Prefetch along the chunk's one stream. Decode: into L1 up to the end of the super-block being read, i.e. one
// block ahead of where its reading starts (L4_PF_R16_1 quarters of a block), non-temporal (kern-x86.h, L4_PF);
// further ahead was slower on Zen 4 (q6_K at 4,096 bytes: T = 1 1.5x slower; q4_K at 1.5 to 3 blocks: bench-2b
// Q4_K_M decode 50-57 against 62-72 tok/s). Batches: 32 KiB ahead into L2; 8 tokens' activations fill most of
// L1, and weights prefetched into it were evicted before use (an 8-token product of the 32000 x 2048 q6_K head ran
// slower than on the file layout). With both, one thread, streamed from DRAM (bench/batch-kernels.ts --threads 1
// --types q6_k): T = 1 2.05 -> 1.67 ms, T = 8 6.8 -> 4.0 ms against the file-layout kernels.
#ifndef L4_PF_R16_1
#define L4_PF_R16_1 4
#endif
#ifndef L4_PF_R16_N
#define L4_PF_R16_N 32768
#endif
// The chunk's stream (pfp: next line to fetch) up to blk + one super-block (decode) or L4_PF_R16_N (batches).
template <int NT, size_t SB>
static inline void r16_prefetch(const uint8_t* blk, const uint8_t*& pfp) {
  if (NT == 1) for (const uint8_t* e = blk + L4_PF_R16_1 * SB / 4; pfp < e; pfp += 64) _mm_prefetch((const char*)pfp, _MM_HINT_NTA);
  else for (const uint8_t* e = blk + L4_PF_R16_N; pfp < e; pfp += 64) _mm_prefetch((const char*)pfp, _MM_HINT_T1);
}

struct Q6R {
  static constexpr size_t SB = kQ6R16Block;  // bytes of one super-block of a 16-row group

  // Per token and super-block: −32·Σy per sub-block of 16 (the offset term of q − 32), as int32 to broadcast.
  static constexpr int kPrep = 16;
  static void prep(const ActQ8K* y, int nb, int32_t* dst) {
    for (int i = 0; i < nb; i++)
      for (int s = 0; s < 16; s++) dst[16 * i + s] = -32 * (int32_t)y[i].bsums[s];
  }

  // Codes 0..63 of sub-block s = 8(j / 2) + j % 2 + 2M (elements 16s..16s+15, chunks c = 4s + v, v = 0..3) from
  // segment j (common.h): V[v] lane r = row r's codes of elements 4c..4c+3. Low 4 bits: nibble M / 2 of QL vector
  // 4(M % 2) + v; high 2 bits: field M (bits 2M, 2M+1 of every byte) of QH vector v.
  template <int M>
  static inline void codes(const uint8_t* seg, __m512i V[4]) {
    const __m512i m4 = _mm512_set1_epi8(15), m30 = _mm512_set1_epi8(0x30);
    for (int v = 0; v < 4; v++) {
      __m512i L = _mm512_loadu_si512(seg + kQ6R16SegQL + 256 * (M % 2) + 64 * v);
      if (M >= 2) L = _mm512_srli_epi16(L, 4);  // the high nibbles (the byte above's bits land in 4..7, masked off)
      __m512i H = _mm512_loadu_si512(seg + kQ6R16SegQH + 64 * v);
      if (M == 0) H = _mm512_slli_epi16(H, 4);  // field M to bits 4-5 (16-bit shifts: the bits kept never cross bytes)
      if (M == 1) H = _mm512_slli_epi16(H, 2);
      if (M == 3) H = _mm512_srli_epi16(H, 2);
      V[v] = _mm512_ternarylogic_epi32(_mm512_and_si512(H, m30), L, m4, 0xF8);  // (H & 0x30) | (L & 15)
    }
  }
  // Sub-block s = 8(j / 2) + j % 2 + 2M of one super-block for NT tokens: tot[t] += scale_s · Σ (q − 32)·y per row.
  template <int M, int NT>
  static inline void subblock(const uint8_t* seg, int j, const int8_t* const* yq, const int32_t* const* off, __m512i* tot) {
    const int s = 8 * (j / 2) + j % 2 + 2 * M;  // q6r16_subblock
    __m512i V[4];
    codes<M>(seg, V);
    const __m512i sc = _mm512_cvtepi8_epi32(_mm_loadu_si128((const __m128i*)(seg + 16 * M)));
    for (int t = 0; t < NT; t++) {
      const int32_t* q = (const int32_t*)(yq[t] + 16 * s);
      __m512i S = _mm512_set1_epi32(off[t][s]);
      for (int v = 0; v < 4; v++) S = dpbusd_bcst(S, V[v], q + v);
      tot[t] = _mm512_add_epi32(tot[t], _mm512_mullo_epi32(S, sc));
    }
  }
  // One super-block of a 16-row group for NT tokens: acc[t] (lane r = row r) takes its float step.
  template <int NT>
  static inline void block(const uint8_t* blk, const ActQ8K* const* y, int i, const int32_t* const* off, __m512* acc) {
    const int8_t* yq[NT];
    const int32_t* o[NT];
    __m512i tot[NT];
    for (int t = 0; t < NT; t++) { yq[t] = y[t][i].qs; o[t] = off[t] + 16 * i; tot[t] = _mm512_setzero_si512(); }
    for (int j = 0; j < 4; j++) {  // segment by segment: the block is read front to back
      const uint8_t* seg = blk + q6r16_seg(j);
      subblock<0, NT>(seg, j, yq, o, tot);
      subblock<1, NT>(seg, j, yq, o, tot);
      subblock<2, NT>(seg, j, yq, o, tot);
      subblock<3, NT>(seg, j, yq, o, tot);
    }
    const __m512 dw = _mm512_cvtph_ps(_mm256_loadu_si256((const __m256i*)blk));
    for (int t = 0; t < NT; t++)
      acc[t] = _mm512_fmadd_ps(_mm512_mul_ps(dw, _mm512_set1_ps(y[t][i].d)), _mm512_cvtepi32_ps(tot[t]), acc[t]);
  }
};

// q4_K, q5_K and IQ4_XS share the QS layout (4-bit codes, 16 rows, chunk-major; common.h) and so one pass: q5_K
// adds each code's 5th bit from its QH vectors; IQ4_XS looks its codes up (kvalues_iq4nl + 128, VPSHUFB) where the
// K-quants take them as they are, has signed 6-bit scales (ls − 32) and no minimums, and starts each sub-block sum
// at −128·Σy to undo the +128.
enum Q4Fmt : int { Q4F_Q4K = 0, Q4F_IQ4XS = 1, Q4F_Q5K = 2 };
template <int FMT>
struct Q4R {
  static constexpr bool IQ4 = FMT == Q4F_IQ4XS, Q5 = FMT == Q4F_Q5K;
  // bytes of one super-block of a 16-row group; offsets of the codes (and q5_K's 5th bits) in it
  static constexpr R16Q4Layout R = IQ4 ? kR16IQ4XS : Q5 ? kR16Q5K : kR16Q4K;
  static constexpr size_t SB = R.block, QS = R.codes, QH = R.qh;

  // Per token and super-block. q4_K, q5_K: (Σy of sub-block 2k, of 2k + 1) as an int16 pair, k = 0..3 (|Σ| ≤ 32·127:
  // exact). IQ4_XS: −128·Σy of sub-block j, j = 0..7.
  static constexpr int kPrep = IQ4 ? 8 : 4;
  static void prep(const ActQ8K* y, int nb, int32_t* dst) {
    for (int i = 0; i < nb; i++)
      for (int j = 0; j < 8; j += 2) {
        const int a = y[i].bsums[2 * j] + y[i].bsums[2 * j + 1], b = y[i].bsums[2 * j + 2] + y[i].bsums[2 * j + 3];
        if (IQ4) { dst[8 * i + j] = -128 * a; dst[8 * i + j + 1] = -128 * b; }
        else dst[4 * i + j / 2] = (int32_t)((uint32_t)(uint16_t)a | (uint32_t)(uint16_t)b << 16);
      }
  }
  // Byte p of the 16 rows' packed scales as int32 lanes.
  static inline __m512i sbyte(const uint8_t* blk, int p) {
    return _mm512_cvtepu8_epi32(_mm_loadu_si128((const __m128i*)(blk + R.scales + 16 * p)));
  }
  // The 16 rows' scale (sc) and, for the K-quants, minimum (m) of sub-block j. q4_K, q5_K: ggml's get_scale_min_k4, 16 rows at
  // once. IQ4_XS: ls − 32, ls = 4 bits of scales_l[j / 2] (bytes 2..5) and 2 of scales_h (bytes 0, 1).
  static inline void scale_min(const uint8_t* blk, int j, __m512i& sc, __m512i& m) {
    const __m512i m63 = _mm512_set1_epi32(63), m15 = _mm512_set1_epi32(15);
    if (IQ4) {
      const __m512i h = _mm512_srli_epi32(_mm512_or_si512(sbyte(blk, 0), _mm512_slli_epi32(sbyte(blk, 1), 8)), 2 * j);
      const __m512i l = _mm512_and_si512(_mm512_srli_epi32(sbyte(blk, 2 + j / 2), 4 * (j % 2)), m15);
      sc = _mm512_sub_epi32(_mm512_or_si512(l, _mm512_slli_epi32(_mm512_and_si512(h, _mm512_set1_epi32(3)), 4)), _mm512_set1_epi32(32));
      m = _mm512_setzero_si512();
    } else if (j < 4) {
      sc = _mm512_and_si512(sbyte(blk, j), m63);
      m = _mm512_and_si512(sbyte(blk, j + 4), m63);
    } else {
      const __m512i q = sbyte(blk, j + 4);
      sc = _mm512_or_si512(_mm512_and_si512(q, m15), _mm512_slli_epi32(_mm512_srli_epi32(sbyte(blk, j - 4), 6), 4));
      m = _mm512_or_si512(_mm512_srli_epi32(q, 4), _mm512_slli_epi32(_mm512_srli_epi32(sbyte(blk, j), 6), 4));
    }
  }
  // Codes of a QS vector's low (H = 0) or high nibbles as VPDPBUSD's unsigned operand; q5_K: plus bit `bit` of
  // every byte of its QH vector Hq as bit 4 (16-bit shifts: bit 4 of each byte comes from the same byte).
  template <int H>
  static inline __m512i codes(__m512i L, __m512i m4, __m512i lut, __m512i Hq = _mm512_setzero_si512(), int bit = 0) {
    const __m512i c = _mm512_and_si512(H ? _mm512_srli_epi16(L, 4) : L, m4);
    if (Q5) {
      const __m512i hs = bit <= 4 ? _mm512_slli_epi16(Hq, 4 - bit) : _mm512_srli_epi16(Hq, bit - 4);
      return _mm512_ternarylogic_epi32(c, hs, _mm512_set1_epi8(16), 0xF8);  // c | (hs & 16)
    }
    return IQ4 ? _mm512_shuffle_epi8(lut, c) : c;
  }
  // IQ4_XS: the 16 rows' ls − 32 of all 8 sub-blocks (scale_min's values), the high bits unpacked once per
  // super-block instead of once per sub-block.
  static inline void iq4_scales(const uint8_t* blk, __m512i sc[8]) {
    const __m512i h = _mm512_or_si512(sbyte(blk, 0), _mm512_slli_epi32(sbyte(blk, 1), 8));
    const __m512i m15 = _mm512_set1_epi32(15), m48 = _mm512_set1_epi32(48), b32 = _mm512_set1_epi32(32);
    for (int j = 0; j < 8; j++) {
      const __m512i l = sbyte(blk, 2 + j / 2), lo = j % 2 ? _mm512_srli_epi32(l, 4) : l;
      const __m512i hs = _mm512_and_si512(2 * j >= 4 ? _mm512_srli_epi32(h, 2 * j - 4) : _mm512_slli_epi32(h, 4 - 2 * j), m48);
      sc[j] = _mm512_sub_epi32(_mm512_ternarylogic_epi32(lo, m15, hs, 0xEA), b32);  // (lo & 15) | hs, − 32
    }
  }
  // Start of sub-block j's sum for token t's super-block.
  static inline __m512i start(const int32_t* p, int j) { return IQ4 ? _mm512_set1_epi32(p[j]) : _mm512_setzero_si512(); }

  // One super-block of a 16-row group for NT tokens: acc[t] (lane r = row r) takes its float steps.
  template <int NT>
  static inline void block(const uint8_t* blk, const ActQ8K* const* y, int i, const int32_t* const* ys, __m512* acc) {
    const __m512i m4 = _mm512_set1_epi8(15), lut = IQ4 ? iq4x_table() : _mm512_setzero_si512();
    const int32_t* p[NT];
    for (int t = 0; t < NT; t++) p[t] = ys[t] + kPrep * i;
    // M: Σ_j min_j·Σy_j (q4_K), the minimums of sub-blocks 2k, 2k+1 paired as int16 against p's pair k
    __m512i tot[NT], M[NT];
    for (int t = 0; t < NT; t++) { tot[t] = _mm512_setzero_si512(); M[t] = _mm512_setzero_si512(); }
    if constexpr (NT <= 4) {
      // few tokens: each QS vector loaded once for both its sub-blocks, each scale byte unpacked once
      __m512i isc[8];
      if constexpr (IQ4) iq4_scales(blk, isc);
      for (int k = 0; k < 4; k++) {
        __m512i sc0, m0, sc1, m1, S0[NT], S1[NT];
        if constexpr (IQ4) { sc0 = isc[2 * k]; sc1 = isc[2 * k + 1]; m0 = m1 = _mm512_setzero_si512(); }
        else { scale_min(blk, 2 * k, sc0, m0); scale_min(blk, 2 * k + 1, sc1, m1); }
        for (int t = 0; t < NT; t++) { S0[t] = start(p[t], 2 * k); S1[t] = start(p[t], 2 * k + 1); }
        for (int v = 0; v < 8; v++) {
          const __m512i L = _mm512_loadu_si512(blk + QS + 64 * (8 * k + v));
          const __m512i Hq = Q5 ? _mm512_loadu_si512(blk + QH + 64 * v) : _mm512_setzero_si512();
          const __m512i V0 = codes<0>(L, m4, lut, Hq, 2 * k), V1 = codes<1>(L, m4, lut, Hq, 2 * k + 1);
          for (int t = 0; t < NT; t++) {
            const int32_t* q = (const int32_t*)y[t][i].qs;
            if (IQ4) {  // vector 8k + v: sub-block 2k + v / 4, chunks 16k + 8(v / 4) + v % 4 (low) and + 4 (high)
              __m512i& S = v < 4 ? S0[t] : S1[t];
              const int c = 16 * k + 8 * (v / 4) + v % 4;
              S = dpbusd_bcst(dpbusd_bcst(S, V0, q + c), V1, q + c + 4);
            } else {  // vector 8k + v: chunk 16k + v of sub-block 2k (low), 16k + 8 + v of 2k + 1 (high)
              S0[t] = dpbusd_bcst(S0[t], V0, q + 16 * k + v);
              S1[t] = dpbusd_bcst(S1[t], V1, q + 16 * k + 8 + v);
            }
          }
        }
        const __m512i mp = _mm512_or_si512(m0, _mm512_slli_epi32(m1, 16));
        for (int t = 0; t < NT; t++) {
          tot[t] = _mm512_add_epi32(tot[t], _mm512_add_epi32(_mm512_mullo_epi32(S0[t], sc0), _mm512_mullo_epi32(S1[t], sc1)));
          if (!IQ4) M[t] = _mm512_dpwssd_epi32(M[t], mp, _mm512_set1_epi32(p[t][k]));
        }
      }
    } else {
      // 8 tokens' sums fill the registers: one sub-block at a time, the minimums afterwards (same integers)
      __m512i isc[8];
      if constexpr (IQ4) iq4_scales(blk, isc);
      for (int j = 0; j < 8; j++) {  // sub-block j
        __m512i sc, m;
        if constexpr (IQ4) sc = isc[j];
        else scale_min(blk, j, sc, m);
        __m512i S[NT];
        for (int t = 0; t < NT; t++) S[t] = start(p[t], j);
        if (IQ4) {  // vectors 4j..4j+3: chunk 8j + v (low nibbles) and 8j + 4 + v (high)
          for (int v = 0; v < 4; v++) {
            const __m512i L = _mm512_loadu_si512(blk + QS + 64 * (4 * j + v));
            const __m512i V0 = codes<0>(L, m4, lut), V1 = codes<1>(L, m4, lut);
            for (int t = 0; t < NT; t++) {
              const int32_t* q = (const int32_t*)y[t][i].qs;
              S[t] = dpbusd_bcst(dpbusd_bcst(S[t], V0, q + 8 * j + v), V1, q + 8 * j + 4 + v);
            }
          }
        } else {  // vectors 8(j / 2)..+7: chunk 8j + v, low (j even) or high nibbles
          for (int v = 0; v < 8; v++) {
            const __m512i L = _mm512_loadu_si512(blk + QS + 64 * (8 * (j / 2) + v));
            const __m512i Hq = Q5 ? _mm512_loadu_si512(blk + QH + 64 * v) : _mm512_setzero_si512();
            const __m512i V = j % 2 ? codes<1>(L, m4, lut, Hq, j) : codes<0>(L, m4, lut, Hq, j);
            for (int t = 0; t < NT; t++) S[t] = dpbusd_bcst(S[t], V, (const int32_t*)y[t][i].qs + 8 * j + v);
          }
        }
        for (int t = 0; t < NT; t++) tot[t] = _mm512_add_epi32(tot[t], _mm512_mullo_epi32(S[t], sc));
      }
      if (!IQ4)
        for (int k = 0; k < 4; k++) {
          __m512i sc, m0, m1;
          scale_min(blk, 2 * k, sc, m0);
          scale_min(blk, 2 * k + 1, sc, m1);
          const __m512i mp = _mm512_or_si512(m0, _mm512_slli_epi32(m1, 16));
          for (int t = 0; t < NT; t++) M[t] = _mm512_dpwssd_epi32(M[t], mp, _mm512_set1_epi32(p[t][k]));
        }
    }
    const __m512 dw = _mm512_cvtph_ps(_mm256_loadu_si256((const __m256i*)blk));
    const __m512 dm = IQ4 ? dw : _mm512_cvtph_ps(_mm256_loadu_si256((const __m256i*)(blk + R.dmin)));
    for (int t = 0; t < NT; t++) {
      const __m512 dy = _mm512_set1_ps(y[t][i].d);
      acc[t] = _mm512_fmadd_ps(_mm512_mul_ps(dw, dy), _mm512_cvtepi32_ps(tot[t]), acc[t]);
      if (!IQ4) acc[t] = _mm512_fnmadd_ps(_mm512_mul_ps(dm, dy), _mm512_cvtepi32_ps(M[t]), acc[t]);
    }
  }
};

// NT tokens × the rows [0, nrows) (a multiple of 16) of a chunk of format F: out[t·outStride + r]. PF: prefetch the
// chunk's one contiguous stream ahead (decode and small batches read the weights from DRAM once per call).
template <class F, int NT, bool PF>
static void r16_pass(int nb, const uint8_t* w, size_t rb, int nrows, const ActQ8K* const* y, const int32_t* const* p,
                     float* out, size_t outStride) {
  const uint8_t* pfp = w;
  for (int r = 0; r < nrows; r += 16) {
    const uint8_t* g = w + (size_t)r * rb;
    __m512 acc[NT];
    for (int t = 0; t < NT; t++) acc[t] = _mm512_setzero_ps();
    for (int i = 0; i < nb; i++) {
      const uint8_t* blk = g + (size_t)i * F::SB;
      if (PF) r16_prefetch<NT, F::SB>(blk, pfp);
      F::template block<NT>(blk, y, i, p, acc);
    }
    for (int t = 0; t < NT; t++) _mm512_storeu_ps(out + (size_t)t * outStride + r, acc[t]);
  }
}
constexpr int kR16MaxTokens = 8;  // 8 tokens' accumulators and sums fit the 32 zmm registers
#include "kern-r16-drivers.h"

static void fill_kquant_r16(KernelTable& t) {
  fill_r16<Q6R>(t, T_Q6_K_R16);
  fill_r16<Q4R<Q4F_Q4K>>(t, T_Q4_K_R16);
  fill_r16<Q4R<Q4F_Q5K>>(t, T_Q5_K_R16);
  fill_r16<Q4R<Q4F_IQ4XS>>(t, T_IQ4_XS_R16);
}
