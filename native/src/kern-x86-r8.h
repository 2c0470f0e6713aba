// Kernels for the repacked q4_0/q8_0 layouts (T_Q4_0_R8 / T_Q8_0_R8, layout in common.h), included after
// kern-x86.h by the AVX2 and AVX-512 translation units.
//
// Why repack: the in-file layout interleaves an f16 scale with each row's codes, so an 8-row kernel gathers eight
// scattered scales per block (8 scalar loads + inserts) and reads 8 separate streams; q4_0 also unpacks 16 bytes
// of nibbles per row with a cross-lane insert. Repacked, one 128-bit load brings the group's 8 scales, one 256-bit
// load brings two q4_0 rows' nibbles (rows k | k+4), and the group is one contiguous stream to prefetch. This cut
// decode instructions per q4_0 block-row from about 9 to about 5.5 (q8_0: 9.4 -> 7).
//
// Results are bit-identical to x_rows8_q0 / x_tile8_q0 on the unpacked bytes: the integer block sums are exact
// whatever the order, and the float work (scale product, FMA chain, offset) is the same sequence of operations.

// Prefetch distance along a group stream (bytes): ~1.5 µs of DRAM reads at 15 GB/s.
#ifndef L4_PF_R8
#define L4_PF_R8 1536
#endif

// One block of a q4_0 group (codes already split into low/high nibbles: lo[k]/hi[k] hold rows k | k+4) against
// one activation block: int32 lane j = Σ code·v of row j.
static inline __m256i r8_q4_sums(const __m256i lo[4], const __m256i hi[4], const int8_t* yqs) {
  const __m256i vl = _mm256_broadcastsi128_si256(_mm_loadu_si128((const __m128i*)yqs));        // v0..15 | v0..15
  const __m256i vh = _mm256_broadcastsi128_si256(_mm_loadu_si128((const __m128i*)(yqs + 16)));  // v16..31 | v16..31
  __m256i s[4];
#ifdef L4_VNNI256
  for (int k = 0; k < 4; k++) s[k] = l4_dpbusd256(l4_dpbusd256(_mm256_setzero_si256(), lo[k], vl), hi[k], vh);
#else
  const __m256i ones = _mm256_set1_epi16(1);
  // |code·v| pair sums ≤ 2·15·127, two of them ≤ 7620: the int16 add cannot saturate
  for (int k = 0; k < 4; k++)
    s[k] = _mm256_madd_epi16(_mm256_add_epi16(_mm256_maddubs_epi16(lo[k], vl), _mm256_maddubs_epi16(hi[k], vh)), ones);
#endif
  // [r0 r0 r1 r1 | r4 r4 r5 r5], [r2 r2 r3 r3 | r6 r6 r7 r7] -> [r0 r1 r2 r3 | r4 r5 r6 r7]
  return _mm256_hadd_epi32(_mm256_hadd_epi32(s[0], s[1]), _mm256_hadd_epi32(s[2], s[3]));
}
static inline void r8_q4_codes(const uint8_t* codes, __m256i lo[4], __m256i hi[4]) {
  const __m256i m4 = _mm256_set1_epi8(15);
  for (int k = 0; k < 4; k++) {
    const __m256i r = _mm256_loadu_si256((const __m256i*)(codes + 32 * k));
    lo[k] = _mm256_and_si256(r, m4);
    hi[k] = _mm256_and_si256(_mm256_srli_epi16(r, 4), m4);
  }
}
// One block of a q8_0 group: the same sums and horizontal-add tree as x_rows8_q0.
static inline __m256i r8_q8_sums(const uint8_t* codes, const ActQ8& y) {
  __m256i q[8];
  for (int j = 0; j < 8; j++) q[j] = _mm256_loadu_si256((const __m256i*)(codes + 32 * j));
  return q8_rows8(q, _mm256_loadu_si256((const __m256i*)y.qs), y.isum);
}

