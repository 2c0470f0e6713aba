// Node-API surface of the training kernels: new TrainEngine(threads, isa?) with
//   matmul(layout, C, A, B, m, n, k, accumulate)   layout 0 = NT (C = A·Bᵀ, B [n, k]), 1 = NN (B [k, n]),
//                                                   2 = TN (C = Aᵀ·B, A [k, m], B [k, n]); C [m, n]
//   matmulBf16(same arguments as matmul)          products of bf16-rounded operands, f32 sums (bf16Gemm names the kernel)
//   attnFwd(q, k, v, P, O, B, T, nh, nkv, d, scale, chunk)            P [B, nh, T, T] (zeros outside the mask), O written
//   attnBwd(q, k, v, P, dO, dq, dk, dv, B, T, nh, nkv, d, scale, chunk) dq/dk/dv accumulated
//   rmsNormFwd(y, r, x, w|null, rows, dim, eps)                         y [rows, dim], r [rows]
//   rmsNormBwd(dx, dw|null, dy, x, r, w|null, rows, dim, accumulate)    dw accumulated; dx may alias dy
//   swigluFwd(m, g, u, rows, I, stride, gOff, uOff)                     m [rows, I]; g/u rows at t·stride + off
//   swigluBwd(dg, du, dm, g, u, rows, I, stride, gOff, uOff)            dg/du in g/u's layout
//   xent(dLogits, logits, targets, rows, V, scale) → Σ −log p(y)       Int32Array targets, < 0 = ignored row
//   adamw(w, g, m, v, lr, beta1, beta2, eps, wd, bc1, bc2, gmul)        one parameter tensor
//   sumSquares(g, div) → Σ g² after g /= div in place (when div ≠ 1)
//   gatherRows(out, src, idx, scale|null, rows, dim)                    out[j] = src[idx[j]]·scale[idx[j]]
//   scatterAddRows(out, src, idx, scale|null, rows, dim)                out[idx[j]] += src[j]·scale[idx[j]]
//   rowDots(out, a, b, idx, rows, dim)                                  out[j] = a[j]·b[idx[j]]
//   rope(x, cos, sin, rows, T, nH, d, inverse)                          x [rows, nH, d] rotated in place
//   add(y, x, n)                                                        y[i] += x[i]
//   softmaxRows(y, x, rows, dim)                                        y = row-wise softmax(x); y may alias x
// Every length is checked against the shapes (a wrong call throws a RangeError, never reads out of bounds). The
// kernel set is picked at run time by CPU features (train-kern.h is compiled once per ISA); work is split over the
// persistent thread pool (pool.h): products in row × column blocks, attention in (batch, head) or (batch, KV head)
// pairs, row ops in fixed blocks of rows.
#include <napi.h>

#include <algorithm>
#include <cmath>
#include <memory>
#include <string>
#include <type_traits>
#include <vector>

#include "gemm-bf16.h"
#include "pool.h"
#include "train-kern.h"

