// AVX-512 VNNI kernels for q4_K and q5_K (decode rows, prefill tiles, 2..16-token batches) and q6_K (prefill tiles
// and batches, bit-identical to kern-x86.h's q6_K row kernel, which decode keeps), included by kern-avx512.cc after
// kern-iquant-avx512.h, whose zi_token_passes runs the tiles' token loop.
//
// Why: the AVX2 kernel (x_rows_q45_k) spends ~95 instructions per super-block — nibble unpacking, two maddubs and
// two madd per 64 weights, scalar scale broadcasts — and ran q4_K decode at ~46% of one core's read bandwidth (hot:
// ~11 ns per super-block, compute-bound). Here one 512-bit load holds 128 codes, VPDPBUSD takes the unsigned codes
// directly (no sign trick, no int16 stage), and two products packed to int16 (VPACKSSDW) meet their sub-block
// scales in one VPDPWSSD: 4 VPDPBUSD + 2 VPDPWSSD per (super-block, token). Hot, one core: q4_K 11.2 -> 4.7 ns per
// super-block (ggml's zen4 vec_dot: 6.0).
//
// q4_K/q5_K layout: a 64-byte load of qs (bytes 64h..64h+63) holds, in its low nibbles, sub-blocks 4h (bytes 0..31)
// and 4h+2 (bytes 32..63), and in its high nibbles sub-blocks 4h+1 and 4h+3. The activations are re-laid once per
// call to match (lo[h] = values of sub-blocks 4h | 4h+2, hi[h] = 4h+1 | 4h+3), so int32 lanes 0..7 of a VPDPBUSD
// belong to the first sub-block and lanes 8..15 to the second. Each lane sums 4 products, |Σ| ≤ 4·31·127, so the
// int16 packs are exact; the scale vector has, per word, the 6-bit scale of that word's sub-block.
//
// Float structure (decode, tile and batch alike, per (row, token)): per super-block, acc (16 lanes) += d_w·d_y ×
// the exact int32 lanes, accm (4 lanes) += dmin_w·d_y × Σ_j min_j·Σy_j (4 int32 lanes of one VPMADDWD); at the end
// reduce(acc) − reduce(accm) (q6_K: x_rows_q6_k's, see below). Tiles and batches run the same inline functions per
// (row, token), so a token's result is bit-identical whatever its batch (batch invariance); leftover tokens go to
// the row kernel.

#ifndef L4_PF_KQ
#define L4_PF_KQ 2048
#endif

// One super-block of activations in the weights' nibble order, plus Σy per sub-block of 32 (int16, j = 0..7).
struct alignas(64) Kq45Act { __m512i lo[2], hi[2]; __m128i ysum; float d; };
static void kq45_prep(const ActQ8K* y, int nb, Kq45Act* a) {
  for (int i = 0; i < nb; i++) {
    const __m512i y0 = _mm512_loadu_si512(y[i].qs), y1 = _mm512_loadu_si512(y[i].qs + 64);
    const __m512i y2 = _mm512_loadu_si512(y[i].qs + 128), y3 = _mm512_loadu_si512(y[i].qs + 192);
    a[i].lo[0] = _mm512_shuffle_i64x2(y0, y1, 0x44); a[i].hi[0] = _mm512_shuffle_i64x2(y0, y1, 0xee);
    a[i].lo[1] = _mm512_shuffle_i64x2(y2, y3, 0x44); a[i].hi[1] = _mm512_shuffle_i64x2(y2, y3, 0xee);
    const __m256i bs = _mm256_loadu_si256((const __m256i*)y[i].bsums);  // |Σ of 32| ≤ 4096: the int16 add is exact
    a[i].ysum = _mm_hadd_epi16(_mm256_castsi256_si128(bs), _mm256_extracti128_si256(bs, 1));
    a[i].d = y[i].d;
  }
}
static Kq45Act* kq45_scratch(size_t n) {
  thread_local std::vector<Kq45Act> buf;
  if (buf.size() < n) buf.resize(n);
  return buf.data();
}

