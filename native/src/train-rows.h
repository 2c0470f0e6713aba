// Row-wise training kernels (f32): RMSNorm forward/backward, SwiGLU forward/backward, softmax cross-entropy,
// AdamW, row gather / scatter-add, RoPE. Included by train-kern.h, so compiled once per ISA (the 64-byte vector
// type tk_v16 is one zmm, two ymm or four xmm). Each kernel works on a range of rows (or elements) so
// train-ops.cc can split it over the pool; reductions run in a fixed order (16 vector lanes, then lanes summed
// 0..15, then the tail), so a result depends on the kernel set only, not on the thread count or the schedule.
#pragma once

typedef int tk_i16 __attribute__((vector_size(64)));

static inline float tk_hsum(tk_v16 v) {
  float s = 0;
  for (int i = 0; i < 16; i++) s += v[i];
  return s;
}
static inline float tk_hmax(tk_v16 v) {
  float m = v[0];
  for (int i = 1; i < 16; i++) m = v[i] > m ? v[i] : m;
  return m;
}

// e^x on 16 lanes (Cephes expf: range reduction by ln 2 in two parts, degree-5 polynomial; ≤ 2 ulp on
// [-87.3, 88.7], inputs clamped there, so exp(-inf) is 2^-126·… ≈ 1e-38 instead of 0 — below f32 noise in a
// sum that holds a 1).
static inline tk_v16 tk_exp(tk_v16 x) {
  const tk_v16 hi = tk_splat(88.3762626647949f), lo = tk_splat(-87.3365447504f);
  x = x > hi ? hi : x;
  x = x < lo ? lo : x;
  tk_v16 fx = x * 1.44269504088896341f + 0.5f;
  tk_i16 n = __builtin_convertvector(fx, tk_i16);
  tk_v16 fn = __builtin_convertvector(n, tk_v16);
  const tk_i16 gt = fn > fx;  // truncation rounded a negative value up: floor is one less
  n = n + gt;                 // true lanes are -1
  fn = __builtin_convertvector(n, tk_v16);
  x = x - fn * 0.693359375f - fn * -2.12194440e-4f;
  tk_v16 p = tk_splat(1.9875691500E-4f);
  p = p * x + 1.3981999507E-3f;
  p = p * x + 8.3334519073E-3f;
  p = p * x + 4.1665795894E-2f;
  p = p * x + 1.6666665459E-1f;
  p = p * x + 5.0000001201E-1f;
  const tk_v16 y = p * x * x + x + 1.0f;
  const tk_i16 e = (n + 127) << 23;
  tk_v16 s;
  std::memcpy(&s, &e, sizeof s);
  return y * s;
}
// Scalar tail of the same function (one lane of tk_exp, so vector and tail agree).
static inline float tk_exp1(float x) { return tk_exp(tk_splat(x))[0]; }
static inline tk_v16 tk_sigmoid(tk_v16 x) { return 1.0f / (1.0f + tk_exp(-x)); }

// RMSNorm forward, rows [i0, i1): y = x·r·w (w may be null), r = 1/√(mean(x²) + eps) kept per row.
static void tk_rmsnorm_fwd(float* y, float* r, const float* x, const float* w, int dim, float eps, int i0, int i1) {
  for (int i = i0; i < i1; i++) {
    const float* xr = x + (long)i * dim;
    float* yr = y + (long)i * dim;
    tk_v16 acc{};
    int j = 0;
    for (; j + 16 <= dim; j += 16) { const tk_v16 v = tk_load(xr + j); acc += v * v; }
    float ss = tk_hsum(acc);
    for (; j < dim; j++) ss += xr[j] * xr[j];
    const float rr = 1.0f / std::sqrt(ss / dim + eps);
    r[i] = rr;
    j = 0;
    if (w) {
      for (; j + 16 <= dim; j += 16) tk_store(yr + j, tk_load(xr + j) * rr * tk_load(w + j));
      for (; j < dim; j++) yr[j] = xr[j] * rr * w[j];
    } else {
      for (; j + 16 <= dim; j += 16) tk_store(yr + j, tk_load(xr + j) * rr);
      for (; j < dim; j++) yr[j] = xr[j] * rr;
    }
  }
}