namespace l4 {
namespace train_base {
#include "train-kern-table.inc"
}
#if defined(__x86_64__)
namespace train_avx512 { const TkTable* table(); }
namespace train_avx2 { const TkTable* table(); }
#endif

namespace {

struct F32 { float* p; size_t len; };

F32 f32(const Napi::CallbackInfo& info, size_t i, const char* name) {
  napi_env env = info.Env();
  bool is = false;
  napi_is_typedarray(env, info[i], &is);
  if (!is) throw Napi::TypeError::New(env, std::string(name) + " must be a Float32Array");
  napi_typedarray_type type;
  size_t len;
  void* data;
  napi_get_typedarray_info(env, info[i], &type, &len, &data, nullptr, nullptr);
  if (type != napi_float32_array) throw Napi::TypeError::New(env, std::string(name) + " must be a Float32Array");
  return F32{(float*)data, len};
}
F32 f32orNull(const Napi::CallbackInfo& info, size_t i, const char* name) {
  if (info[i].IsNull() || info[i].IsUndefined()) return F32{nullptr, 0};
  return f32(info, i, name);
}
struct I32 { const int32_t* p; size_t len; };
I32 i32(const Napi::CallbackInfo& info, size_t i, const char* name) {
  napi_env env = info.Env();
  bool is = false;
  napi_is_typedarray(env, info[i], &is);
  napi_typedarray_type type = napi_float32_array;
  size_t len = 0;
  void* data = nullptr;
  if (is) napi_get_typedarray_info(env, info[i], &type, &len, &data, nullptr, nullptr);
  if (!is || type != napi_int32_array) throw Napi::TypeError::New(env, std::string(name) + " must be an Int32Array");
  return I32{(const int32_t*)data, len};
}
double fnum(const Napi::CallbackInfo& info, size_t i, const char* name) {
  if (!info[i].IsNumber()) throw Napi::TypeError::New(info.Env(), std::string(name) + " must be a number");
  return info[i].As<Napi::Number>().DoubleValue();
}
int64_t inum(const Napi::CallbackInfo& info, size_t i, const char* name, int64_t lo, int64_t hi) {
  if (!info[i].IsNumber()) throw Napi::TypeError::New(info.Env(), std::string(name) + " must be a number");
  const double d = info[i].As<Napi::Number>().DoubleValue();
  if (!(d >= (double)lo && d <= (double)hi) || d != std::floor(d))
    throw Napi::RangeError::New(info.Env(), std::string(name) + " = " + std::to_string(d) + " is out of range");
  return (int64_t)d;
}
void need(const Napi::Env& env, const F32& a, size_t n, const char* name) {
  if (a.len < n) throw Napi::RangeError::New(env, std::string(name) + " has " + std::to_string(a.len) + " elements, needs " + std::to_string(n));
}

#if defined(__x86_64__)
#define TK_CPU(f) (__builtin_cpu_init(), __builtin_cpu_supports(f))
#endif

struct GemmJob {
  const TkTable* t; const float* A; long sai, sap; const float* B; long ldb; float* C; long ldc; int m, n, k; bool acc;
  int rowBlock, colBlock, colBlocks;
};

struct AttnJob {
  const TkTable* t; const float *q, *k, *v; float* P; const float* dO; float *O, *dq, *dk, *dv;
  int B, T, nh, nkv, d, chunk; float scale; std::vector<std::vector<float>>* scratch;
};

class TrainEngine : public Napi::ObjectWrap<TrainEngine> {
 public:
  static Napi::Function Init(Napi::Env env) {
    return DefineClass(env, "TrainEngine", {
      InstanceMethod<&TrainEngine::Matmul>("matmul"), InstanceMethod<&TrainEngine::AttnFwd>("attnFwd"),
      InstanceMethod<&TrainEngine::AttnBwd>("attnBwd"), InstanceMethod<&TrainEngine::Dispose>("dispose"),
      InstanceMethod<&TrainEngine::RmsNormFwd>("rmsNormFwd"), InstanceMethod<&TrainEngine::RmsNormBwd>("rmsNormBwd"),
      InstanceMethod<&TrainEngine::SwigluFwd>("swigluFwd"), InstanceMethod<&TrainEngine::SwigluBwd>("swigluBwd"),
      InstanceMethod<&TrainEngine::Xent>("xent"), InstanceMethod<&TrainEngine::AdamW>("adamw"),
      InstanceMethod<&TrainEngine::SumSquares>("sumSquares"), InstanceMethod<&TrainEngine::GatherRows>("gatherRows"),
      InstanceMethod<&TrainEngine::ScatterAddRows>("scatterAddRows"), InstanceMethod<&TrainEngine::RowDots>("rowDots"),
      InstanceMethod<&TrainEngine::Rope>("rope"), InstanceMethod<&TrainEngine::Add>("add"),
      InstanceMethod<&TrainEngine::SoftmaxRows>("softmaxRows"),
      InstanceAccessor<&TrainEngine::Threads>("threads"), InstanceAccessor<&TrainEngine::Isa>("isa"),
      InstanceAccessor<&TrainEngine::Bf16>("bf16Gemm"), InstanceMethod<&TrainEngine::MatmulBf16>("matmulBf16"),
    });
  }
  explicit TrainEngine(const Napi::CallbackInfo& info) : Napi::ObjectWrap<TrainEngine>(info) {
    auto env = info.Env();
    const int threads = (int)inum(info, 0, "threads", 1, 256);
    std::string want = info.Length() > 1 && info[1].IsString() ? info[1].As<Napi::String>().Utf8Value() : "";
#if defined(__x86_64__)
    const bool avx512 = TK_CPU("avx512f") && TK_CPU("avx512bw") && TK_CPU("avx512vl") && TK_CPU("avx512dq") && TK_CPU("fma");
    const bool avx2 = TK_CPU("avx2") && TK_CPU("fma");
    if ((want.empty() || want == "avx512") && avx512) { t_ = train_avx512::table(); isa_ = "avx512"; }
    else if ((want.empty() || want == "avx2") && avx2) { t_ = train_avx2::table(); isa_ = "avx2"; }
#endif
    if (!t_) {
      if (!want.empty() && want != "scalar") throw Napi::Error::New(env, "kernel set " + want + " is not usable on this CPU");
      t_ = train_base::table(); isa_ = "scalar";
    }
#if defined(__x86_64__)
    if (isa_ == "avx512") bf16_ = gemm_bf16_amx() ? gemm_bf16_amx() : gemm_bf16_avx512();
#endif
    pool_ = std::make_unique<Pool>(threads);
  }

