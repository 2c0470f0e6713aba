// Portable kernels, compiled once per ISA translation unit (each includes this inside its own namespace, so the
// compiler auto-vectorizes the same source for scalar/AVX2/AVX-512 without symbol clashes).
// Every GGML type has a row dequantizer here (ggml-quants.c semantics); the generic matmul path dequantizes one
// block at a time and takes an f32 dot product with f32 activations — exact up to f32 rounding.
// Included inside `namespace l4::<isa>`; relies on common.h.

// Calls f(std::integral_constant<int, n>{}) for a token count 1 ≤ n ≤ Max known only at run time (kernels that keep
// n tokens' accumulators in registers are instantiated per n).
template <int Max, class F>
static inline void with_token_count(int n, F&& f) {
  if constexpr (Max > 1)
    if (n < Max) return with_token_count<Max - 1>(n, f);
  f(std::integral_constant<int, Max>{});
}

// ---- row dequantizers: K elements of type T at src -> dst ----
static void dq_f32(const uint8_t* s, float* y, int K) { std::memcpy(y, s, (size_t)K * 4); }
static void dq_f16(const uint8_t* s, float* y, int K) { for (int i = 0; i < K; i++) y[i] = half_to_float(rd16(s + 2 * i)); }
static void dq_bf16(const uint8_t* s, float* y, int K) { for (int i = 0; i < K; i++) y[i] = bf16_to_float(rd16(s + 2 * i)); }

