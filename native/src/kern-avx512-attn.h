// Whole-row attention for unmasked attention (the vision tower: 577 queries × 577 keys per head, no mask, no cache),
// included by kern-avx512.cc. The flash kernel (attn_row) takes one query row against ≤ 64 keys at a time with
// horizontal sums per key; here a block of 8 queries is one small GEMM against all keys:
//   scores  sc[8][Sp] = (q · Kᵀ)·scale   outer products: 8 broadcast q values × 3 vectors of 16 keys, d ascending
//   softmax p = e^(sc − max), l = Σp     every key visible, so one exact pass (no online rescaling)
//   output  o[8][d] = (Σ_j p_j · v_j)/l   4 queries × 6 vectors of 16 outputs, keys ascending
// K and V are repacked once per call by the engine (ops.cc attentionFull): Kt [d][Sp] per kv head (keys padded to a
// multiple of 16 with zeros) and Vp [S][dp] (d padded to a multiple of 16).
//
// Batch invariance: every score, the max, the sum and every output element are one fixed chain of operations per
// query (accumulators never mix queries; a block with fewer than 8 queries repeats its last one), so a query's
// result is the same bits in a call of 1 query or of 577.

// GCC 12's _mm512_reduce_*_ps pass an undefined vector to a masked extract (a false -Wuninitialized).
#pragma GCC diagnostic ignored "-Wuninitialized"

// e^x, 16 lanes: exp_ps (kern-x86.h) widened, the same constants and steps.
static inline __m512 exp16(__m512 x) {
  const __m512 lo = _mm512_set1_ps(-87.33654f);
  const __mmask16 under = _mm512_cmp_ps_mask(x, lo, _CMP_LT_OQ);
  x = _mm512_min_ps(_mm512_max_ps(x, lo), _mm512_set1_ps(88.f));
  const __m512 n = _mm512_roundscale_ps(_mm512_mul_ps(x, _mm512_set1_ps(1.44269504088896341f)), _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
  __m512 r = _mm512_fnmadd_ps(n, _mm512_set1_ps(0.693359375f), x);
  r = _mm512_fnmadd_ps(n, _mm512_set1_ps(-2.12194440e-4f), r);
  __m512 p = _mm512_set1_ps(1.9875691500e-4f);
  p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.3981999507e-3f));
  p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(8.3334519073e-3f));
  p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(4.1665795894e-2f));
  p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.6666665459e-1f));
  p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(5.0000001201e-1f));
  p = _mm512_fmadd_ps(p, _mm512_mul_ps(r, r), _mm512_add_ps(r, _mm512_set1_ps(1.f)));
  const __m512i e = _mm512_slli_epi32(_mm512_add_epi32(_mm512_cvtps_epi32(n), _mm512_set1_epi32(127)), 23);
  return _mm512_maskz_mul_ps((__mmask16)~under, p, _mm512_castsi512_ps(e));
}

constexpr int kFullQ = 8;  // queries per block

// Scores of 8 queries against keys [j0, j0 + 16·NV): sc[m·Sp + j] = (Σ_i q_m[i]·Kt[i][j])·scale, i ascending.
template <int NV>
static inline void full_scores(const float* const* q, const float* Kt, int Sp, int d, int j0, float scale, float* sc) {
  __m512 acc[kFullQ][NV];
  for (int m = 0; m < kFullQ; m++)
    for (int v = 0; v < NV; v++) acc[m][v] = _mm512_setzero_ps();
  for (int i = 0; i < d; i++) {
    __m512 kv[NV];
    for (int v = 0; v < NV; v++) kv[v] = _mm512_loadu_ps(Kt + (size_t)i * Sp + j0 + 16 * v);
    for (int m = 0; m < kFullQ; m++) {
      const __m512 qb = _mm512_set1_ps(q[m][i]);
      for (int v = 0; v < NV; v++) acc[m][v] = _mm512_fmadd_ps(qb, kv[v], acc[m][v]);
    }
  }
  const __m512 s = _mm512_set1_ps(scale);
  for (int m = 0; m < kFullQ; m++)
    for (int v = 0; v < NV; v++) _mm512_storeu_ps(sc + (size_t)m * Sp + j0 + 16 * v, _mm512_mul_ps(acc[m][v], s));
}

