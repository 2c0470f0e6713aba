// Node-API surface of the training kernels: new TrainEngine(threads, isa?) with
//   matmul(layout, C, A, B, m, n, k, accumulate)   layout 0 = NT (C = A·Bᵀ, B [n, k]), 1 = NN (B [k, n]),
//                                                   2 = TN (C = Aᵀ·B, A [k, m], B [k, n]); C [m, n]
//   attnFwd(q, k, v, P, O, B, T, nh, nkv, d, scale, chunk)            P [B, nh, T, T], O [B·T, nh, d] written
//   attnBwd(q, k, v, P, dO, dq, dk, dv, B, T, nh, nkv, d, scale, chunk) dq/dk/dv accumulated
// Every length is checked against the shapes (a wrong call throws a RangeError, never reads out of bounds). The
// kernel set is picked at run time by CPU features (train-kern.h is compiled once per ISA); work is split over the
// persistent thread pool (pool.h) in row × column blocks, attention in (batch, KV head) pairs.
#include <napi.h>

#include <algorithm>
#include <cmath>
#include <memory>
#include <string>
#include <vector>

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
  const TkTable* t; const float* A; long sai, sap; const float* B; long ldb; float* C; long ldc; int m, n, k; bool acc; int colBlocks;
};
constexpr int kRowBlock = 64, kColBlock = 256;

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
      InstanceAccessor<&TrainEngine::Threads>("threads"), InstanceAccessor<&TrainEngine::Isa>("isa"),
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
    pool_ = std::make_unique<Pool>(threads);
  }

 private:
  Pool& pool(const Napi::Env& env) {
    if (!pool_) throw Napi::Error::New(env, "TrainEngine is disposed");
    return *pool_;
  }
  Napi::Value Threads(const Napi::CallbackInfo& info) { return Napi::Number::New(info.Env(), pool_ ? pool_->size() : 0); }
  Napi::Value Isa(const Napi::CallbackInfo& info) { return Napi::String::New(info.Env(), isa_); }
  void Dispose(const Napi::CallbackInfo&) { pool_.reset(); }

  void Matmul(const Napi::CallbackInfo& info) {
    auto env = info.Env();
    const int layout = (int)inum(info, 0, "layout", 0, 2);
    F32 C = f32(info, 1, "C"), A = f32(info, 2, "A"), B = f32(info, 3, "B");
    const int m = (int)inum(info, 4, "m", 0, INT32_MAX), n = (int)inum(info, 5, "n", 0, INT32_MAX), k = (int)inum(info, 6, "k", 0, INT32_MAX);
    const bool acc = info[7].ToBoolean().Value();
    need(env, C, (size_t)m * n, "C"); need(env, A, (size_t)m * k, "A"); need(env, B, (size_t)n * k, "B");
    if (m == 0 || n == 0) return;
    GemmJob j{t_, A.p, 0, 0, B.p, n, C.p, n, m, n, k, acc, (n + kColBlock - 1) / kColBlock};
    if (layout == 0) {
      // NT: B [n, k] → [k, n] once so the kernel streams contiguous columns.
      bt_.resize((size_t)n * k);
      for (int r = 0; r < n; r++) for (int c = 0; c < k; c++) bt_[(size_t)c * n + r] = B.p[(size_t)r * k + c];
      j.B = bt_.data(); j.sai = k; j.sap = 1;
    } else if (layout == 1) { j.sai = k; j.sap = 1; }
    else { j.sai = 1; j.sap = m; }
    if (k == 0) {
      if (!acc) std::fill(C.p, C.p + (size_t)m * n, 0.0f);
      return;
    }
    const int chunks = ((m + kRowBlock - 1) / kRowBlock) * j.colBlocks;
    pool(env).run([](void* ctx, int c, int) {
      auto* g = (GemmJob*)ctx;
      const int rb = c / g->colBlocks, cb = c % g->colBlocks;
      const int i0 = rb * kRowBlock, i1 = std::min(g->m, i0 + kRowBlock), j0 = cb * kColBlock, j1 = std::min(g->n, j0 + kColBlock);
      g->t->gemm_block(g->A, g->sai, g->sap, g->B, g->ldb, g->C, g->ldc, g->k, i0, i1, j0, j1, g->acc);
    }, &j, chunks);
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
    pool(info.Env()).run([](void* ctx, int c, int) {
      auto* a = (AttnJob*)ctx;
      a->t->attn_fwd_head(a->q, a->k, a->v, a->P, a->O, a->B, a->T, a->nh, a->nkv, a->d, c / a->nh, c % a->nh, a->scale, a->chunk);
    }, &j, j.B * j.nh);
  }
  void AttnBwd(const Napi::CallbackInfo& info) {
    AttnJob j = attnArgs(info, true);
    auto& p = pool(info.Env());
    scratch_.assign(p.size(), std::vector<float>(j.T));
    j.scratch = &scratch_;
    p.run([](void* ctx, int c, int tid) {
      auto* a = (AttnJob*)ctx;
      a->t->attn_bwd_group(a->q, a->k, a->v, a->P, a->dO, a->dq, a->dk, a->dv, a->T, a->nh, a->nkv, a->d, c / a->nkv, c % a->nkv,
                           a->scale, a->chunk, (*a->scratch)[tid].data());
    }, &j, j.B * j.nkv);
  }

  const TkTable* t_ = nullptr;
  std::string isa_;
  std::unique_ptr<Pool> pool_;
  std::vector<float> bt_;
  std::vector<std::vector<float>> scratch_;
};

}  // namespace

Napi::Function TrainEngineInit(Napi::Env env) { return TrainEngine::Init(env); }

}  // namespace l4
