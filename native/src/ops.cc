#include <cstdlib>
#include "ops.h"
#include "ops-parallel.h"

#include "quant.h"
#include "repack.h"

#include <algorithm>
#include <cmath>
#include <cstring>

namespace l4 {

Engine::Engine(int threads, const KernelTable* kt) : kt_(kt), pool_(threads), scratch_(threads), qptrs_(threads), combos_(threads) {
  // BF16 products go with the AVX-512 kernel set (forcing avx2/scalar forces the exact path too).
  if (std::strncmp(kt->isa, "avx512", 6) == 0) bf16_ = gemm_bf16_amx() ? gemm_bf16_amx() : gemm_bf16_avx512();
}

// ---------------------------------------------------------------------------------------------------------------
// matmul. Decode (T = 1) streams every weight byte once from DRAM: rows are split into chunks that threads claim,
// and the row kernel prefetches ahead. Prefill (T > 1) reuses each block of weight rows (kept in L1/L2) for every
// token before moving on, so weights are read once per call instead of once per token.
struct MatmulCtx {
  RowsFn fn; TileFn tile; const uint8_t* w; size_t rb; int N, K, T; const uint8_t* act; size_t actStride; float* out; int rows;
  int mode;    // 0: decode rows (T = 1), 1: small-batch kernel, 2: prefill tiles (or row kernel token by token)
  int chunk0;  // first chunk of this job in the call's chunk numbering
};
static constexpr int kPrefillRows = 16;
static constexpr int kBatchMax = 16;  // calls with 2..kBatchMax tokens use KernelTable::batch where there is one
// Chunks per thread of a product that streams its weights (decode, small batches). Each chunk is one weight stream
// whose first lines are demand misses until its prefetch runs ahead, so fewer, longer chunks read faster; more give
// the threads' finishing times more slack. 2 threads, bench-2b, weights-only replay of a decode step, same bandwidth
// phase: 2 per thread read 2-6% faster than 4 (IQ4_XS 7.8-8.3 ms against 8.0-8.9, Q4_0, Q8_0, Q4_K_M alike), and an
// 8-sequence step took 25.3-25.8 ms against 26.0-26.5; 1 thread alike.
static constexpr int kStreamChunks = 2;

static void matmulChunk(const MatmulCtx& c, int chunk) {
  const int r0 = chunk * c.rows, nr = std::min(c.rows, c.N - r0);
  const uint8_t* w = c.w + (size_t)r0 * c.rb;
  if (c.mode == 0) { c.fn(c.K, w, c.rb, nr, c.act, c.out + r0, true); return; }
  if (c.mode == 1) { c.tile(c.K, w, c.rb, nr, c.act, c.actStride, c.T, c.out + r0, (size_t)c.N); return; }
  if (c.tile) {  // token tiles of 32 keep the tile's activations in L2 while its 16 weight rows stay in L1
    for (int t = 0; t < c.T; t += 32)
      c.tile(c.K, w, c.rb, nr, c.act + (size_t)t * c.actStride, c.actStride, std::min(32, c.T - t), c.out + (size_t)t * c.N + r0, (size_t)c.N);
    return;
  }
  float tmp[kPrefillRows];
  for (int t = 0; t < c.T; t++) {
    c.fn(c.K, w, c.rb, nr, c.act + (size_t)t * c.actStride, tmp, false);
    std::memcpy(c.out + (size_t)t * c.N + r0, tmp, sizeof(float) * nr);
  }
}

void Engine::matmul(float* out, const float* x, const uint8_t* w, int type, int N, int K, int T) {
  const MatmulJob j{out, x, w, type, N, K, T};
  matmulMany(&j, 1);
}

// Several products in one pool run: one thread hand-off (and one wait for the slowest thread) instead of one per
// matrix, which matters for the many small matrices of a batched MoE step. Activations are quantized once per
// distinct input (q/k/v, gate/up and the router read the same x). Each job is computed exactly as matmul would.
void Engine::matmulMany(const MatmulJob* jobs, int n) {
  std::vector<MatmulCtx> cs((size_t)n);
  std::vector<size_t> actOff((size_t)n, SIZE_MAX);
  size_t actBytes = 0;
  const int nth = pool_.size();
  for (int i = 0; i < n; i++) {
    const MatmulJob& j = jobs[i];
    const int fmt = kt_->act[j.type];
    if (fmt == ACT_F32 || j.T == 0) continue;
    for (int p = 0; p < i && actOff[i] == SIZE_MAX; p++)
      if (jobs[p].x == j.x && jobs[p].K == j.K && jobs[p].T == j.T && kt_->act[jobs[p].type] == fmt) actOff[i] = actOff[p];
    if (actOff[i] == SIZE_MAX) { actOff[i] = actBytes; actBytes += act_row_bytes(fmt, j.K) * j.T; }
  }
  if (act_.size() < actBytes) act_.resize(actBytes);
  int chunks = 0;
  for (int i = 0; i < n; i++) {
    const MatmulJob& j = jobs[i];
    const int fmt = kt_->act[j.type];
    MatmulCtx& c = cs[i];
    c = MatmulCtx{kt_->rows[j.type], kt_->tile[j.type], j.w, row_bytes(j.type, j.K), j.N, j.K, j.T, (const uint8_t*)j.x, (size_t)j.K * 4,
                  j.out, kt_->tile[j.type] && kt_->tile_rows[j.type] ? kt_->tile_rows[j.type] : kPrefillRows, 2, chunks};
    if (j.T == 0) continue;
    if (fmt != ACT_F32) {  // quantize the activations once (ggml's vec_dot_type conversion), unless an earlier job did
      c.actStride = act_row_bytes(fmt, j.K);
      c.act = act_.data() + actOff[i];
      bool done = false;
      for (int p = 0; p < i && !done; p++) done = cs[p].act == c.act && jobs[p].T > 0;
      if (!done) {
        const QuantActFn q = fmt == ACT_Q8 ? kt_->quant_q8 : kt_->quant_q8k;
        uint8_t* dst = act_.data() + actOff[i];
        parallelFor(j.T, 8, [&](int64_t a, int64_t b, int) {
          for (int64_t t = a; t < b; t++) q(j.x + (size_t)t * j.K, dst + (size_t)t * c.actStride, j.K);
        });
      }
    }
    if (j.T == 1) {  // decode: kStreamChunks per thread, multiples of 8 rows for the 8-row kernels (16 for R16)
      c.mode = 0;
      const int g = group_rows(j.type);
      c.rows = (std::max(g, (j.N + nth * kStreamChunks - 1) / (nth * kStreamChunks)) + g - 1) / g * g;
    } else if (j.T <= kBatchMax && kt_->batch[j.type] && j.N % 8 == 0) {
      // small batch (decoding sequences, an expert's few tokens): decode's chunks (one weight stream each, multiples
      // of 16 rows), every token computed while a block is in registers
      c.mode = 1;
      c.tile = kt_->batch[j.type];
      c.rows = (std::max(16, (j.N + nth * kStreamChunks - 1) / (nth * kStreamChunks)) + 15) / 16 * 16;
    }
    c.chunk0 = chunks;
    chunks += (j.N + c.rows - 1) / c.rows;
  }
  // A call that mixes products bound by arithmetic (4+ tokens per weight row: a batched step's shared expert) with
  // products bound by memory (an expert that one or two of the batch's tokens chose) hands their chunks out
  // interleaved, so that at any moment one thread tends to compute while the other streams, instead of both
  // computing (memory idle) and then both streaming (arithmetic idle). Chunks are claimed in this order; each is
  // computed exactly as before.
  // Decode calls (all memory-bound) and prefill calls (all arithmetic-bound) skip this: it allocates.
  std::vector<int> order;
  auto heavy = [](const MatmulCtx& c) { return c.mode == 2 || (c.mode == 1 && c.T >= 4); };
  bool anyHeavy = false, anyLight = false;
  for (int i = 0; i < n; i++)
    if (jobs[i].T > 0) (heavy(cs[i]) ? anyHeavy : anyLight) = true;
  if (anyHeavy && anyLight) {
    std::vector<int> hv, lt;
    for (int i = 0; i < n; i++) {
      if (jobs[i].T == 0) continue;
      const int nc = (cs[i].N + cs[i].rows - 1) / cs[i].rows;
      for (int k = 0; k < nc; k++) (heavy(cs[i]) ? hv : lt).push_back(cs[i].chunk0 + k);
    }
    order.reserve((size_t)chunks);
    size_t a = 0, b = 0;
    while (a < hv.size() || b < lt.size()) {
      // Bresenham: keep the share of heavy chunks handed out equal to their share of all chunks
      if (b >= lt.size() || (a < hv.size() && a * lt.size() <= b * hv.size())) order.push_back(hv[a++]);
      else order.push_back(lt[b++]);
    }
  }
  struct Ctx { const MatmulCtx* cs; int n; const int* order; } ctx{cs.data(), n, order.empty() ? nullptr : order.data()};
  pool_.run([](void* p, int chunk, int) {
    const auto& x = *(const Ctx*)p;
    if (x.order) chunk = x.order[chunk];
    int i = 0;
    while (i + 1 < x.n && x.cs[i + 1].chunk0 <= chunk) i++;  // the last job starting at or before chunk (T = 0 jobs own none)
    matmulChunk(x.cs[i], chunk - x.cs[i].chunk0);
  }, &ctx, chunks);
}

// ---------------------------------------------------------------------------------------------------------------
// BF16 products (gemm-bf16.h). Packing: panel p, group j, column c of an expert's slice = (w[16p + c][2j],
// w[16p + c][2j + 1]), zero past N and past K.
void Engine::packBf16(uint8_t* dst, const uint8_t* src, int experts, int N, int K) {
  const int64_t Kp = bf16p_even(K), P = (N + 15) / 16;
  const size_t eb = bf16p_bytes(N, K);
  parallelFor((int64_t)experts * P, 4, [&](int64_t a, int64_t b, int) {
    for (int64_t u = a; u < b; u++) {
      const int64_t e = u / P, p = u % P;
      const uint16_t* s = (const uint16_t*)(src + (size_t)e * N * K * 2);
      uint16_t* d = (uint16_t*)(dst + (size_t)e * eb) + (size_t)p * 16 * Kp;
      for (int64_t j = 0; j < Kp / 2; j++)
        for (int c = 0; c < 16; c++) {
          const int64_t n = 16 * p + c;
          uint16_t v0 = 0, v1 = 0;
          if (n < N) {
            std::memcpy(&v0, s + (size_t)n * K + 2 * j, 2);
            if (2 * j + 1 < K) std::memcpy(&v1, s + (size_t)n * K + 2 * j + 1, 2);
          }
          d[(size_t)j * 32 + 2 * c] = v0;
          d[(size_t)j * 32 + 2 * c + 1] = v1;
        }
    }
  });
}

// Work units are (4 panels = 64 columns) × (a range of tokens); a unit keeps its 64 × Kp weight block in L2 while
// its tokens stream past. Token ranges shrink until every thread has about four units.
void Engine::matmulBf16(float* out, const float* x, const uint8_t* wp, int N, int K, int T) {
  if (T <= 0) return;
  const int Kp = (int)bf16p_even(K), P = (N + 15) / 16, pb = (P + 3) / 4, nth = pool_.size();
  if (xb_.size() < (size_t)T * Kp) xb_.resize((size_t)T * Kp);
  uint16_t* xb = xb_.data();
  const CvtBf16Fn cvt = bf16_->cvt;
  parallelFor(T, 16, [&](int64_t a, int64_t b, int) {
    for (int64_t t = a; t < b; t++) {
      cvt(x + (size_t)t * K, xb + (size_t)t * Kp, K);
      if (Kp != K) xb[(size_t)t * Kp + K] = 0;
    }
  });
  int per = bf16_->tokensPerBlock;
  while (per > 32 && (int64_t)pb * ((T + per - 1) / per) < 4 * nth) per /= 2;
  const int tb = (T + per - 1) / per;
  const GemmBf16Fn block = bf16_->block;
  parallelFor((int64_t)pb * tb, 1, [&](int64_t a, int64_t b, int) {
    for (int64_t u = a; u < b; u++) {
      const int p0 = (int)(u % pb) * 4, t0 = (int)(u / pb) * per;
      block(xb, Kp, t0, std::min(T, t0 + per), (const uint16_t*)wp, p0, std::min(P, p0 + 4), N, out);
    }
  });
}

// f16/bf16 products without BF16 hardware (kern-half-gemm.h). Packing: panel p, group k, column c = w[16p + c][k],
// zero past N.
void Engine::packHalf(uint8_t* dst, const uint8_t* src, int experts, int N, int K) {
  const int64_t P = (N + 15) / 16;
  const size_t eb = halfp_bytes(N, K);
  parallelFor((int64_t)experts * P, 4, [&](int64_t a, int64_t b, int) {
    for (int64_t u = a; u < b; u++) {
      const int64_t e = u / P, p = u % P;
      const uint16_t* s = (const uint16_t*)(src + (size_t)e * N * K * 2);
      uint16_t* d = (uint16_t*)(dst + (size_t)e * eb) + (size_t)p * 16 * K;
      for (int c = 0; c < 16; c++) {
        const int64_t n = 16 * p + c;
        for (int64_t k = 0; k < K; k++) {
          uint16_t v = 0;
          if (n < N) std::memcpy(&v, s + (size_t)n * K + k, 2);
          d[(size_t)k * 16 + c] = v;
        }
      }
    }
  });
}

// Work units as matmulBf16's: 4 panels (64 columns) × a range of tokens, the weight block staying in L2.
void Engine::matmulHalf(float* out, const float* x, const uint8_t* wp, int N, int K, int T, bool bf16) {
  if (T <= 0) return;
  const int P = (N + 15) / 16, pb = (P + 3) / 4, nth = pool_.size();
  int per = 96;
  while (per > 24 && (int64_t)pb * ((T + per - 1) / per) < 4 * nth) per /= 2;
  const int tb = (T + per - 1) / per;
  const HalfGemmFn fn = kt_->half_gemm;
  parallelFor((int64_t)pb * tb, 1, [&](int64_t a, int64_t b, int) {
    for (int64_t u = a; u < b; u++) {
      const int p0 = (int)(u % pb) * 4, t0 = (int)(u / pb) * per;
      fn(x, K, t0, std::min(T, t0 + per), (const uint16_t*)wp, p0, std::min(P, p0 + 4), N, out, bf16);
    }
  });
}

void Engine::getRows(float* out, const uint8_t* w, int type, int K, const int32_t* ids, int n) {
  const size_t rb = row_bytes(type, K);
  if (is_repacked(type)) {
    std::vector<uint8_t> row(rb);
    for (int i = 0; i < n; i++) { repacked_row(type, w, ids[i], K, row.data()); kt_->dequant[r8_base(type)](row.data(), out + (size_t)i * K, K); }
    return;
  }
  for (int i = 0; i < n; i++) kt_->dequant[type](w + (size_t)ids[i] * rb, out + (size_t)i * K, K);
}

void Engine::dequant(float* out, const uint8_t* w, int type, int64_t rows, int K) {
  const size_t rb = row_bytes(type, K);
  parallelFor(rows, 64, [&](int64_t a, int64_t b, int) {
    std::vector<uint8_t> row(is_repacked(type) ? rb : 0);
    for (int64_t r = a; r < b; r++) {
      if (is_repacked(type)) { repacked_row(type, w, r, K, row.data()); kt_->dequant[r8_base(type)](row.data(), out + (size_t)r * K, K); }
      else kt_->dequant[type](w + (size_t)r * rb, out + (size_t)r * K, K);
    }
  });
}

void Engine::repackR8(uint8_t* dst, const uint8_t* src, int type, int64_t rows, int K, int to) {
  const int g = group_rows(to);
  parallelFor(rows / g, 128 / g, [&](int64_t a, int64_t b, int) { repack_groups(dst, src, type, K, to, a, b); });  // >= 128 rows per piece
}

void Engine::quantize(uint8_t* out, const float* x, int type, int64_t rows, int K) {
  const size_t rb = row_bytes(type, K);
  const bool simd = std::strcmp(kt_->isa, "scalar") != 0;  // an engine made for "scalar" keeps the scalar searches
  parallelFor(rows, std::max<int64_t>(1, 16384 / K), [&](int64_t a, int64_t b, int) {
    for (int64_t r = a; r < b; r++) quantize_row(type, x + (size_t)r * K, out + (size_t)r * rb, K, simd);
  });
}

// ---------------------------------------------------------------------------------------------------------------
// Norms accumulate in double like the reference, so long rows do not drift.
void Engine::rmsNorm(float* out, const float* x, const float* weight, int rows, int dim, float eps) {
  parallelFor(rows, 16, [&](int64_t a, int64_t b, int) {
    for (int64_t r = a; r < b; r++) kt_->rms_norm_row(out + (size_t)r * dim, x + (size_t)r * dim, weight, dim, eps);
  });
}

void Engine::layerNorm(float* out, const float* x, const float* weight, const float* bias, int rows, int dim, float eps) {
  parallelFor(rows, 16, [&](int64_t a, int64_t b, int) {
    for (int64_t r = a; r < b; r++) {
      const float* xr = x + (size_t)r * dim;
      float* o = out + (size_t)r * dim;
      double mean = 0, var = 0;
      for (int i = 0; i < dim; i++) mean += xr[i];
      mean /= dim;
      for (int i = 0; i < dim; i++) var += (xr[i] - mean) * (xr[i] - mean);
      const double inv = 1.0 / std::sqrt(var / dim + eps);
      for (int i = 0; i < dim; i++) o[i] = (float)((xr[i] - mean) * inv) * weight[i] + bias[i];
    }
  });
}

// Llama 4 rotates interleaved pairs (x[2j], x[2j+1]) — the "complex" layout of the Meta checkpoint, not HF's
// rotate_half — with one angle table row per token.
void Engine::rope(float* x, int T, int nHeads, int headDim, const float* cos, const float* sin) {
  const int half = headDim / 2;
  parallelFor(T, 32, [&](int64_t a, int64_t b, int) {
    for (int64_t t = a; t < b; t++) {
      const float* c = cos + (size_t)t * half;
      const float* s = sin + (size_t)t * half;
      for (int h = 0; h < nHeads; h++) {
        float* v = x + ((size_t)t * nHeads + h) * headDim;
        for (int j = 0; j < half; j++) {
          const float p = v[2 * j], q = v[2 * j + 1];
          v[2 * j] = p * c[j] - q * s[j];
          v[2 * j + 1] = p * s[j] + q * c[j];
        }
      }
    }
  });
}

// ---------------------------------------------------------------------------------------------------------------
void Engine::siluMul(float* out, const float* gate, const float* up, int64_t n) {
  parallelFor(n, 1 << 15, [&](int64_t a, int64_t b, int) { kt_->silu_mul(out + a, gate + a, up + a, b - a); });
}
// Exact erf GELU (torch nn.GELU() default), used by the vision encoder.
void Engine::gelu(float* x, int64_t n) {
  if (kt_->gelu) {
    parallelFor(n, 1 << 15, [&](int64_t a, int64_t b, int) { kt_->gelu(x + a, b - a); });
    return;
  }
  parallelFor(n, 1 << 15, [&](int64_t a, int64_t b, int) {
    for (int64_t i = a; i < b; i++) { const float v = x[i]; x[i] = 0.5f * v * (1.f + std::erf(v * 0.70710678118654752f)); }
  });
}
void Engine::add(float* x, const float* y, int64_t n) {
  parallelFor(n, 1 << 16, [&](int64_t a, int64_t b, int) { for (int64_t i = a; i < b; i++) x[i] += y[i]; });
}
void Engine::addBias(float* x, const float* bias, int rows, int dim) {
  parallelFor(rows, 64, [&](int64_t a, int64_t b, int) {
    for (int64_t r = a; r < b; r++) for (int i = 0; i < dim; i++) x[(size_t)r * dim + i] += bias[i];
  });
}


uint64_t Engine::streamRead(const uint8_t* p, size_t n) {
  const int64_t words = (int64_t)(n / 8);
  std::vector<uint64_t> part(pool_.size() * 16, 0);  // one padded slot per thread
  parallelFor(words, 1 << 17, [&](int64_t a, int64_t b, int tid) {
    uint64_t acc[8] = {0, 0, 0, 0, 0, 0, 0, 0};
    const uint64_t* w = (const uint64_t*)p;
    int64_t i = a;
    for (; i + 8 <= b; i += 8)
      for (int j = 0; j < 8; j++) { uint64_t v; std::memcpy(&v, w + i + j, 8); acc[j] += v; }
    for (; i < b; i++) { uint64_t v; std::memcpy(&v, w + i, 8); acc[0] += v; }
    uint64_t s = 0;
    for (int j = 0; j < 8; j++) s += acc[j];
    part[tid * 16] += s;
  });
  uint64_t s = 0;
  for (size_t i = 0; i < part.size(); i += 16) s += part[i];
  return s;
}

}  // namespace l4