static void dq_q4_0(const uint8_t* s, float* y, int K) {
  for (int b = 0; b < K / 32; b++, y += 32) {
    const BlockQ4_0* x = (const BlockQ4_0*)s + b;
    const float d = half_to_float(x->d);
    for (int j = 0; j < 16; j++) { y[j] = ((x->qs[j] & 15) - 8) * d; y[j + 16] = ((x->qs[j] >> 4) - 8) * d; }
  }
}
static void dq_q4_1(const uint8_t* s, float* y, int K) {
  for (int b = 0; b < K / 32; b++, y += 32) {
    const BlockQ4_1* x = (const BlockQ4_1*)s + b;
    const float d = half_to_float(x->d), m = half_to_float(x->m);
    for (int j = 0; j < 16; j++) { y[j] = (x->qs[j] & 15) * d + m; y[j + 16] = (x->qs[j] >> 4) * d + m; }
  }
}
static void dq_q5_0(const uint8_t* s, float* y, int K) {
  for (int b = 0; b < K / 32; b++, y += 32) {
    const BlockQ5_0* x = (const BlockQ5_0*)s + b;
    const float d = half_to_float(x->d);
    uint32_t qh; std::memcpy(&qh, x->qh, 4);
    for (int j = 0; j < 16; j++) {
      const int h0 = ((qh >> j) << 4) & 0x10, h1 = (qh >> (j + 12)) & 0x10;
      y[j] = (((x->qs[j] & 15) | h0) - 16) * d; y[j + 16] = (((x->qs[j] >> 4) | h1) - 16) * d;
    }
  }
}
static void dq_q5_1(const uint8_t* s, float* y, int K) {
  for (int b = 0; b < K / 32; b++, y += 32) {
    const BlockQ5_1* x = (const BlockQ5_1*)s + b;
    const float d = half_to_float(x->d), m = half_to_float(x->m);
    uint32_t qh; std::memcpy(&qh, x->qh, 4);
    for (int j = 0; j < 16; j++) {
      const int h0 = ((qh >> j) << 4) & 0x10, h1 = (qh >> (j + 12)) & 0x10;
      y[j] = ((x->qs[j] & 15) | h0) * d + m; y[j + 16] = ((x->qs[j] >> 4) | h1) * d + m;
    }
  }
}
static void dq_q8_0(const uint8_t* s, float* y, int K) {
  for (int b = 0; b < K / 32; b++, y += 32) {
    const BlockQ8_0* x = (const BlockQ8_0*)s + b;
    const float d = half_to_float(x->d);
    for (int j = 0; j < 32; j++) y[j] = x->qs[j] * d;
  }
}
static void dq_q2_k(const uint8_t* s, float* y, int K) {
  for (int b = 0; b < K / 256; b++) {
    const BlockQ2_K* x = (const BlockQ2_K*)s + b;
    const float d = half_to_float(x->d), mn = half_to_float(x->dmin);
    const uint8_t* q = x->qs;
    int is = 0;
    for (int n = 0; n < 256; n += 128) {
      for (int shift = 0; shift < 8; shift += 2) {
        uint8_t sc = x->scales[is++];
        float dl = d * (sc & 15), ml = mn * (sc >> 4);
        for (int l = 0; l < 16; l++) *y++ = dl * ((q[l] >> shift) & 3) - ml;
        sc = x->scales[is++]; dl = d * (sc & 15); ml = mn * (sc >> 4);
        for (int l = 0; l < 16; l++) *y++ = dl * ((q[l + 16] >> shift) & 3) - ml;
      }
      q += 32;
    }
  }
}
static void dq_q3_k(const uint8_t* s, float* y, int K) {
  const uint32_t km1 = 0x03030303, km2 = 0x0f0f0f0f;
  for (int b = 0; b < K / 256; b++) {
    const BlockQ3_K* x = (const BlockQ3_K*)s + b;
    const float dall = half_to_float(x->d);
    uint32_t aux[4]; std::memcpy(aux, x->scales, 12);
    const uint32_t tmp = aux[2];  // 16 six-bit scales packed into 12 bytes
    aux[2] = ((aux[0] >> 4) & km2) | (((tmp >> 4) & km1) << 4);
    aux[3] = ((aux[1] >> 4) & km2) | (((tmp >> 6) & km1) << 4);
    aux[0] = (aux[0] & km2) | (((tmp >> 0) & km1) << 4);
    aux[1] = (aux[1] & km2) | (((tmp >> 2) & km1) << 4);
    const int8_t* sc = (const int8_t*)aux;
    const uint8_t* q = x->qs; const uint8_t* hm = x->hmask;
    uint8_t m = 1; int is = 0;
    for (int n = 0; n < 256; n += 128) {
      for (int shift = 0; shift < 8; shift += 2) {
        float dl = dall * (sc[is++] - 32);
        for (int l = 0; l < 16; l++) *y++ = dl * ((int8_t)((q[l] >> shift) & 3) - ((hm[l] & m) ? 0 : 4));
        dl = dall * (sc[is++] - 32);
        for (int l = 0; l < 16; l++) *y++ = dl * ((int8_t)((q[l + 16] >> shift) & 3) - ((hm[l + 16] & m) ? 0 : 4));
        m <<= 1;
      }
      q += 32;
    }
  }
}
// K-quant 6-bit scale/min pairs packed into 12 bytes (ggml's get_scale_min_k4).
static inline void scale_min_k4(int j, const uint8_t* q, uint8_t* d, uint8_t* m) {
  if (j < 4) { *d = q[j] & 63; *m = q[j + 4] & 63; }
  else { *d = (q[j + 4] & 0xF) | ((q[j - 4] >> 6) << 4); *m = (q[j + 4] >> 4) | ((q[j] >> 6) << 4); }
}
static void dq_q4_k(const uint8_t* s, float* y, int K) {
  for (int b = 0; b < K / 256; b++) {
    const BlockQ4_K* x = (const BlockQ4_K*)s + b;
    const float d = half_to_float(x->d), mn = half_to_float(x->dmin);
    const uint8_t* q = x->qs;
    for (int j = 0, is = 0; j < 256; j += 64, is += 2, q += 32) {
      uint8_t sc, m;
      scale_min_k4(is, x->scales, &sc, &m); const float d1 = d * sc, m1 = mn * m;
      scale_min_k4(is + 1, x->scales, &sc, &m); const float d2 = d * sc, m2 = mn * m;
      for (int l = 0; l < 32; l++) *y++ = d1 * (q[l] & 15) - m1;
      for (int l = 0; l < 32; l++) *y++ = d2 * (q[l] >> 4) - m2;
    }
  }
}
static void dq_q5_k(const uint8_t* s, float* y, int K) {
  for (int b = 0; b < K / 256; b++) {
    const BlockQ5_K* x = (const BlockQ5_K*)s + b;
    const float d = half_to_float(x->d), mn = half_to_float(x->dmin);
    const uint8_t* ql = x->qs; const uint8_t* qh = x->qh;
    uint8_t u1 = 1, u2 = 2;
    for (int j = 0, is = 0; j < 256; j += 64, is += 2, ql += 32, u1 <<= 2, u2 <<= 2) {
      uint8_t sc, m;
      scale_min_k4(is, x->scales, &sc, &m); const float d1 = d * sc, m1 = mn * m;
      scale_min_k4(is + 1, x->scales, &sc, &m); const float d2 = d * sc, m2 = mn * m;
      for (int l = 0; l < 32; l++) *y++ = d1 * ((ql[l] & 15) + (qh[l] & u1 ? 16 : 0)) - m1;
      for (int l = 0; l < 32; l++) *y++ = d2 * ((ql[l] >> 4) + (qh[l] & u2 ? 16 : 0)) - m2;
    }
  }
}
static void dq_q6_k(const uint8_t* s, float* y, int K) {
  for (int b = 0; b < K / 256; b++) {
    const BlockQ6_K* x = (const BlockQ6_K*)s + b;
    const float d = half_to_float(x->d);
    const uint8_t* ql = x->ql; const uint8_t* qh = x->qh; const int8_t* sc = x->scales;
    for (int n = 0; n < 256; n += 128, y += 128, ql += 64, qh += 32, sc += 8) {
      for (int l = 0; l < 32; l++) {
        const int is = l / 16;
        const int q1 = (int8_t)((ql[l] & 15) | (((qh[l] >> 0) & 3) << 4)) - 32;
        const int q2 = (int8_t)((ql[l + 32] & 15) | (((qh[l] >> 2) & 3) << 4)) - 32;
        const int q3 = (int8_t)((ql[l] >> 4) | (((qh[l] >> 4) & 3) << 4)) - 32;
        const int q4 = (int8_t)((ql[l + 32] >> 4) | (((qh[l] >> 6) & 3) << 4)) - 32;
        y[l] = d * sc[is] * q1; y[l + 32] = d * sc[is + 2] * q2; y[l + 64] = d * sc[is + 4] * q3; y[l + 96] = d * sc[is + 6] * q4;
      }
    }
  }
}
static void dq_q8_k(const uint8_t* s, float* y, int K) {
  for (int b = 0; b < K / 256; b++, y += 256) {
    const BlockQ8_K* x = (const BlockQ8_K*)s + b;
    for (int j = 0; j < 256; j++) y[j] = x->d * x->qs[j];
  }
}