// o_m[c0 .. c0 + 16·NC) = Σ_j p_m[j]·Vp[j][…] for 4 queries (rows of sc), j ascending, then · inv_m.
template <int NC>
static inline void full_pv(const float* sc, int Sp, int S, const float* Vp, int dp, int c0, const float* inv, float* const* o, int d) {
  __m512 acc[4][NC];
  for (int m = 0; m < 4; m++)
    for (int c = 0; c < NC; c++) acc[m][c] = _mm512_setzero_ps();
  for (int j = 0; j < S; j++) {
    __m512 vv[NC];
    for (int c = 0; c < NC; c++) vv[c] = _mm512_loadu_ps(Vp + (size_t)j * dp + c0 + 16 * c);
    for (int m = 0; m < 4; m++) {
      const __m512 pb = _mm512_set1_ps(sc[(size_t)m * Sp + j]);
      for (int c = 0; c < NC; c++) acc[m][c] = _mm512_fmadd_ps(pb, vv[c], acc[m][c]);
    }
  }
  for (int m = 0; m < 4; m++) {
    if (!o[m]) continue;
    const __m512 iv = _mm512_set1_ps(inv[m]);
    for (int c = 0; c < NC; c++) {
      const int col = c0 + 16 * c, left = d - col;
      if (left <= 0) break;
      const __m512 r = _mm512_mul_ps(acc[m][c], iv);
      if (left >= 16) _mm512_storeu_ps(o[m] + col, r);
      else _mm512_mask_storeu_ps(o[m] + col, (__mmask16)((1u << left) - 1), r);
    }
  }
}

// AttnFullFn (common.h): nq ≤ 8 queries (rows qStride floats apart), keys/values repacked as above; outputs rows
// oStride floats apart; sc: scratch of 8·Sp floats.
static void z_attn_full(const float* q, size_t qStride, int nq, const float* Kt, const float* Vp, int S, int Sp, int d, int dp,
                        float scale, float* out, size_t oStride, float* sc) {
  const float* qr[kFullQ];
  for (int m = 0; m < kFullQ; m++) qr[m] = q + (size_t)std::min(m, nq - 1) * qStride;
  int j0 = 0;
  for (; j0 + 48 <= Sp; j0 += 48) full_scores<3>(qr, Kt, Sp, d, j0, scale, sc);
  if (Sp - j0 == 32) full_scores<2>(qr, Kt, Sp, d, j0, scale, sc);
  else if (Sp - j0 == 16) full_scores<1>(qr, Kt, Sp, d, j0, scale, sc);
  // softmax per query: padded keys [S, Sp) get −inf (e^−inf = 0), lanes reduced by one fixed tree
  float inv[kFullQ];
  for (int m = 0; m < kFullQ; m++) {
    float* s = sc + (size_t)m * Sp;
    for (int j = S; j < Sp; j++) s[j] = -INFINITY;
    __m512 mx = _mm512_set1_ps(-INFINITY);
    for (int j = 0; j < Sp; j += 16) mx = _mm512_max_ps(mx, _mm512_loadu_ps(s + j));
    const __m512 mv = _mm512_set1_ps(_mm512_reduce_max_ps(mx));
    __m512 l = _mm512_setzero_ps();
    for (int j = 0; j < Sp; j += 16) {
      const __m512 p = exp16(_mm512_sub_ps(_mm512_loadu_ps(s + j), mv));
      _mm512_storeu_ps(s + j, p);
      l = _mm512_add_ps(l, p);
    }
    inv[m] = 1.f / _mm512_reduce_add_ps(l);
  }
  for (int g = 0; g < kFullQ; g += 4) {
    float* o[4];
    for (int m = 0; m < 4; m++) o[m] = g + m < nq ? out + (size_t)(g + m) * oStride : nullptr;
    for (int c0 = 0; c0 < dp; c0 += 96) {
      const int nc = std::min(6, (dp - c0) / 16);
      const float* sg = sc + (size_t)g * Sp;
      switch (nc) {
        case 1: full_pv<1>(sg, Sp, S, Vp, dp, c0, inv + g, o, d); break;
        case 2: full_pv<2>(sg, Sp, S, Vp, dp, c0, inv + g, o, d); break;
        case 3: full_pv<3>(sg, Sp, S, Vp, dp, c0, inv + g, o, d); break;
        case 4: full_pv<4>(sg, Sp, S, Vp, dp, c0, inv + g, o, d); break;
        case 5: full_pv<5>(sg, Sp, S, Vp, dp, c0, inv + g, o, d); break;
        default: full_pv<6>(sg, Sp, S, Vp, dp, c0, inv + g, o, d); break;
      }
    }
  }
}