// RMSNorm backward, rows [i0, i1): with g = dy·w, dx (+)= r·g − x·r³·mean(g·x); dwPart[j] += Σ_rows dy·x·r
// (the caller sums the per-block partials in block order). dx may alias dy.
static void tk_rmsnorm_bwd(float* dx, float* dwPart, const float* dy, const float* x, const float* r, const float* w, int dim,
                           bool acc, int i0, int i1) {
  for (int i = i0; i < i1; i++) {
    const long b = (long)i * dim;
    const float rr = r[i];
    tk_v16 dv{};
    int j = 0;
    for (; j + 16 <= dim; j += 16) {
      const tk_v16 d = tk_load(dy + b + j), xv = tk_load(x + b + j);
      dv += (w ? d * tk_load(w + j) : d) * xv;
      if (dwPart) tk_store(dwPart + j, tk_load(dwPart + j) + d * xv * rr);
    }
    float dot = tk_hsum(dv);
    for (; j < dim; j++) {
      dot += (w ? dy[b + j] * w[j] : dy[b + j]) * x[b + j];
      if (dwPart) dwPart[j] += dy[b + j] * x[b + j] * rr;
    }
    const float c = rr * rr * rr * dot / dim;
    j = 0;
    for (; j + 16 <= dim; j += 16) {
      const tk_v16 d = tk_load(dy + b + j), g = w ? d * tk_load(w + j) : d;
      tk_v16 v = rr * g - tk_load(x + b + j) * c;
      if (acc) v += tk_load(dx + b + j);
      tk_store(dx + b + j, v);
    }
    for (; j < dim; j++) {
      const float g = w ? dy[b + j] * w[j] : dy[b + j];
      const float v = rr * g - x[b + j] * c;
      dx[b + j] = acc ? dx[b + j] + v : v;
    }
  }
}

// SwiGLU forward, rows [t0, t1): m[t, j] = silu(g)·u, g = G[t·stride + j], u = U[t·stride + j] (G, U already offset).
static void tk_swiglu_fwd(float* m, const float* G, const float* U, int I, long stride, int t0, int t1) {
  for (int t = t0; t < t1; t++) {
    const float *g = G + t * stride, *u = U + t * stride;
    float* o = m + (long)t * I;
    int j = 0;
    for (; j + 16 <= I; j += 16) {
      const tk_v16 gv = tk_load(g + j);
      tk_store(o + j, gv * tk_sigmoid(gv) * tk_load(u + j));
    }
    for (; j < I; j++) o[j] = g[j] / (1.0f + tk_exp1(-g[j])) * u[j];
  }
}

// SwiGLU backward, rows [t0, t1): dg = dm·u·σ(g)(1 + g(1−σ(g))), du = dm·g·σ(g); dG/dU have G/U's layout.
static void tk_swiglu_bwd(float* dG, float* dU, const float* dm, const float* G, const float* U, int I, long stride, int t0, int t1) {
  for (int t = t0; t < t1; t++) {
    const long b = t * stride;
    const float* d = dm + (long)t * I;
    int j = 0;
    for (; j + 16 <= I; j += 16) {
      const tk_v16 gv = tk_load(G + b + j), uv = tk_load(U + b + j), dv = tk_load(d + j), s = tk_sigmoid(gv);
      tk_store(dG + b + j, dv * uv * s * (1.0f + gv * (1.0f - s)));
      tk_store(dU + b + j, dv * gv * s);
    }
    for (; j < I; j++) {
      const float gv = G[b + j], uv = U[b + j], dv = d[j], s = 1.0f / (1.0f + tk_exp1(-gv));
      dG[b + j] = dv * uv * s * (1.0f + gv * (1.0f - s));
      dU[b + j] = dv * gv * s;
    }
  }
}