// ---- f32 vector helpers (8 independent accumulators so the compiler vectorizes without -ffast-math) ----
static float g_dot_f32(const float* a, const float* b, int n) {
  float acc[8] = {0, 0, 0, 0, 0, 0, 0, 0};
  int i = 0;
  for (; i + 8 <= n; i += 8)
    for (int j = 0; j < 8; j++) acc[j] += a[i + j] * b[i + j];
  float s = ((acc[0] + acc[1]) + (acc[2] + acc[3])) + ((acc[4] + acc[5]) + (acc[6] + acc[7]));
  for (; i < n; i++) s += a[i] * b[i];
  return s;
}
// y += a·x with one explicitly chosen rounding per element (a fused multiply-add where the ISA has one), so the
// result never depends on how the compiler splits the loop into vector body and scalar tail (batch invariance).
static void g_axpy_f32(float* y, float a, const float* x, int n) {
#if defined(__FP_FAST_FMAF) || defined(FP_FAST_FMAF)
  for (int i = 0; i < n; i++) y[i] = std::fma(a, x[i], y[i]);
#else
  for (int i = 0; i < n; i++) y[i] = y[i] + a * x[i];
#endif
}
static void g_scale_f32(float* y, float a, int n) { for (int i = 0; i < n; i++) y[i] *= a; }

// K/V rows for attention: g_dot_f32 / g_axpy_f32 with each value loaded through LD, which yields exactly the value
// the row dequantizer would store, so the results equal the f32 helpers' on the dequantized row.
static inline float kv_ld_f32(const uint8_t* r, int i) { float f; std::memcpy(&f, r + 4 * i, 4); return f; }
static inline float kv_ld_f16(const uint8_t* r, int i) { return half_to_float(rd16(r + 2 * i)); }
static inline float kv_ld_q8_0(const uint8_t* r, int i) {
  const BlockQ8_0* b = (const BlockQ8_0*)r + i / 32;
  return (float)b->qs[i % 32] * half_to_float(b->d);
}
template <float (*LD)(const uint8_t*, int)>
static float g_dot_kv(const float* a, const uint8_t* b, int n) {
  float acc[8] = {0, 0, 0, 0, 0, 0, 0, 0};
  int i = 0;
  for (; i + 8 <= n; i += 8)
    for (int j = 0; j < 8; j++) acc[j] += a[i + j] * LD(b, i + j);
  float s = ((acc[0] + acc[1]) + (acc[2] + acc[3])) + ((acc[4] + acc[5]) + (acc[6] + acc[7]));
  for (; i < n; i++) s += a[i] * LD(b, i);
  return s;
}
template <float (*LD)(const uint8_t*, int)>
static void g_axpy_kv(float* y, float a, const uint8_t* x, int n) {
#if defined(__FP_FAST_FMAF) || defined(FP_FAST_FMAF)
  for (int i = 0; i < n; i++) y[i] = std::fma(a, LD(x, i), y[i]);
#else
  for (int i = 0; i < n; i++) y[i] = y[i] + a * LD(x, i);
#endif
}