// Constant vectors. Product k (k = 0..3) pairs codes of sub-blocks s0 = {0, 1, 4, 5}[k] (int32 lanes 0..7) and
// s0 + 2 (lanes 8..15). Products 2m, 2m+1 are packed to int16 (VPACKSSDW: 128-bit lane L = 4 words of product 2m,
// then 4 of 2m+1), so sc[m] has, per word, the scale byte of that word's sub-block (0x80: zero high byte) taken
// from the 16 broadcast scale/min bytes; hb[k] selects product k's 5th bits (q5_K: bit j of qh[l] belongs to
// element 32j + l).
struct Kq45Ctl {
  uint8_t sc[2][64], hb[4][64];
  constexpr Kq45Ctl() : sc{}, hb{} {
    for (int b = 0; b < 64; b++) {
      for (int m = 0; m < 2; m++) {
        const int k = 2 * m + ((b % 16) / 2 >= 4 ? 1 : 0);
        sc[m][b] = (uint8_t)(b % 2 ? 0x80 : (k & 1) + 4 * (k >> 1) + (b >= 32 ? 2 : 0));
      }
      for (int k = 0; k < 4; k++) hb[k][b] = (uint8_t)(1u << ((k & 1) + 4 * (k >> 1) + (b >= 32 ? 2 : 0)));
    }
  }
};
alignas(64) static constexpr Kq45Ctl kq45_ctl{};