// ---------------------------------------------------------------------------------------------------------------
// Causal / chunked attention of several query rows against one ≤ 64-key block (the KernelTable's attn_rows; prefill
// tiles and decode's query-head group). Same operations per query as x_attn_row<0> — so the same bits — with the
// loads shared more widely than x_attn_rows does, which matters once prompts are long (attention is O(T·S)):
//  * scores: 4 queries × 4 keys per pass (16 ymm accumulators, each key chunk and query chunk loaded once per pass);
//    per key one 8-float accumulator over ascending chunks and dot4's reduction tree, exactly as dot4;
//  * o += p·v: a query's output row stays in zmm registers for the whole block (d/16 of them), up to 24/(d/16)
//    queries per pass, one load of each value chunk per pass. Per output element this is fma(p_j, v_j, o) for keys
//    j ascending — the order x_attn_pv uses — whatever the register blocking (lanes never mix).
// d must be 16, 32, 64 or 128 (else x_attn_rows).

// 16 values [i, i + 16) of a stored K/V row (i % 16 == 0) as floats: exactly kv_load8's values, 16 at a time.
template <int KV>
static inline __m512 kv_load16(const uint8_t* r, int i) {
  if constexpr (KV == 0) return _mm512_loadu_ps((const float*)r + i);
  else if constexpr (KV == 1) return _mm512_cvtph_ps(_mm256_loadu_si256((const __m256i*)(r + 2 * i)));
  else {
    const BlockQ8_0* b = (const BlockQ8_0*)r + i / 32;
    const __m512i q = _mm512_cvtepi8_epi32(_mm_loadu_si128((const __m128i*)(b->qs + i % 32)));
    return _mm512_mul_ps(_mm512_cvtepi32_ps(q), _mm512_set1_ps(_cvtsh_ss(b->d)));
  }
}

// Scores of NQ queries against 4 keys: r[m] lanes = dot4(q_m, k0..k3)'s lanes (each key chunk loaded once).
template <int KV, int NQ>
static inline void z_dot4xn(const float* const* q, const uint8_t* k0, const uint8_t* k1, const uint8_t* k2, const uint8_t* k3, int d,
                            __m128* r) {
  __m256 a[NQ][4];
  for (int m = 0; m < NQ; m++)
    for (int j = 0; j < 4; j++) a[m][j] = _mm256_setzero_ps();
  for (int i = 0; i < d; i += 8) {
    const __m256 x0 = kv_load8<KV>(k0, i), x1 = kv_load8<KV>(k1, i), x2 = kv_load8<KV>(k2, i), x3 = kv_load8<KV>(k3, i);
    for (int m = 0; m < NQ; m++) {
      const __m256 qv = _mm256_loadu_ps(q[m] + i);
      a[m][0] = _mm256_fmadd_ps(qv, x0, a[m][0]);
      a[m][1] = _mm256_fmadd_ps(qv, x1, a[m][1]);
      a[m][2] = _mm256_fmadd_ps(qv, x2, a[m][2]);
      a[m][3] = _mm256_fmadd_ps(qv, x3, a[m][3]);
    }
  }
  for (int m = 0; m < NQ; m++) {
    const __m256 s = _mm256_hadd_ps(_mm256_hadd_ps(a[m][0], a[m][1]), _mm256_hadd_ps(a[m][2], a[m][3]));
    r[m] = _mm_add_ps(_mm256_castps256_ps128(s), _mm256_extractf128_ps(s, 1));
  }
}

// o_m[0..16·ND) += Σ_j p_m[j]·v_j for NQ queries, keys j ascending, outputs held in registers.
template <int KV, int ND, int NQ>
static inline void z_pv_regs(float* const* o, const float* const* p, const uint8_t* v, size_t stride, int n) {
  __m512 acc[NQ][ND];
  for (int m = 0; m < NQ; m++)
    for (int c = 0; c < ND; c++) acc[m][c] = _mm512_loadu_ps(o[m] + 16 * c);
  for (int j = 0; j < n; j++) {
    const uint8_t* vj = v + (size_t)j * stride;
    __m512 pb[NQ];
    for (int m = 0; m < NQ; m++) pb[m] = _mm512_set1_ps(p[m][j]);
    for (int c = 0; c < ND; c++) {
      const __m512 vv = kv_load16<KV>(vj, 16 * c);
      for (int m = 0; m < NQ; m++) acc[m][c] = _mm512_fmadd_ps(pb[m], vv, acc[m][c]);
    }
  }
  for (int m = 0; m < NQ; m++)
    for (int c = 0; c < ND; c++) _mm512_storeu_ps(o[m] + 16 * c, acc[m][c]);
}

