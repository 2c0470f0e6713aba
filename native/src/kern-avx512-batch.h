// Small-batch decode kernels (2..16 tokens: continuous batching, MoE experts that several sequences chose) on
// AVX-512 VNNI, included by the AVX-512 translation unit after kern-x86-r8.h. The q4_0 one is also the prefill
// tile of this kernel set (any number of tokens, 8 per pass).
//
// Decode of a batch is a matvec per token over the same weights: the weights should stream from DRAM once for all
// tokens, and the arithmetic per (weight block, token) must be small enough that B tokens cost about one token's
// memory time. The prefill tile spends ~28 instructions per (8-row block, token), most of them horizontal adds that
// reduce per-element products to per-row sums; at 8 tokens that is compute-bound at several times the decode time.
// Here the codes of a block of 16 rows (two R8 groups) are transposed once into "chunk-major" vectors — lane r holds
// row r's 4 codes of elements 4c..4c+3 — so each token's 16 row sums are 8 VPDPBUSD with a broadcast activation
// word and no reduction at all: about 14 instructions per (16-row block, token), plus the float step.
//
// Batch invariance: the integer block sums are exact whatever the instructions, and the float step per (row, token)
// is x_rows_r8's exactly (acc += (dw·d_y)·Σ(q−8)·v, lanes = rows; the −8·Σv starts the integer sum), so every
// result is bit-identical to decode's (T = 1) and the prefill tile's. Leftover rows (N % 16 == 8) go to the
// R8 tile, which is bit-identical too.

// Block i of two q4_0 R8 groups (a = rows 0..7, b = rows 8..15) as 8 chunk-major vectors of codes 0..15:
// V[c] lane r = codes of elements 4c..4c+3 of row r (c < 4: low nibbles; c >= 4: high nibbles, elements 16 + ...).
static inline void b16_q4_codes(const uint8_t* a, const uint8_t* b, __m512i V[8]) {
  // L[k]: 128-bit lanes = [row k | row k+4] of a, then of b; each row is 16 bytes = 4 words w0..w3
  __m512i L[4];
  for (int k = 0; k < 4; k++)
    L[k] = _mm512_inserti64x4(_mm512_castsi256_si512(_mm256_loadu_si256((const __m256i*)(a + 32 * k))),
                              _mm256_loadu_si256((const __m256i*)(b + 32 * k)), 1);
  // 4x4 transpose of words inside every 128-bit lane: W[c] lane r = word c of row r (rows in natural order)
  const __m512i t0 = _mm512_unpacklo_epi32(L[0], L[1]), t1 = _mm512_unpackhi_epi32(L[0], L[1]);
  const __m512i t2 = _mm512_unpacklo_epi32(L[2], L[3]), t3 = _mm512_unpackhi_epi32(L[2], L[3]);
  const __m512i W[4] = {_mm512_unpacklo_epi64(t0, t2), _mm512_unpackhi_epi64(t0, t2), _mm512_unpacklo_epi64(t1, t3),
                        _mm512_unpackhi_epi64(t1, t3)};
  const __m512i m4 = _mm512_set1_epi8(15);
  for (int c = 0; c < 4; c++) {
    V[c] = _mm512_and_si512(W[c], m4);
    V[c + 4] = _mm512_and_si512(_mm512_srli_epi16(W[c], 4), m4);
  }
}

// acc + VPDPBUSD(a, the int32 at p broadcast) with the broadcast folded into the instruction ({1to16}): GCC loads
// _mm512_set1_epi32(*p) with a separate VPBROADCASTD, one more instruction per 64 products.
static inline __m512i dpbusd_bcst(__m512i acc, __m512i a, const int32_t* p) {
#if defined(__GNUC__)
  asm("vpdpbusd %2%{1to16%}, %1, %0" : "+v"(acc) : "v"(a), "m"(*p));
  return acc;
#else
  return _mm512_dpbusd_epi32(acc, a, _mm512_set1_epi32(*p));
#endif
}

