// Training kernels (f32), compiled once per ISA: included by train-kern-avx512.cc / train-kern-avx2.cc /
// train-ops.cc (baseline) inside a namespace, with flags that decide the vector width GCC emits for the
// 64-byte vector type below (one zmm under -mavx512f, two ymm under -mavx2, SSE otherwise).
//
// One general product serves the three layouts a linear layer's training needs:
//   C[i, j] (+)= Σ_p a(i, p) · B[p, j],   a(i, p) = A[i·sai + p·sap],   B row-major [k, ldb]
//   forward  y = x·Wᵀ      NT: W transposed once into [K, O] by the caller (train-ops.cc), then sai = K, sap = 1
//   backward dX = dY·W     NN: sai = O, sap = 1
//   backward dW += dYᵀ·X   TN: sai = 1, sap = O (rows of dY are read as columns)
// Micro-tile: MR (≤ 4) rows × 32 columns (two 16-float vectors per row, 8 accumulators), the k loop innermost;
// each broadcast a(i, p) feeds two FMAs. Columns past the last full 16 go through a scalar tail.
// Attention: training layout q [B·T, nh, d], k/v [B·T, nkv, d], probabilities P [B, nh, T, T] (kept for the
// backward), RoPE layers masked to the query's chunk, NoPE layers causal over the whole row.
#pragma once
#include <cmath>
#include <cstdint>
#include <cstring>

typedef float tk_v16 __attribute__((vector_size(64)));

static inline tk_v16 tk_load(const float* p) { tk_v16 v; std::memcpy(&v, p, sizeof v); return v; }
static inline void tk_store(float* p, tk_v16 v) { std::memcpy(p, &v, sizeof v); }
static inline tk_v16 tk_splat(float x) { return tk_v16{} + x; }

template <int MR>
static inline void tk_tile32(const float* A, long sai, long sap, const float* B, long ldb, float* C, long ldc, int k, bool acc) {
  tk_v16 c0[MR], c1[MR];
  for (int r = 0; r < MR; r++) { c0[r] = tk_v16{}; c1[r] = tk_v16{}; }
  for (int p = 0; p < k; p++) {
    const tk_v16 b0 = tk_load(B + (long)p * ldb), b1 = tk_load(B + (long)p * ldb + 16);
    for (int r = 0; r < MR; r++) {
      const tk_v16 a = tk_splat(A[r * sai + (long)p * sap]);
      c0[r] += a * b0; c1[r] += a * b1;
    }
  }
  for (int r = 0; r < MR; r++) {
    float* c = C + r * ldc;
    if (acc) { c0[r] += tk_load(c); c1[r] += tk_load(c + 16); }
    tk_store(c, c0[r]); tk_store(c + 16, c1[r]);
  }
}

template <int MR>
static inline void tk_tile16(const float* A, long sai, long sap, const float* B, long ldb, float* C, long ldc, int k, bool acc) {
  tk_v16 c0[MR];
  for (int r = 0; r < MR; r++) c0[r] = tk_v16{};
  for (int p = 0; p < k; p++) {
    const tk_v16 b0 = tk_load(B + (long)p * ldb);
    for (int r = 0; r < MR; r++) c0[r] += tk_splat(A[r * sai + (long)p * sap]) * b0;
  }
  for (int r = 0; r < MR; r++) {
    float* c = C + r * ldc;
    if (acc) c0[r] += tk_load(c);
    tk_store(c, c0[r]);
  }
}

template <int MR>
static inline void tk_rows(const float* A, long sai, long sap, const float* B, long ldb, float* C, long ldc, int k, int j0, int j1, bool acc) {
  int j = j0;
  for (; j + 32 <= j1; j += 32) tk_tile32<MR>(A, sai, sap, B + j, ldb, C + j, ldc, k, acc);
  for (; j + 16 <= j1; j += 16) tk_tile16<MR>(A, sai, sap, B + j, ldb, C + j, ldc, k, acc);
  for (; j < j1; j++)
    for (int r = 0; r < MR; r++) {
      float s = 0;
      for (int p = 0; p < k; p++) s += A[r * sai + (long)p * sap] * B[(long)p * ldb + j];
      C[r * ldc + j] = acc ? C[r * ldc + j] + s : s;
    }
}

