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
// each broadcast a(i, p) feeds two FMAs. Columns past the last full 32 go through 16- and 8-wide tiles, then a
// scalar tail.
// Attention: training layout q [B·T, nh, d], k/v [B·T, nkv, d], probabilities P [B, nh, T, T] (kept for the
// backward), RoPE layers masked to the query's chunk, NoPE layers causal over the whole row.
#pragma once
#include <cmath>
#include <cstdint>
#include <algorithm>
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

// 8 columns (a 32-byte vector): the tail of d = 24 heads and n ≡ 8..15 (mod 16) products.
typedef float tk_v8 __attribute__((vector_size(32)));
template <int MR>
static inline void tk_tile8(const float* A, long sai, long sap, const float* B, long ldb, float* C, long ldc, int k, bool acc) {
  tk_v8 c0[MR];
  for (int r = 0; r < MR; r++) c0[r] = tk_v8{};
  for (int p = 0; p < k; p++) {
    tk_v8 b0;
    std::memcpy(&b0, B + (long)p * ldb, sizeof b0);
    for (int r = 0; r < MR; r++) c0[r] += A[r * sai + (long)p * sap] * b0;
  }
  for (int r = 0; r < MR; r++) {
    float* c = C + r * ldc;
    if (acc) { tk_v8 o; std::memcpy(&o, c, sizeof o); c0[r] += o; }
    std::memcpy(c, &c0[r], sizeof c0[r]);
  }
}