template <int KV, int ND>
static void z_pv_all(int nq, float* const* o, const float* const* p, const uint8_t* v, size_t stride, int n) {
  constexpr int NQ = ND >= 8 ? 3 : ND >= 4 ? 6 : 8;
  int i = 0;
  for (; i + NQ <= nq; i += NQ) z_pv_regs<KV, ND, NQ>(o + i, p + i, v, stride, n);
  switch (nq - i) {
    case 0: break;
    case 1: z_pv_regs<KV, ND, 1>(o + i, p + i, v, stride, n); break;
    case 2: z_pv_regs<KV, ND, 2>(o + i, p + i, v, stride, n); break;
    case 3: z_pv_regs<KV, ND, 3>(o + i, p + i, v, stride, n); break;
    case 4: z_pv_regs<KV, ND, 4>(o + i, p + i, v, stride, n); break;
    case 5: z_pv_regs<KV, ND, 5>(o + i, p + i, v, stride, n); break;
    case 6: z_pv_regs<KV, ND, 6>(o + i, p + i, v, stride, n); break;
    default: z_pv_regs<KV, ND, 7>(o + i, p + i, v, stride, n); break;
  }
}

// attn_rows (f32 rows, KV = 0) and attn_rows_kv (rows read in place from an f32 / f16 / q8_0 cache: decode, where
// converting each block to f32 first cost as much as the attention).
template <int KV>
static void z_attn_rows_t(int nq, const float* const* qs, const int* cs, const uint8_t* k, const uint8_t* v, size_t stride, int n, int d,
                          float scale, float* M, float* L, float* acc, float* sc) {
  if ((d != 16 && d != 32 && d != 64 && d != 128) || n > 64) {
    if constexpr (KV == 0) x_attn_rows(nq, qs, cs, k, v, stride, n, d, scale, M, L, acc, sc);
    else
      for (int i = 0; i < nq; i++) x_attn_row<KV>(qs[i], k, v, stride, n, d, scale, M + cs[i], L + cs[i], acc + (size_t)cs[i] * d, sc);
    return;
  }
  const __m128 vs = _mm_set1_ps(scale);
  // scores sc[i·64 + j]: 4 queries at a time, then the rest together
  auto scores = [&](auto nqc, int i) {
    constexpr int NQ = decltype(nqc)::value;
    int j = 0;
    for (; j + 4 <= n; j += 4) {
      const uint8_t* kj = k + (size_t)j * stride;
      __m128 r[NQ];
      z_dot4xn<KV, NQ>(qs + i, kj, kj + stride, kj + 2 * stride, kj + 3 * stride, d, r);
      for (int m = 0; m < NQ; m++) _mm_storeu_ps(sc + (size_t)(i + m) * 64 + j, _mm_mul_ps(r[m], vs));
    }
    for (; j < n; j++) {
      const uint8_t* kj = k + (size_t)j * stride;
      for (int m = 0; m < NQ; m++) sc[(size_t)(i + m) * 64 + j] = _mm_cvtss_f32(_mm_mul_ps(dot4<KV>(qs[i + m], kj, kj, kj, kj, d), vs));
    }
  };
  int i = 0;
  for (; i + 4 <= nq; i += 4) scores(std::integral_constant<int, 4>{}, i);
  switch (nq - i) {
    case 3: scores(std::integral_constant<int, 3>{}, i); break;
    case 2: scores(std::integral_constant<int, 2>{}, i); break;
    case 1: scores(std::integral_constant<int, 1>{}, i); break;
    default: break;
  }
  // online softmax per query, as x_attn_row
  float* os[64];
  const float* ps[64];
  for (int b = 0; b < nq; b += 64) {
    const int nb = std::min(64, nq - b);
    for (int m = 0; m < nb; m++) {
      x_attn_softmax(sc + (size_t)(b + m) * 64, n, d, M + cs[b + m], L + cs[b + m], acc + (size_t)cs[b + m] * d);
      os[m] = acc + (size_t)cs[b + m] * d;
      ps[m] = sc + (size_t)(b + m) * 64;
    }
    switch (d) {
      case 16: z_pv_all<KV, 1>(nb, os, ps, v, stride, n); break;
      case 32: z_pv_all<KV, 2>(nb, os, ps, v, stride, n); break;
      case 64: z_pv_all<KV, 4>(nb, os, ps, v, stride, n); break;
      default: z_pv_all<KV, 8>(nb, os, ps, v, stride, n); break;
    }
  }
}
static void z_attn_rows(int nq, const float* const* qs, const int* cs, const uint8_t* k, const uint8_t* v, size_t stride, int n, int d,
                        float scale, float* M, float* L, float* acc, float* sc) {
  if (stride % 4 != 0) { x_attn_rows(nq, qs, cs, k, v, stride, n, d, scale, M, L, acc, sc); return; }
  z_attn_rows_t<0>(nq, qs, cs, k, v, stride, n, d, scale, M, L, acc, sc);
}