// Softmax cross-entropy, rows [i0, i1) of logits [rows, V]: rowLoss[i] = −log softmax(row)[y] and
// dLogits = scale·(softmax − onehot(y)); a row with y < 0 gets loss 0 and a zero gradient row.
static void tk_xent(float* dL, double* rowLoss, const float* logits, const int32_t* tgt, int V, float scale, int i0, int i1) {
  for (int i = i0; i < i1; i++) {
    const float* x = logits + (long)i * V;
    float* d = dL + (long)i * V;
    const int y = tgt[i];
    if (y < 0) {
      std::memset(d, 0, sizeof(float) * V);
      rowLoss[i] = 0;
      continue;
    }
    tk_v16 mv = tk_splat(-INFINITY);
    int j = 0;
    for (; j + 16 <= V; j += 16) { const tk_v16 v = tk_load(x + j); mv = v > mv ? v : mv; }
    float mx = tk_hmax(mv);
    for (; j < V; j++) mx = x[j] > mx ? x[j] : mx;
    tk_v16 sv{};
    j = 0;
    for (; j + 16 <= V; j += 16) { const tk_v16 e = tk_exp(tk_load(x + j) - mx); tk_store(d + j, e); sv += e; }
    float sum = tk_hsum(sv);
    for (; j < V; j++) { const float e = tk_exp1(x[j] - mx); d[j] = e; sum += e; }
    rowLoss[i] = (double)mx + std::log((double)sum) - (double)x[y];
    const float k = scale / sum;
    j = 0;
    for (; j + 16 <= V; j += 16) tk_store(d + j, tk_load(d + j) * k);
    for (; j < V; j++) d[j] *= k;
    d[y] -= scale;
  }
}

// AdamW on elements [i0, i1): g' = g·gmul; m = β1·m + (1−β1)·g'; v = β2·v + (1−β2)·g'²;
// w −= lr·(m/bc1 / (√(v/bc2) + eps) + wd·w).
struct TkAdamW { float lr, beta1, beta2, eps, wd, bc1, bc2, gmul; };
static void tk_adamw(float* w, const float* g, float* m, float* v, const TkAdamW& h, long i0, long i1) {
  const float b1 = h.beta1, b2 = h.beta2, c1 = 1.0f - h.beta1, c2 = 1.0f - h.beta2, ib1 = 1.0f / h.bc1, ib2 = 1.0f / h.bc2;
  long i = i0;
  for (; i + 16 <= i1; i += 16) {
    const tk_v16 gi = tk_load(g + i) * h.gmul;
    const tk_v16 mi = b1 * tk_load(m + i) + c1 * gi, vi = b2 * tk_load(v + i) + c2 * gi * gi;
    tk_store(m + i, mi);
    tk_store(v + i, vi);
    tk_v16 den = vi * ib2;
    for (int l = 0; l < 16; l++) den[l] = std::sqrt(den[l]);  // vectorised to vsqrtps by GCC
    const tk_v16 wi = tk_load(w + i);
    tk_store(w + i, wi - h.lr * (mi * ib1 / (den + h.eps) + h.wd * wi));
  }
  for (; i < i1; i++) {
    const float gi = g[i] * h.gmul;
    const float mi = m[i] = b1 * m[i] + c1 * gi, vi = v[i] = b2 * v[i] + c2 * gi * gi;
    w[i] -= h.lr * (mi * ib1 / (std::sqrt(vi * ib2) + h.eps) + h.wd * w[i]);
  }
}

// Σ g² over [i0, i1) (g divided in place by div first when div ≠ 1: gradient accumulation's mean), partial
// sums in f32 lanes flushed to double every 4096 elements.
static double tk_sumsq(float* g, float div, long i0, long i1) {
  tk_v16 acc{};
  long i = i0;
  double s = 0;
  for (; i + 16 <= i1; i += 16) {
    tk_v16 v = tk_load(g + i);
    if (div != 1.0f) { v /= div; tk_store(g + i, v); }
    acc += v * v;
    if (((i - i0) & 4095) == 4080) { s += tk_hsum(acc); acc = tk_v16{}; }
  }
  s += tk_hsum(acc);
  for (; i < i1; i++) {
    if (div != 1.0f) g[i] /= div;
    s += (double)g[i] * g[i];
  }
  return s;
}

// y[i] += x[i] on [i0, i1) (residual streams).
static void tk_add(float* y, const float* x, long i0, long i1) {
  long i = i0;
  for (; i + 16 <= i1; i += 16) tk_store(y + i, tk_load(y + i) + tk_load(x + i));
  for (; i < i1; i++) y[i] += x[i];
}

