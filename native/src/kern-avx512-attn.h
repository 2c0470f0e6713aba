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
