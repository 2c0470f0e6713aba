#include "ops.h"

#include <algorithm>
#include <cmath>

namespace l4 {

Engine::Engine(int threads, const KernelTable* kt) : kt_(kt), pool_(threads), scratch_(threads) {}

template <class F>
void Engine::parallelFor(int64_t n, int64_t minPer, F&& f) {
  const int nth = pool_.size();
  int64_t chunks = std::min<int64_t>((n + minPer - 1) / minPer, (int64_t)nth * 4);
  if (chunks <= 1) { if (n > 0) f(0, n, 0); return; }
  struct Ctx { F* f; int64_t n, per; } c{&f, n, (n + chunks - 1) / chunks};
  chunks = (n + c.per - 1) / c.per;
  pool_.run([](void* p, int ch, int tid) {
    auto& c = *(Ctx*)p;
    const int64_t a = ch * c.per, b = std::min(c.n, a + c.per);
    (*c.f)(a, b, tid);
  }, &c, (int)chunks);
}

// ---------------------------------------------------------------------------------------------------------------
// matmul. Decode (T = 1) streams every weight byte once from DRAM: rows are split into chunks that threads claim,
// and the row kernel prefetches ahead. Prefill (T > 1) reuses each block of weight rows (kept in L1/L2) for every
// token before moving on, so weights are read once per call instead of once per token.
struct MatmulCtx {
  RowsFn fn; TileFn tile; const uint8_t* w; size_t rb; int N, K, T; const uint8_t* act; size_t actStride; float* out; int rows;
};
static constexpr int kPrefillRows = 16;

static void matmulChunk(void* p, int chunk, int) {
  const auto& c = *(const MatmulCtx*)p;
  const int r0 = chunk * c.rows, nr = std::min(c.rows, c.N - r0);
  const uint8_t* w = c.w + (size_t)r0 * c.rb;
  if (c.T == 1) { c.fn(c.K, w, c.rb, nr, c.act, c.out + r0, true); return; }
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
  const RowsFn fn = kt_->rows[type];
  const int fmt = kt_->act[type];
  const uint8_t* act = (const uint8_t*)x;
  size_t actStride = (size_t)K * 4;
  if (fmt != ACT_F32) {  // quantize the activations once per call (ggml's vec_dot_type conversion)
    actStride = act_row_bytes(fmt, K);
    if (act_.size() < actStride * T) act_.resize(actStride * T);
    const QuantActFn q = fmt == ACT_Q8 ? kt_->quant_q8 : kt_->quant_q8k;
    uint8_t* dst = act_.data();
    parallelFor(T, 8, [&](int64_t a, int64_t b, int) {
      for (int64_t t = a; t < b; t++) q(x + (size_t)t * K, dst + (size_t)t * actStride, K);
    });
    act = act_.data();
  }
  MatmulCtx c{fn, kt_->tile[type], w, row_bytes(type, K), N, K, T, act, actStride, out, kPrefillRows};
  if (T == 1) {  // about 4 chunks per thread, at least 8 rows each
    const int nth = pool_.size();
    c.rows = std::max(8, (N + nth * 4 - 1) / (nth * 4));
  }
  pool_.run(matmulChunk, &c, (N + c.rows - 1) / c.rows);
}

void Engine::getRows(float* out, const uint8_t* w, int type, int K, const int32_t* ids, int n) {
  const size_t rb = row_bytes(type, K);
  for (int i = 0; i < n; i++) kt_->dequant[type](w + (size_t)ids[i] * rb, out + (size_t)i * K, K);
}

void Engine::dequant(float* out, const uint8_t* w, int type, int64_t rows, int K) {
  const size_t rb = row_bytes(type, K);
  parallelFor(rows, 64, [&](int64_t a, int64_t b, int) {
    for (int64_t r = a; r < b; r++) kt_->dequant[type](w + (size_t)r * rb, out + (size_t)r * K, K);
  });
}

// ---------------------------------------------------------------------------------------------------------------
// Norms accumulate in double like the reference, so long rows do not drift.
void Engine::rmsNorm(float* out, const float* x, const float* weight, int rows, int dim, float eps) {
  parallelFor(rows, 16, [&](int64_t a, int64_t b, int) {
    for (int64_t r = a; r < b; r++) {
      const float* xr = x + (size_t)r * dim;
      float* o = out + (size_t)r * dim;
      double ss = 0;
      for (int i = 0; i < dim; i++) ss += (double)xr[i] * xr[i];
      const float inv = (float)(1.0 / std::sqrt((double)(float)(ss / dim) + eps));
      if (weight) for (int i = 0; i < dim; i++) o[i] = (xr[i] * inv) * weight[i];
      else for (int i = 0; i < dim; i++) o[i] = xr[i] * inv;
    }
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
// Attention: q [T, H, d], k/v [S, Hkv, d]. Each (query tile, head) is one unit of work; its visible keys are one
// contiguous range because both masks are intervals: causal (k <= q) and Llama 4's chunked mask (RoPE layers only
// see keys of their own 8192-token chunk: floor(k/C) == floor(q/C)). Queries are processed in tiles of 16 so a
// tile's keys stay in cache across its queries; scores use a per-thread buffer of S floats.
static constexpr int kQTile = 16;

void Engine::attention(float* out, const float* q, const float* k, const float* v, const AttnShape& s) {
  const int d = s.headDim, H = s.nHeads, Hkv = s.nKvHeads, group = H / Hkv;
  const int tiles = (s.T + kQTile - 1) / kQTile;
  for (auto& b : scratch_) if ((int)b.size() < s.S) b.resize(s.S);
  parallelFor((int64_t)tiles * H, 1, [&](int64_t a, int64_t b, int tid) {
    float* sc = scratch_[tid].data();
    for (int64_t u = a; u < b; u++) {
      const int h = (int)(u % H), tile = (int)(u / H), kvh = h / group;
      for (int t = tile * kQTile; t < std::min(s.T, (tile + 1) * kQTile); t++) {
        const int64_t qp = s.qPos0 + t;
        int64_t lo = 0, hi = s.S;
        if (s.causal) hi = std::min<int64_t>(s.S, qp - s.kPos0 + 1);
        if (s.chunkSize > 0) lo = std::max<int64_t>(0, (qp / s.chunkSize) * s.chunkSize - s.kPos0);
        const float* qv = q + ((size_t)t * H + h) * d;
        float* o = out + ((size_t)t * H + h) * d;
        std::memset(o, 0, sizeof(float) * d);
        if (hi <= lo) continue;
        float mx = -INFINITY;
        for (int64_t j = lo; j < hi; j++) {
          const float x = kt_->dot_f32(qv, k + ((size_t)j * Hkv + kvh) * d, d) * s.scale;
          sc[j] = x;
          mx = std::max(mx, x);
        }
        double sum = 0;
        for (int64_t j = lo; j < hi; j++) { const float e = std::exp(sc[j] - mx); sc[j] = e; sum += e; }
        const float inv = (float)(1.0 / sum);
        for (int64_t j = lo; j < hi; j++) kt_->axpy_f32(o, sc[j] * inv, v + ((size_t)j * Hkv + kvh) * d, d);
      }
    }
  });
}

// ---------------------------------------------------------------------------------------------------------------
void Engine::siluMul(float* out, const float* gate, const float* up, int64_t n) {
  parallelFor(n, 1 << 15, [&](int64_t a, int64_t b, int) {
    for (int64_t i = a; i < b; i++) { const float g = gate[i]; out[i] = g / (1.f + std::exp(-g)) * up[i]; }
  });
}
// Exact erf GELU (torch nn.GELU() default), used by the vision encoder.
void Engine::gelu(float* x, int64_t n) {
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