 private:
  Pool& pool(const Napi::Env& env) {
    if (!pool_) throw Napi::Error::New(env, "TrainEngine is disposed");
    return *pool_;
  }
  Napi::Value Threads(const Napi::CallbackInfo& info) { return Napi::Number::New(info.Env(), pool_ ? pool_->size() : 0); }
  Napi::Value Isa(const Napi::CallbackInfo& info) { return Napi::String::New(info.Env(), isa_); }
  Napi::Value Bf16(const Napi::CallbackInfo& info) { return Napi::String::New(info.Env(), bf16_ ? bf16_->name : ""); }
  void Dispose(const Napi::CallbackInfo&) { pool_.reset(); }

  void Matmul(const Napi::CallbackInfo& info) {
    auto env = info.Env();
    const int layout = (int)inum(info, 0, "layout", 0, 2);
    F32 C = f32(info, 1, "C"), A = f32(info, 2, "A"), B = f32(info, 3, "B");
    const int m = (int)inum(info, 4, "m", 0, INT32_MAX), n = (int)inum(info, 5, "n", 0, INT32_MAX), k = (int)inum(info, 6, "k", 0, INT32_MAX);
    const bool acc = info[7].ToBoolean().Value();
    need(env, C, (size_t)m * n, "C"); need(env, A, (size_t)m * k, "A"); need(env, B, (size_t)n * k, "B");
    if (m == 0 || n == 0) return;
    GemmJob j{t_, A.p, k, 1, B.p, n, C.p, n, m, n, k, acc, 64, 256, 0};
    auto& p = pool(env);
    if (layout == 0) {
      // NT: B [n, k] → [k, n] once so the kernel streams contiguous columns.
      bt_.resize((size_t)n * k);
      transpose(p, bt_.data(), B.p, n, k);
      j.B = bt_.data();
    } else if (layout == 2) { j.sai = 1; j.sap = m; }  // TN: a(i, p) = A[p·m + i]
    if (k == 0) {
      if (!acc) std::fill(C.p, C.p + (size_t)m * n, 0.0f);
      return;
    }
    // Blocks of up to 64 rows × 256 columns, halved (rows first, down to 4 × 32) until every thread has 4 or the
    // product is that small: a weight gradient dW [64, 64] (k = B·T) would otherwise run on one thread. Columns
    // stay in 32-multiples, so every element takes the same tile path and sums k in the same order: the split
    // never changes a bit.
    const int want = 4 * p.size();
    auto blocks = [&] { return ((m + j.rowBlock - 1) / j.rowBlock) * ((n + j.colBlock - 1) / j.colBlock); };
    while (blocks() < want && (j.rowBlock > 4 || j.colBlock > 32)) {
      if (j.rowBlock > 4 && (j.rowBlock >= 16 || j.colBlock == 32)) j.rowBlock /= 2;
      else j.colBlock /= 2;
    }
    j.colBlocks = (n + j.colBlock - 1) / j.colBlock;
    p.run([](void* ctx, int c, int) {
      auto* g = (GemmJob*)ctx;
      const int rb = c / g->colBlocks, cb = c % g->colBlocks;
      const int i0 = rb * g->rowBlock, i1 = std::min(g->m, i0 + g->rowBlock), j0 = cb * g->colBlock, j1 = std::min(g->n, j0 + g->colBlock);
      g->t->gemm_block(g->A, g->sai, g->sap, g->B, g->ldb, g->C, g->ldc, g->k, i0, i1, j0, j1, g->acc);
    }, &j, blocks());
  }
  // matmulBf16: matmul's contract with both operands rounded to bf16 (nearest even) and each output one f32
  // accumulator over the k pairs in order (VDPBF16PS / TDPBF16PS, gemm-bf16.h): twice the products per instruction
  // of f32 FMA, at bf16's 8-bit mantissa. A becomes bf16 rows [m][Kp], B the kernel's 16-column panels; both are
  // made on every call (weights change every step), O(mk + nk) against the product's O(mnk).
  void MatmulBf16(const Napi::CallbackInfo& info) {
    auto env = info.Env();
    if (!bf16_) throw Napi::Error::New(env, "this TrainEngine has no BF16 products (bf16Gemm is empty)");
    const int layout = (int)inum(info, 0, "layout", 0, 2);
    F32 C = f32(info, 1, "C"), A = f32(info, 2, "A"), B = f32(info, 3, "B");
    const int m = (int)inum(info, 4, "m", 0, INT32_MAX), n = (int)inum(info, 5, "n", 0, INT32_MAX), k = (int)inum(info, 6, "k", 0, INT32_MAX);
    const bool acc = info[7].ToBoolean().Value();
    need(env, C, (size_t)m * n, "C"); need(env, A, (size_t)m * k, "A"); need(env, B, (size_t)n * k, "B");
    if (m == 0 || n == 0) return;
    if (k == 0) {
      if (!acc) std::fill(C.p, C.p + (size_t)m * n, 0.0f);
      return;
    }
    auto& p = pool(env);
    const int Kp = (int)bf16p_even(k), P = (n + 15) / 16;
    const CvtBf16Fn cvt = bf16_->cvt;
    // Rows of a(i, ·) and b(·, j) as f32 [rows][k]: in place for NT's A and B and NN's A, transposed otherwise.
    const float* ar = A.p;
    if (layout == 2) { at_.resize((size_t)m * k); transpose(p, at_.data(), A.p, k, m); ar = at_.data(); }
    const float* br = B.p;
    if (layout != 0) { bt_.resize((size_t)n * k); transpose(p, bt_.data(), B.p, k, n); br = bt_.data(); }
    xb_.resize((size_t)m * Kp);
    bb_.resize((size_t)n * Kp);
    wp_.resize((size_t)P * 16 * Kp);
    uint16_t *xb = xb_.data(), *bb = bb_.data(), *wp = wp_.data();
    auto toBf16 = [&](const float* src, uint16_t* dst, int rows) {
      par(p, (rows + 63) / 64, [&](int c, int) {
        for (int i = c * 64; i < std::min(rows, c * 64 + 64); i++) {
          cvt(src + (size_t)i * k, dst + (size_t)i * Kp, k);
          if (Kp != k) dst[(size_t)i * Kp + k] = 0;
        }
      });
    };
    toBf16(ar, xb, m);
    toBf16(br, bb, n);
    // Panel q, pair j, column c = (b(2j, 16q + c), b(2j + 1, 16q + c)), zero past n.
    par(p, P, [&](int q, int) {
      uint16_t* d = wp + (size_t)q * 16 * Kp;
      for (int c = 0; c < 16; c++) {
        const int j = 16 * q + c;
        const uint16_t* s = j < n ? bb + (size_t)j * Kp : nullptr;
        for (int t = 0; t < Kp / 2; t++) {
          d[(size_t)t * 32 + 2 * c] = s ? s[2 * t] : 0;
          d[(size_t)t * 32 + 2 * c + 1] = s ? s[2 * t + 1] : 0;
        }
      }
    });
    float* out = C.p;
    if (acc) { ct_.resize((size_t)m * n); out = ct_.data(); }
    // Units of 4 panels (64 columns) × a range of rows, the range shrinking until each thread has about four.
    const int pb = (P + 3) / 4, nth = p.size();
    int per = bf16_->tokensPerBlock;
    while (per > 8 && (int64_t)pb * ((m + per - 1) / per) < 4 * nth) per /= 2;
    const int tb = (m + per - 1) / per;
    const GemmBf16Fn block = bf16_->block;
    par(p, pb * tb, [&](int u, int) {
      const int p0 = (u % pb) * 4, t0 = (u / pb) * per;
      block(xb, Kp, t0, std::min(m, t0 + per), wp, p0, std::min(P, p0 + 4), n, out);
    });
    if (acc)
      par(p, (m + 63) / 64, [&](int c, int) {
        const size_t i0 = (size_t)c * 64 * n, i1 = std::min((size_t)m * n, i0 + (size_t)64 * n);
        for (size_t i = i0; i < i1; i++) C.p[i] += out[i];
      });
  }