// NT tokens × the 16 rows of groups ga, gb: out[t·outStride + r] (weights q4_0 R8 or R16, activations ActQ8).
// Prefetches the weight streams (pfa, pfb: next lines to fetch), as decode does: every weight byte comes from DRAM
// once per call. I16: the R16 layout (blocks 2·GB apart, codes stored chunk-major, so no transpose): one stream,
// fetched by pfa.
template <int NT, bool I16>
static inline void b16_q4_pass(int nb, const uint8_t* ga, const uint8_t* gb, const uint8_t* act, size_t actStride,
                               float* out, size_t outStride, const uint8_t*& pfa, const uint8_t*& pfb) {
  constexpr size_t GB = 8 * 18;
  const ActQ8* y[NT];
  for (int t = 0; t < NT; t++) y[t] = (const ActQ8*)(act + (size_t)t * actStride);
  __m512 acc[NT];
  for (int t = 0; t < NT; t++) acc[t] = _mm512_setzero_ps();
  for (int i = 0; i < nb; i++) {
    const uint8_t* a = ga + (size_t)i * (I16 ? 2 * GB : GB);
    const uint8_t* b = gb + (size_t)i * (I16 ? 2 * GB : GB);
    for (const uint8_t* end = a + (I16 ? 2 * L4_PF_R8 : L4_PF_R8); pfa < end; pfa += 64) _mm_prefetch((const char*)pfa, NT == 1 ? _MM_HINT_NTA : _MM_HINT_T0);
    if (!I16) for (const uint8_t* end = b + L4_PF_R8; pfb < end; pfb += 64) _mm_prefetch((const char*)pfb, NT == 1 ? _MM_HINT_NTA : _MM_HINT_T0);
    __m512i V[8];
    __m512 dw;
    if (I16) {  // R16: the 16 scales, then the codes already chunk-major (common.h)
      const __m512i m4 = _mm512_set1_epi8(15);
      for (int c = 0; c < 4; c++) {
        const __m512i W = _mm512_loadu_si512(a + kQ40R16Codes + 64 * c);
        V[c] = _mm512_and_si512(W, m4);
        V[c + 4] = _mm512_and_si512(_mm512_srli_epi16(W, 4), m4);
      }
      dw = _mm512_cvtph_ps(_mm256_loadu_si256((const __m256i*)a));
    } else {
      b16_q4_codes(a + 16, b + 16, V);
      dw = _mm512_cvtph_ps(_mm256_inserti128_si256(_mm256_castsi128_si256(_mm_loadu_si128((const __m128i*)a)),
                                                   _mm_loadu_si128((const __m128i*)b), 1));
    }
    for (int t = 0; t < NT; t++) {
      const int32_t* q = (const int32_t*)y[t][i].qs;
      // Σ(q−8)·v: the offset's −8·Σv starts the sum. With 4+ tokens their chains run side by side, so one chain of
      // 8 VPDPBUSD per token; fewer tokens split it in two to halve its latency.
      __m512i s0 = _mm512_set1_epi32(-8 * y[t][i].isum), s;
      if constexpr (NT >= 4) {
        for (int c = 0; c < 8; c++) s0 = dpbusd_bcst(s0, V[c], q + c);
        s = s0;
      } else {
        __m512i s1 = _mm512_setzero_si512();
        for (int c = 0; c < 4; c++) {
          s0 = dpbusd_bcst(s0, V[c], q + c);
          s1 = dpbusd_bcst(s1, V[c + 4], q + c + 4);
        }
        s = _mm512_add_epi32(s0, s1);
      }
      // x_rows_r8's float step (q0_block), 16 rows wide
      acc[t] = _mm512_fmadd_ps(_mm512_mul_ps(dw, _mm512_set1_ps(y[t][i].d)), _mm512_cvtepi32_ps(s), acc[t]);
    }
  }
  for (int t = 0; t < NT; t++) _mm512_storeu_ps(out + (size_t)t * outStride, acc[t]);
}

// ---- q8_0 R8: the same scheme. Codes are signed, VPDPBUSD wants unsigned × signed: (q + 128)·v summed, minus
// 128·Σv (the activation block's exact integer sum), gives Σq·v exactly. The codes of 16 rows (8 words each) are
// transposed with an 8 × 8 word transpose in each 256-bit half.
static inline void b16_q8_codes(const uint8_t* a, const uint8_t* b, __m512i V[8]) {
  __m512i R[8];
  for (int j = 0; j < 8; j++)
    R[j] = _mm512_inserti64x4(_mm512_castsi256_si512(_mm256_loadu_si256((const __m256i*)(a + 32 * j))),
                              _mm256_loadu_si256((const __m256i*)(b + 32 * j)), 1);
  __m512i t[8], u[8];
  for (int j = 0; j < 4; j++) {
    t[2 * j] = _mm512_unpacklo_epi32(R[2 * j], R[2 * j + 1]);
    t[2 * j + 1] = _mm512_unpackhi_epi32(R[2 * j], R[2 * j + 1]);
  }
  u[0] = _mm512_unpacklo_epi64(t[0], t[2]); u[1] = _mm512_unpackhi_epi64(t[0], t[2]);
  u[2] = _mm512_unpacklo_epi64(t[1], t[3]); u[3] = _mm512_unpackhi_epi64(t[1], t[3]);
  u[4] = _mm512_unpacklo_epi64(t[4], t[6]); u[5] = _mm512_unpackhi_epi64(t[4], t[6]);
  u[6] = _mm512_unpacklo_epi64(t[5], t[7]); u[7] = _mm512_unpackhi_epi64(t[5], t[7]);
  // within each 256-bit half: [x.lane0 | y.lane0] (words 0..3) and [x.lane1 | y.lane1] (words 4..7)
  const __m512i lo = _mm512_setr_epi64(0, 1, 8, 9, 4, 5, 12, 13), hi = _mm512_setr_epi64(2, 3, 10, 11, 6, 7, 14, 15);
  const __m512i flip = _mm512_set1_epi8((char)0x80);
  for (int c = 0; c < 4; c++) {
    V[c] = _mm512_xor_si512(_mm512_permutex2var_epi64(u[c], lo, u[c + 4]), flip);
    V[c + 4] = _mm512_xor_si512(_mm512_permutex2var_epi64(u[c], hi, u[c + 4]), flip);
  }
}
// (q8_0 has no R16 layout: two R8 group streams.)
template <int NT>
static inline void b16_q8_pass(int nb, const uint8_t* ga, const uint8_t* gb, const uint8_t* act, size_t actStride,
                               float* out, size_t outStride, const uint8_t*& pfa, const uint8_t*& pfb) {
  constexpr size_t GB = 8 * 34;
  const ActQ8* y[NT];
  for (int t = 0; t < NT; t++) y[t] = (const ActQ8*)(act + (size_t)t * actStride);
  __m512 acc[NT];
  for (int t = 0; t < NT; t++) acc[t] = _mm512_setzero_ps();
  for (int i = 0; i < nb; i++) {
    const uint8_t* a = ga + (size_t)i * GB;
    const uint8_t* b = gb + (size_t)i * GB;
    for (const uint8_t* end = a + L4_PF_R8; pfa < end; pfa += 64) _mm_prefetch((const char*)pfa, _MM_HINT_T0);
    for (const uint8_t* end = b + L4_PF_R8; pfb < end; pfb += 64) _mm_prefetch((const char*)pfb, _MM_HINT_T0);
    __m512i V[8];
    b16_q8_codes(a + 16, b + 16, V);
    const __m512 dw = _mm512_cvtph_ps(_mm256_inserti128_si256(_mm256_castsi128_si256(_mm_loadu_si128((const __m128i*)a)),
                                                              _mm_loadu_si128((const __m128i*)b), 1));
    for (int t = 0; t < NT; t++) {
      const int32_t* q = (const int32_t*)y[t][i].qs;
      // word c of the activations pairs with V[c] (elements 4c..4c+3)
      __m512i s0 = _mm512_set1_epi32(-128 * y[t][i].isum), s1 = _mm512_setzero_si512();
      for (int c = 0; c < 4; c++) {
        s0 = dpbusd_bcst(s0, V[c], q + c);
        s1 = dpbusd_bcst(s1, V[c + 4], q + c + 4);
      }
      acc[t] = _mm512_fmadd_ps(_mm512_mul_ps(dw, _mm512_set1_ps(y[t][i].d)), _mm512_cvtepi32_ps(_mm512_add_epi32(s0, s1)), acc[t]);
    }
  }
  for (int t = 0; t < NT; t++) _mm512_storeu_ps(out + (size_t)t * outStride, acc[t]);
}