template <int MR>
static inline void tk_rows(const float* A, long sai, long sap, const float* B, long ldb, float* C, long ldc, int k, int j0, int j1, bool acc) {
  int j = j0;
  for (; j + 32 <= j1; j += 32) tk_tile32<MR>(A, sai, sap, B + j, ldb, C + j, ldc, k, acc);
  for (; j + 16 <= j1; j += 16) tk_tile16<MR>(A, sai, sap, B + j, ldb, C + j, ldc, k, acc);
  for (; j + 8 <= j1; j += 8) tk_tile8<MR>(A, sai, sap, B + j, ldb, C + j, ldc, k, acc);
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

#include "train-rows.h"

// Attention, tiled on the product kernel above. Per (batch b, head h) the scores are a [T, T] product
// S = q·kᵀ (keys transposed once into scratch kt [d, T]), computed per block of 4 query rows only over the key
// columns the block can see ([chunk start of its first row, its last row]); the softmax then writes each row of P
// whole, zeros outside the mask, so the products that follow may run over a block's whole key range.
static inline int tk_s0(int t, int chunk) { return chunk > 0 ? (t / chunk) * chunk : 0; }

// Row t of the scores in pr[0, T): softmax of scale·scores over [s0, t], zeros elsewhere.
static void tk_softmax_row(float* pr, int T, int s0, int t, float scale) {
  float* x = pr + s0;
  const int L = t - s0 + 1;
  tk_v16 mv = tk_splat(-INFINITY);
  int j = 0;
  for (; j + 16 <= L; j += 16) { const tk_v16 v = tk_load(x + j) * scale; tk_store(x + j, v); mv = v > mv ? v : mv; }
  float mx = tk_hmax(mv);
  for (; j < L; j++) { x[j] *= scale; mx = x[j] > mx ? x[j] : mx; }
  tk_v16 sv{};
  j = 0;
  for (; j + 16 <= L; j += 16) { const tk_v16 e = tk_exp(tk_load(x + j) - mx); tk_store(x + j, e); sv += e; }
  float sum = tk_hsum(sv);
  for (; j < L; j++) { const float e = tk_exp1(x[j] - mx); x[j] = e; sum += e; }
  const float inv = 1.0f / sum;
  j = 0;
  for (; j + 16 <= L; j += 16) tk_store(x + j, tk_load(x + j) * inv);
  for (; j < L; j++) x[j] *= inv;
  std::memset(pr, 0, sizeof(float) * s0);
  std::memset(pr + t + 1, 0, sizeof(float) * (T - t - 1));
}

// Forward for one (batch b, query head h): P [T, T] rows and O rows. scratch holds d·T floats.
static void tk_attn_fwd_head(const float* q, const float* k, const float* v, float* P, float* O, int T, int nh, int nkv, int d, int b,
                             int h, float scale, int chunk, float* kt) {
  const int kh = h / (nh / nkv);
  const long qs = (long)nh * d, ks = (long)nkv * d;
  const float* qb = q + ((long)b * T * nh + h) * d;
  const float* kb = k + ((long)b * T * nkv + kh) * d;
  const float* vb = v + ((long)b * T * nkv + kh) * d;
  float* Pb = P + (long)(b * nh + h) * T * T;
  float* Ob = O + ((long)b * T * nh + h) * d;
  for (int s = 0; s < T; s++)
    for (int j = 0; j < d; j++) kt[(long)j * T + s] = kb[s * ks + j];
  for (int t0 = 0; t0 < T; t0 += 4) {
    const int t1 = std::min(T, t0 + 4), lo = tk_s0(t0, chunk);
    // Scores before scaling (the softmax scales), then O = P·v over the block's key range.
    tk_gemm_block(qb, qs, 1, kt, T, Pb, T, d, t0, t1, lo, t1, false);
    for (int t = t0; t < t1; t++) tk_softmax_row(Pb + (long)t * T, T, tk_s0(t, chunk), t, scale);
    tk_gemm_block(Pb + lo, T, 1, vb + lo * ks, ks, Ob, qs, t1 - lo, t0, t1, 0, d, false);
  }
}

// Backward for one (batch b, KV head kh): every query head of the group, so dk/dv rows have one writer.
// dS = P ⊙ (dO·vᵀ − rowsum(dO ⊙ O))·scale (rowsum as Σ_s P·dP); dq += dS·k, dk += dSᵀ·q, dv += Pᵀ·dO.
// scratch holds d·T (vᵀ) + T·T (dS) floats.
static void tk_attn_bwd_group(const float* q, const float* k, const float* v, const float* P, const float* dO, float* dq, float* dk,
                              float* dv, int T, int nh, int nkv, int d, int b, int kh, float scale, int chunk, float* scratch) {
  const int group = nh / nkv;
  const long qs = (long)nh * d, ks = (long)nkv * d;
  const float* kb = k + ((long)b * T * nkv + kh) * d;
  const float* vb = v + ((long)b * T * nkv + kh) * d;
  float* dkb = dk + ((long)b * T * nkv + kh) * d;
  float* dvb = dv + ((long)b * T * nkv + kh) * d;
  float *vt = scratch, *dS = scratch + (long)d * T;
  for (int s = 0; s < T; s++)
    for (int j = 0; j < d; j++) vt[(long)j * T + s] = vb[s * ks + j];
  for (int h = kh * group; h < (kh + 1) * group; h++) {
    const float* qb = q + ((long)b * T * nh + h) * d;
    const float* dOb = dO + ((long)b * T * nh + h) * d;
    float* dqb = dq + ((long)b * T * nh + h) * d;
    const float* Pb = P + (long)(b * nh + h) * T * T;
    for (int t0 = 0; t0 < T; t0 += 4) {
      const int t1 = std::min(T, t0 + 4), lo = tk_s0(t0, chunk);
      tk_gemm_block(dOb, qs, 1, vt, T, dS, T, d, t0, t1, lo, t1, false);  // dP
      for (int t = t0; t < t1; t++) {
        const int s0 = tk_s0(t, chunk);
        float* ds = dS + (long)t * T;
        const float* pr = Pb + (long)t * T;
        float dot = 0;
        for (int s = s0; s <= t; s++) dot += ds[s] * pr[s];
        for (int s = s0; s <= t; s++) ds[s] = pr[s] * (ds[s] - dot) * scale;
        std::memset(ds, 0, sizeof(float) * s0);
        std::memset(ds + t + 1, 0, sizeof(float) * (T - t - 1));
      }
      tk_gemm_block(dS + lo, T, 1, kb + lo * ks, ks, dqb, qs, t1 - lo, t0, t1, 0, d, true);
    }
    // dk, dv by key rows: key s is seen by queries t in [s, end of s's chunk).
    for (int s0b = 0; s0b < T; s0b += 4) {
      const int s1b = std::min(T, s0b + 4);
      const int hi = chunk > 0 ? std::min(T, tk_s0(s1b - 1, chunk) + chunk) : T;
      tk_gemm_block(dS + (long)s0b * T, 1, T, qb + s0b * qs, qs, dkb, ks, hi - s0b, s0b, s1b, 0, d, true);
      tk_gemm_block(Pb + (long)s0b * T, 1, T, dOb + s0b * qs, qs, dvb, ks, hi - s0b, s0b, s1b, 0, d, true);
    }
  }
}

struct TkTable {
  void (*gemm_block)(const float*, long, long, const float*, long, float*, long, int, int, int, int, int, bool);
  decltype(&tk_attn_fwd_head) attn_fwd_head;
  decltype(&tk_attn_bwd_group) attn_bwd_group;
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
  decltype(&tk_add) add;
  decltype(&tk_softmax_rows) softmax_rows;
};