// Decode: out[r] for r < nrows (a multiple of 8: repacking requires N % 8 == 0 and chunks are multiples of 8).
template <bool Q4>
static void x_rows_r8(int K, const uint8_t* w, size_t rowBytes, int nrows, const void* act, float* out, bool pf) {
  const int nb = K / 32;
  constexpr size_t GB = Q4 ? 8 * 18 : 8 * 34;  // bytes of one block of a group
  const ActQ8* y = (const ActQ8*)act;
  const uint8_t* pfp = w;  // next cache line to prefetch (the chunk is one contiguous stream)
  for (int r = 0; r + 8 <= nrows; r += 8) {
    const uint8_t* g = w + (size_t)r * rowBytes;
    __m256 acc = _mm256_setzero_ps();
    for (int i = 0; i < nb; i++) {
      const uint8_t* blk = g + (size_t)i * GB;
      if (pf) for (const uint8_t* end = blk + L4_PF_R8; pfp < end; pfp += 64) _mm_prefetch((const char*)pfp, _MM_HINT_NTA);
      __m256i sum;
      if (Q4) { __m256i lo[4], hi[4]; r8_q4_codes(blk + 16, lo, hi); sum = r8_q4_sums(lo, hi, y[i].qs); }
      else sum = r8_q8_sums(blk + 16, y[i]);
      q0_block<Q4>(_mm256_cvtph_ps(_mm_loadu_si128((const __m128i*)blk)), y[i], sum, acc);
    }
    _mm256_storeu_ps(out + r, acc);
  }
}

// Prefill: 8 rows' codes decoded once per block and used for 4 tokens; leftover tokens go to the decode kernel
// (same operations, so a token's result does not depend on its batch).
template <bool Q4>
static void x_tile_r8(int K, const uint8_t* w, size_t rowBytes, int nrows, const uint8_t* act, size_t actStride, int ntok,
                      float* out, size_t outStride) {
  const int nb = K / 32;
  constexpr size_t GB = Q4 ? 8 * 18 : 8 * 34;
  for (int r = 0; r + 8 <= nrows; r += 8) {
    const uint8_t* g = w + (size_t)r * rowBytes;
    int t0 = 0;
    for (; t0 + 4 <= ntok; t0 += 4) {
      const ActQ8* y[4];
      for (int t = 0; t < 4; t++) y[t] = (const ActQ8*)(act + (size_t)(t0 + t) * actStride);
      __m256 acc[4];
      for (int t = 0; t < 4; t++) acc[t] = _mm256_setzero_ps();
      for (int i = 0; i < nb; i++) {
        const uint8_t* blk = g + (size_t)i * GB;
        const __m256 dw = _mm256_cvtph_ps(_mm_loadu_si128((const __m128i*)blk));
        __m256i lo[4], hi[4];
        if (Q4) r8_q4_codes(blk + 16, lo, hi);
        for (int t = 0; t < 4; t++) {
          const __m256i sum = Q4 ? r8_q4_sums(lo, hi, y[t][i].qs) : r8_q8_sums(blk + 16, y[t][i]);
          q0_block<Q4>(dw, y[t][i], sum, acc[t]);
        }
      }
      for (int t = 0; t < 4; t++) _mm256_storeu_ps(out + (size_t)(t0 + t) * outStride + r, acc[t]);
    }
    for (; t0 < ntok; t0++) x_rows_r8<Q4>(K, g, rowBytes, 8, act + (size_t)t0 * actStride, out + (size_t)t0 * outStride + r, false);
  }
}

static void fill_x86_r8(KernelTable& t) {
  t.rows[T_Q4_0_R8] = x_rows_r8<true>;  t.act[T_Q4_0_R8] = ACT_Q8; t.tile[T_Q4_0_R8] = x_tile_r8<true>;
  t.rows[T_Q8_0_R8] = x_rows_r8<false>; t.act[T_Q8_0_R8] = ACT_Q8; t.tile[T_Q8_0_R8] = x_tile_r8<false>;
}
