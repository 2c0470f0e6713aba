// The operations of the Backend interface (src/tensor/backend.ts) on raw pointers. Bounds are checked by the
// caller (addon.cc); everything here assumes valid, non-overlapping buffers except where stated.
#pragma once
#include <memory>
#include <vector>

#include "common.h"
#include "pool.h"

namespace l4 {

struct AttnShape {
  int nHeads, nKvHeads, headDim, T, S;
  int64_t qPos0, kPos0;
  float scale;
  bool causal;
  int64_t chunkSize;  // 0 = no chunking (NoPE / global layers)
  int kvType;         // T_F32, T_F16 or T_Q8_0: how k/v rows are stored (q8_0: headDim % 32 == 0)
};

// One product of matmulMany: out[T, N] = x[T, K] · W[N, K]ᵀ (W already offset to the expert's slice).
// One sequence's part of attentionMany.
struct AttnJob { float* out; const float* q; const void* k; const void* v; AttnShape s; };
struct AttnPlan;

struct MatmulJob { float* out; const float* x; const uint8_t* w; int type, N, K, T; };

class Engine {
 public:
  Engine(int threads, const KernelTable* kt);
  const KernelTable* kt() const { return kt_; }
  int threads() const { return pool_.size(); }

  // out[T, N] = x[T, K] · W[N, K]ᵀ, W given as N rows of rowBytes (an expert's slice already offset by the caller).
  void matmul(float* out, const float* x, const uint8_t* w, int type, int N, int K, int T);
  // The jobs' products in one pool run (results as matmul gives them); no job's out may overlap another's x.
  void matmulMany(const MatmulJob* jobs, int n);
  // out[i, :] = row ids[i] of W as f32.
  void getRows(float* out, const uint8_t* w, int type, int K, const int32_t* ids, int n);
  void dequant(float* out, const uint8_t* w, int type, int64_t rows, int K);
  // Writes q4_0/q8_0 rows [rows, K] (rows % 8 == 0) into dst in the repacked R8 layout of common.h.
  void repackR8(uint8_t* dst, const uint8_t* src, int type, int64_t rows, int K);
  // Quantizes x[rows, K] into rows of `type` (quant.h; bytes as the TypeScript quantizers write them), rows split
  // over the pool: each row's bytes depend only on that row, so the result does not depend on the thread count.
  void quantize(uint8_t* out, const float* x, int type, int64_t rows, int K);
  void rmsNorm(float* out, const float* x, const float* weight, int rows, int dim, float eps);
  void layerNorm(float* out, const float* x, const float* weight, const float* bias, int rows, int dim, float eps);
  void rope(float* x, int T, int nHeads, int headDim, const float* cos, const float* sin);
  // k/v: [S][nKvHeads] rows of headDim values stored as s.kvType, read in place (no f32 copy of the cache).
  void attention(float* out, const float* q, const void* k, const void* v, const AttnShape& s);
  // Several sequences' attention in one pool run (results as attention gives them); outputs must not overlap.
  void attentionMany(const AttnJob* jobs, int n);
  void siluMul(float* out, const float* gate, const float* up, int64_t n);
  void gelu(float* x, int64_t n);
  void add(float* x, const float* y, int64_t n);
  void addBias(float* x, const float* bias, int rows, int dim);
  // Reads every byte of [p, p + n) on all threads and returns a checksum: the memory-bandwidth probe of the
  // benchmarks (decode speed is judged against what this machine can stream).
  uint64_t streamRead(const uint8_t* p, size_t n);

 private:
  // Splits [0, n) into about `per` sized pieces and runs them on the pool (inline when small).
  template <class F> void parallelFor(int64_t n, int64_t minPer, F&& f);
  void attentionScratch(int headDim, int group);  // grows every thread's scratch for units of this shape
  void attnUnit(const AttnPlan& p, int64_t unit, int tid);
  template <int KV> void attnUnitT(const AttnPlan& p, int64_t unit, int tid);

  const KernelTable* kt_;
  Pool pool_;
  std::vector<uint8_t> act_;                   // quantized activations [T][actRowBytes]
  std::vector<std::vector<float>> scratch_;    // per-thread attention scores
};

}  // namespace l4