  // dst [cols, rows] = src [rows, cols]ᵀ in 32 × 32 tiles (both sides touch 32 lines per tile), strips of 32 source
  // rows spread over the pool.
  static void transpose(Pool& p, float* dst, const float* src, int rows, int cols) {
    par(p, (rows + 31) / 32, [&](int c, int) {
      const int r0 = c * 32, r1 = std::min(rows, r0 + 32);
      for (int c0 = 0; c0 < cols; c0 += 32) {
        const int c1 = std::min(cols, c0 + 32);
        for (int r = r0; r < r1; r++)
          for (int q = c0; q < c1; q++) dst[(size_t)q * rows + r] = src[(size_t)r * cols + q];
      }
    });
  }

  AttnJob attnArgs(const Napi::CallbackInfo& info, bool bwd) {
    auto env = info.Env();
    const size_t o = bwd ? 8 : 5;
    AttnJob j{};
    j.t = t_;
    j.B = (int)inum(info, o, "B", 1, INT32_MAX); j.T = (int)inum(info, o + 1, "T", 1, 1 << 16);
    j.nh = (int)inum(info, o + 2, "nh", 1, 4096); j.nkv = (int)inum(info, o + 3, "nkv", 1, 4096); j.d = (int)inum(info, o + 4, "d", 1, 4096);
    if (!info[o + 5].IsNumber()) throw Napi::TypeError::New(env, "scale must be a number");
    j.scale = (float)info[o + 5].As<Napi::Number>().DoubleValue();
    j.chunk = (int)inum(info, o + 6, "chunk", 0, INT32_MAX);
    if (j.nh % j.nkv != 0) throw Napi::RangeError::New(env, "nh must be a multiple of nkv");
    const size_t N = (size_t)j.B * j.T, nq = N * j.nh * j.d, nk = N * j.nkv * j.d, np = (size_t)j.B * j.nh * j.T * j.T;
    F32 q = f32(info, 0, "q"), k = f32(info, 1, "k"), v = f32(info, 2, "v"), P = f32(info, 3, "P");
    need(env, q, nq, "q"); need(env, k, nk, "k"); need(env, v, nk, "v"); need(env, P, np, "P");
    j.q = q.p; j.k = k.p; j.v = v.p; j.P = P.p;
    if (!bwd) { F32 O = f32(info, 4, "O"); need(env, O, nq, "O"); j.O = O.p; }
    else {
      F32 dO = f32(info, 4, "dO"), dq = f32(info, 5, "dq"), dk = f32(info, 6, "dk"), dv = f32(info, 7, "dv");
      need(env, dO, nq, "dO"); need(env, dq, nq, "dq"); need(env, dk, nk, "dk"); need(env, dv, nk, "dv");
      j.dO = dO.p; j.dq = dq.p; j.dk = dk.p; j.dv = dv.p;
    }
    return j;
  }
  void AttnFwd(const Napi::CallbackInfo& info) {
    AttnJob j = attnArgs(info, false);
    auto& p = pool(info.Env());
    scratch_.resize(p.size());
    for (auto& s : scratch_) s.resize((size_t)j.d * j.T);
    j.scratch = &scratch_;
    p.run([](void* ctx, int c, int tid) {
      auto* a = (AttnJob*)ctx;
      a->t->attn_fwd_head(a->q, a->k, a->v, a->P, a->O, a->T, a->nh, a->nkv, a->d, c / a->nh, c % a->nh, a->scale, a->chunk,
                          (*a->scratch)[tid].data());
    }, &j, j.B * j.nh);
  }
  void AttnBwd(const Napi::CallbackInfo& info) {
    AttnJob j = attnArgs(info, true);
    auto& p = pool(info.Env());
    scratch_.resize(p.size());
    for (auto& s : scratch_) s.resize((size_t)j.d * j.T + (size_t)j.T * j.T);
    j.scratch = &scratch_;
    p.run([](void* ctx, int c, int tid) {
      auto* a = (AttnJob*)ctx;
      a->t->attn_bwd_group(a->q, a->k, a->v, a->P, a->dO, a->dq, a->dk, a->dv, a->T, a->nh, a->nkv, a->d, c / a->nkv, c % a->nkv,
                           a->scale, a->chunk, (*a->scratch)[tid].data());
    }, &j, j.B * j.nkv);
  }

