// Attention for several query rows at once (included by kern-x86.h, after x_attn_row): the KernelTable's attn_rows.
// Each query's operations are x_attn_row<0>'s, in the same order — per key one accumulator over ascending 8-float
// chunks and the same reduction tree (dot4), the same online-softmax update, o += p·v four keys per pass — so a
// query gets the same bits whichever queries share the call (batch invariance, see ops.cc). What is shared is the
// loads: a pair of queries reads each key chunk once for both, and a pair's value chunks are read once for both.

// Stored K/V rows -> f32 rows with kv_load8 (F16C, q8_0's one multiply): the values x_attn_row reads in place.
template <int KV>
static void x_kv_rows(float* dst, const uint8_t* src, size_t stride, int n, int d) {
  if (d % 8 != 0) {
    constexpr float (*LD)(const uint8_t*, int) = KV == 0 ? kv_ld_f32 : KV == 1 ? kv_ld_f16 : kv_ld_q8_0;
    for (int j = 0; j < n; j++)
      for (int i = 0; i < d; i++) dst[(size_t)j * d + i] = LD(src + (size_t)j * stride, i);
    return;
  }
  for (int j = 0; j < n; j++)
    for (int i = 0; i < d; i += 8) _mm256_storeu_ps(dst + (size_t)j * d + i, kv_load8<KV>(src + (size_t)j * stride, i));
}

// Dots of two queries with the same 4 key rows: dot4's arithmetic for each query (f32 rows).
static inline void dot4x2(const float* qa, const float* qb, const uint8_t* k0, const uint8_t* k1, const uint8_t* k2, const uint8_t* k3,
                          int d, __m128* ra, __m128* rb) {
  __m256 a0 = _mm256_setzero_ps(), a1 = a0, a2 = a0, a3 = a0, b0 = a0, b1 = a0, b2 = a0, b3 = a0;
  for (int i = 0; i < d; i += 8) {
    const __m256 x0 = _mm256_loadu_ps((const float*)k0 + i), x1 = _mm256_loadu_ps((const float*)k1 + i);
    const __m256 x2 = _mm256_loadu_ps((const float*)k2 + i), x3 = _mm256_loadu_ps((const float*)k3 + i);
    const __m256 qv = _mm256_loadu_ps(qa + i), qw = _mm256_loadu_ps(qb + i);
    a0 = _mm256_fmadd_ps(qv, x0, a0); a1 = _mm256_fmadd_ps(qv, x1, a1);
    a2 = _mm256_fmadd_ps(qv, x2, a2); a3 = _mm256_fmadd_ps(qv, x3, a3);
    b0 = _mm256_fmadd_ps(qw, x0, b0); b1 = _mm256_fmadd_ps(qw, x1, b1);
    b2 = _mm256_fmadd_ps(qw, x2, b2); b3 = _mm256_fmadd_ps(qw, x3, b3);
  }
  const __m256 sa = _mm256_hadd_ps(_mm256_hadd_ps(a0, a1), _mm256_hadd_ps(a2, a3));
  const __m256 sb = _mm256_hadd_ps(_mm256_hadd_ps(b0, b1), _mm256_hadd_ps(b2, b3));
  *ra = _mm_add_ps(_mm256_castps256_ps128(sa), _mm256_extractf128_ps(sa, 1));
  *rb = _mm_add_ps(_mm256_castps256_ps128(sb), _mm256_extractf128_ps(sb, 1));
}