// The 12 packed 6-bit (scale, min) bytes at p -> bytes 0..7 the scales, 8..15 the minimums (ggml's
// get_scale_min_k4 for j = 0..7, k4_scales' result, in vector registers): j < 4 takes the low 6 bits of byte j
// (min: j + 4); j ≥ 4 takes 4 bits of byte j + 4 (min: its high nibble) and bits 6-7 of byte j − 4 (min: of byte j).
static inline __m128i kq_scales(const uint8_t* p) {
  const __m128i s = _mm_loadu_si128((const __m128i*)p);  // bytes 0..11 (the block continues past them)
  const __m128i A = _mm_shuffle_epi8(s, _mm_setr_epi8(0, 1, 2, 3, 8, 9, 10, 11, 4, 5, 6, 7, 8, 9, 10, 11));
  const __m128i B = _mm_shuffle_epi8(s, _mm_setr_epi8(-1, -1, -1, -1, 0, 1, 2, 3, -1, -1, -1, -1, 4, 5, 6, 7));
  const __m128i lo = _mm_blend_epi32(_mm_and_si128(A, _mm_setr_epi32(0x3f3f3f3f, 0x0f0f0f0f, 0x3f3f3f3f, 0)),
                                     _mm_and_si128(_mm_srli_epi16(A, 4), _mm_set1_epi8(15)), 8);
  const __m128i hi = _mm_and_si128(_mm_srli_epi16(B, 2), _mm_setr_epi32(0, 0x30303030, 0, 0x30303030));
  return _mm_or_si128(lo, hi);
}
// One weight super-block decoded: codes (0..15, or 0..31 with q5_K's 5th bit) per product, scale lanes, minimums
// as int16, and (d, dmin) as floats in lanes 0, 1.
struct Kq45W { __m512i q[4], sc[2]; __m128i mins; __m128 dm; };
template <bool Q5>
static inline void kq45_decode(const uint8_t* blk, Kq45W& w) {
  const __m512i m4 = _mm512_set1_epi8(15);
  const uint8_t* qs = blk + (Q5 ? 48 : 16);
  for (int h = 0; h < 2; h++) {
    const __m512i q = _mm512_loadu_si512(qs + 64 * h);
    w.q[2 * h] = _mm512_and_si512(q, m4);
    w.q[2 * h + 1] = _mm512_and_si512(_mm512_srli_epi16(q, 4), m4);
  }
  if (Q5) {
    const __m512i hb = _mm512_broadcast_i64x4(_mm256_loadu_si256((const __m256i*)(blk + 16)));
    const __m512i b16 = _mm512_set1_epi8(16);
    for (int k = 0; k < 4; k++)
      w.q[k] = _mm512_mask_add_epi8(w.q[k], _mm512_test_epi8_mask(hb, _mm512_load_si512(kq45_ctl.hb[k])), w.q[k], b16);
  }
  const __m128i sm = kq_scales(blk + 4);
  const __m512i sb = _mm512_broadcast_i32x4(sm);
  for (int m = 0; m < 2; m++) w.sc[m] = _mm512_shuffle_epi8(sb, _mm512_load_si512(kq45_ctl.sc[m]));
  w.mins = _mm_shuffle_epi8(sm, _mm_setr_epi8(8, -1, 9, -1, 10, -1, 11, -1, 12, -1, 13, -1, 14, -1, 15, -1));
  uint32_t dd;
  std::memcpy(&dd, blk, 4);
  w.dm = _mm_cvtph_ps(_mm_cvtsi32_si128((int)dd));
}
// Σ code·y·scale over the super-block in 16 int32 lanes (exact)
static inline __m512i kq45_dot(const Kq45W& w, const Kq45Act& a) {
  const __m512i z = _mm512_setzero_si512();
  const __m512i p0 = _mm512_dpbusd_epi32(z, w.q[0], a.lo[0]), p1 = _mm512_dpbusd_epi32(z, w.q[1], a.hi[0]);
  const __m512i p2 = _mm512_dpbusd_epi32(z, w.q[2], a.lo[1]), p3 = _mm512_dpbusd_epi32(z, w.q[3], a.hi[1]);
  // |p| ≤ 4·31·127 fits int16: the packs are exact
  return _mm512_dpwssd_epi32(_mm512_madd_epi16(_mm512_packs_epi32(p0, p1), w.sc[0]), _mm512_packs_epi32(p2, p3), w.sc[1]);
}
// The float step of one (row, token) super-block, and the row's final value.
static inline void kq45_acc(const Kq45W& w, const Kq45Act& a, __m512& acc, __m128& accm) {
  const __m128 s = _mm_mul_ps(w.dm, _mm_set1_ps(a.d));  // d_w·d_y, dmin_w·d_y
  acc = _mm512_fmadd_ps(_mm512_broadcastss_ps(s), _mm512_cvtepi32_ps(kq45_dot(w, a)), acc);
  accm = _mm_fmadd_ps(_mm_permute_ps(s, 0x55), _mm_cvtepi32_ps(_mm_madd_epi16(w.mins, a.ysum)), accm);
}
static inline float kq45_finish(__m512 acc, __m128 accm) {
  __m128 m = _mm_add_ps(accm, _mm_movehl_ps(accm, accm));
  m = _mm_add_ss(m, _mm_movehdup_ps(m));
  return _mm512_reduce_add_ps(acc) - _mm_cvtss_f32(m);
}

