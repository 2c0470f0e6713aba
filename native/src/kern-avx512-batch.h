// Small-batch decode kernels (2..16 tokens: continuous batching, MoE experts that several sequences chose) on
// AVX-512 VNNI, included by the AVX-512 translation unit after kern-x86-r8.h.
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
// is x_rows_r8's exactly (dd = dw·d_y; acc += dd·sum; corr += dd·Σv; acc − 8·corr at the end, lanes = rows), so
// every result is bit-identical to decode's (T = 1) and the prefill tile's. Leftover rows (N % 16 == 8) go to the
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

// out[t·outStride + r] for r < nrows (a multiple of 8), t < ntok; weights q4_0 R8, activations ActQ8.
// Prefetches the weight stream (this is a decode kernel: every byte comes from DRAM once per call).
template <int NT>
static inline void b16_q4_pass(int nb, const uint8_t* ga, const uint8_t* gb, const uint8_t* act, size_t actStride,
                               float* out, size_t outStride, const uint8_t*& pfa, const uint8_t*& pfb) {
  constexpr size_t GB = 8 * 18;
  const ActQ8* y[NT];
  for (int t = 0; t < NT; t++) y[t] = (const ActQ8*)(act + (size_t)t * actStride);
  __m512 acc[NT], corr[NT];
  for (int t = 0; t < NT; t++) { acc[t] = _mm512_setzero_ps(); corr[t] = _mm512_setzero_ps(); }
  for (int i = 0; i < nb; i++) {
    const uint8_t* a = ga + (size_t)i * GB;
    const uint8_t* b = gb + (size_t)i * GB;
    for (const uint8_t* end = a + L4_PF_R8; pfa < end; pfa += 64) _mm_prefetch((const char*)pfa, _MM_HINT_T0);
    for (const uint8_t* end = b + L4_PF_R8; pfb < end; pfb += 64) _mm_prefetch((const char*)pfb, _MM_HINT_T0);
    __m512i V[8];
    b16_q4_codes(a + 16, b + 16, V);
    const __m512 dw = _mm512_cvtph_ps(_mm256_inserti128_si256(_mm256_castsi128_si256(_mm_loadu_si128((const __m128i*)a)),
                                                              _mm_loadu_si128((const __m128i*)b), 1));
    for (int t = 0; t < NT; t++) {
      const int32_t* q = (const int32_t*)y[t][i].qs;
      __m512i s0 = _mm512_setzero_si512(), s1 = _mm512_setzero_si512();
      for (int c = 0; c < 4; c++) {
        s0 = _mm512_dpbusd_epi32(s0, V[c], _mm512_set1_epi32(q[c]));
        s1 = _mm512_dpbusd_epi32(s1, V[c + 4], _mm512_set1_epi32(q[c + 4]));
      }
      // x_rows_r8's float step (q0_block), 16 rows wide
      const __m512 dd = _mm512_mul_ps(dw, _mm512_set1_ps(y[t][i].d));
      acc[t] = _mm512_fmadd_ps(dd, _mm512_cvtepi32_ps(_mm512_add_epi32(s0, s1)), acc[t]);
      corr[t] = _mm512_fmadd_ps(dd, _mm512_set1_ps((float)y[t][i].isum), corr[t]);
    }
  }
  for (int t = 0; t < NT; t++)
    _mm512_storeu_ps(out + (size_t)t * outStride, _mm512_fnmadd_ps(_mm512_set1_ps(8.f), corr[t], acc[t]));
}

static void b16_q4_r8(int K, const uint8_t* w, size_t rowBytes, int nrows, const uint8_t* act, size_t actStride, int ntok,
                      float* out, size_t outStride) {
  const int nb = K / 32;
  const uint8_t *pfa = w, *pfb = w + 8 * rowBytes;
  int r = 0;
  for (; r + 16 <= nrows; r += 16) {
    const uint8_t* ga = w + (size_t)r * rowBytes;
    const uint8_t* gb = ga + 8 * rowBytes;
    if (pfa < ga) pfa = ga;
    if (pfb < gb) pfb = gb;
    int t = 0;
    for (; t + 8 <= ntok; t += 8) b16_q4_pass<8>(nb, ga, gb, act + t * actStride, actStride, out + t * outStride + r, outStride, pfa, pfb);
    switch (ntok - t) {
      case 7: b16_q4_pass<7>(nb, ga, gb, act + t * actStride, actStride, out + t * outStride + r, outStride, pfa, pfb); break;
      case 6: b16_q4_pass<6>(nb, ga, gb, act + t * actStride, actStride, out + t * outStride + r, outStride, pfa, pfb); break;
      case 5: b16_q4_pass<5>(nb, ga, gb, act + t * actStride, actStride, out + t * outStride + r, outStride, pfa, pfb); break;
      case 4: b16_q4_pass<4>(nb, ga, gb, act + t * actStride, actStride, out + t * outStride + r, outStride, pfa, pfb); break;
      case 3: b16_q4_pass<3>(nb, ga, gb, act + t * actStride, actStride, out + t * outStride + r, outStride, pfa, pfb); break;
      case 2: b16_q4_pass<2>(nb, ga, gb, act + t * actStride, actStride, out + t * outStride + r, outStride, pfa, pfb); break;
      case 1: b16_q4_pass<1>(nb, ga, gb, act + t * actStride, actStride, out + t * outStride + r, outStride, pfa, pfb); break;
      default: break;
    }
  }
  if (r < nrows) x_tile_r8<true>(K, w + (size_t)r * rowBytes, rowBytes, nrows - r, act, actStride, ntok, out + r, outStride);
}

static void fill_avx512_batch(KernelTable& t) { t.batch[T_Q4_0_R8] = b16_q4_r8; }