// Rows [i0, i1) × columns [j0, j1) of C (ldc = row stride of C).
static void tk_gemm_block(const float* A, long sai, long sap, const float* B, long ldb, float* C, long ldc, int k,
                          int i0, int i1, int j0, int j1, bool acc) {
  int i = i0;
  for (; i + 4 <= i1; i += 4) tk_rows<4>(A + i * sai, sai, sap, B, ldb, C + (long)i * ldc, ldc, k, j0, j1, acc);
  switch (i1 - i) {
    case 3: tk_rows<3>(A + i * sai, sai, sap, B, ldb, C + (long)i * ldc, ldc, k, j0, j1, acc); break;
    case 2: tk_rows<2>(A + i * sai, sai, sap, B, ldb, C + (long)i * ldc, ldc, k, j0, j1, acc); break;
    case 1: tk_rows<1>(A + i * sai, sai, sap, B, ldb, C + (long)i * ldc, ldc, k, j0, j1, acc); break;
    default: break;
  }
}

// Attention forward for one (batch b, query head h): P rows and O rows.
static void tk_attn_fwd_head(const float* q, const float* k, const float* v, float* P, float* O, int B_, int T, int nh, int nkv,
                             int d, int b, int h, float scale, int chunk) {
  (void)B_;
  const int kh = h / (nh / nkv);
  for (int t = 0; t < T; t++) {
    const float* qr = q + ((long)(b * T + t) * nh + h) * d;
    float* pr = P + ((long)(b * nh + h) * T + t) * T;
    const int s0 = chunk > 0 ? (t / chunk) * chunk : 0;
    float mx = -INFINITY;
    for (int s = s0; s <= t; s++) {
      const float* kr = k + ((long)(b * T + s) * nkv + kh) * d;
      float dot = 0;
      for (int j = 0; j < d; j++) dot += qr[j] * kr[j];
      dot *= scale;
      pr[s] = dot;
      if (dot > mx) mx = dot;
    }
    float sum = 0;
    for (int s = s0; s <= t; s++) { const float e = std::exp(pr[s] - mx); pr[s] = e; sum += e; }
    const float inv = 1.0f / sum;
    float* o = O + ((long)(b * T + t) * nh + h) * d;
    for (int j = 0; j < d; j++) o[j] = 0;
    for (int s = s0; s <= t; s++) {
      const float p = (pr[s] *= inv);
      const float* vr = v + ((long)(b * T + s) * nkv + kh) * d;
      for (int j = 0; j < d; j++) o[j] += p * vr[j];
    }
  }
}

// Attention backward for one (batch b, KV head kh): every query head of the group, so dk/dv rows have one writer.
// dp is scratch of T floats.
static void tk_attn_bwd_group(const float* q, const float* k, const float* v, const float* P, const float* dO, float* dq, float* dk,
                              float* dv, int T, int nh, int nkv, int d, int b, int kh, float scale, int chunk, float* dp) {
  const int group = nh / nkv;
  for (int h = kh * group; h < (kh + 1) * group; h++) {
    for (int t = 0; t < T; t++) {
      const int s0 = chunk > 0 ? (t / chunk) * chunk : 0;
      const float* pr = P + ((long)(b * nh + h) * T + t) * T;
      const long ob = ((long)(b * T + t) * nh + h) * d;
      float dot = 0;
      for (int s = s0; s <= t; s++) {
        const float* vr = v + ((long)(b * T + s) * nkv + kh) * d;
        float x = 0;
        for (int j = 0; j < d; j++) x += dO[ob + j] * vr[j];
        dp[s] = x;
        dot += x * pr[s];
      }
      for (int s = s0; s <= t; s++) {
        const float p = pr[s];
        const float ds = p * (dp[s] - dot) * scale;
        const long kb = ((long)(b * T + s) * nkv + kh) * d;
        for (int j = 0; j < d; j++) {
          dq[ob + j] += ds * k[kb + j];
          dk[kb + j] += ds * q[ob + j];
          dv[kb + j] += p * dO[ob + j];
        }
      }
    }
  }
}

#include "train-rows.h"

struct TkTable {
  void (*gemm_block)(const float*, long, long, const float*, long, float*, long, int, int, int, int, int, bool);
  void (*attn_fwd_head)(const float*, const float*, const float*, float*, float*, int, int, int, int, int, int, int, float, int);
  void (*attn_bwd_group)(const float*, const float*, const float*, const float*, const float*, float*, float*, float*, int, int, int,
                         int, int, int, float, int, float*);
  decltype(&tk_rmsnorm_fwd) rmsnorm_fwd;
  decltype(&tk_rmsnorm_bwd) rmsnorm_bwd;
  decltype(&tk_swiglu_fwd) swiglu_fwd;
  decltype(&tk_swiglu_bwd) swiglu_bwd;
  decltype(&tk_xent) xent;
  decltype(&tk_adamw) adamw;
  decltype(&tk_sumsq) sumsq;
  decltype(&tk_gather_rows) gather_rows;
  decltype(&tk_scatter_add_rows) scatter_add_rows;
  decltype(&tk_row_dots) row_dots;
  decltype(&tk_rope) rope;
};