static void x_attn_rows(int nq, const float* const* qs, const int* cs, const uint8_t* k, const uint8_t* v, size_t stride, int n, int d,
                        float scale, float* M, float* L, float* acc, float* sc) {
  if (d % 8 != 0 || n > 64) {
    for (int i = 0; i < nq; i++) x_attn_row<0>(qs[i], k, v, stride, n, d, scale, M + cs[i], L + cs[i], acc + (size_t)cs[i] * d, sc);
    return;
  }
  const __m128 vs = _mm_set1_ps(scale);
  // scores sc[i·64 + j]
  int j = 0;
  for (; j + 4 <= n; j += 4) {
    const uint8_t* kj = k + (size_t)j * stride;
    int i = 0;
    for (; i + 2 <= nq; i += 2) {
      __m128 ra, rb;
      dot4x2(qs[i], qs[i + 1], kj, kj + stride, kj + 2 * stride, kj + 3 * stride, d, &ra, &rb);
      _mm_storeu_ps(sc + (size_t)i * 64 + j, _mm_mul_ps(ra, vs));
      _mm_storeu_ps(sc + (size_t)(i + 1) * 64 + j, _mm_mul_ps(rb, vs));
    }
    for (; i < nq; i++) _mm_storeu_ps(sc + (size_t)i * 64 + j, _mm_mul_ps(dot4<0>(qs[i], kj, kj + stride, kj + 2 * stride, kj + 3 * stride, d), vs));
  }
  for (; j < n; j++) {
    const uint8_t* kj = k + (size_t)j * stride;
    for (int i = 0; i < nq; i++) sc[(size_t)i * 64 + j] = _mm_cvtss_f32(_mm_mul_ps(dot4<0>(qs[i], kj, kj, kj, kj, d), vs));
  }
  // online softmax per query, as x_attn_row
  for (int i = 0; i < nq; i++) x_attn_softmax(sc + (size_t)i * 64, n, d, M + cs[i], L + cs[i], acc + (size_t)cs[i] * d);
  // o += p_j·v_j: per query the same passes as x_attn_row (4 keys per pass, then single keys), two queries per value load
  int i = 0;
  for (; i + 2 <= nq; i += 2) {
    const float *sa = sc + (size_t)i * 64, *sb = sa + 64;
    float *oa = acc + (size_t)cs[i] * d, *ob = acc + (size_t)cs[i + 1] * d;
    j = 0;
    for (; j + 4 <= n; j += 4) {
      const uint8_t* vj = v + (size_t)j * stride;
      const __m256 p0 = _mm256_set1_ps(sa[j]), p1 = _mm256_set1_ps(sa[j + 1]), p2 = _mm256_set1_ps(sa[j + 2]), p3 = _mm256_set1_ps(sa[j + 3]);
      const __m256 r0 = _mm256_set1_ps(sb[j]), r1 = _mm256_set1_ps(sb[j + 1]), r2 = _mm256_set1_ps(sb[j + 2]), r3 = _mm256_set1_ps(sb[j + 3]);
      for (int e = 0; e < d; e += 8) {
        const __m256 v0 = _mm256_loadu_ps((const float*)vj + e), v1 = _mm256_loadu_ps((const float*)(vj + stride) + e);
        const __m256 v2 = _mm256_loadu_ps((const float*)(vj + 2 * stride) + e), v3 = _mm256_loadu_ps((const float*)(vj + 3 * stride) + e);
        __m256 a = _mm256_loadu_ps(oa + e), b = _mm256_loadu_ps(ob + e);
        a = _mm256_fmadd_ps(p0, v0, a); b = _mm256_fmadd_ps(r0, v0, b);
        a = _mm256_fmadd_ps(p1, v1, a); b = _mm256_fmadd_ps(r1, v1, b);
        a = _mm256_fmadd_ps(p2, v2, a); b = _mm256_fmadd_ps(r2, v2, b);
        a = _mm256_fmadd_ps(p3, v3, a); b = _mm256_fmadd_ps(r3, v3, b);
        _mm256_storeu_ps(oa + e, a);
        _mm256_storeu_ps(ob + e, b);
      }
    }
    for (; j < n; j++) {
      const float* vj = (const float*)(v + (size_t)j * stride);
      const __m256 p = _mm256_set1_ps(sa[j]), r = _mm256_set1_ps(sb[j]);
      for (int e = 0; e < d; e += 8) {
        const __m256 x = _mm256_loadu_ps(vj + e);
        _mm256_storeu_ps(oa + e, _mm256_fmadd_ps(p, x, _mm256_loadu_ps(oa + e)));
        _mm256_storeu_ps(ob + e, _mm256_fmadd_ps(r, x, _mm256_loadu_ps(ob + e)));
      }
    }
  }
  for (; i < nq; i++) x_attn_pv<0>(acc + (size_t)cs[i] * d, sc + (size_t)i * 64, v, stride, n, d);
}