static void g_rms_norm_row(float* o, const float* x, const float* w, int dim, float eps) {
  double ss = 0;
  for (int i = 0; i < dim; i++) ss += (double)x[i] * x[i];
  const float inv = (float)(1.0 / std::sqrt((double)(float)(ss / dim) + eps));
  if (w) for (int i = 0; i < dim; i++) o[i] = (x[i] * inv) * w[i];
  else for (int i = 0; i < dim; i++) o[i] = x[i] * inv;
}
static void g_silu_mul(float* out, const float* g, const float* u, int64_t n) {
  for (int64_t i = 0; i < n; i++) { const float v = g[i]; out[i] = v / (1.f + std::exp(-v)) * u[i]; }
}

template <float (*LD)(const uint8_t*, int)>
static void g_kv_rows(float* dst, const uint8_t* src, size_t stride, int n, int d) {
  for (int j = 0; j < n; j++)
    for (int i = 0; i < d; i++) dst[(size_t)j * d + i] = LD(src + (size_t)j * stride, i);
}

// One query-head row against n keys of an attention block (see AttnRowFn in common.h): scores, online-softmax
// update of (M, L), and o += Σ p_j·v_j in key order; LD loads value i of a stored K/V row.
template <float (*LD)(const uint8_t*, int)>
static void g_attn_row(const float* q, const uint8_t* k, const uint8_t* v, size_t stride, int n, int d, float scale,
                       float* M, float* L, float* o, float* sc) {
  float bm = -INFINITY;
  for (int j = 0; j < n; j++) { sc[j] = g_dot_kv<LD>(q, k + (size_t)j * stride, d) * scale; bm = std::max(bm, sc[j]); }
  if (bm > *M) {  // new running max: rescale what was accumulated so far
    const float f = std::exp(*M - bm);
    if (*L != 0) g_scale_f32(o, f, d);
    *L *= f;
    *M = bm;
  }
  float l = 0;
  for (int j = 0; j < n; j++) {
    const float p = std::exp(sc[j] - *M);
    l += p;
    g_axpy_kv<LD>(o, p, v + (size_t)j * stride, d);
  }
  *L += l;
}

// Generic rows kernel: dequantize 256 weights at a time into a stack buffer, dot with f32 activations.
template <DequantFn DQ, int BS, int BB>
static void g_rows(int K, const uint8_t* w, size_t rowBytes, int nrows, const void* act, float* out, bool) {
  const float* x = (const float*)act;
  constexpr int CH = BS >= 256 ? BS : 256;  // elements per chunk, a whole number of blocks
  alignas(64) float buf[CH];
  for (int r = 0; r < nrows; r++) {
    const uint8_t* row = w + (size_t)r * rowBytes;
    float s = 0;
    for (int k = 0; k < K; k += CH) {
      const int n = K - k < CH ? K - k : CH;
      DQ(row + (size_t)(k / BS) * BB, buf, n);
      s += g_dot_f32(buf, x + k, n);
    }
    out[r] = s;
  }
}
static void g_rows_f32(int K, const uint8_t* w, size_t rowBytes, int nrows, const void* act, float* out, bool) {
  const float* x = (const float*)act;
  for (int r = 0; r < nrows; r++) {
    const uint8_t* row = w + (size_t)r * rowBytes;
    if (((uintptr_t)row & 3) == 0) { out[r] = g_dot_f32((const float*)row, x, K); continue; }
    alignas(64) float buf[256];  // unaligned f32 data (some safetensors offsets): copy through
    float s = 0;
    for (int k = 0; k < K; k += 256) { const int n = K - k < 256 ? K - k : 256; std::memcpy(buf, row + 4 * k, 4 * n); s += g_dot_f32(buf, x + k, n); }
    out[r] = s;
  }
}