// Runs PASS<NT> over 16-row blocks and tokens in passes of 8; leftover 8 rows go to the R8 tile (same bits; R16
// matrices have none).
template <bool Q4, bool I16 = false>
static void b16_r8(int K, const uint8_t* w, size_t rowBytes, int nrows, const uint8_t* act, size_t actStride, int ntok,
                   float* out, size_t outStride) {
  const int nb = K / 32;
  constexpr size_t GB = Q4 ? 8 * 18 : 8 * 34;
  const uint8_t *pfa = w, *pfb = w + 8 * rowBytes;
  int r = 0;
  for (; r + 16 <= nrows; r += 16) {
    const uint8_t* ga = w + (size_t)r * rowBytes;
    const uint8_t* gb = I16 ? ga + GB : ga + 8 * rowBytes;
    if (pfa < ga) pfa = ga;
    if (pfb < gb) pfb = gb;
    for (int t = 0; t < ntok; t += 8) {
      const uint8_t* at = act + (size_t)t * actStride;
      float* o = out + (size_t)t * outStride + r;
      with_token_count<8>(std::min(8, ntok - t), [&](auto n) {
        if constexpr (Q4) b16_q4_pass<decltype(n)::value, I16>(nb, ga, gb, at, actStride, o, outStride, pfa, pfb);
        else b16_q8_pass<decltype(n)::value>(nb, ga, gb, at, actStride, o, outStride, pfa, pfb);
      });
    }
  }
  if (!I16 && r < nrows) x_tile_r8<Q4>(K, w + (size_t)r * rowBytes, rowBytes, nrows - r, act, actStride, ntok, out + r, outStride);
}
// Decode (one token) on R16: the 16-row kernel, whose float steps are x_rows_r8's (so R8 and R16 give the same bits).
static void b16_rows_r16(int K, const uint8_t* w, size_t rowBytes, int nrows, const void* act, float* out, bool) {
  b16_r8<true, true>(K, w, rowBytes, nrows, (const uint8_t*)act, 0, 1, out, 0);
}

static void fill_avx512_batch(KernelTable& t) {
  // prefill too: about half the instructions per (block, token) of the AVX2 tiles, same bits
  t.batch[T_Q4_0_R8] = t.tile[T_Q4_0_R8] = b16_r8<true>;
  t.batch[T_Q8_0_R8] = t.tile[T_Q8_0_R8] = b16_r8<false>;
  // q6_K's small-batch kernel is kq_tile_q6_k<true> (kern-kquant-avx512.h)
  t.rows[T_Q4_0_R16] = b16_rows_r16;
  t.act[T_Q4_0_R16] = ACT_Q8;
  t.batch[T_Q4_0_R16] = t.tile[T_Q4_0_R16] = b16_r8<true, true>;
}