// Rows [i0, i1): y = softmax(x) over each row of `dim` (y may alias x).
static void tk_softmax_rows(float* y, const float* x, int dim, int i0, int i1) {
  for (int i = i0; i < i1; i++) {
    const float* xr = x + (long)i * dim;
    float* yr = y + (long)i * dim;
    float mx = xr[0];
    for (int j = 1; j < dim; j++) mx = xr[j] > mx ? xr[j] : mx;
    tk_v16 sv{};
    int j = 0;
    for (; j + 16 <= dim; j += 16) { const tk_v16 e = tk_exp(tk_load(xr + j) - mx); tk_store(yr + j, e); sv += e; }
    float s = tk_hsum(sv);
    for (; j < dim; j++) { const float e = tk_exp1(xr[j] - mx); yr[j] = e; s += e; }
    const float inv = 1.0f / s;
    for (j = 0; j < dim; j++) yr[j] *= inv;
  }
}

// Rows [j0, j1): out[j] = src[idx[j]]·(scale ? scale[idx[j]] : 1), rows of `dim`.
static void tk_gather_rows(float* out, const float* src, const int32_t* idx, const float* scale, int dim, int j0, int j1) {
  for (int j = j0; j < j1; j++) {
    const float* s = src + (long)idx[j] * dim;
    float* o = out + (long)j * dim;
    const float k = scale ? scale[idx[j]] : 1.0f;
    int x = 0;
    for (; x + 16 <= dim; x += 16) tk_store(o + x, tk_load(s + x) * k);
    for (; x < dim; x++) o[x] = s[x] * k;
  }
}

// Columns [c0, c1) of every row j: out[idx[j], c] += src[j, c]·(scale ? scale[idx[j]] : 1). Rows in order, so a
// repeated index adds in row order (embedding gradients); split by columns, never by rows.
static void tk_scatter_add_rows(float* out, const float* src, const int32_t* idx, const float* scale, int rows, int dim, int c0, int c1) {
  for (int j = 0; j < rows; j++) {
    float* o = out + (long)idx[j] * dim;
    const float* s = src + (long)j * dim;
    const float k = scale ? scale[idx[j]] : 1.0f;
    int x = c0;
    for (; x + 16 <= c1; x += 16) tk_store(o + x, tk_load(o + x) + tk_load(s + x) * k);
    for (; x < c1; x++) o[x] += s[x] * k;
  }
}

// Rows [j0, j1): out[j] = Σ_c a[j, c]·b[idx[j], c].
static void tk_row_dots(float* out, const float* a, const float* b, const int32_t* idx, int dim, int j0, int j1) {
  for (int j = j0; j < j1; j++) {
    const float *ar = a + (long)j * dim, *br = b + (long)idx[j] * dim;
    tk_v16 acc{};
    int x = 0;
    for (; x + 16 <= dim; x += 16) acc += tk_load(ar + x) * tk_load(br + x);
    float s = tk_hsum(acc);
    for (; x < dim; x++) s += ar[x] * br[x];
    out[j] = s;
  }
}

// RoPE on rows [i0, i1) of x [rows, nH, d] (row i at position i mod T), interleaved pairs (x[2j], x[2j+1]);
// cos/sin [T, d/2]. inv rotates by −θ (the backward).
static void tk_rope(float* x, const float* cs, const float* sn, int T, int nH, int d, bool inv, int i0, int i1) {
  const int half = d / 2;
  for (int i = i0; i < i1; i++) {
    const int t = i % T;
    const float *c = cs + (long)t * half, *s = sn + (long)t * half;
    for (int h = 0; h < nH; h++) {
      float* p = x + ((long)i * nH + h) * d;
      for (int j = 0; j < half; j++) {
        const float x0 = p[2 * j], x1 = p[2 * j + 1], sj = inv ? -s[j] : s[j];
        p[2 * j] = x0 * c[j] - x1 * sj;
        p[2 * j + 1] = x0 * sj + x1 * c[j];
      }
    }
  }
}