template <bool Q5>
static void kq_rows_q45_k(int K, const uint8_t* w, size_t rb, int nrows, const void* act, float* out, bool pf) {
  constexpr size_t BB = Q5 ? 176 : 144;
  const int nb = K / 256;
  Kq45Act* a = kq45_scratch((size_t)nb);
  kq45_prep((const ActQ8K*)act, nb, a);
  const uint8_t* pfp = w;  // next line to prefetch: the chunk's rows are one contiguous stream
  for (int r = 0; r < nrows; r++) {
    const uint8_t* row = w + (size_t)r * rb;
    __m512 acc = _mm512_setzero_ps();
    __m128 accm = _mm_setzero_ps();
    for (int i = 0; i < nb; i++) {
      const uint8_t* blk = row + (size_t)i * BB;
      if (pf) for (const uint8_t* e = blk + L4_PF_KQ; pfp < e; pfp += 64) _mm_prefetch((const char*)pfp, _MM_HINT_NTA);
      Kq45W wt;
      kq45_decode<Q5>(blk, wt);
      kq45_acc(wt, a[i], acc, accm);
    }
    out[r] = kq45_finish(acc, accm);
  }
}
// Prefill: NT tokens (activations re-laid in a, token t at a + t·nb) × every row; each weight super-block is
// decoded once for the NT tokens.
template <bool Q5, int NT, bool PF>
static void kq45_pass(int nb, const uint8_t* w, size_t rb, int nrows, const Kq45Act* a, float* out, size_t outStride) {
  constexpr size_t BB = Q5 ? 176 : 144;
  const uint8_t* pfp = w;
  for (int r = 0; r < nrows; r++) {
    const uint8_t* row = w + (size_t)r * rb;
    __m512 acc[NT];
    __m128 accm[NT];
    for (int t = 0; t < NT; t++) { acc[t] = _mm512_setzero_ps(); accm[t] = _mm_setzero_ps(); }
    for (int i = 0; i < nb; i++) {
      const uint8_t* blk = row + (size_t)i * BB;
      if (PF) for (const uint8_t* e = blk + L4_PF_KQ; pfp < e; pfp += 64) _mm_prefetch((const char*)pfp, NT == 1 ? _MM_HINT_NTA : _MM_HINT_T0);
      Kq45W wt;
      kq45_decode<Q5>(blk, wt);
      for (int t = 0; t < NT; t++) kq45_acc(wt, a[(size_t)t * nb + i], acc[t], accm[t]);
    }
    for (int t = 0; t < NT; t++) out[(size_t)t * outStride + r] = kq45_finish(acc[t], accm[t]);
  }
}
// Prefill tile (PF = false) and small-batch decode (PF = true: the weights stream from DRAM once for all tokens):
// tokens in passes of 8, then 4; the rest (< 4) through the row kernel.
template <bool Q5, bool PF>
static void kq_tile_q45_k(int K, const uint8_t* w, size_t rb, int nrows, const uint8_t* act, size_t actStride, int ntok,
                          float* out, size_t outStride) {
  const int nb = K / 256;
  Kq45Act* a = kq45_scratch((size_t)nb * 8);
  zi_token_passes(
      ntok, [&](int t, int slot) { kq45_prep((const ActQ8K*)(act + (size_t)t * actStride), nb, a + (size_t)slot * nb); },
      [&](auto nt, int t0) { kq45_pass<Q5, decltype(nt)::value, PF>(nb, w, rb, nrows, a, out + (size_t)t0 * outStride, outStride); },
      [&](int t) { kq_rows_q45_k<Q5>(K, w, rb, nrows, act + (size_t)t * actStride, out + (size_t)t * outStride, PF); });
}

