// The operations of the Backend interface (src/tensor/backend.ts) on raw pointers. Bounds are checked by the
// caller (addon.cc); everything here assumes valid, non-overlapping buffers except where stated.
#pragma once
#include <memory>
#include <vector>

#include "common.h"
#include "gemm-bf16.h"
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
  // The BF16-products kernel this engine uses (AMX, else AVX-512 BF16; null when the CPU has neither or the kernel
  // set is not avx512): weights adopted with products 'bf16' are packed and multiplied by it (gemm-bf16.h).
  const Bf16Gemm* bf16Gemm() const { return bf16_; }
  // experts × [N, K] bf16 rows -> experts × the packed P16 layout (bf16p_bytes(N, K) each), zero padding included.
  void packBf16(uint8_t* dst, const uint8_t* src, int experts, int N, int K);
  // out[T, N] = bf16(x)[T, K] · Wᵀ for a packed weight (one expert's slice); requires bf16Gemm().
  void matmulBf16(float* out, const float* x, const uint8_t* wp, int N, int K, int T);
  // experts × [N, K] f16/bf16 rows -> experts × the packed H16 layout (halfp_bytes(N, K) each, kern-half-gemm.h).
  static size_t halfp_bytes(int64_t N, int64_t K) { return (size_t)((N + 15) / 16) * 16 * (size_t)K * 2; }
  bool hasHalfGemm() const { return kt_->half_gemm != nullptr; }
  void packHalf(uint8_t* dst, const uint8_t* src, int experts, int N, int K);
  // out[T, N] = x[T, K] · Wᵀ for a packHalf weight (one expert's slice), exact f32 products (KernelTable::half_gemm).
  void matmulHalf(float* out, const float* x, const uint8_t* wp, int N, int K, int T, bool bf16);
  // out[i, :] = row ids[i] of W as f32.
  void getRows(float* out, const uint8_t* w, int type, int K, const int32_t* ids, int n);
  void dequant(float* out, const uint8_t* w, int type, int64_t rows, int K);
  // Writes q4_0/q8_0 rows [rows, K] (rows % 8 == 0; R16: % 16) into dst in the repacked layout `to` (R8 or R16,
  // common.h), or q4_K / q5_K / q6_K / IQ4_XS rows (rows % 16 == 0) in their R16 layouts.
  void repackR8(uint8_t* dst, const uint8_t* src, int type, int64_t rows, int K, int to);
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
  void attentionScratch(int headDim, int group, int nHeads);
  void attentionFull(float* out, const float* q, const float* k, const float* v, const AttnShape& s);  // grows every thread's scratch for units of this shape
  void attnUnit(const AttnPlan& p, int64_t unit, int tid);
  template <int KV> void attnUnitT(const AttnPlan& p, int64_t unit, int tid);

  const KernelTable* kt_;
  const Bf16Gemm* bf16_ = nullptr;
  Pool pool_;
  std::vector<uint16_t> xb_;                   // activations rounded to bf16 [T][Kp] (matmulBf16)
  std::vector<uint8_t> act_;                   // quantized activations [T][actRowBytes]
  std::vector<std::vector<float>> scratch_;    // per-thread attention scores, partials and the block's f32 K/V
  std::vector<std::vector<const float*>> qptrs_;  // per-thread query rows of one attn_rows call
  std::vector<std::vector<int>> combos_;          // per-thread (token, head) combos of those rows
  std::vector<float> fullKV_;                  // attentionFull: K transposed and V padded, per kv head
};

}  // namespace l4