// ---- activation quantizers (round to nearest, scale = amax / 127) ----
static void g_quant_q8(const float* x, void* dst, int K) {
  ActQ8* y = (ActQ8*)dst;
  for (int b = 0; b < K / 32; b++, x += 32) {
    float amax = 0;
    for (int j = 0; j < 32; j++) amax = std::fmax(amax, std::fabs(x[j]));
    float d = amax / 127.f, id = d ? 1.f / d : 0.f;
    if (!(id <= 3.402823466e38f)) d = id = 0.f;  // amax < ~3.7e-37: 1/d overflows; the block counts as zero
    int sum = 0;
    for (int j = 0; j < 32; j++) {
      // x_quant_q8's bits: codes −127..127; NaN, ±inf and out-of-range products (NaN/inf inputs) give −127
      const float v = x[j] * id;
      const int q = std::fabs(v) < 127.5f ? (int)std::nearbyint(v) : -127;
      y[b].qs[j] = (int8_t)q;
      sum += q;
    }
    y[b].d = d; y[b].isum = sum;
  }
}
static void g_quant_q8k(const float* x, void* dst, int K) {
  ActQ8K* y = (ActQ8K*)dst;
  for (int b = 0; b < K / 256; b++, x += 256) {
    float amax = 0;
    for (int j = 0; j < 256; j++) amax = std::fmax(amax, std::fabs(x[j]));
    float d = amax / 127.f, id = d ? 1.f / d : 0.f;
    if (!(id <= 3.402823466e38f)) d = id = 0.f;  // amax < ~3.7e-37: 1/d overflows; the block counts as zero
    for (int j = 0; j < 256; j++) {
      // x_quant_q8k's bits: codes −127..127; NaN, ±inf and out-of-range products (NaN/inf inputs) give −127
      const float v = x[j] * id;
      y[b].qs[j] = (int8_t)(std::fabs(v) < 127.5f ? (int)std::nearbyint(v) : -127);
    }
    for (int i = 0; i < 16; i++) { int s = 0; for (int j = 0; j < 16; j++) s += y[b].qs[16 * i + j]; y[b].bsums[i] = (int16_t)s; }
    y[b].d = d;
  }
}

// Fills a table with the generic path for every type.
static void fill_generic(KernelTable& t) {
  auto set = [&](int ty, RowsFn r, DequantFn dq) { t.rows[ty] = r; t.act[ty] = ACT_F32; t.dequant[ty] = dq; };
  set(T_F32, g_rows_f32, dq_f32);
  set(T_F16, g_rows<dq_f16, 1, 2>, dq_f16);
  set(T_BF16, g_rows<dq_bf16, 1, 2>, dq_bf16);
  set(T_Q4_0, g_rows<dq_q4_0, 32, 18>, dq_q4_0);
  set(T_Q4_1, g_rows<dq_q4_1, 32, 20>, dq_q4_1);
  set(T_Q5_0, g_rows<dq_q5_0, 32, 22>, dq_q5_0);
  set(T_Q5_1, g_rows<dq_q5_1, 32, 24>, dq_q5_1);
  set(T_Q8_0, g_rows<dq_q8_0, 32, 34>, dq_q8_0);
  set(T_Q2_K, g_rows<dq_q2_k, 256, 84>, dq_q2_k);
  set(T_Q3_K, g_rows<dq_q3_k, 256, 110>, dq_q3_k);
  set(T_Q4_K, g_rows<dq_q4_k, 256, 144>, dq_q4_k);
  set(T_Q5_K, g_rows<dq_q5_k, 256, 176>, dq_q5_k);
  set(T_Q6_K, g_rows<dq_q6_k, 256, 210>, dq_q6_k);
  set(T_Q8_K, g_rows<dq_q8_k, 256, 292>, dq_q8_k);
  t.quant_q8 = g_quant_q8; t.quant_q8k = g_quant_q8k;
  t.dot_f32 = g_dot_f32; t.axpy_f32 = g_axpy_f32; t.scale_f32 = g_scale_f32;
  t.attn_row[0] = g_attn_row<kv_ld_f32>; t.attn_row[1] = g_attn_row<kv_ld_f16>; t.attn_row[2] = g_attn_row<kv_ld_q8_0>;
  t.kv_rows[0] = g_kv_rows<kv_ld_f32>; t.kv_rows[1] = g_kv_rows<kv_ld_f16>; t.kv_rows[2] = g_kv_rows<kv_ld_q8_0>;
  t.rms_norm_row = g_rms_norm_row;
  t.silu_mul = g_silu_mul;
}