// ---- q6_K ----
// Decode keeps kern-x86.h's x_rows_q6_k: streaming from DRAM it measured 4-9% faster than a VNNI row kernel (one
// core, same process, alternating passes), though slower hot. The prefill tile and the small-batch kernel use VNNI
// and reproduce x_rows_q6_k's bits: its int32 lane i (of 8) holds the products of the elements e with
// (e mod 32) / 4 = i, scaled, minus 32·(scale_2i·Σy_2i + scale_2i+1·Σy_2i+1); here the same integers come out in
// 16 lanes (lane j: e mod 32 in [4(j mod 8), 4(j mod 8) + 4)), folded to 8 by adding the two halves (exact), then
// the same FMA and final sum.
// A 64-byte load of ql (half h: bytes 64h..64h+63) gives, in its low nibbles, elements 128h + 0..63 and in its high
// nibbles 128h + 64..127, in order, so the activations need no re-laying; the 2 high bits come from qh[32h..32h+31]
// (element 128h + 32m + l: bits 2m, 2m+1 of qh[32h + l]), broadcast to both 256-bit halves and shifted per half.
// Each 128-bit lane of a VPDPBUSD product is one sub-block of 16; its scale (int8 sign-extended to the low word of
// each int32 lane, high word 0) is one VPERMD away from the 16 scales.
struct alignas(32) Kq6Act { __m256i nbs; float d; };  // −Σy per 16 (|Σ16| ≤ 2032), d_y
static void kq6_prep(const ActQ8K* y, int nb, Kq6Act* a) {
  for (int i = 0; i < nb; i++) {
    a[i].nbs = _mm256_sub_epi16(_mm256_setzero_si256(), _mm256_loadu_si256((const __m256i*)y[i].bsums));
    a[i].d = y[i].d;
  }
}
static Kq6Act* kq6_scratch(size_t n) {
  thread_local std::vector<Kq6Act> buf;
  if (buf.size() < n) buf.resize(n);
  return buf.data();
}
struct Kq6W { __m512i q[4], sc[4]; __m256i sc16; float d; };
static inline void kq6_decode(const BlockQ6_K& b, Kq6W& w) {
  const __m512i m4 = _mm512_set1_epi8(15), m30 = _mm512_set1_epi8(0x30);
  const __m512i shl = _mm512_mask_blend_epi64(0xf0, _mm512_set1_epi16(4), _mm512_set1_epi16(2));  // per 256-bit half
  const __m512i shr = _mm512_mask_blend_epi64(0xf0, _mm512_setzero_si512(), _mm512_set1_epi16(2));
  for (int h = 0; h < 2; h++) {
    const __m512i L = _mm512_loadu_si512(b.ql + 64 * h);
    const __m512i H = _mm512_broadcast_i64x4(_mm256_loadu_si256((const __m256i*)(b.qh + 32 * h)));
    // (L & 15) | X with X's bits outside 4-5 cleared: vpternlog 0xF8 = a | (b & c)
    w.q[2 * h] = _mm512_ternarylogic_epi32(_mm512_and_si512(_mm512_sllv_epi16(H, shl), m30), L, m4, 0xF8);
    w.q[2 * h + 1] = _mm512_ternarylogic_epi32(_mm512_and_si512(_mm512_srlv_epi16(H, shr), m30), _mm512_srli_epi16(L, 4), m4, 0xF8);
  }
  w.sc16 = _mm256_cvtepi8_epi16(_mm_loadu_si128((const __m128i*)b.scales));
  const __m512i s32 = _mm512_cvtepu16_epi32(w.sc16);
  const __m512i quad = _mm512_srli_epi32(_mm512_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15), 2);
  for (int k = 0; k < 4; k++) w.sc[k] = _mm512_permutexvar_epi32(_mm512_add_epi32(quad, _mm512_set1_epi32(4 * k)), s32);
  w.d = _cvtsh_ss(b.d);
}
// x_rows_q6_k's 8 int32 lanes of one super-block (exact; |p| ≤ 4·63·127, so the high word of each lane is its sign)
static inline __m256i kq6_dot(const Kq6W& w, const Kq6Act& a, const int8_t* yq) {
  const __m512i z = _mm512_setzero_si512();
  const __m512i off = _mm512_zextsi256_si512(_mm256_slli_epi32(_mm256_madd_epi16(w.sc16, a.nbs), 5));
  const __m512i p0 = _mm512_dpbusd_epi32(z, w.q[0], _mm512_loadu_si512(yq));
  const __m512i p1 = _mm512_dpbusd_epi32(z, w.q[1], _mm512_loadu_si512(yq + 64));
  const __m512i p2 = _mm512_dpbusd_epi32(z, w.q[2], _mm512_loadu_si512(yq + 128));
  const __m512i p3 = _mm512_dpbusd_epi32(z, w.q[3], _mm512_loadu_si512(yq + 192));
  const __m512i s01 = _mm512_dpwssd_epi32(_mm512_dpwssd_epi32(off, p0, w.sc[0]), p1, w.sc[1]);
  const __m512i s = _mm512_add_epi32(s01, _mm512_dpwssd_epi32(_mm512_madd_epi16(p2, w.sc[2]), p3, w.sc[3]));
  return _mm256_add_epi32(_mm512_castsi512_si256(s), _mm512_extracti64x4_epi64(s, 1));
}
// x_rows_q6_k's float step
static inline void kq6_acc(const Kq6W& w, const Kq6Act& a, const int8_t* yq, __m256& acc) {
  acc = _mm256_fmadd_ps(_mm256_set1_ps(w.d * a.d), _mm256_cvtepi32_ps(kq6_dot(w, a, yq)), acc);
}
template <int NT, bool PF>
static void kq6_pass(int nb, const uint8_t* w, size_t rb, int nrows, const ActQ8K* const* y, const Kq6Act* a, float* out,
                     size_t outStride) {
  const uint8_t* pfp = w;
  for (int r = 0; r < nrows; r++) {
    const BlockQ6_K* x = (const BlockQ6_K*)(w + (size_t)r * rb);
    __m256 acc[NT];
    for (int t = 0; t < NT; t++) acc[t] = _mm256_setzero_ps();
    for (int i = 0; i < nb; i++) {
      if (PF) for (const uint8_t* e = (const uint8_t*)(x + i) + L4_PF_KQ; pfp < e; pfp += 64) _mm_prefetch((const char*)pfp, NT == 1 ? _MM_HINT_NTA : _MM_HINT_T0);
      Kq6W wt;
      kq6_decode(x[i], wt);
      for (int t = 0; t < NT; t++) kq6_acc(wt, a[(size_t)t * nb + i], y[t][i].qs, acc[t]);
    }
    for (int t = 0; t < NT; t++) out[(size_t)t * outStride + r] = hsum8(acc[t]);
  }
}
// Prefill tile (PF = false) and small-batch decode (PF = true: the weights stream from DRAM once for all tokens):
// tokens in passes of 8, then 4; the rest (< 4) through x_rows_q6_k.
template <bool PF>
static void kq_tile_q6_k(int K, const uint8_t* w, size_t rb, int nrows, const uint8_t* act, size_t actStride, int ntok,
                         float* out, size_t outStride) {
  const int nb = K / 256;
  Kq6Act* a = kq6_scratch((size_t)nb * 8);
  const ActQ8K* y[8];
  zi_token_passes(
      ntok,
      [&](int t, int slot) {
        y[slot] = (const ActQ8K*)(act + (size_t)t * actStride);
        kq6_prep(y[slot], nb, a + (size_t)slot * nb);
      },
      [&](auto nt, int t0) { kq6_pass<decltype(nt)::value, PF>(nb, w, rb, nrows, y, a, out + (size_t)t0 * outStride, outStride); },
      [&](int t) { x_rows_q6_k(K, w, rb, nrows, act + (size_t)t * actStride, out + (size_t)t * outStride, PF); });
}

static void fill_kquant_avx512(KernelTable& t) {
  t.rows[T_Q4_K] = kq_rows_q45_k<false>;
  t.tile[T_Q4_K] = kq_tile_q45_k<false, false>;
  t.batch[T_Q4_K] = kq_tile_q45_k<false, true>;
  t.rows[T_Q5_K] = kq_rows_q45_k<true>;
  t.tile[T_Q5_K] = kq_tile_q45_k<true, false>;
  t.batch[T_Q5_K] = kq_tile_q45_k<true, true>;
  // prefill chunks of 64 rows: the activations re-laid per tile call serve 64 rows instead of 16 (hot tile, 16 ->
  // 64 rows per call: 3.02 -> 2.82 ns per (super-block, token) for q4_K at K = 2048; IQ4_XS 2.83 -> 2.60)
  t.tile_rows[T_Q4_K] = t.tile_rows[T_Q5_K] = 64;
  t.tile_rows[T_IQ4_XS] = t.tile_rows[T_IQ2_XXS] = 64;
  t.tile[T_Q6_K] = kq_tile_q6_k<false>;
  t.batch[T_Q6_K] = kq_tile_q6_k<true>;
}