// The attn_heads kernels' scores of keys [j, n) (the last n % 4 of a block) for every head's queries, each key alone as
// x_attn_row's tail does (dot4 over four copies of the key): sc[(h·nqh + m)·64 + key].
template <int KV>
static inline void x_heads_tail_scores(int j, int n, int nh, int nqh, const float* const* qs, const uint8_t* k, size_t headStride,
                                       size_t stride, int d, __m128 vs, float* sc) {
  for (; j < n; j++)
    for (int h = 0; h < nh; h++) {
      const uint8_t* kj = k + (size_t)j * stride + h * headStride;
      for (int m = 0; m < nqh; m++)
        sc[(size_t)(h * nqh + m) * 64 + j] = _mm_cvtss_f32(_mm_mul_ps(dot4<KV>(qs[h * nqh + m], kj, kj, kj, kj, d), vs));
    }
}

// Decode against every kv head of one key block at once (the KernelTable's attn_heads, see AttnHeadsFn): x_attn_row's
// operations per query — dot4 per 4 keys, the same softmax step, o += p·v four keys per pass — so the same bits, with
// the block read front to back (4 keys × every head for the scores, 8 keys × every head for the values) and the
// next block's prefetches spread over both loops, as z_attn_heads_t does.
template <int KV>
static void x_attn_heads_t(int nh, int nqh, const float* const* qs, const int* cs, const uint8_t* k, const uint8_t* v, size_t headStride,
                           size_t stride, int n, int d, float scale, float* M, float* L, float* acc, float* sc, KvPrefetch* pk,
                           KvPrefetch* pv) {
  if (d % 8 != 0 || n > 64 || nh * nqh > 64) {
    if (pk) pk->finish();
    if (pv) pv->finish();
    for (int h = 0; h < nh; h++)
      for (int m = 0; m < nqh; m++) {
        const int c = cs[h * nqh + m];
        x_attn_row<KV>(qs[h * nqh + m], k + h * headStride, v + h * headStride, stride, n, d, scale, M + c, L + c, acc + (size_t)c * d, sc);
      }
    return;
  }
  const size_t kPer = pk ? pk->perStep((size_t)(n / 4 + 1) * nh) : 0, vPer = pv ? pv->perStep((size_t)((n + 7) / 8) * nh) : 0;
  const __m128 vs = _mm_set1_ps(scale);
  int j = 0;
  for (; j + 4 <= n; j += 4)
    for (int h = 0; h < nh; h++) {
      if (pk) pk->step(kPer);
      const uint8_t* kj = k + (size_t)j * stride + h * headStride;
      for (int m = 0; m < nqh; m++)
        _mm_storeu_ps(sc + (size_t)(h * nqh + m) * 64 + j, _mm_mul_ps(dot4<KV>(qs[h * nqh + m], kj, kj + stride, kj + 2 * stride, kj + 3 * stride, d), vs));
    }
  x_heads_tail_scores<KV>(j, n, nh, nqh, qs, k, headStride, stride, d, vs, sc);
  if (pk) pk->finish();
  const int nq = nh * nqh;
  for (int i = 0; i < nq; i++) x_attn_softmax(sc + (size_t)i * 64, n, d, M + cs[i], L + cs[i], acc + (size_t)cs[i] * d);
  for (int j0 = 0; j0 < n; j0 += 8) {
    const int jn = std::min(8, n - j0);
    for (int h = 0; h < nh; h++) {
      if (pv) pv->step(vPer);
      const uint8_t* vj = v + (size_t)j0 * stride + h * headStride;
      for (int m = 0; m < nqh; m++) {
        const int i = h * nqh + m;
        x_attn_pv<KV>(acc + (size_t)cs[i] * d, sc + (size_t)i * 64 + j0, vj, stride, jn, d);
      }
    }
  }
  if (pv) pv->finish();
}
