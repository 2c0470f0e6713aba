// AMX-BF16 GEMM (TDPBF16PS, Sapphire Rapids and later) for bf16-products weights (gemm-bf16.h). Built with
// -mamx-tile -mamx-bf16 in its own library (binding.gyp kern_amx) and used only when the CPU has AMX-BF16 and the
// kernel grants this process the tile state (arch_prctl ARCH_REQ_XCOMP_PERM; Linux 5.16+). LLAMA4_AMX=0 turns it off.
//
// NOT RUN ON THE DEVELOPMENT MACHINE (AMD EPYC, no AMX): written against the Intel SDM and checked only for compiling.
// The conformance suite runs it wherever the CPU has AMX (src/kernels/backend.case.test.ts names the kernel it ran).
//
// Block: 32 tokens × 2 panels (32 columns) = four 16×16 f32 C tiles (tmm0-3); per 32 values of k it loads two A
// tiles (16 tokens × 32 bf16, straight from the activations) and two B tiles (16 groups of the packed layout = one
// VNNI B tile, 64-byte stride) and issues 4 TDPBF16PS. Token tails are copied into a zero-padded 32-row buffer; a K
// that is not a multiple of 32 (the 588-wide patch embedding) is computed by the AVX-512 BF16 kernel instead, a
// choice made by K alone, so results never depend on the token count.
#include "gemm-bf16.h"

#include <algorithm>
#include <cstdlib>
#include <cstring>
#include <vector>
#if defined(__x86_64__)
#include <cpuid.h>
#include <immintrin.h>
#endif
#if defined(__linux__)
#include <sys/syscall.h>
#include <unistd.h>
#endif

namespace l4 {
#if defined(__x86_64__) && defined(__linux__)
namespace {

struct alignas(64) TileConfig {
  uint8_t palette, startRow, reserved[14];
  uint16_t colsb[16];
  uint8_t rows[16];
};

const Bf16Gemm* fallback = nullptr;  // the AVX-512 BF16 kernel (every AMX CPU has AVX-512 BF16)

void block(const uint16_t* xb, int Kp, int t0, int t1, const uint16_t* wp, int p0, int p1, int N, float* out) {
  if (Kp % 32) { fallback->block(xb, Kp, t0, t1, wp, p0, p1, N, out); return; }
  TileConfig cfg{};
  cfg.palette = 1;
  for (int i = 0; i < 8; i++) { cfg.colsb[i] = 64; cfg.rows[i] = 16; }
  _tile_loadconfig(&cfg);
  thread_local std::vector<uint16_t> pad;  // 32 token rows, zero past the valid ones
  alignas(64) float c[16 * 16];
  const size_t pstride = (size_t)Kp * 16, astride = (size_t)Kp * 2;
  for (int p = p0; p < p1; p += 2) {
    const bool two = p + 1 < p1;
    const uint16_t* b0 = wp + (size_t)p * pstride;
    const uint16_t* b1 = b0 + pstride;
    for (int t = t0; t < t1; t += 32) {
      const int rows = std::min(32, t1 - t);
      const uint16_t* a = xb + (size_t)t * Kp;
      if (rows < 32) {
        pad.assign((size_t)32 * Kp, 0);
        std::memcpy(pad.data(), a, sizeof(uint16_t) * (size_t)rows * Kp);
        a = pad.data();
      }
      _tile_zero(0); _tile_zero(1); _tile_zero(2); _tile_zero(3);
      for (int k = 0; k < Kp; k += 32) {
        _tile_loadd(4, a + k, astride);
        _tile_loadd(5, a + (size_t)16 * Kp + k, astride);
        _tile_loadd(6, b0 + (size_t)k * 16, 64);
        _tile_dpbf16ps(0, 4, 6);
        _tile_dpbf16ps(2, 5, 6);
        if (two) {
          _tile_loadd(7, b1 + (size_t)k * 16, 64);
          _tile_dpbf16ps(1, 4, 7);
          _tile_dpbf16ps(3, 5, 7);
        }
      }
      // C tile (h, q): tokens t + 16h.., panel p + q
      auto put = [&](int h, int q) {
        const int col = 16 * (p + q), cols = std::min(16, N - col), r0 = 16 * h;
        for (int r = 0; r < 16 && r0 + r < rows; r++) std::memcpy(out + (size_t)(t + r0 + r) * N + col, c + 16 * r, sizeof(float) * cols);
      };
      _tile_stored(0, c, 64); put(0, 0);
      _tile_stored(2, c, 64); put(1, 0);
      if (two) { _tile_stored(1, c, 64); put(0, 1); _tile_stored(3, c, 64); put(1, 1); }
    }
  }
  _tile_release();
}

}  // namespace

const Bf16Gemm* gemm_bf16_amx() {
  static const Bf16Gemm* g = []() -> const Bf16Gemm* {
    const char* env = std::getenv("LLAMA4_AMX");
    if (env && std::strcmp(env, "0") == 0) return nullptr;
    // AMX-BF16 and AMX-TILE: CPUID.(EAX=7, ECX=0):EDX bits 22 and 24 (read directly, as for AVX512_BF16)
    unsigned a = 0, b = 0, c = 0, d = 0;
    if (!__get_cpuid_count(7, 0, &a, &b, &c, &d) || !(d & (1u << 22)) || !(d & (1u << 24))) return nullptr;
    fallback = gemm_bf16_avx512();
    if (!fallback) return nullptr;
    constexpr long kArchReqXcompPerm = 0x1023, kXfeatureXtiledata = 18;
    if (syscall(SYS_arch_prctl, kArchReqXcompPerm, kXfeatureXtiledata) != 0) return nullptr;  // the OS keeps tiles off
    static const Bf16Gemm amx{"amx-bf16", block, fallback->cvt, 96};
    return &amx;
  }();
  return g;
}
#else
const Bf16Gemm* gemm_bf16_amx() { return nullptr; }
#endif
}  // namespace l4
