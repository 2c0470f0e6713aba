// Node-API surface of the native core (node-addon-api). JS passes typed arrays; this file checks every length
// against the shapes it is given (a wrong call throws a RangeError/TypeError, never reads out of bounds), picks the
// kernel table for the CPU at run time, and maps model files.
//
// Exports: isas() -> ["avx512-amx"?, "avx512"?, "avx2-vnni"?, "avx2"?, "scalar", "avx512-amx-emulated"?] (usable on this CPU, best first)
//          new Engine(threads, isa)  — kernels + a persistent thread pool (see ops.h)
//          mapFile(path) -> MappedFile { size, view(offset, length) -> external ArrayBuffer }
#include <napi.h>

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <mutex>
#include <set>
#include <map>
#include <string>

#include "common.h"
#if defined(__x86_64__)
#include <cpuid.h>
#include <immintrin.h>
#endif
#include "ops.h"
#include "quant.h"

namespace l4 {

#if defined(__x86_64__)
// f32 -> f16 with F16C: round to nearest even, as f32_to_f16, for every input but NaN (the instruction keeps a
// NaN's payload; f32_to_f16 gives the canonical quiet NaN), so NaN lanes take f32_to_f16. Checked against
// f32_to_f16 on all 2^32 inputs. A batched decode step encodes 256 K/V rows (8 sequences x 16 layers x 2): the
// scalar loop took 2.8 µs per 1,024-value row.
__attribute__((target("avx2,f16c"))) static void encode_f16_f16c(const float* x, uint16_t* d, int64_t n) {
  int64_t i = 0;
  for (; i + 8 <= n; i += 8) {
    const __m256 v = _mm256_loadu_ps(x + i);
    _mm_storeu_si128((__m128i*)(d + i), _mm256_cvtps_ph(v, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC));
    const int nan = _mm256_movemask_ps(_mm256_cmp_ps(v, v, _CMP_UNORD_Q));
    if (nan)
      for (int j = 0; j < 8; j++)
        if (nan >> j & 1) d[i + j] = f32_to_f16(x[i + j]);
  }
  for (; i < n; i++) d[i] = f32_to_f16(x[i]);
}
#endif

int type_block_size(int t) {
  t = r8_base(t);
  switch (t) {
    case T_F32: case T_F16: case T_BF16: return 1;
    case T_Q4_0: case T_Q4_1: case T_Q5_0: case T_Q5_1: case T_Q8_0: return 32;
    case T_Q2_K: case T_Q3_K: case T_Q4_K: case T_Q5_K: case T_Q6_K: case T_Q8_K: return 256;
    case T_IQ4_NL: return 32;
    case T_IQ2_XXS: case T_IQ2_XS: case T_IQ2_S: case T_IQ3_XXS: case T_IQ3_S: case T_IQ1_S: case T_IQ1_M: case T_IQ4_XS: return 256;
    default: return 0;
  }
}
int type_block_bytes(int t) {
  t = r8_base(t);
  switch (t) {
    case T_F32: return 4; case T_F16: case T_BF16: return 2;
    case T_Q4_0: return 18; case T_Q4_1: return 20; case T_Q5_0: return 22; case T_Q5_1: return 24; case T_Q8_0: return 34;
    case T_Q2_K: return 84; case T_Q3_K: return 110; case T_Q4_K: return 144; case T_Q5_K: return 176; case T_Q6_K: return 210;
    case T_Q8_K: return 292;
    case T_IQ2_XXS: return 66; case T_IQ2_XS: return 74; case T_IQ2_S: return 82; case T_IQ3_XXS: return 98; case T_IQ3_S: return 110;
    case T_IQ1_S: return 50; case T_IQ1_M: return 56; case T_IQ4_NL: return 18; case T_IQ4_XS: return 136;
    default: return 0;
  }
}

// ---- CPU feature dispatch: never -march=native; each ISA table lives in its own translation unit. ----
static bool has_avx512() {
#if defined(__x86_64__)
  __builtin_cpu_init();
  return __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") && __builtin_cpu_supports("avx512vl") &&
         __builtin_cpu_supports("avx512dq") && __builtin_cpu_supports("avx512vnni") && __builtin_cpu_supports("avx2") && __builtin_cpu_supports("bmi2") &&
         __builtin_cpu_supports("fma");
#else
  return false;
#endif
}
static bool has_avx2() {
#if defined(__x86_64__)
  __builtin_cpu_init();
  return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma") && __builtin_cpu_supports("f16c");
#else
  return false;
#endif
}
// The AVX2 + VNNI set: AVX-VNNI's VEX instruction where the CPU has it, else (AVX-512 CPUs, where it is only ever
// chosen by LLAMA4_NATIVE_ISA, for the conformance suite) the same code through AVX512-VNNI's 256-bit form.
// AVX-VNNI is CPUID.(EAX=7, ECX=1):EAX bit 4, read directly: __builtin_cpu_supports("avxvnni") is a compile error in
// GCC < 11 and older clang, and this file is the baseline addon. (has_avx2 covers the OS's YMM state.) A build
// without the VEX table (a compiler without -mavxvnni) falls through to the EVEX one where the CPU has it.
static const KernelTable* avx2_vnni_table() {
#if defined(__x86_64__)
  if (!has_avx2()) return nullptr;
  unsigned a = 0, b = 0, c = 0, d = 0;
  const bool avxvnni = __get_cpuid_count(7, 1, &a, &b, &c, &d) && (a & (1u << 4));
  if (avxvnni && kernels_avx2_vnni()) return kernels_avx2_vnni();
  if (__builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512vl") && __builtin_cpu_supports("avx512vnni"))
    return kernels_avx2_vnni_evex();
#endif
  return nullptr;
}
static std::vector<std::pair<std::string, const KernelTable*>> usable() {
  std::vector<std::pair<std::string, const KernelTable*>> v;
  if (has_avx512() && kernels_avx512()) {
    if (const KernelTable* t = kernels_avx512_amx()) v.emplace_back("avx512-amx", t);  // checks AMX-INT8 and the OS itself
    v.emplace_back("avx512", kernels_avx512());
  }
  if (const KernelTable* t = avx2_vnni_table()) v.emplace_back("avx2-vnni", t);
  if (has_avx2() && kernels_avx2()) v.emplace_back("avx2", kernels_avx2());
  v.emplace_back("scalar", kernels_scalar());
  // The AMX tiles with their tile operations emulated: for the conformance suite on machines without AMX (never a
  // default: it comes last, and only when asked for).
  const char* emu = std::getenv("LLAMA4_AMX_EMULATION");
  if (emu && std::strcmp(emu, "1") == 0 && has_avx512())
    if (const KernelTable* t = kernels_avx512_amx_emulated()) v.emplace_back("avx512-amx-emulated", t);
  return v;
}

// ---- argument helpers ----
struct Arr { uint8_t* p; size_t bytes; size_t len; napi_typedarray_type type; };

static Arr typed(const Napi::CallbackInfo& info, size_t i, const char* name, napi_typedarray_type want, bool nullable = false) {
  napi_env env = info.Env();
  napi_value v = info[i];
  napi_valuetype vt;
  napi_typeof(env, v, &vt);
  if (nullable && (vt == napi_null || vt == napi_undefined)) return Arr{nullptr, 0, 0, want};
  bool is = false;
  napi_is_typedarray(env, v, &is);
  if (!is) throw Napi::TypeError::New(env, std::string(name) + " must be a typed array");
  Arr a{};
  void* data = nullptr;
  napi_get_typedarray_info(env, v, &a.type, &a.len, &data, nullptr, nullptr);
  if (a.type != want) throw Napi::TypeError::New(env, std::string(name) + " has the wrong typed-array type");
  a.p = (uint8_t*)data;
  const size_t es = want == napi_float32_array || want == napi_int32_array ? 4 : want == napi_uint16_array ? 2 : 1;
  a.bytes = a.len * es;
  return a;
}
static int64_t num(const Napi::CallbackInfo& info, size_t i, const char* name, int64_t lo = 0, int64_t hi = INT32_MAX) {
  if (!info[i].IsNumber()) throw Napi::TypeError::New(info.Env(), std::string(name) + " must be a number");
  const double d = info[i].As<Napi::Number>().DoubleValue();
  if (!(d >= (double)lo && d <= (double)hi) || d != std::floor(d))
    throw Napi::RangeError::New(info.Env(), std::string(name) + " = " + std::to_string(d) + " is out of range");
  return (int64_t)d;
}
static double fnum(const Napi::CallbackInfo& info, size_t i, const char* name) {
  if (!info[i].IsNumber()) throw Napi::TypeError::New(info.Env(), std::string(name) + " must be a number");
  return info[i].As<Napi::Number>().DoubleValue();
}
static void need(const Napi::Env& env, const Arr& a, size_t elems, const char* name) {
  if (a.len < elems)
    throw Napi::RangeError::New(env, std::string(name) + " has " + std::to_string(a.len) + " elements, needs " + std::to_string(elems));
}
static void check_type(const Napi::Env& env, int type, int64_t K) {
  if (type < 0 || type >= T_COUNT || type_block_size(type) == 0) throw Napi::RangeError::New(env, "unsupported weight type id " + std::to_string(type));
  if (K % type_block_size(type) != 0) throw Napi::RangeError::New(env, "row length " + std::to_string(K) + " is not a whole number of blocks");
}

// Live file mappings (base -> size), so repacking can tell a mapped source from a heap one. Guarded: the addon may
// be loaded by worker threads too.
static std::mutex g_mapMutex;
static std::map<uintptr_t, size_t> g_mappings;
static bool in_mapping(const uint8_t* p, size_t n) {
  std::lock_guard<std::mutex> lock(g_mapMutex);
  auto it = g_mappings.upper_bound((uintptr_t)p);
  if (it == g_mappings.begin()) return false;
  --it;
  return (uintptr_t)p >= it->first && (uintptr_t)p + n <= it->first + it->second;
}

// ---- Engine ----
class EngineWrap : public Napi::ObjectWrap<EngineWrap> {
 public:
  static Napi::Function Init(Napi::Env env) {
    return DefineClass(env, "Engine", {
      InstanceMethod<&EngineWrap::Matmul>("matmul"), InstanceMethod<&EngineWrap::MatmulMany>("matmulMany"),
      InstanceMethod<&EngineWrap::GetRows>("getRows"),
      InstanceMethod<&EngineWrap::Dequant>("dequant"), InstanceMethod<&EngineWrap::RmsNorm>("rmsNorm"),
      InstanceMethod<&EngineWrap::LayerNorm>("layerNorm"), InstanceMethod<&EngineWrap::Rope>("rope"),
      InstanceMethod<&EngineWrap::Attention>("attention"), InstanceMethod<&EngineWrap::AttentionMany>("attentionMany"),
      InstanceMethod<&EngineWrap::SiluMul>("siluMul"),
      InstanceMethod<&EngineWrap::Gelu>("gelu"), InstanceMethod<&EngineWrap::Add>("add"),
      InstanceMethod<&EngineWrap::AddBias>("addBias"), InstanceMethod<&EngineWrap::Dispose>("dispose"),
      InstanceMethod<&EngineWrap::GatherRows>("gatherRows"), InstanceMethod<&EngineWrap::ScatterAddRows>("scatterAddRows"),
      InstanceMethod<&EngineWrap::EncodeF16>("encodeF16"),
      InstanceMethod<&EngineWrap::StreamRead>("streamRead"), InstanceMethod<&EngineWrap::HugePages>("hugePages"),
      InstanceMethod<&EngineWrap::CanRepack>("canRepack"), InstanceMethod<&EngineWrap::RepackR8>("repackR8"),
      InstanceMethod<&EngineWrap::CanQuantize>("canQuantize"), InstanceMethod<&EngineWrap::Quantize>("quantize"),
      InstanceMethod<&EngineWrap::QuantizeAsync>("quantizeAsync"),
      InstanceMethod<&EngineWrap::PackBf16>("packBf16"), InstanceMethod<&EngineWrap::MatmulBf16>("matmulBf16"),
      InstanceMethod<&EngineWrap::PackHalf>("packHalf"), InstanceMethod<&EngineWrap::MatmulHalf>("matmulHalf"),
      InstanceAccessor<&EngineWrap::Threads>("threads"), InstanceAccessor<&EngineWrap::Isa>("isa"),
      InstanceAccessor<&EngineWrap::Bf16GemmName>("bf16Gemm"), InstanceAccessor<&EngineWrap::HalfGemm>("halfGemm"),
    });
  }
  explicit EngineWrap(const Napi::CallbackInfo& info) : Napi::ObjectWrap<EngineWrap>(info) {
    const int threads = (int)num(info, 0, "threads", 1, 1024);
    const std::string isa = info[1].IsString() ? info[1].As<Napi::String>().Utf8Value() : "";
    const KernelTable* kt = nullptr;
    std::string names;
    for (auto& [n, t] : usable()) {
      names += (names.empty() ? "" : ", ") + n;
      if (!kt && (isa.empty() || isa == n)) kt = t;
    }
    if (!kt) throw Napi::RangeError::New(info.Env(), "instruction set '" + isa + "' is not usable on this CPU (usable: " + names + ")");
    engine_ = std::make_unique<Engine>(threads, kt);
  }

 private:
  Engine& e(const Napi::Env& env) {
    if (!engine_) throw Napi::Error::New(env, "native engine was disposed");
    if (busy_) throw Napi::Error::New(env, "native engine is busy with a quantizeAsync call");
    return *engine_;
  }
  Napi::Value Threads(const Napi::CallbackInfo& info) { return Napi::Number::New(info.Env(), e(info.Env()).threads()); }
  Napi::Value Isa(const Napi::CallbackInfo& info) { return Napi::String::New(info.Env(), e(info.Env()).kt()->isa); }
  // An engine running quantizeAsync is released when that call settles.
  void Dispose(const Napi::CallbackInfo&) {
    if (busy_) disposeWhenIdle_ = true;
    else engine_.reset();
  }

  // ---- weight quantization for the GGUF writer (quant.h) ----
  Napi::Value CanQuantize(const Napi::CallbackInfo& info) {
    return Napi::Boolean::New(info.Env(), can_quantize((int)num(info, 0, "type", 0, T_COUNT - 1)));
  }
  struct QuantArgs { uint8_t* out; const float* x; int type; int64_t rows; int K; };
  QuantArgs quantArgs(const Napi::CallbackInfo& info) {
    auto env = info.Env();
    Arr out = typed(info, 0, "out", napi_uint8_array), x = typed(info, 1, "x", napi_float32_array);
    const int type = (int)num(info, 2, "type", 0, T_COUNT - 1);
    const int64_t rows = num(info, 3, "rows", 0, INT64_C(1) << 40), K = num(info, 4, "K", 1);
    if (!can_quantize(type)) throw Napi::RangeError::New(env, "no native quantizer for type id " + std::to_string(type));
    check_type(env, type, K);
    need(env, x, (size_t)(rows * K), "x");
    if (out.bytes < (size_t)rows * row_bytes(type, K)) throw Napi::RangeError::New(env, "out is too short");
    return {out.p, (const float*)x.p, type, rows, (int)K};
  }
  // quantize(out: Uint8Array, x: Float32Array, type, rows, K): x[rows, K] -> rows of `type`, on the pool.
  void Quantize(const Napi::CallbackInfo& info) {
    const QuantArgs a = quantArgs(info);
    e(info.Env()).quantize(a.out, a.x, a.type, a.rows, a.K);
  }
  // quantizeAsync(out, x, type, rows, K) -> Promise<void>: the same work off the JavaScript thread (the writer
  // produces the next tensor meanwhile). out and x are held until it settles; other calls throw until then.
  class QuantizeWorker : public Napi::AsyncWorker {
   public:
    QuantizeWorker(Napi::Env env, EngineWrap* self, const Napi::CallbackInfo& info, QuantArgs a)
        : Napi::AsyncWorker(env), self_(self), a_(a), deferred_(Napi::Promise::Deferred::New(env)) {
      selfRef_ = Napi::Persistent(info.This().As<Napi::Object>());
      outRef_ = Napi::Persistent(info[0].As<Napi::Object>());
      xRef_ = Napi::Persistent(info[1].As<Napi::Object>());
    }
    Napi::Promise promise() { return deferred_.Promise(); }
    void Execute() override { self_->engine_->quantize(a_.out, a_.x, a_.type, a_.rows, a_.K); }
    void OnOK() override { settle(); deferred_.Resolve(Env().Undefined()); }
    void OnError(const Napi::Error& err) override { settle(); deferred_.Reject(err.Value()); }

   private:
    void settle() {
      self_->busy_ = false;
      if (self_->disposeWhenIdle_) self_->engine_.reset();
    }
    EngineWrap* self_;
    QuantArgs a_;
    Napi::Promise::Deferred deferred_;
    Napi::ObjectReference selfRef_, outRef_, xRef_;
  };
  Napi::Value QuantizeAsync(const Napi::CallbackInfo& info) {
    const QuantArgs a = quantArgs(info);
    e(info.Env());
    auto* w = new QuantizeWorker(info.Env(), this, info, a);
    busy_ = true;
    w->Queue();
    return w->promise();
  }
  // Whether this kernel set has the exact f16/bf16 GEMM (packHalf / matmulHalf).
  Napi::Value HalfGemm(const Napi::CallbackInfo& info) { return Napi::Boolean::New(info.Env(), e(info.Env()).hasHalfGemm()); }
  // The BF16-products kernel ("amx-bf16", "avx512-bf16") or "" when this engine has none.
  Napi::Value Bf16GemmName(const Napi::CallbackInfo& info) {
    const Bf16Gemm* g = e(info.Env()).bf16Gemm();
    return Napi::String::New(info.Env(), g ? g->name : "");
  }
  // packBf16(src: bf16 bytes of [experts, N, K]) -> ArrayBuffer of experts × bf16p_bytes(N, K) (gemm-bf16.h)
  Napi::Value PackBf16(const Napi::CallbackInfo& info) {
    auto env = info.Env();
    if (!e(env).bf16Gemm()) throw Napi::Error::New(env, "this engine has no BF16-products kernel");
    return packed(info, "bf16", [](int64_t N, int64_t K) { return bf16p_bytes(N, K); },
                  [&](uint8_t* dst, const uint8_t* src, int E, int N, int K) { e(env).packBf16(dst, src, E, N, K); });
  }
  // packHalf(src: f16 or bf16 bytes of [experts, N, K]) -> ArrayBuffer of experts × halfp_bytes(N, K) (kern-half-gemm.h)
  Napi::Value PackHalf(const Napi::CallbackInfo& info) {
    auto env = info.Env();
    if (!e(env).hasHalfGemm()) throw Napi::Error::New(env, "this kernel set has no f16/bf16 GEMM");
    return packed(info, "f16/bf16", [](int64_t N, int64_t K) { return Engine::halfp_bytes(N, K); },
                  [&](uint8_t* dst, const uint8_t* src, int E, int N, int K) { e(env).packHalf(dst, src, E, N, K); });
  }
  // A packed copy of a 2-byte [experts, N, K] weight in 2 MiB-aligned memory (huge pages where allowed).
  template <class Size, class Pack>
  Napi::Value packed(const Napi::CallbackInfo& info, const char* what, Size size, Pack pack) {
    auto env = info.Env();
    Arr src = typed(info, 0, "src", napi_uint8_array);
    const int64_t E = num(info, 1, "experts", 1), N = num(info, 2, "N", 1), K = num(info, 3, "K", 1);
    if (src.bytes != (size_t)(E * N * K * 2)) throw Napi::RangeError::New(env, "src has " + std::to_string(src.bytes) + " bytes, not a " + what + " [" + std::to_string(E) + ", " + std::to_string(N) + ", " + std::to_string(K) + "]");
    const size_t n = (size_t)E * size(N, K);
    void* dst = nullptr;
    if (posix_memalign(&dst, size_t(1) << 21, n) != 0) throw Napi::Error::New(env, "cannot allocate " + std::to_string(n) + " bytes to pack a weight");
#if defined(__linux__) && defined(MADV_HUGEPAGE)
    if (n >= (size_t(1) << 21)) madvise(dst, (n + (size_t(1) << 21) - 1) & ~((size_t(1) << 21) - 1), MADV_HUGEPAGE);
#endif
    pack((uint8_t*)dst, src.p, (int)E, (int)N, (int)K);
#if defined(__linux__)
    // A mapped source is not read again by matmuls: drop its pages wholly inside the tensor (as repackR8 does), so
    // the weights are resident once. getRows/toF32 fault them back in from the file if ever asked.
    if (in_mapping(src.p, src.bytes)) {
      const uintptr_t pg = (uintptr_t)sysconf(_SC_PAGESIZE);
      const uintptr_t lo = ((uintptr_t)src.p + pg - 1) & ~(pg - 1), hi = ((uintptr_t)src.p + src.bytes) & ~(pg - 1);
      if (hi > lo) madvise((void*)lo, hi - lo, MADV_DONTNEED);
    }
#endif
    napi_value ab;
    if (napi_create_external_arraybuffer(env, dst, n, [](napi_env, void* d, void*) { free(d); }, nullptr, &ab) != napi_ok) {
      free(dst);
      throw Napi::Error::New(env, "cannot create an external ArrayBuffer of " + std::to_string(n) + " bytes");
    }
    return Napi::Value(env, ab);
  }
  // matmulHalf(out, x, wPacked, N, K, T, expert, bf16): out[T, N] = x · W[expert]ᵀ for a packHalf weight
  void MatmulHalf(const Napi::CallbackInfo& info) {
    auto env = info.Env();
    Arr out = typed(info, 0, "out", napi_float32_array), x = typed(info, 1, "x", napi_float32_array), w = typed(info, 2, "w", napi_uint8_array);
    const int64_t N = num(info, 3, "N", 1), K = num(info, 4, "K", 1), T = num(info, 5, "T", 0), ex = num(info, 6, "expert");
    if (!e(env).hasHalfGemm()) throw Napi::Error::New(env, "this kernel set has no f16/bf16 GEMM");
    if (info.Length() < 8 || !info[7].IsBoolean()) throw Napi::TypeError::New(env, "bf16 must be a boolean");
    const size_t eb = Engine::halfp_bytes(N, K);
    if (w.bytes < (size_t)(ex + 1) * eb) throw Napi::RangeError::New(env, "packed weight bytes too short for [expert " + std::to_string(ex) + "] of N × K");
    need(env, x, T * K, "x"); need(env, out, T * N, "out");
    e(env).matmulHalf((float*)out.p, (const float*)x.p, w.p + (size_t)ex * eb, (int)N, (int)K, (int)T, info[7].As<Napi::Boolean>().Value());
  }
  // matmulBf16(out, x, wPacked, N, K, T, expert): out[T, N] = bf16(x) · W[expert]ᵀ for a packBf16 weight
  void MatmulBf16(const Napi::CallbackInfo& info) {
    auto env = info.Env();
    if (!e(env).bf16Gemm()) throw Napi::Error::New(env, "this engine has no BF16-products kernel");
    Arr out = typed(info, 0, "out", napi_float32_array), x = typed(info, 1, "x", napi_float32_array), w = typed(info, 2, "w", napi_uint8_array);
    const int64_t N = num(info, 3, "N", 1), K = num(info, 4, "K", 1), T = num(info, 5, "T", 0), ex = num(info, 6, "expert");
    const size_t eb = bf16p_bytes(N, K);
    if (w.bytes < (size_t)(ex + 1) * eb) throw Napi::RangeError::New(env, "packed weight bytes too short for [expert " + std::to_string(ex) + "] of N × K");
    need(env, x, T * K, "x"); need(env, out, T * N, "out");
    e(env).matmulBf16((float*)out.p, (const float*)x.p, w.p + (size_t)ex * eb, (int)N, (int)K, (int)T);
  }

  // matmul(out, x, w, type, N, K, T, expert)
  void Matmul(const Napi::CallbackInfo& info) {
    const MatmulJob j = matmulJob(info, 0);
    if (j.T > 0) e(info.Env()).matmul(j.out, j.x, j.w, j.type, j.N, j.K, j.T);
  }
  // matmulMany(out, x, w, type, N, K, T, expert, out, x, …): several matmuls in one pool run
  void MatmulMany(const Napi::CallbackInfo& info) {
    if (info.Length() % 8 != 0 || info.Length() == 0) throw Napi::RangeError::New(info.Env(), "matmulMany takes groups of 8 arguments");
    std::vector<MatmulJob> jobs;
    for (size_t i = 0; i < info.Length(); i += 8) jobs.push_back(matmulJob(info, i));
    for (size_t a = 0; a < jobs.size(); a++)  // an output may not be another job's input (jobs run concurrently)
      for (size_t b = 0; b < jobs.size(); b++) {
        const char *o0 = (const char*)jobs[a].out, *o1 = o0 + sizeof(float) * (size_t)jobs[a].T * jobs[a].N;
        const char *x0 = (const char*)jobs[b].x, *x1 = x0 + sizeof(float) * (size_t)jobs[b].T * jobs[b].K;
        if (a != b && o0 < x1 && x0 < o1 && jobs[a].T && jobs[b].T) throw Napi::RangeError::New(info.Env(), "matmulMany: an output overlaps another product's input");
      }
    e(info.Env()).matmulMany(jobs.data(), (int)jobs.size());
  }
  MatmulJob matmulJob(const Napi::CallbackInfo& info, size_t i) {
    auto env = info.Env();
    Arr out = typed(info, i, "out", napi_float32_array), x = typed(info, i + 1, "x", napi_float32_array), w = typed(info, i + 2, "w", napi_uint8_array);
    const int type = (int)num(info, i + 3, "type", 0, T_COUNT - 1);
    const int64_t N = num(info, i + 4, "N", 1), K = num(info, i + 5, "K", 1), T = num(info, i + 6, "T", 0), ex = num(info, i + 7, "expert");
    check_type(env, type, K);
    if (!e(env).kt()->rows[type]) throw Napi::RangeError::New(env, "weight type id " + std::to_string(type) + " has no kernel in the " + e(env).kt()->isa + " set");
    check_groups(env, type, N);
    const size_t rb = row_bytes(type, K);
    if (w.bytes < (size_t)(ex + 1) * N * rb) throw Napi::RangeError::New(env, "weight bytes too short for [expert " + std::to_string(ex) + "] of N × K");
    need(env, x, T * K, "x"); need(env, out, T * N, "out");
    return MatmulJob{(float*)out.p, (const float*)x.p, w.p + (size_t)ex * N * rb, type, (int)N, (int)K, (int)T};
  }
  // A repacked matrix is whole groups (common.h group_rows): kernels and row reads take a group at a time.
  static void check_groups(Napi::Env env, int type, int64_t rows) {
    if (is_repacked(type) && rows % group_rows(type))
      throw Napi::RangeError::New(env, "a repacked weight has whole groups of rows (8; R16: 16), got " + std::to_string(rows));
  }
  // getRows(out, w, type, rows, K, ids: Int32Array)
  void GetRows(const Napi::CallbackInfo& info) {
    auto env = info.Env();
    Arr out = typed(info, 0, "out", napi_float32_array), w = typed(info, 1, "w", napi_uint8_array);
    const int type = (int)num(info, 2, "type", 0, T_COUNT - 1);
    const int64_t rows = num(info, 3, "rows", 0, INT64_C(1) << 40), K = num(info, 4, "K", 1);
    Arr ids = typed(info, 5, "ids", napi_int32_array);
    check_type(env, type, K);
    check_groups(env, type, rows);
    if (w.bytes < (size_t)rows * row_bytes(type, K)) throw Napi::RangeError::New(env, "weight bytes too short");
    need(env, out, ids.len * K, "out");
    const int32_t* id = (const int32_t*)ids.p;
    for (size_t i = 0; i < ids.len; i++)
      if (id[i] < 0 || id[i] >= rows) throw Napi::RangeError::New(env, "row " + std::to_string(id[i]) + " out of range " + std::to_string(rows));
    e(env).getRows((float*)out.p, w.p, type, (int)K, id, (int)ids.len);
  }
  // dequant(out, w, type, rows, K)
  void Dequant(const Napi::CallbackInfo& info) {
    auto env = info.Env();
    Arr out = typed(info, 0, "out", napi_float32_array), w = typed(info, 1, "w", napi_uint8_array);
    const int type = (int)num(info, 2, "type", 0, T_COUNT - 1);
    const int64_t rows = num(info, 3, "rows", 0, INT64_C(1) << 40), K = num(info, 4, "K", 1);
    check_type(env, type, K);
    check_groups(env, type, rows);
    if (w.bytes < (size_t)rows * row_bytes(type, K)) throw Napi::RangeError::New(env, "weight bytes too short");
    need(env, out, rows * K, "out");
    e(env).dequant((float*)out.p, w.p, type, rows, (int)K);
  }
  // rmsNorm(out, x, weight|null, rows, dim, eps)
  void RmsNorm(const Napi::CallbackInfo& info) {
    auto env = info.Env();
    Arr out = typed(info, 0, "out", napi_float32_array), x = typed(info, 1, "x", napi_float32_array);
    Arr wt = typed(info, 2, "weight", napi_float32_array, true);
    const int64_t rows = num(info, 3, "rows"), dim = num(info, 4, "dim", 1);
    need(env, x, rows * dim, "x"); need(env, out, rows * dim, "out");
    if (wt.p) need(env, wt, dim, "weight");
    e(env).rmsNorm((float*)out.p, (const float*)x.p, (const float*)wt.p, (int)rows, (int)dim, (float)fnum(info, 5, "eps"));
  }
  void LayerNorm(const Napi::CallbackInfo& info) {
    auto env = info.Env();
    Arr out = typed(info, 0, "out", napi_float32_array), x = typed(info, 1, "x", napi_float32_array);
    Arr wt = typed(info, 2, "weight", napi_float32_array), b = typed(info, 3, "bias", napi_float32_array);
    const int64_t rows = num(info, 4, "rows"), dim = num(info, 5, "dim", 1);
    need(env, x, rows * dim, "x"); need(env, out, rows * dim, "out"); need(env, wt, dim, "weight"); need(env, b, dim, "bias");
    e(env).layerNorm((float*)out.p, (const float*)x.p, (const float*)wt.p, (const float*)b.p, (int)rows, (int)dim, (float)fnum(info, 6, "eps"));
  }
  // rope(x, T, nHeads, headDim, cos, sin)
  void Rope(const Napi::CallbackInfo& info) {
    auto env = info.Env();
    Arr x = typed(info, 0, "x", napi_float32_array);
    const int64_t T = num(info, 1, "T"), H = num(info, 2, "nHeads", 1), d = num(info, 3, "headDim", 2);
    Arr c = typed(info, 4, "cos", napi_float32_array), s = typed(info, 5, "sin", napi_float32_array);
    if (d % 2) throw Napi::RangeError::New(env, "headDim must be even");
    need(env, x, T * H * d, "x"); need(env, c, T * d / 2, "cos"); need(env, s, T * d / 2, "sin");
    e(env).rope((float*)x.p, (int)T, (int)H, (int)d, (const float*)c.p, (const float*)s.p);
  }
  // attention(out, q, k, v, nHeads, nKvHeads, headDim, T, S, qPos0, kPos0, scale, causal, chunkSize, kvType)
  // kvType (GGML id, default f32): f32 k/v are Float32Arrays, f16 Uint16Arrays of half bits, q8_0 Uint8Arrays of
  // BlockQ8_0 (headDim % 32 == 0).
  void Attention(const Napi::CallbackInfo& info) {
    const AttnJob j = attnJob(info, 0, info.Length() > 14 && !info[14].IsUndefined());
    e(info.Env()).attention(j.out, j.q, j.k, j.v, j.s);
  }
  // attentionMany(out, q, k, v, nHeads, nKvHeads, headDim, T, S, qPos0, kPos0, scale, causal, chunkSize, kvType, out, …)
  void AttentionMany(const Napi::CallbackInfo& info) {
    auto env = info.Env();
    if (info.Length() % 15 != 0 || info.Length() == 0) throw Napi::RangeError::New(env, "attentionMany takes groups of 15 arguments");
    std::vector<AttnJob> jobs;
    for (size_t i = 0; i < info.Length(); i += 15) jobs.push_back(attnJob(info, i, true));
    auto span = [](const AttnJob& j, const float* p) { return std::make_pair((const char*)p, (const char*)(p + (size_t)j.s.T * j.s.nHeads * j.s.headDim)); };
    for (size_t a = 0; a < jobs.size(); a++)  // jobs run concurrently: an output may not overlap another job's q or output
      for (size_t b = 0; b < jobs.size(); b++) {
        if (a == b) continue;
        const auto o = span(jobs[a], jobs[a].out), q = span(jobs[b], jobs[b].q), o2 = span(jobs[b], jobs[b].out);
        if ((o.first < q.second && q.first < o.second) || (o.first < o2.second && o2.first < o.second))
          throw Napi::RangeError::New(env, "attentionMany: an output overlaps another job's q or output");
      }
    e(env).attentionMany(jobs.data(), (int)jobs.size());
  }
  AttnJob attnJob(const Napi::CallbackInfo& info, size_t i, bool hasKvType) {
    auto env = info.Env();
    Arr out = typed(info, i, "out", napi_float32_array), q = typed(info, i + 1, "q", napi_float32_array);
    const int kvType = hasKvType ? (int)num(info, i + 14, "kvType", 0, T_COUNT - 1) : T_F32;
    if (kvType != T_F32 && kvType != T_F16 && kvType != T_Q8_0) throw Napi::RangeError::New(env, "unsupported kvType id " + std::to_string(kvType));
    const napi_typedarray_type kvArr = kvType == T_F32 ? napi_float32_array : kvType == T_F16 ? napi_uint16_array : napi_uint8_array;
    Arr k = typed(info, i + 2, "k", kvArr), v = typed(info, i + 3, "v", kvArr);
    AttnShape s{};
    s.kvType = kvType;
    s.nHeads = (int)num(info, i + 4, "nHeads", 1); s.nKvHeads = (int)num(info, i + 5, "nKvHeads", 1); s.headDim = (int)num(info, i + 6, "headDim", 1);
    s.T = (int)num(info, i + 7, "T"); s.S = (int)num(info, i + 8, "S");
    s.qPos0 = num(info, i + 9, "qPos0", 0, INT64_C(1) << 50); s.kPos0 = num(info, i + 10, "kPos0", 0, INT64_C(1) << 50);
    s.scale = (float)fnum(info, i + 11, "scale");
    s.causal = info[i + 12].ToBoolean().Value();
    s.chunkSize = num(info, i + 13, "chunkSize", 0, INT64_C(1) << 50);
    if (s.nHeads % s.nKvHeads) throw Napi::RangeError::New(env, "nHeads must be a multiple of nKvHeads");
    if (kvType == T_Q8_0 && s.headDim % QK) throw Napi::RangeError::New(env, "q8_0 keys/values need headDim a multiple of 32");
    const int64_t qn = (int64_t)s.T * s.nHeads * s.headDim, kvals = (int64_t)s.S * s.nKvHeads * s.headDim;
    const int64_t kn = kvType == T_Q8_0 ? kvals / QK * (int64_t)sizeof(BlockQ8_0) : kvals;  // typed-array elements
    need(env, q, qn, "q"); need(env, out, qn, "out"); need(env, k, kn, "k"); need(env, v, kn, "v");
    return AttnJob{(float*)out.p, (const float*)q.p, k.p, v.p, s};
  }
  void SiluMul(const Napi::CallbackInfo& info) {
    auto env = info.Env();
    Arr out = typed(info, 0, "out", napi_float32_array), g = typed(info, 1, "gate", napi_float32_array), u = typed(info, 2, "up", napi_float32_array);
    const int64_t n = num(info, 3, "n", 0, INT64_C(1) << 40);
    need(env, out, n, "out"); need(env, g, n, "gate"); need(env, u, n, "up");
    e(env).siluMul((float*)out.p, (const float*)g.p, (const float*)u.p, n);
  }
  void Gelu(const Napi::CallbackInfo& info) {
    Arr x = typed(info, 0, "x", napi_float32_array);
    const int64_t n = num(info, 1, "n", 0, INT64_C(1) << 40);
    need(info.Env(), x, n, "x");
    e(info.Env()).gelu((float*)x.p, n);
  }
  void Add(const Napi::CallbackInfo& info) {
    Arr x = typed(info, 0, "x", napi_float32_array), y = typed(info, 1, "y", napi_float32_array);
    const int64_t n = num(info, 2, "n", 0, INT64_C(1) << 40);
    need(info.Env(), x, n, "x"); need(info.Env(), y, n, "y");
    e(info.Env()).add((float*)x.p, (const float*)y.p, n);
  }
  void AddBias(const Napi::CallbackInfo& info) {
    Arr x = typed(info, 0, "x", napi_float32_array), b = typed(info, 1, "bias", napi_float32_array);
    const int64_t rows = num(info, 2, "rows"), dim = num(info, 3, "dim", 1);
    need(info.Env(), x, rows * dim, "x"); need(info.Env(), b, dim, "bias");
    e(info.Env()).addBias((float*)x.p, (const float*)b.p, (int)rows, (int)dim);
  }

  // gatherRows(out, src, idx, scale|null, rows, dim): out[j] = src[idx[j]] · scale[idx[j]] (one product per value, as
  // src/tensor/row-ops.ts computes it). The MoE layer's row moves: a batched decode step ran them in JS at ~2.5 ns
  // per value.
  void GatherRows(const Napi::CallbackInfo& info) {
    auto env = info.Env();
    Arr out = typed(info, 0, "out", napi_float32_array), src = typed(info, 1, "src", napi_float32_array);
    Arr idx = typed(info, 2, "idx", napi_int32_array), sc = typed(info, 3, "scale", napi_float32_array, true);
    const int64_t rows = num(info, 4, "rows"), dim = num(info, 5, "dim", 1);
    need(env, out, rows * dim, "out"); need(env, idx, rows, "idx");
    const int32_t* id = (const int32_t*)idx.p;
    const int64_t srcRows = (int64_t)src.len / dim;
    for (int64_t j = 0; j < rows; j++)
      if (id[j] < 0 || id[j] >= srcRows || (sc.p && (size_t)id[j] >= sc.len))
        throw Napi::RangeError::New(env, "gatherRows: row " + std::to_string(id[j]) + " out of range");
    const float* x = (const float*)src.p;
    float* o = (float*)out.p;
    for (int64_t j = 0; j < rows; j++) {
      const float* r = x + (size_t)id[j] * dim;
      float* d = o + (size_t)j * dim;
      if (sc.p) { const float f = ((const float*)sc.p)[id[j]]; for (int64_t c = 0; c < dim; c++) d[c] = r[c] * f; }
      else std::memcpy(d, r, sizeof(float) * (size_t)dim);
    }
  }
  // scatterAddRows(out, src, idx, rows, dim): out[idx[j]] += src[j], in order of j (an index may repeat).
  void ScatterAddRows(const Napi::CallbackInfo& info) {
    auto env = info.Env();
    Arr out = typed(info, 0, "out", napi_float32_array), src = typed(info, 1, "src", napi_float32_array);
    Arr idx = typed(info, 2, "idx", napi_int32_array);
    const int64_t rows = num(info, 3, "rows"), dim = num(info, 4, "dim", 1);
    need(env, src, rows * dim, "src"); need(env, idx, rows, "idx");
    const int32_t* id = (const int32_t*)idx.p;
    const int64_t outRows = (int64_t)out.len / dim;
    for (int64_t j = 0; j < rows; j++)
      if (id[j] < 0 || id[j] >= outRows) throw Napi::RangeError::New(env, "scatterAddRows: row " + std::to_string(id[j]) + " out of range");
    const float* x = (const float*)src.p;
    float* o = (float*)out.p;
    for (int64_t j = 0; j < rows; j++) {
      float* d = o + (size_t)id[j] * dim;
      const float* r = x + (size_t)j * dim;
      for (int64_t c = 0; c < dim; c++) d[c] += r[c];
    }
  }
  // encodeF16(src, so, n, dst, o): dst[o + i] = f16 bits of src[so + i], round to nearest even — the same bits as
  // src/tensor/kv.ts's encodeF16 for every input (NaN: 0x7e00 with the sign), so an f16 KV cache stores the same rows
  // whichever backend appended them. Decode appends every layer's new K/V rows through it.
  void EncodeF16(const Napi::CallbackInfo& info) {
    auto env = info.Env();
    Arr src = typed(info, 0, "src", napi_float32_array);
    const int64_t so = num(info, 1, "so", 0, INT64_C(1) << 40), n = num(info, 2, "n", 0, INT64_C(1) << 40);
    Arr dst = typed(info, 3, "dst", napi_uint16_array);
    const int64_t o = num(info, 4, "o", 0, INT64_C(1) << 40);
    need(env, src, (size_t)(so + n), "src"); need(env, dst, (size_t)(o + n), "dst");
    const float* x = (const float*)src.p + so;
    uint16_t* d = (uint16_t*)dst.p + o;
#if defined(__x86_64__)
    static const bool f16c = __builtin_cpu_supports("avx2") && __builtin_cpu_supports("f16c");
    if (f16c) { encode_f16_f16c(x, d, n); return; }
#endif
    for (int64_t i = 0; i < n; i++) d[i] = f32_to_f16(x[i]);
  }
  // streamRead(bytes) -> checksum (as a double): reads every byte on all threads (bandwidth probe)
  Napi::Value StreamRead(const Napi::CallbackInfo& info) {
    Arr b = typed(info, 0, "bytes", napi_uint8_array);
    return Napi::Number::New(info.Env(), (double)(e(info.Env()).streamRead(b.p, b.bytes) & ((1ull << 52) - 1)));
  }

  // canRepack(type, rows?) -> the id of the repacked layout this kernel set reads best for the GGML type: R16 when
  // rows (per expert) is a multiple of 16 and the set has R16 kernels, else R8 when it has R8 kernels, else -1
  Napi::Value CanRepack(const Napi::CallbackInfo& info) {
    const int type = (int)num(info, 0, "type", 0, T_COUNT - 1), r8 = r8_of(type), r16 = r16_of(type);
    const int64_t rows = info.Length() > 1 && !info[1].IsUndefined() ? num(info, 1, "rows", 1) : 0;
    const KernelTable* kt = e(info.Env()).kt();
    if (r16 >= 0 && rows > 0 && rows % 16 == 0 && kt->rows[r16]) return Napi::Number::New(info.Env(), r16);
    return Napi::Number::New(info.Env(), r8 >= 0 && kt->rows[r8] ? r8 : -1);
  }
  // repackR8(src: Uint8Array, type, rows, K, to?) -> ArrayBuffer in the R8 layout (or `to`, an id canRepack gave:
  // R16 needs rows % 16 == 0) (common.h), from 2 MiB-aligned memory
  // advised for huge pages (decode streams it once per token). When src lies in a mapped model file, its pages are
  // dropped from this process afterwards (they stay in the page cache): the repacked copy replaces them, so resident
  // memory holds the weights once.
  Napi::Value RepackR8(const Napi::CallbackInfo& info) {
    auto env = info.Env();
    Arr src = typed(info, 0, "src", napi_uint8_array);
    const int type = (int)num(info, 1, "type", 0, T_COUNT - 1);
    const int64_t rows = num(info, 2, "rows", 8, INT64_C(1) << 40), K = num(info, 3, "K", 32);
    if (r8_of(type) < 0 && r16_of(type) < 0) throw Napi::RangeError::New(env, "only q4_0, q8_0, q4_K, q5_K, q6_K and IQ4_XS weights can be repacked");
    check_type(env, type, K);
    const int to = info.Length() > 4 && !info[4].IsUndefined() ? (int)num(info, 4, "to", 0, T_COUNT - 1) : r8_of(type) >= 0 ? r8_of(type) : r16_of(type);
    if (to != r8_of(type) && to != r16_of(type)) throw Napi::RangeError::New(env, "no repacked layout " + std::to_string(to) + " for type " + std::to_string(type));
    if (!e(env).kt()->rows[to]) throw Napi::RangeError::New(env, "this kernel set has no kernels for repacked layout " + std::to_string(to) + " (canRepack gives the one it reads)");
    const int g = group_rows(to);
    if (rows % g) throw Napi::RangeError::New(env, "repacking needs a multiple of " + std::to_string(g) + " rows, got " + std::to_string(rows));
    const size_t n = (size_t)rows * row_bytes(type, K);
    if (src.bytes != n) throw Napi::RangeError::New(env, "src has " + std::to_string(src.bytes) + " bytes, [" + std::to_string(rows) + ", " + std::to_string(K) + "] needs " + std::to_string(n));
    void* dst = nullptr;
    if (posix_memalign(&dst, size_t(1) << 21, n) != 0) throw Napi::Error::New(env, "cannot allocate " + std::to_string(n) + " bytes to repack a weight");
#if defined(__linux__) && defined(MADV_HUGEPAGE)
    if (n >= (size_t(1) << 21)) madvise(dst, (n + (size_t(1) << 21) - 1) & ~((size_t(1) << 21) - 1), MADV_HUGEPAGE);
#endif
    // Fault pages in with one call per range (MADV_POPULATE_*, Linux 5.14+; ignored where unknown): page faults
    // taken one 4 KiB page at a time, by two threads contending for the process's memory map, made loading a 1 GB
    // model take seconds. A mapped source is repacked 8 MiB at a time and each piece's pages are dropped right after
    // (only pages wholly inside the tensor: its neighbours may be in use), so the weights are resident once plus
    // one piece, never twice.
    const uintptr_t pg = (uintptr_t)sysconf(_SC_PAGESIZE);
    const bool mapped = in_mapping(src.p, n);
#if defined(__linux__)
    madvise(dst, (n + pg - 1) & ~(pg - 1), 23 /* MADV_POPULATE_WRITE */);
#endif
    const size_t rb = row_bytes(type, K);
    const int64_t piece = mapped ? std::max<int64_t>(g, ((int64_t)((size_t(8) << 20) / rb) / g) * g) : rows;
    const uintptr_t first = ((uintptr_t)src.p + pg - 1) & ~(pg - 1), end = ((uintptr_t)src.p + n) & ~(pg - 1);
    uintptr_t dropped = first;  // pages below this were dropped already
    for (int64_t r0 = 0; r0 < rows; r0 += piece) {
      const int64_t nr = std::min<int64_t>(piece, rows - r0);
      const uint8_t* s0 = src.p + (size_t)r0 * rb;
      if (mapped) {
        const uintptr_t lo = std::max(first, (uintptr_t)s0 & ~(pg - 1)), hi = std::min(end, ((uintptr_t)s0 + nr * rb + pg - 1) & ~(pg - 1));
        if (hi > lo) madvise((void*)lo, hi - lo, 22 /* MADV_POPULATE_READ */);
      }
      e(env).repackR8((uint8_t*)dst + (size_t)r0 * rb, s0, type, nr, (int)K, to);
      if (mapped) {
        const uintptr_t upto = std::min(end, ((uintptr_t)s0 + nr * rb) & ~(pg - 1));
        if (upto > dropped) { madvise((void*)dropped, upto - dropped, MADV_DONTNEED); dropped = upto; }
      }
    }
    napi_value ab;
    if (napi_create_external_arraybuffer(env, dst, n, [](napi_env, void* d, void*) { free(d); }, nullptr, &ab) != napi_ok) {
      free(dst);
      throw Napi::Error::New(env, "cannot create an external ArrayBuffer of " + std::to_string(n) + " bytes");
    }
    return Napi::Value(env, ab);
  }

  // hugePages(bytes) -> bool: asks the kernel to back the 2 MiB-aligned interior of a weight buffer with huge
  // pages (MADV_HUGEPAGE, then MADV_COLLAPSE for pages already present). Decode streams every weight byte once per
  // token; with 4 KiB pages the hardware prefetchers stop at every page boundary and the TLB misses constantly.
  // Advisory: returns false (and changes nothing) where the kernel declines.
  Napi::Value HugePages(const Napi::CallbackInfo& info) {
    Arr b = typed(info, 0, "bytes", napi_uint8_array);
    const uintptr_t huge = uintptr_t(1) << 21;
    const uintptr_t lo = ((uintptr_t)b.p + huge - 1) & ~(huge - 1), hi = ((uintptr_t)b.p + b.bytes) & ~(huge - 1);
    bool ok = false;
#if defined(__linux__) && defined(MADV_HUGEPAGE)
    if (hi > lo) {
      ok = madvise((void*)lo, hi - lo, MADV_HUGEPAGE) == 0;
#ifndef MADV_COLLAPSE
#define MADV_COLLAPSE 25
#endif
      ok = madvise((void*)lo, hi - lo, MADV_COLLAPSE) == 0 && ok;
    }
#endif
    return Napi::Boolean::New(info.Env(), ok);
  }

  std::unique_ptr<Engine> engine_;
  bool busy_ = false, disposeWhenIdle_ = false;  // a quantizeAsync call is running; dispose() came meanwhile
};

// ---- memory-mapped files ----
// One mapping per file; JS gets external ArrayBuffers for ranges of it (Node 20 caps one view at 4 GiB, so big
// models are addressed tensor by tensor). Each view holds a reference to the mapping, which is unmapped when the
// file object and every view have been collected. Pages are MAP_PRIVATE and writable (copy-on-write): a stray
// write from JS changes a private page instead of crashing the process, and the file is never modified.
struct Mapping {
  void* base = nullptr;
  size_t size = 0;
  std::set<size_t> liveViews;  // V8 refuses two external backing stores at the same address
  ~Mapping() {
    if (!base) return;
    { std::lock_guard<std::mutex> lock(g_mapMutex); g_mappings.erase((uintptr_t)base); }
    munmap(base, size);
  }
};
struct ViewHint { std::shared_ptr<Mapping> m; size_t offset; };
static constexpr size_t kMaxView = size_t(1) << 32;

class MappedFile : public Napi::ObjectWrap<MappedFile> {
 public:
  static Napi::Function Init(Napi::Env env) {
    return DefineClass(env, "MappedFile", {InstanceMethod<&MappedFile::View>("view"), InstanceMethod<&MappedFile::Close>("close"),
                                           InstanceAccessor<&MappedFile::Size>("size")});
  }
  explicit MappedFile(const Napi::CallbackInfo& info) : Napi::ObjectWrap<MappedFile>(info) {
    auto env = info.Env();
    if (!info[0].IsString()) throw Napi::TypeError::New(env, "path must be a string");
    const std::string path = info[0].As<Napi::String>().Utf8Value();
    const int fd = open(path.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd < 0) throw Napi::Error::New(env, path + ": cannot open: " + std::strerror(errno));
    struct stat st{};
    if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) { close(fd); throw Napi::Error::New(env, path + ": not a regular file"); }
    m_ = std::make_shared<Mapping>();
    m_->size = (size_t)st.st_size;
    if (m_->size > 0) {
      void* p = mmap(nullptr, m_->size, PROT_READ | PROT_WRITE, MAP_PRIVATE, fd, 0);
      if (p == MAP_FAILED) { const int err = errno; close(fd); throw Napi::Error::New(env, path + ": mmap failed: " + std::strerror(err)); }
      m_->base = p;
      { std::lock_guard<std::mutex> lock(g_mapMutex); g_mappings[(uintptr_t)p] = m_->size; }
      // Start reading ahead when the file comfortably fits in RAM; larger models page in on demand.
      const long pages = sysconf(_SC_PHYS_PAGES), psz = sysconf(_SC_PAGESIZE);
      if (pages > 0 && psz > 0 && m_->size < (size_t)pages * (size_t)psz / 2) madvise(p, m_->size, MADV_WILLNEED);
    }
    close(fd);
  }

 private:
  Napi::Value Size(const Napi::CallbackInfo& info) { return Napi::Number::New(info.Env(), m_ ? (double)m_->size : 0.0); }
  // close(): drops this object's hold on the mapping. The file is unmapped once every view is gone too: the caller
  // detaches the views it handed out (detach() below), so that happens now rather than at garbage collection.
  void Close(const Napi::CallbackInfo&) { m_.reset(); }
  // view(offset, length) -> ArrayBuffer over file bytes [offset, offset + length)
  Napi::Value View(const Napi::CallbackInfo& info) {
    auto env = info.Env();
    const int64_t off = num(info, 0, "offset", 0, INT64_C(1) << 52), len = num(info, 1, "length", 0, INT64_C(1) << 52);
    if (!m_) throw Napi::Error::New(env, "the mapped file was closed");
    if ((size_t)off + (size_t)len > m_->size)
      throw Napi::RangeError::New(env, "range [" + std::to_string(off) + ", +" + std::to_string(len) + ") is past the end of the file (" + std::to_string(m_->size) + " bytes)");
    if ((size_t)len > kMaxView) throw Napi::RangeError::New(env, "a view of " + std::to_string(len) + " bytes exceeds Node's 4 GiB limit");
    if (len == 0) return Napi::ArrayBuffer::New(env, 0);
    if (m_->liveViews.count((size_t)off)) throw Napi::Error::New(env, "a view at offset " + std::to_string(off) + " is already alive; reuse it");
    auto* hint = new ViewHint{m_, (size_t)off};
    napi_value ab;
    napi_status st = napi_create_external_arraybuffer(
        env, (uint8_t*)m_->base + off, (size_t)len,
        [](napi_env, void*, void* h) { auto* vh = (ViewHint*)h; vh->m->liveViews.erase(vh->offset); delete vh; }, hint, &ab);
    if (st != napi_ok) { delete hint; throw Napi::Error::New(env, "cannot create an external ArrayBuffer of " + std::to_string(len) + " bytes"); }
    m_->liveViews.insert((size_t)off);
    return Napi::Value(env, ab);
  }
  std::shared_ptr<Mapping> m_;
};

static Napi::Value Isas(const Napi::CallbackInfo& info) {
  auto arr = Napi::Array::New(info.Env());
  uint32_t i = 0;
  for (auto& [n, t] : usable()) arr.Set(i++, Napi::String::New(info.Env(), n));
  return arr;
}
// detach(arrayBuffer) -> bool: detaches an external ArrayBuffer this addon made (a view of a mapped file, a repacked
// weight): JavaScript sees it empty from now on, and its memory is released as soon as V8 lets go of it, instead of
// at some later garbage collection. Used by dispose(); false when the buffer cannot be detached.
static Napi::Value Detach(const Napi::CallbackInfo& info) {
  auto env = info.Env();
  if (!info[0].IsArrayBuffer()) throw Napi::TypeError::New(env, "detach expects an ArrayBuffer");
  bool already = false;
  if (napi_is_detached_arraybuffer(env, info[0], &already) == napi_ok && already) return Napi::Boolean::New(env, true);
  return Napi::Boolean::New(env, napi_detach_arraybuffer(env, info[0]) == napi_ok);
}
static Napi::Value HwThreads(const Napi::CallbackInfo& info) {
  return Napi::Number::New(info.Env(), (double)std::thread::hardware_concurrency());
}

Napi::Function TrainEngineInit(Napi::Env env);  // train-ops.cc

static Napi::Object InitAll(Napi::Env env, Napi::Object exports) {
  exports.Set("Engine", EngineWrap::Init(env));
  exports.Set("MappedFile", MappedFile::Init(env));
  exports.Set("isas", Napi::Function::New(env, Isas));
  exports.Set("hardwareThreads", Napi::Function::New(env, HwThreads));
  exports.Set("detach", Napi::Function::New(env, Detach));
  exports.Set("TrainEngine", TrainEngineInit(env));
  return exports;
}

}  // namespace l4

static Napi::Object Init(Napi::Env env, Napi::Object exports) { return l4::InitAll(env, exports); }
NODE_API_MODULE(llama4_native, Init)
