// AVX2 dot products of every i-quant with 8-bit activations (the AVX2 and AVX-512 tables, except that the AVX-512
// table takes IQ4_XS and IQ2_XXS from kern-iquant-avx512.h; after kern-iquant.h).
// Same integer sums as the portable kernels of kern-iquant.h — per 32 weights: grid bytes (unsigned) against the
// activations with the weight signs applied (maddubs), times the odd sub-block scale (madd) — accumulated in 8
// int32 lanes per super-block, then one FMA per super-block into 8 float lanes (ggml's AVX2 structure). Decode and
// prefill run this same row kernel (no tile), so a token's result never depends on the batch.
// Grid entries are gathered with scalar loads (as ggml does: faster than vpgatherdd on the CPUs it measured).

static inline float iq_hsum8(__m256 v) {
  __m128 a = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
  a = _mm_add_ps(a, _mm_movehl_ps(a, a));
  a = _mm_add_ss(a, _mm_movehdup_ps(a));
  return _mm_cvtss_f32(a);
}
// Σ pairs x·y as 16 int16 lanes, x signed (|x| ≤ 127): maddubs(|x|, y·sign(x)).
static inline __m256i iq_mul_add_epi8(__m256i x, __m256i y) {
  return _mm256_maddubs_epi16(_mm256_sign_epi8(x, x), _mm256_sign_epi8(y, x));
}
// 7-bit sign index -> 8 bytes of +1 / −1 (ksigns_iq2xs expanded: its 8th bit makes the count of negatives even;
// bit j set = element j negative). Built at compile time: a load-time constructor in this unit could run AVX-512
// instructions on a CPU without them.
struct IqSigns64 {
  uint64_t v[128];
  constexpr IqSigns64() : v{} {
    for (int i = 0; i < 128; i++) {
      int par = 0;
      for (int j = 0; j < 7; j++) par ^= (i >> j) & 1;
      const int bits = i | (par << 7);
      uint64_t s = 0;
      for (int j = 0; j < 8; j++) s |= (uint64_t)((bits >> j) & 1 ? 0xff : 0x01) << (8 * j);
      v[i] = s;
    }
  }
};
static constexpr IqSigns64 iq_signs64{};
// 32 explicit sign bits (4 bytes, bit j of byte l = element 8l+j) -> 0xff where negative, 0 elsewhere.
static inline __m256i iq_sign_mask32(const uint8_t* s) {
  uint32_t u; std::memcpy(&u, s, 4);
  const __m256i sel = _mm256_set_epi64x(0x0303030303030303, 0x0202020202020202, 0x0101010101010101, 0);
  const __m256i bit = _mm256_set1_epi64x((long long)0x8040201008040201ull);
  const __m256i b = _mm256_and_si256(_mm256_shuffle_epi8(_mm256_set1_epi32((int)u), sel), bit);
  return _mm256_cmpeq_epi8(b, bit);
}
static inline __m256i iq_apply_mask(__m256i q8, __m256i m) { return _mm256_sub_epi8(_mm256_xor_si256(q8, m), m); }
static inline __m256i iq_ld(const int8_t* p) { return _mm256_loadu_si256((const __m256i*)p); }
// two int16 scales: lanes 0..7 (values 0..15 of a 32) get a, lanes 8..15 get b
static inline __m256i iq_scale2(int a, int b) { return _mm256_set_m128i(_mm_set1_epi16((short)b), _mm_set1_epi16((short)a)); }
#define IQ_PF(p, bytes) do { if (pf) for (int o_ = 0; o_ < (bytes); o_ += 64) L4_PF((const uint8_t*)(p) + o_); } while (0)

template <class BLK, int FACTOR_NUM, int FACTOR_DEN, class SB>
static inline void iq_rows_x(int K, const uint8_t* w, size_t rowBytes, int nrows, const void* act, float* out, bool pf, SB sb) {
  const int nb = K / 256;
  for (int r = 0; r < nrows; r++) {
    const BLK* x = (const BLK*)(w + (size_t)r * rowBytes);
    const ActQ8K* y = (const ActQ8K*)act;
    __m256 acc = _mm256_setzero_ps();
    for (int i = 0; i < nb; i++) {
      IQ_PF(x + i, (int)sizeof(BLK));
      acc = sb(x[i], y[i], acc);
    }
    out[r] = iq_hsum8(acc) * ((float)FACTOR_NUM / FACTOR_DEN);
  }
}
static inline __m256 iq_fin(__m256 acc, float d, __m256i sumi) { return _mm256_fmadd_ps(_mm256_set1_ps(d), _mm256_cvtepi32_ps(sumi), acc); }