// Decode against every kv head of one key block at once (the KernelTable's attn_heads, see AttnHeadsFn): the same
// operations per query as z_attn_rows_t<KV> on each head alone — so the same bits — in another order over memory:
// scores for 4 keys × every head at a time, values for 8 keys × every head, so the block (one contiguous range of
// the [key][kv head][d] cache per K and V) is read front to back, and the next block's prefetches are spread over
// both loops. Per head, rows 2-4 KiB apart were a pattern the hardware prefetchers do not follow across 4 KiB pages.
template <int KV>
static void z_attn_heads_t(int nh, int nqh, const float* const* qs, const int* cs, const uint8_t* k, const uint8_t* v, size_t headStride,
                           size_t stride, int n, int d, float scale, float* M, float* L, float* acc, float* sc, KvPrefetch* pk,
                           KvPrefetch* pv) {
  if ((d != 16 && d != 32 && d != 64 && d != 128) || n > 64 || nh * nqh > 64) {
    if (pk) pk->finish();
    if (pv) pv->finish();
    for (int h = 0; h < nh; h++)
      z_attn_rows_t<KV>(nqh, qs + h * nqh, cs + h * nqh, k + h * headStride, v + h * headStride, stride, n, d, scale, M, L, acc, sc);
    return;
  }
  const size_t kPer = pk ? pk->perStep((size_t)(n / 4 + 1) * nh) : 0, vPer = pv ? pv->perStep((size_t)((n + 7) / 8) * nh) : 0;
  const __m128 vs = _mm_set1_ps(scale);
  // scores sc[(h·nqh + m)·64 + j] of NQ queries of head h from query m0 against keys [j, j + 4)
  auto score4 = [&](auto nqc, int h, int m0, int j) {
    constexpr int NQ = decltype(nqc)::value;
    const uint8_t* kj = k + (size_t)j * stride + h * headStride;
    __m128 r[NQ];
    z_dot4xn<KV, NQ>(qs + h * nqh + m0, kj, kj + stride, kj + 2 * stride, kj + 3 * stride, d, r);
    for (int m = 0; m < NQ; m++) _mm_storeu_ps(sc + (size_t)(h * nqh + m0 + m) * 64 + j, _mm_mul_ps(r[m], vs));
  };
  int j = 0;
  for (; j + 4 <= n; j += 4)
    for (int h = 0; h < nh; h++) {
      if (pk) pk->step(kPer);
      int m0 = 0;
      for (; m0 + 4 <= nqh; m0 += 4) score4(std::integral_constant<int, 4>{}, h, m0, j);
      switch (nqh - m0) {
        case 3: score4(std::integral_constant<int, 3>{}, h, m0, j); break;
        case 2: score4(std::integral_constant<int, 2>{}, h, m0, j); break;
        case 1: score4(std::integral_constant<int, 1>{}, h, m0, j); break;
        default: break;
      }
    }
  x_heads_tail_scores<KV>(j, n, nh, nqh, qs, k, headStride, stride, d, vs, sc);
  if (pk) pk->finish();
  const int nq = nh * nqh;
  float* os[64];
  const float* ps[64];
  for (int i = 0; i < nq; i++) {
    x_attn_softmax(sc + (size_t)i * 64, n, d, M + cs[i], L + cs[i], acc + (size_t)cs[i] * d);
    os[i] = acc + (size_t)cs[i] * d;
  }
  // o += p·v, 8 keys × every head per pass; per output element still fma over keys ascending
  for (int j0 = 0; j0 < n; j0 += 8) {
    const int jn = std::min(8, n - j0);
    for (int i = 0; i < nq; i++) ps[i] = sc + (size_t)i * 64 + j0;
    for (int h = 0; h < nh; h++) {
      if (pv) pv->step(vPer);
      const uint8_t* vj = v + (size_t)j0 * stride + h * headStride;
      switch (d) {
        case 16: z_pv_all<KV, 1>(nqh, os + h * nqh, ps + h * nqh, vj, stride, jn); break;
        case 32: z_pv_all<KV, 2>(nqh, os + h * nqh, ps + h * nqh, vj, stride, jn); break;
        case 64: z_pv_all<KV, 4>(nqh, os + h * nqh, ps + h * nqh, vj, stride, jn); break;
        default: z_pv_all<KV, 8>(nqh, os + h * nqh, ps + h * nqh, vj, stride, jn); break;
      }
    }
  }
  if (pv) pv->finish();
}