  // Row ops: work split in blocks of rows that depend on the shape only (≈16 K elements each), so reductions over
  // blocks (RMSNorm's dw, squared norms) give the same bits for any thread count.
  template <class F>
  static void par(Pool& p, int n, F&& f) {
    using Fn = std::remove_reference_t<F>;
    p.run([](void* c, int i, int tid) { (*(Fn*)c)(i, tid); }, &f, n);
  }
  static int rowBlock(long dim) { return (int)std::max<long>(1, 16384 / std::max<long>(1, dim)); }
  static void checkIdx(const Napi::Env& env, const I32& idx, int rows, long limit, const char* name) {
    if (idx.len < (size_t)rows) throw Napi::RangeError::New(env, std::string(name) + " is shorter than rows");
    for (int j = 0; j < rows; j++)
      if (idx.p[j] < 0 || idx.p[j] >= limit) throw Napi::RangeError::New(env, std::string(name) + " holds an out-of-range row");
  }

  void RmsNormFwd(const Napi::CallbackInfo& info) {
    auto env = info.Env();
    F32 y = f32(info, 0, "y"), r = f32(info, 1, "r"), x = f32(info, 2, "x"), w = f32orNull(info, 3, "w");
    const int rows = (int)inum(info, 4, "rows", 0, INT32_MAX), dim = (int)inum(info, 5, "dim", 1, INT32_MAX);
    const float eps = (float)fnum(info, 6, "eps");
    const size_t n = (size_t)rows * dim;
    need(env, y, n, "y"); need(env, r, rows, "r"); need(env, x, n, "x");
    if (w.p) need(env, w, dim, "w");
    const int rb = rowBlock(dim), t = (rows + rb - 1) / rb;
    const TkTable* tb = t_;
    par(pool(env), t, [&](int c, int) { tb->rmsnorm_fwd(y.p, r.p, x.p, w.p, dim, eps, c * rb, std::min(rows, (c + 1) * rb)); });
  }
  void RmsNormBwd(const Napi::CallbackInfo& info) {
    auto env = info.Env();
    F32 dx = f32(info, 0, "dx"), dw = f32orNull(info, 1, "dw"), dy = f32(info, 2, "dy"), x = f32(info, 3, "x"), r = f32(info, 4, "r");
    F32 w = f32orNull(info, 5, "w");
    const int rows = (int)inum(info, 6, "rows", 0, INT32_MAX), dim = (int)inum(info, 7, "dim", 1, INT32_MAX);
    const bool acc = info[8].ToBoolean().Value();
    const size_t n = (size_t)rows * dim;
    need(env, dx, n, "dx"); need(env, dy, n, "dy"); need(env, x, n, "x"); need(env, r, rows, "r");
    if (w.p) need(env, w, dim, "w");
    if (dw.p) need(env, dw, dim, "dw");
    const int rb = rowBlock(dim), t = (rows + rb - 1) / rb;
    if (dw.p) part_.assign((size_t)t * dim, 0.0f);
    const TkTable* tb = t_;
    float* part = dw.p ? part_.data() : nullptr;
    par(pool(env), t, [&](int c, int) {
      tb->rmsnorm_bwd(dx.p, part ? part + (size_t)c * dim : nullptr, dy.p, x.p, r.p, w.p, dim, acc, c * rb, std::min(rows, (c + 1) * rb));
    });
    if (part)
      for (int c = 0; c < t; c++)
        for (int j = 0; j < dim; j++) dw.p[j] += part[(size_t)c * dim + j];
  }
  struct Glu { int rows, I; long stride, gOff, uOff; };
  Glu gluArgs(const Napi::CallbackInfo& info, size_t o, std::initializer_list<F32*> strided, const F32& m) {
    auto env = info.Env();
    Glu a{(int)inum(info, o, "rows", 0, INT32_MAX), (int)inum(info, o + 1, "I", 1, INT32_MAX), inum(info, o + 2, "stride", 1, INT32_MAX),
          inum(info, o + 3, "gOff", 0, INT32_MAX), inum(info, o + 4, "uOff", 0, INT32_MAX)};
    if (a.stride < a.I) throw Napi::RangeError::New(env, "stride must be at least I");
    need(env, m, (size_t)a.rows * a.I, "m");
    if (a.rows > 0) {
      const size_t last = (size_t)(a.rows - 1) * a.stride + a.I;
      int k = 0;
      for (F32* p : strided) {
        const bool gate = k++ % 2 == 0;  // the list alternates gate-side, up-side operands
        need(env, *p, last + (gate ? a.gOff : a.uOff), gate ? "gate operand" : "up operand");
      }
    }
    return a;
  }
  void SwigluFwd(const Napi::CallbackInfo& info) {
    auto env = info.Env();
    F32 m = f32(info, 0, "m"), g = f32(info, 1, "g"), u = f32(info, 2, "u");
    const Glu a = gluArgs(info, 3, {&g, &u}, m);
    const int rb = rowBlock(a.I), t = (a.rows + rb - 1) / rb;
    const TkTable* tb = t_;
    par(pool(env), t, [&](int c, int) { tb->swiglu_fwd(m.p, g.p + a.gOff, u.p + a.uOff, a.I, a.stride, c * rb, std::min(a.rows, (c + 1) * rb)); });
  }
  void SwigluBwd(const Napi::CallbackInfo& info) {
    auto env = info.Env();
    F32 dg = f32(info, 0, "dg"), du = f32(info, 1, "du"), dm = f32(info, 2, "dm"), g = f32(info, 3, "g"), u = f32(info, 4, "u");
    const Glu a = gluArgs(info, 5, {&g, &u, &dg, &du}, dm);
    const int rb = rowBlock(a.I), t = (a.rows + rb - 1) / rb;
    const TkTable* tb = t_;
    par(pool(env), t, [&](int c, int) {
      tb->swiglu_bwd(dg.p + a.gOff, du.p + a.uOff, dm.p, g.p + a.gOff, u.p + a.uOff, a.I, a.stride, c * rb, std::min(a.rows, (c + 1) * rb));
    });
  }
  Napi::Value Xent(const Napi::CallbackInfo& info) {
    auto env = info.Env();
    F32 dl = f32(info, 0, "dLogits"), x = f32(info, 1, "logits");
    I32 tg = i32(info, 2, "targets");
    const int rows = (int)inum(info, 3, "rows", 0, INT32_MAX), V = (int)inum(info, 4, "V", 1, INT32_MAX);
    const float scale = (float)fnum(info, 5, "scale");
    need(env, dl, (size_t)rows * V, "dLogits"); need(env, x, (size_t)rows * V, "logits");
    if (tg.len < (size_t)rows) throw Napi::RangeError::New(env, "targets is shorter than rows");
    for (int i = 0; i < rows; i++)
      if (tg.p[i] >= V) throw Napi::RangeError::New(env, "target " + std::to_string(tg.p[i]) + " is out of range");
    dpart_.assign(rows, 0.0);
    const int rb = std::max(1, rowBlock(V) / 4), t = (rows + rb - 1) / rb;
    const TkTable* tb = t_;
    double* rl = dpart_.data();
    par(pool(env), t, [&](int c, int) { tb->xent(dl.p, rl, x.p, tg.p, V, scale, c * rb, std::min(rows, (c + 1) * rb)); });
    double s = 0;
    for (int i = 0; i < rows; i++) s += rl[i];
    return Napi::Number::New(env, s);
  }
  void AdamW(const Napi::CallbackInfo& info) {
    auto env = info.Env();
    F32 w = f32(info, 0, "w"), g = f32(info, 1, "g"), m = f32(info, 2, "m"), v = f32(info, 3, "v");
    need(env, g, w.len, "g"); need(env, m, w.len, "m"); need(env, v, w.len, "v");
    const TkAdamW h{(float)fnum(info, 4, "lr"), (float)fnum(info, 5, "beta1"), (float)fnum(info, 6, "beta2"), (float)fnum(info, 7, "eps"),
                    (float)fnum(info, 8, "wd"),  (float)fnum(info, 9, "bc1"),   (float)fnum(info, 10, "bc2"),  (float)fnum(info, 11, "gmul")};
    const long n = (long)w.len, blk = 16384;
    const TkTable* tb = t_;
    par(pool(env), (int)((n + blk - 1) / blk), [&](int c, int) { tb->adamw(w.p, g.p, m.p, v.p, h, c * blk, std::min(n, (c + 1) * blk)); });
  }
  Napi::Value SumSquares(const Napi::CallbackInfo& info) {
    auto env = info.Env();
    F32 g = f32(info, 0, "g");
    const float div = (float)fnum(info, 1, "div");
    const long n = (long)g.len, blk = 16384;
    const int t = (int)((n + blk - 1) / blk);
    dpart_.assign(t, 0.0);
    const TkTable* tb = t_;
    double* part = dpart_.data();
    par(pool(env), t, [&](int c, int) { part[c] = tb->sumsq(g.p, div, c * blk, std::min(n, (c + 1) * blk)); });
    double s = 0;
    for (int c = 0; c < t; c++) s += part[c];
    return Napi::Number::New(env, s);
  }
  // gatherRows / scatterAddRows share their arguments: (out, src, idx, scale|null, rows, dim).
  void Rows(const Napi::CallbackInfo& info, bool scatter) {
    auto env = info.Env();
    F32 out = f32(info, 0, "out"), src = f32(info, 1, "src"), sc = f32orNull(info, 3, "scale");
    I32 idx = i32(info, 2, "idx");
    const int rows = (int)inum(info, 4, "rows", 0, INT32_MAX), dim = (int)inum(info, 5, "dim", 1, INT32_MAX);
    const F32& table = scatter ? out : src;  // the side idx addresses
    need(env, scatter ? src : out, (size_t)rows * dim, scatter ? "src" : "out");
    const long limit = (long)(table.len / dim);
    checkIdx(env, idx, rows, sc.p ? std::min<long>(limit, (long)sc.len) : limit, "idx");
    const TkTable* tb = t_;
    if (!scatter) {
      const int rb = rowBlock(dim), t = (rows + rb - 1) / rb;
      par(pool(env), t, [&](int c, int) { tb->gather_rows(out.p, src.p, idx.p, sc.p, dim, c * rb, std::min(rows, (c + 1) * rb)); });
    } else {
      // Split by columns (a row index may repeat); 16-column multiples keep the vector loop whole.
      const int cb = std::max(16, ((dim + pool(env).size() - 1) / pool(env).size() + 15) / 16 * 16), t = (dim + cb - 1) / cb;
      par(pool(env), t, [&](int c, int) { tb->scatter_add_rows(out.p, src.p, idx.p, sc.p, rows, dim, c * cb, std::min(dim, (c + 1) * cb)); });
    }
  }
  void GatherRows(const Napi::CallbackInfo& info) { Rows(info, false); }
  void ScatterAddRows(const Napi::CallbackInfo& info) { Rows(info, true); }
  void RowDots(const Napi::CallbackInfo& info) {
    auto env = info.Env();
    F32 out = f32(info, 0, "out"), a = f32(info, 1, "a"), b = f32(info, 2, "b");
    I32 idx = i32(info, 3, "idx");
    const int rows = (int)inum(info, 4, "rows", 0, INT32_MAX), dim = (int)inum(info, 5, "dim", 1, INT32_MAX);
    need(env, out, rows, "out"); need(env, a, (size_t)rows * dim, "a");
    checkIdx(env, idx, rows, (long)(b.len / dim), "idx");
    const int rb = rowBlock(dim), t = (rows + rb - 1) / rb;
    const TkTable* tb = t_;
    par(pool(env), t, [&](int c, int) { tb->row_dots(out.p, a.p, b.p, idx.p, dim, c * rb, std::min(rows, (c + 1) * rb)); });
  }
  void Add(const Napi::CallbackInfo& info) {
    auto env = info.Env();
    F32 y = f32(info, 0, "y"), x = f32(info, 1, "x");
    const long n = (long)inum(info, 2, "n", 0, INT64_MAX >> 8), blk = 16384;
    need(env, y, n, "y"); need(env, x, n, "x");
    const TkTable* tb = t_;
    par(pool(env), (int)((n + blk - 1) / blk), [&](int c, int) { tb->add(y.p, x.p, c * blk, std::min(n, (c + 1) * blk)); });
  }
  void SoftmaxRows(const Napi::CallbackInfo& info) {
    auto env = info.Env();
    F32 y = f32(info, 0, "y"), x = f32(info, 1, "x");
    const int rows = (int)inum(info, 2, "rows", 0, INT32_MAX), dim = (int)inum(info, 3, "dim", 1, INT32_MAX);
    need(env, y, (size_t)rows * dim, "y"); need(env, x, (size_t)rows * dim, "x");
    const int rb = rowBlock(dim), t = (rows + rb - 1) / rb;
    const TkTable* tb = t_;
    par(pool(env), t, [&](int c, int) { tb->softmax_rows(y.p, x.p, dim, c * rb, std::min(rows, (c + 1) * rb)); });
  }
  void Rope(const Napi::CallbackInfo& info) {
    auto env = info.Env();
    F32 x = f32(info, 0, "x"), cs = f32(info, 1, "cos"), sn = f32(info, 2, "sin");
    const int rows = (int)inum(info, 3, "rows", 0, INT32_MAX), T = (int)inum(info, 4, "T", 1, INT32_MAX);
    const int nH = (int)inum(info, 5, "nH", 1, INT32_MAX), d = (int)inum(info, 6, "d", 2, INT32_MAX);
    const bool inv = info[7].ToBoolean().Value();
    if (d % 2) throw Napi::RangeError::New(env, "d must be even");
    need(env, x, (size_t)rows * nH * d, "x"); need(env, cs, (size_t)T * (d / 2), "cos"); need(env, sn, (size_t)T * (d / 2), "sin");
    const int rb = rowBlock((long)nH * d), t = (rows + rb - 1) / rb;
    const TkTable* tb = t_;
    par(pool(env), t, [&](int c, int) { tb->rope(x.p, cs.p, sn.p, T, nH, d, inv, c * rb, std::min(rows, (c + 1) * rb)); });
  }

  const TkTable* t_ = nullptr;
  std::string isa_;
  std::unique_ptr<Pool> pool_;
  std::vector<float> bt_, at_, ct_;           // transposed operands; matmulBf16's product before accumulation
  std::vector<uint16_t> xb_, bb_, wp_;        // matmulBf16's bf16 rows of A and B, and B's panels
  const Bf16Gemm* bf16_ = nullptr;
  std::vector<std::vector<float>> scratch_;
  std::vector<float> part_;
  std::vector<double> dpart_;
};

}  // namespace

Napi::Function TrainEngineInit(Napi::Env env) { return TrainEngine::Init(env); }

}  // namespace l4