static void xi_rows_iq2_xxs(int K, const uint8_t* w, size_t rb, int nrows, const void* act, float* out, bool pf) {
  iq_rows_x<BlockIQ2XXS, 1, 8>(K, w, rb, nrows, act, out, pf, [](const BlockIQ2XXS& x, const ActQ8K& y, __m256 acc) {
    __m256i sumi = _mm256_setzero_si256();
    for (int ib = 0; ib < 8; ib++) {
      uint32_t aux[2]; std::memcpy(aux, x.qs + 4 * ib, 8);
      const uint8_t* a8 = (const uint8_t*)aux;
      const __m256i g = _mm256_set_epi64x(iq2xxs_grid[a8[3]], iq2xxs_grid[a8[2]], iq2xxs_grid[a8[1]], iq2xxs_grid[a8[0]]);
      const __m256i s = _mm256_set_epi64x(iq_signs64.v[(aux[1] >> 21) & 127], iq_signs64.v[(aux[1] >> 14) & 127],
                                          iq_signs64.v[(aux[1] >> 7) & 127], iq_signs64.v[aux[1] & 127]);
      const __m256i dot = _mm256_maddubs_epi16(g, _mm256_sign_epi8(iq_ld(y.qs + 32 * ib), s));
      sumi = _mm256_add_epi32(sumi, _mm256_madd_epi16(dot, _mm256_set1_epi16((short)(2 * (aux[1] >> 28) + 1))));
    }
    return iq_fin(acc, half_to_float(x.d) * y.d, sumi);
  });
}
// Prefill tile for IQ2_XXS: the grid and sign vectors of each 32-block (the table gathers, the expensive part) are built
// once for 4 tokens; per token the row kernel's integer sums and float steps (bit-identical results); leftover tokens
// go to the row kernel.
static void xi_tile_iq2_xxs(int K, const uint8_t* w, size_t rb, int nrows, const uint8_t* act, size_t actStride, int ntok,
                            float* out, size_t outStride) {
  const int nb = K / 256;
  int t0 = 0;
  for (; t0 + 4 <= ntok; t0 += 4) {
    const ActQ8K* y[4];
    for (int t = 0; t < 4; t++) y[t] = (const ActQ8K*)(act + (size_t)(t0 + t) * actStride);
    for (int r = 0; r < nrows; r++) {
      const BlockIQ2XXS* x = (const BlockIQ2XXS*)(w + (size_t)r * rb);
      __m256 acc[4] = {_mm256_setzero_ps(), _mm256_setzero_ps(), _mm256_setzero_ps(), _mm256_setzero_ps()};
      for (int i = 0; i < nb; i++) {
        __m256i sumi[4] = {_mm256_setzero_si256(), _mm256_setzero_si256(), _mm256_setzero_si256(), _mm256_setzero_si256()};
        for (int ib = 0; ib < 8; ib++) {
          uint32_t aux[2]; std::memcpy(aux, x[i].qs + 4 * ib, 8);
          const uint8_t* a8 = (const uint8_t*)aux;
          const __m256i g = _mm256_set_epi64x(iq2xxs_grid[a8[3]], iq2xxs_grid[a8[2]], iq2xxs_grid[a8[1]], iq2xxs_grid[a8[0]]);
          const __m256i s = _mm256_set_epi64x(iq_signs64.v[(aux[1] >> 21) & 127], iq_signs64.v[(aux[1] >> 14) & 127],
                                              iq_signs64.v[(aux[1] >> 7) & 127], iq_signs64.v[aux[1] & 127]);
          const __m256i sc = _mm256_set1_epi16((short)(2 * (aux[1] >> 28) + 1));
          for (int t = 0; t < 4; t++)
            sumi[t] = _mm256_add_epi32(sumi[t], _mm256_madd_epi16(_mm256_maddubs_epi16(g, _mm256_sign_epi8(iq_ld(y[t][i].qs + 32 * ib), s)), sc));
        }
        const float d = half_to_float(x[i].d);
        for (int t = 0; t < 4; t++) acc[t] = iq_fin(acc[t], d * y[t][i].d, sumi[t]);
      }
      for (int t = 0; t < 4; t++) out[(size_t)(t0 + t) * outStride + r] = iq_hsum8(acc[t]) * ((float)1 / 8);
    }
  }
  for (; t0 < ntok; t0++) xi_rows_iq2_xxs(K, w, rb, nrows, act + (size_t)t0 * actStride, out + (size_t)t0 * outStride, false);
}
static void xi_rows_iq2_xs(int K, const uint8_t* w, size_t rb, int nrows, const void* act, float* out, bool pf) {
  iq_rows_x<BlockIQ2XS, 1, 8>(K, w, rb, nrows, act, out, pf, [](const BlockIQ2XS& x, const ActQ8K& y, __m256 acc) {
    __m256i sumi = _mm256_setzero_si256();
    for (int ib = 0; ib < 8; ib++) {
      const uint16_t* q = x.qs + 4 * ib;
      const __m256i g = _mm256_set_epi64x(iq2xs_grid[q[3] & 511], iq2xs_grid[q[2] & 511], iq2xs_grid[q[1] & 511], iq2xs_grid[q[0] & 511]);
      const __m256i s = _mm256_set_epi64x(iq_signs64.v[q[3] >> 9], iq_signs64.v[q[2] >> 9], iq_signs64.v[q[1] >> 9], iq_signs64.v[q[0] >> 9]);
      const __m256i dot = _mm256_maddubs_epi16(g, _mm256_sign_epi8(iq_ld(y.qs + 32 * ib), s));
      sumi = _mm256_add_epi32(sumi, _mm256_madd_epi16(dot, iq_scale2(2 * (x.scales[ib] & 0xf) + 1, 2 * (x.scales[ib] >> 4) + 1)));
    }
    return iq_fin(acc, half_to_float(x.d) * y.d, sumi);
  });
}
static inline void iq2s_idx8(const uint8_t* qs, int h0, int h1, uint32_t* idx) {
  const __m256i lo = _mm256_cvtepu8_epi32(_mm_loadl_epi64((const __m128i*)qs));
  const __m256i hi = _mm256_sllv_epi32(_mm256_setr_epi32(h0, h0, h0, h0, h1, h1, h1, h1), _mm256_setr_epi32(8, 6, 4, 2, 8, 6, 4, 2));
  _mm256_store_si256((__m256i*)idx, _mm256_or_si256(lo, _mm256_and_si256(hi, _mm256_set1_epi32(0x300))));
}
static void xi_rows_iq2_s(int K, const uint8_t* w, size_t rb, int nrows, const void* act, float* out, bool pf) {
  iq_rows_x<BlockIQ2S, 1, 8>(K, w, rb, nrows, act, out, pf, [](const BlockIQ2S& x, const ActQ8K& y, __m256 acc) {
    __m256i s1 = _mm256_setzero_si256(), s2 = _mm256_setzero_si256();
    for (int ib = 0; ib < 8; ib += 2) {
      alignas(32) uint32_t idx[8];
      iq2s_idx8(x.qs + 4 * ib, x.qh[ib], x.qh[ib + 1], idx);
      const __m256i g1 = _mm256_set_epi64x(iq2s_grid[idx[3]], iq2s_grid[idx[2]], iq2s_grid[idx[1]], iq2s_grid[idx[0]]);
      const __m256i g2 = _mm256_set_epi64x(iq2s_grid[idx[7]], iq2s_grid[idx[6]], iq2s_grid[idx[5]], iq2s_grid[idx[4]]);
      const __m256i d1 = _mm256_maddubs_epi16(g1, iq_apply_mask(iq_ld(y.qs + 32 * ib), iq_sign_mask32(x.signs + 4 * ib)));
      const __m256i d2 = _mm256_maddubs_epi16(g2, iq_apply_mask(iq_ld(y.qs + 32 * ib + 32), iq_sign_mask32(x.signs + 4 * ib + 4)));
      s1 = _mm256_add_epi32(s1, _mm256_madd_epi16(d1, iq_scale2(2 * (x.scales[ib] & 0xf) + 1, 2 * (x.scales[ib] >> 4) + 1)));
      s2 = _mm256_add_epi32(s2, _mm256_madd_epi16(d2, iq_scale2(2 * (x.scales[ib + 1] & 0xf) + 1, 2 * (x.scales[ib + 1] >> 4) + 1)));
    }
    return iq_fin(acc, half_to_float(x.d) * y.d, _mm256_add_epi32(s1, s2));
  });
}
static void xi_rows_iq3_xxs(int K, const uint8_t* w, size_t rb, int nrows, const void* act, float* out, bool pf) {
  iq_rows_x<BlockIQ3XXS, 1, 4>(K, w, rb, nrows, act, out, pf, [](const BlockIQ3XXS& x, const ActQ8K& y, __m256 acc) {
    __m256i s1 = _mm256_setzero_si256(), s2 = _mm256_setzero_si256();
    for (int ib = 0; ib < 8; ib += 2) {
      uint32_t aux[2]; std::memcpy(aux, x.sas + 4 * ib, 8);
      const __m256i g1 = _mm256_i32gather_epi32((const int*)iq3xxs_grid, _mm256_cvtepu8_epi32(_mm_loadl_epi64((const __m128i*)(x.qs + 8 * ib))), 4);
      const __m256i g2 = _mm256_i32gather_epi32((const int*)iq3xxs_grid, _mm256_cvtepu8_epi32(_mm_loadl_epi64((const __m128i*)(x.qs + 8 * ib + 8))), 4);
      const __m256i sg1 = _mm256_set_epi64x(iq_signs64.v[(aux[0] >> 21) & 127], iq_signs64.v[(aux[0] >> 14) & 127],
                                            iq_signs64.v[(aux[0] >> 7) & 127], iq_signs64.v[aux[0] & 127]);
      const __m256i sg2 = _mm256_set_epi64x(iq_signs64.v[(aux[1] >> 21) & 127], iq_signs64.v[(aux[1] >> 14) & 127],
                                            iq_signs64.v[(aux[1] >> 7) & 127], iq_signs64.v[aux[1] & 127]);
      const __m256i d1 = _mm256_maddubs_epi16(g1, _mm256_sign_epi8(iq_ld(y.qs + 32 * ib), sg1));
      const __m256i d2 = _mm256_maddubs_epi16(g2, _mm256_sign_epi8(iq_ld(y.qs + 32 * ib + 32), sg2));
      s1 = _mm256_add_epi32(s1, _mm256_madd_epi16(d1, _mm256_set1_epi16((short)(2 * (aux[0] >> 28) + 1))));
      s2 = _mm256_add_epi32(s2, _mm256_madd_epi16(d2, _mm256_set1_epi16((short)(2 * (aux[1] >> 28) + 1))));
    }
    return iq_fin(acc, half_to_float(x.d) * y.d, _mm256_add_epi32(s1, s2));
  });
}
static void xi_rows_iq3_s(int K, const uint8_t* w, size_t rb, int nrows, const void* act, float* out, bool pf) {
  iq_rows_x<BlockIQ3S, 1, 1>(K, w, rb, nrows, act, out, pf, [](const BlockIQ3S& x, const ActQ8K& y, __m256 acc) {
    // 9-bit grid indices of two 32-blocks at once: low 8 bits from qs, bit 8 from qh (ggml's vector shifts)
    const __m256i idx_shift = _mm256_set_epi32(1, 2, 3, 4, 5, 6, 7, 8), idx_mask = _mm256_set1_epi32(256);
    alignas(32) uint32_t idx[16];
    __m256i s1 = _mm256_setzero_si256(), s2 = _mm256_setzero_si256();
    for (int ib = 0; ib < 8; ib += 2) {
      const __m256i lo = _mm256_cvtepu8_epi16(_mm_loadu_si128((const __m128i*)(x.qs + 8 * ib)));
      const __m256i h0 = _mm256_and_si256(_mm256_sllv_epi32(_mm256_set1_epi32(x.qh[ib]), idx_shift), idx_mask);
      const __m256i h1 = _mm256_and_si256(_mm256_sllv_epi32(_mm256_set1_epi32(x.qh[ib + 1]), idx_shift), idx_mask);
      _mm256_store_si256((__m256i*)idx, _mm256_or_si256(h0, _mm256_cvtepi16_epi32(_mm256_castsi256_si128(lo))));
      _mm256_store_si256((__m256i*)(idx + 8), _mm256_or_si256(h1, _mm256_cvtepi16_epi32(_mm256_extracti128_si256(lo, 1))));
      const __m256i g1 = _mm256_set_epi32((int)iq3s_grid[idx[7]], (int)iq3s_grid[idx[6]], (int)iq3s_grid[idx[5]], (int)iq3s_grid[idx[4]],
                                          (int)iq3s_grid[idx[3]], (int)iq3s_grid[idx[2]], (int)iq3s_grid[idx[1]], (int)iq3s_grid[idx[0]]);
      const __m256i g2 = _mm256_set_epi32((int)iq3s_grid[idx[15]], (int)iq3s_grid[idx[14]], (int)iq3s_grid[idx[13]], (int)iq3s_grid[idx[12]],
                                          (int)iq3s_grid[idx[11]], (int)iq3s_grid[idx[10]], (int)iq3s_grid[idx[9]], (int)iq3s_grid[idx[8]]);
      const __m256i d1 = _mm256_maddubs_epi16(g1, iq_apply_mask(iq_ld(y.qs + 32 * ib), iq_sign_mask32(x.signs + 4 * ib)));
      const __m256i d2 = _mm256_maddubs_epi16(g2, iq_apply_mask(iq_ld(y.qs + 32 * ib + 32), iq_sign_mask32(x.signs + 4 * ib + 4)));
      s1 = _mm256_add_epi32(s1, _mm256_madd_epi16(d1, _mm256_set1_epi16((short)(2 * (x.scales[ib / 2] & 0xf) + 1))));
      s2 = _mm256_add_epi32(s2, _mm256_madd_epi16(d2, _mm256_set1_epi16((short)(2 * (x.scales[ib / 2] >> 4) + 1))));
    }
    return iq_fin(acc, half_to_float(x.d) * y.d, _mm256_add_epi32(s1, s2));
  });
}
static void xi_rows_iq1_s(int K, const uint8_t* w, size_t rb, int nrows, const void* act, float* out, bool pf) {
  iq_rows_x<BlockIQ1S, 1, 1>(K, w, rb, nrows, act, out, pf, [](const BlockIQ1S& x, const ActQ8K& y, __m256 acc) {
    __m256i s1 = _mm256_setzero_si256(), s2 = _mm256_setzero_si256();
    int sumi1 = 0;
    alignas(32) uint32_t gi[8];
    for (int ib = 0; ib < 8; ib += 2) {
      const int qh0 = x.qh[ib], qh1 = x.qh[ib + 1];
      // 11-bit grid indices: qs byte | 3 bits of qh per group of 8 (bits 3l..3l+2)
      const __m256i lo = _mm256_cvtepu8_epi32(_mm_loadl_epi64((const __m128i*)(x.qs + 4 * ib)));
      const __m256i hi = _mm256_sllv_epi32(_mm256_setr_epi32(qh0, qh0, qh0, qh0, qh1, qh1, qh1, qh1), _mm256_setr_epi32(8, 5, 2, 32, 8, 5, 2, 32));  // (count 32 gives 0)
      const __m256i hi3 = _mm256_srlv_epi32(_mm256_setr_epi32(0, 0, 0, qh0, 0, 0, 0, qh1), _mm256_setr_epi32(0, 0, 0, 1, 0, 0, 0, 1));
      _mm256_store_si256((__m256i*)gi, _mm256_or_si256(lo, _mm256_and_si256(_mm256_or_si256(hi, hi3), _mm256_set1_epi32(0x700))));
      const __m256i g1 = _mm256_set_epi64x(iq1s_grid[gi[3]], iq1s_grid[gi[2]], iq1s_grid[gi[1]], iq1s_grid[gi[0]]);
      const __m256i g2 = _mm256_set_epi64x(iq1s_grid[gi[7]], iq1s_grid[gi[6]], iq1s_grid[gi[5]], iq1s_grid[gi[4]]);
      const int ls1 = 2 * ((qh0 >> 12) & 7) + 1, ls2 = 2 * ((qh1 >> 12) & 7) + 1;
      s1 = _mm256_add_epi32(s1, _mm256_madd_epi16(iq_mul_add_epi8(g1, iq_ld(y.qs + 32 * ib)), _mm256_set1_epi16((short)ls1)));
      s2 = _mm256_add_epi32(s2, _mm256_madd_epi16(iq_mul_add_epi8(g2, iq_ld(y.qs + 32 * ib + 32)), _mm256_set1_epi16((short)ls2)));
      sumi1 += ls1 * (qh0 & 0x8000 ? -1 : 1) * (y.bsums[2 * ib] + y.bsums[2 * ib + 1])
             + ls2 * (qh1 & 0x8000 ? -1 : 1) * (y.bsums[2 * ib + 2] + y.bsums[2 * ib + 3]);
    }
    // x = d·(grid + delta): the delta part is Σ delta·ls·(activation sums), one integer per super-block
    const __m256 v = _mm256_add_ps(_mm256_cvtepi32_ps(_mm256_add_epi32(s1, s2)), _mm256_setr_ps(IQ1_DELTA * (float)sumi1, 0, 0, 0, 0, 0, 0, 0));
    return _mm256_fmadd_ps(_mm256_set1_ps(half_to_float(x.d) * y.d), v, acc);
  });
}
// ±1 bytes of the 4 groups of 8 of one IQ1_M 32-block: group l is negative where bit 3 (l even) / 7 (l odd) of
// qh[l/2] is set
static inline __m256i iq1m_delta(const uint8_t* qh) {
  uint16_t h; std::memcpy(&h, qh, 2);
  const __m256i b = _mm256_shuffle_epi8(_mm256_set1_epi32(h), _mm256_set_epi64x(0x0101010101010101, 0x0101010101010101, 0, 0));
  const __m256i m = _mm256_set_epi64x((long long)0x8080808080808080ull, 0x0808080808080808, (long long)0x8080808080808080ull, 0x0808080808080808);
  return _mm256_or_si256(_mm256_cmpeq_epi8(_mm256_and_si256(b, m), m), _mm256_set1_epi8(1));
}
static void xi_rows_iq1_m(int K, const uint8_t* w, size_t rb, int nrows, const void* act, float* out, bool pf) {
  iq_rows_x<BlockIQ1M, 1, 1>(K, w, rb, nrows, act, out, pf, [](const BlockIQ1M& x, const ActQ8K& y, __m256 acc) {
    uint16_t sc[4]; std::memcpy(sc, x.scales, 8);
    const __m256i one8 = _mm256_set1_epi8(1);
    __m256i sumi1 = _mm256_setzero_si256(), sumi2 = _mm256_setzero_si256();
    alignas(32) uint32_t gi[8];
    for (int ib = 0; ib < 8; ib += 2) {
      const uint8_t* qh = x.qh + 2 * ib;
      // 11-bit grid indices of two 32-blocks: qs byte | 3 bits of qh (low nibble for even groups, high for odd)
      const __m256i lo = _mm256_cvtepu8_epi32(_mm_loadl_epi64((const __m128i*)(x.qs + 4 * ib)));
      const __m256i hi = _mm256_sllv_epi32(_mm256_setr_epi32(qh[0], qh[0], qh[1], qh[1], qh[2], qh[2], qh[3], qh[3]), _mm256_setr_epi32(8, 4, 8, 4, 8, 4, 8, 4));
      _mm256_store_si256((__m256i*)gi, _mm256_or_si256(lo, _mm256_and_si256(hi, _mm256_set1_epi32(0x700))));
      for (int k = 0; k < 2; k++) {
        const uint32_t* g = gi + 4 * k;
        const __m256i grid = _mm256_set_epi64x(iq1s_grid[g[3]], iq1s_grid[g[2]], iq1s_grid[g[1]], iq1s_grid[g[0]]);
        const __m256i q8 = iq_ld(y.qs + 32 * (ib + k));
        const int j = ib + k;
        const __m256i s = iq_scale2(2 * ((sc[j / 2] >> (6 * (j % 2))) & 7) + 1, 2 * ((sc[j / 2] >> (6 * (j % 2) + 3)) & 7) + 1);
        sumi1 = _mm256_add_epi32(sumi1, _mm256_madd_epi16(iq_mul_add_epi8(grid, q8), s));
        sumi2 = _mm256_add_epi32(sumi2, _mm256_madd_epi16(_mm256_maddubs_epi16(one8, _mm256_sign_epi8(q8, iq1m_delta(qh + 2 * k))), s));
      }
    }
    const __m256 v = _mm256_fmadd_ps(_mm256_set1_ps(IQ1_DELTA), _mm256_cvtepi32_ps(sumi2), _mm256_cvtepi32_ps(sumi1));
    return _mm256_fmadd_ps(_mm256_set1_ps(half_to_float(iq1m_scale(x.scales)) * y.d), v, acc);
  });
}
// 16 nibble bytes -> 32 IQ4_NL values (low nibbles: elements 0..15, high: 16..31)
static inline __m256i iq4_values32(const uint8_t* qs, __m128i values) {
  const __m128i b = _mm_loadu_si128((const __m128i*)qs), m4 = _mm_set1_epi8(15);
  return _mm256_set_m128i(_mm_shuffle_epi8(values, _mm_and_si128(_mm_srli_epi16(b, 4), m4)), _mm_shuffle_epi8(values, _mm_and_si128(b, m4)));
}
static void xi_rows_iq4_xs(int K, const uint8_t* w, size_t rb, int nrows, const void* act, float* out, bool pf) {
  iq_rows_x<BlockIQ4XS, 1, 1>(K, w, rb, nrows, act, out, pf, [](const BlockIQ4XS& x, const ActQ8K& y, __m256 acc) {
    const __m128i values = _mm_loadu_si128((const __m128i*)kvalues_iq4nl);
    __m256i s1 = _mm256_setzero_si256(), s2 = _mm256_setzero_si256();
    for (int ib = 0; ib < 8; ib += 2) {
      const int ls1 = (((x.scales_l[ib / 2] & 0xf) | (((x.scales_h >> 2 * ib) & 3) << 4))) - 32;
      const int ls2 = (((x.scales_l[ib / 2] >> 4) | (((x.scales_h >> (2 * ib + 2)) & 3) << 4))) - 32;
      const __m256i p1 = iq_mul_add_epi8(iq4_values32(x.qs + 16 * ib, values), iq_ld(y.qs + 32 * ib));
      const __m256i p2 = iq_mul_add_epi8(iq4_values32(x.qs + 16 * ib + 16, values), iq_ld(y.qs + 32 * ib + 32));
      s1 = _mm256_add_epi32(s1, _mm256_madd_epi16(p1, _mm256_set1_epi16((short)ls1)));
      s2 = _mm256_add_epi32(s2, _mm256_madd_epi16(p2, _mm256_set1_epi16((short)ls2)));
    }
    return iq_fin(acc, half_to_float(x.d) * y.d, _mm256_add_epi32(s1, s2));
  });
}
// Prefill tile for IQ4_XS: each super-block's 256 values (and their absolute values) are decoded once and used for 4
// tokens. Per token the integer sums are the row kernel's (integer addition: any order gives the same int32) and the
// float steps are its exact sequence (one FMA per super-block into 8 lanes, iq_hsum8), so a token's result is
// bit-identical to xi_rows_iq4_xs's (batch invariance); leftover tokens go to the row kernel.
static void xi_tile_iq4_xs(int K, const uint8_t* w, size_t rb, int nrows, const uint8_t* act, size_t actStride, int ntok,
                           float* out, size_t outStride) {
  const __m128i values = _mm_loadu_si128((const __m128i*)kvalues_iq4nl);
  const int nb = K / 256;
  int t0 = 0;
  for (; t0 + 4 <= ntok; t0 += 4) {
    const ActQ8K* y[4];
    for (int t = 0; t < 4; t++) y[t] = (const ActQ8K*)(act + (size_t)(t0 + t) * actStride);
    for (int r = 0; r < nrows; r++) {
      const BlockIQ4XS* x = (const BlockIQ4XS*)(w + (size_t)r * rb);
      __m256 acc[4] = {_mm256_setzero_ps(), _mm256_setzero_ps(), _mm256_setzero_ps(), _mm256_setzero_ps()};
      for (int i = 0; i < nb; i++) {
        __m256i sumi[4] = {_mm256_setzero_si256(), _mm256_setzero_si256(), _mm256_setzero_si256(), _mm256_setzero_si256()};
        for (int ib = 0; ib < 8; ib++) {
          const int ls = (((x[i].scales_l[ib / 2] >> (4 * (ib % 2))) & 0xf) | (((x[i].scales_h >> (2 * ib)) & 3) << 4)) - 32;
          const __m256i v = iq4_values32(x[i].qs + 16 * ib, values), av = _mm256_sign_epi8(v, v), sc = _mm256_set1_epi16((short)ls);
          for (int t = 0; t < 4; t++)
            sumi[t] = _mm256_add_epi32(sumi[t], _mm256_madd_epi16(_mm256_maddubs_epi16(av, _mm256_sign_epi8(iq_ld(y[t][i].qs + 32 * ib), v)), sc));
        }
        const float d = half_to_float(x[i].d);
        for (int t = 0; t < 4; t++) acc[t] = iq_fin(acc[t], d * y[t][i].d, sumi[t]);
      }
      for (int t = 0; t < 4; t++) out[(size_t)(t0 + t) * outStride + r] = iq_hsum8(acc[t]) * ((float)1 / 1);
    }
  }
  for (; t0 < ntok; t0++) xi_rows_iq4_xs(K, w, rb, nrows, act + (size_t)t0 * actStride, out + (size_t)t0 * outStride, false);
}
static void xi_rows_iq4_nl(int K, const uint8_t* w, size_t rowBytes, int nrows, const void* act, float* out, bool pf) {
  const __m128i values = _mm_loadu_si128((const __m128i*)kvalues_iq4nl);
  const __m256i one = _mm256_set1_epi16(1);
  const int nb = K / 32;
  for (int r = 0; r < nrows; r++) {
    const BlockIQ4NL* x = (const BlockIQ4NL*)(w + (size_t)r * rowBytes);
    const ActQ8* y = (const ActQ8*)act;
    __m256 a1 = _mm256_setzero_ps(), a2 = _mm256_setzero_ps();
    int b = 0;
    for (; b + 1 < nb; b += 2) {
      IQ_PF(x + b, 36);
      const __m256i p1 = _mm256_madd_epi16(iq_mul_add_epi8(iq4_values32(x[b].qs, values), iq_ld(y[b].qs)), one);
      const __m256i p2 = _mm256_madd_epi16(iq_mul_add_epi8(iq4_values32(x[b + 1].qs, values), iq_ld(y[b + 1].qs)), one);
      a1 = _mm256_fmadd_ps(_mm256_set1_ps(half_to_float(x[b].d) * y[b].d), _mm256_cvtepi32_ps(p1), a1);
      a2 = _mm256_fmadd_ps(_mm256_set1_ps(half_to_float(x[b + 1].d) * y[b + 1].d), _mm256_cvtepi32_ps(p2), a2);
    }
    for (; b < nb; b++) {
      const __m256i p = _mm256_madd_epi16(iq_mul_add_epi8(iq4_values32(x[b].qs, values), iq_ld(y[b].qs)), one);
      a1 = _mm256_fmadd_ps(_mm256_set1_ps(half_to_float(x[b].d) * y[b].d), _mm256_cvtepi32_ps(p), a1);
    }
    out[r] = iq_hsum8(_mm256_add_ps(a1, a2));
  }
}
#undef IQ_PF

static void fill_iquant_x86(KernelTable& t) {
  t.rows[T_IQ2_XXS] = xi_rows_iq2_xxs;
  t.tile[T_IQ2_XXS] = xi_tile_iq2_xxs;
  t.rows[T_IQ2_XS] = xi_rows_iq2_xs;
  t.rows[T_IQ2_S] = xi_rows_iq2_s;
  t.rows[T_IQ3_XXS] = xi_rows_iq3_xxs;
  t.rows[T_IQ3_S] = xi_rows_iq3_s;
  t.rows[T_IQ1_S] = xi_rows_iq1_s;
  t.rows[T_IQ1_M] = xi_rows_iq1_m;
  t.rows[T_IQ4_NL] = xi_rows_iq4_nl;
  t.rows[T_IQ4_XS] = xi_rows_iq4_xs;
  t.tile[T_IQ4_XS] = xi_tile_iq4_xs;
}
