// AMX-INT8 prefill tiles (TDPBSUD / TDPBSSD, Sapphire Rapids and later) for q4_0 weights repacked into 16-row groups
// (T_Q4_0_R16) and q8_0 in 8-row groups (T_Q8_0_R8): the "avx512-amx" kernel set = the AVX-512 table with these tiles. Built twice (binding.gyp):
//  * kern_amx_int8: -mamx-tile -mamx-int8, the real instructions; offered where the CPU has AMX-INT8, the OS grants
//    this process the tile state (arch_prctl ARCH_REQ_XCOMP_PERM; Linux 5.16+), and a self-test on first use gives
//    the AVX-512 tile's bits (else the set is not offered). LLAMA4_AMX=0 turns it off.
//  * kern_amx_int8_emu (L4_AMX_EMULATE): the same kernel with the four tile operations done in scalar code, offered
//    as "avx512-amx-emulated" (never a default) when LLAMA4_AMX_EMULATION=1, so the conformance suite checks the
//    kernel's layouts, indexing and float steps on machines without AMX.
// NOT RUN ON AMX HARDWARE: the development machines (AMD EPYC) have none. The tile semantics are the Intel SDM's
// (TDPBSUD: C[m][n] += Σ_k Σ_i sext(A[m][4k + i]) · zext(B[k][4n + i])); the emulation implements exactly that.
//
// Why tiles: the AVX-512 q4_0 kernel (kern-avx512-batch.h) spends about 12 instructions per (16 rows, 32-element
// block, token), 8 of them VPDPBUSD. One TDPBSUD computes a block's integer sums for 16 tokens × 16 rows at once;
// what is left per (block, token) is the float step. Per (16 rows, block, 16 tokens): 1 TDPBSUD, 3 tile loads and
// stores, the B tile's nibble unpacking (shared by the tokens), and 16 × 5 vector instructions.
//
// Layouts. B (8 rows × 64 bytes, the VNNI layout: row k, bytes 4n..4n+3 = output row n's weights for elements
// 4k..4k+3) is exactly what the R16 layout stores chunk-major (common.h): vector c (c < 4: low nibbles, elements
// 4c..; c >= 4: high nibbles, elements 16 + 4(c − 4)..) unpacked to bytes 0..15. A (16 tokens × 32 bytes) is each
// token's 32 activation codes of the block, read in place from the ActQ8 rows (stride actStride). C (16 × 16
// int32) = Σ q·v per (token, row).
//
// Bits: per (row, token, block) the exact integer Σ(q − 8)·v = C − 8·Σv, then acc += (dw·d_y)·float(that): the
// AVX-512 kernels' float step (b16_q4_pass), in the same block order, so a token's result is the same whichever
// kernel, batch or token count computed it (batch invariance). Tokens past the last multiple of 16 go to the
// AVX-512 tile.
#include "common.h"

#include <cstdio>
#include <cstdlib>
#include <cstring>
#if defined(__x86_64__)
#include <cpuid.h>
#include <immintrin.h>
#endif
#if defined(__linux__)
#include <sys/syscall.h>
#include <unistd.h>
#endif

#if !defined(L4_AMX_EMULATE)
#define L4_AMX_NS amx_int8
#define L4_AMX_TABLE kernels_avx512_amx
#else
#define L4_AMX_NS amx_int8_emu
#define L4_AMX_TABLE kernels_avx512_amx_emulated
#endif

#if defined(__x86_64__) && defined(__linux__) && \
    !(!defined(L4_AMX_EMULATE) && (defined(L4_NO_FLAG_amx_int8) || defined(L4_NO_FLAG_amx_tile)))
namespace l4 {
namespace L4_AMX_NS {

// ---- the four tile operations: tmm0 = C (16 × 64 B), tmm1 = A (16 × 32 B), tmm2 = B (8 × 64 B) ----
#if !defined(L4_AMX_EMULATE)
struct alignas(64) TileConfig {
  uint8_t palette, startRow, reserved[14];
  uint16_t colsb[16];
  uint8_t rows[16];
};
static inline void tiles_begin() {
  TileConfig cfg{};
  cfg.palette = 1;
  cfg.rows[0] = 16; cfg.colsb[0] = 64;
  cfg.rows[1] = 16; cfg.colsb[1] = 32;
  cfg.rows[2] = 8; cfg.colsb[2] = 64;
  _tile_loadconfig(&cfg);
}
static inline void tiles_end() { _tile_release(); }
// C = A·B for one block: B unsigned (q4_0 codes 0..15, TDPBSUD) or signed (q8_0 codes, TDPBSSD).
template <bool SIGNED_B>
static inline void block_sums(const uint8_t* a, size_t astride, const uint8_t* b, int32_t* c) {
  _tile_zero(0);
  _tile_loadd(1, a, astride);
  _tile_loadd(2, b, 64);
  if constexpr (SIGNED_B) _tile_dpbssd(0, 1, 2);
  else _tile_dpbsud(0, 1, 2);
  _tile_stored(0, c, 64);
}
#else
static inline void tiles_begin() {}
static inline void tiles_end() {}
template <bool SIGNED_B>
static inline void block_sums(const uint8_t* a, size_t astride, const uint8_t* b, int32_t* c) {
  for (int m = 0; m < 16; m++) {
    const int8_t* am = (const int8_t*)(a + (size_t)m * astride);
    for (int n = 0; n < 16; n++) {
      int32_t s = 0;
      for (int k = 0; k < 8; k++)
        for (int i = 0; i < 4; i++) {
          const uint8_t bv = b[64 * k + 4 * n + i];
          s += (int32_t)am[4 * k + i] * (SIGNED_B ? (int32_t)(int8_t)bv : (int32_t)bv);
        }
      c[16 * m + n] = s;
    }
  }
}
#endif

const KernelTable* base = nullptr;  // the AVX-512 table: its tiles take the token tails and lone 8-row groups

// The shared loop: rows in 16-row blocks, tokens in 16-token tiles, a row block's weight blocks in order. Fmt::load
// writes the B tile of weight block i of rows [r, r + 16) and returns their 16 scales; Fmt::kSigned picks TDPBSSD
// (signed codes) or TDPBSUD, and Fmt::kOffset (q4_0's 8) comes off each sum as kOffset·Σv. Per (row, token) the
// float step is the AVX-512 kernels': acc += (dw·d_y)·float(sum).
template <class Fmt>
static void amx_tiles(const Fmt& f, int nb, int rows16, const uint8_t* act, size_t actStride, int full, float* out, size_t outStride) {
  alignas(64) uint8_t B[8 * 64];
  alignas(64) int32_t C[16 * 16];
  tiles_begin();
  for (int r = 0; r < rows16; r += 16)
    for (int t0 = 0; t0 < full; t0 += 16) {
      const ActQ8* y[16];
      for (int m = 0; m < 16; m++) y[m] = (const ActQ8*)(act + (size_t)(t0 + m) * actStride);
      __m512 acc[16];
      for (int m = 0; m < 16; m++) acc[m] = _mm512_setzero_ps();
      for (int i = 0; i < nb; i++) {
        const __m512 dw = f.load(r, i, B);
        block_sums<Fmt::kSigned>((const uint8_t*)y[0][i].qs, actStride, B, C);
        for (int m = 0; m < 16; m++) {
          __m512i s = _mm512_load_si512(C + 16 * m);
          if constexpr (Fmt::kOffset != 0) s = _mm512_sub_epi32(s, _mm512_set1_epi32(Fmt::kOffset * y[m][i].isum));
          acc[m] = _mm512_fmadd_ps(_mm512_mul_ps(dw, _mm512_set1_ps(y[m][i].d)), _mm512_cvtepi32_ps(s), acc[m]);
        }
      }
      for (int m = 0; m < 16; m++) _mm512_storeu_ps(out + (size_t)(t0 + m) * outStride + r, acc[m]);
    }
  tiles_end();
}

// q4_0 in 16-row groups (T_Q4_0_R16): per block, 16 f16 scales then the codes chunk-major, low and high nibbles
// (common.h); unpacked to bytes they are the B tile as stored.
struct Q4R16 {
  const uint8_t* w;
  size_t rowBytes;
  static constexpr bool kSigned = false;
  static constexpr int kOffset = 8;
  __m512 load(int r, int i, uint8_t* B) const {
    const uint8_t* blk = w + (size_t)r * rowBytes + (size_t)i * kQ40R16Block;
    const __m512i m4 = _mm512_set1_epi8(15);
    for (int c = 0; c < 4; c++) {
      const __m512i W = _mm512_loadu_si512(blk + kQ40R16Codes + 64 * c);
      _mm512_store_si512(B + 64 * c, _mm512_and_si512(W, m4));
      _mm512_store_si512(B + 64 * (c + 4), _mm512_and_si512(_mm512_srli_epi16(W, 4), m4));
    }
    return _mm512_cvtph_ps(_mm256_loadu_si256((const __m256i*)blk));
  }
};

// Rows 0..7 of the 8 × 8 int32 matrix in r[0..7] (r[j] = row j) transposed in place: r[k] = column k.
static inline void transpose8x8(__m256i r[8]) {
  __m256i t[8], u[8];
  for (int j = 0; j < 4; j++) {
    t[2 * j] = _mm256_unpacklo_epi32(r[2 * j], r[2 * j + 1]);
    t[2 * j + 1] = _mm256_unpackhi_epi32(r[2 * j], r[2 * j + 1]);
  }
  for (int j = 0; j < 2; j++) {
    u[4 * j] = _mm256_unpacklo_epi64(t[4 * j], t[4 * j + 2]);
    u[4 * j + 1] = _mm256_unpackhi_epi64(t[4 * j], t[4 * j + 2]);
    u[4 * j + 2] = _mm256_unpacklo_epi64(t[4 * j + 1], t[4 * j + 3]);
    u[4 * j + 3] = _mm256_unpackhi_epi64(t[4 * j + 1], t[4 * j + 3]);
  }
  for (int j = 0; j < 4; j++) {
    r[j] = _mm256_permute2x128_si256(u[j], u[4 + j], 0x20);
    r[j + 4] = _mm256_permute2x128_si256(u[j], u[4 + j], 0x31);
  }
}

// q8_0 in 8-row groups (T_Q8_0_R8: per block, 8 f16 scales then the 8 rows' 32 codes each), two groups per 16 rows:
// their codes transposed to the VNNI layout (row k, bytes 4n..4n+3 = row n's codes 4k..4k+3), signed, so TDPBSSD
// gives Σ q·v directly (the batch kernel's b16_q8_pass computes the same integer from biased codes).
struct Q8R8 {
  const uint8_t* w;
  size_t rowBytes;
  static constexpr bool kSigned = true;
  static constexpr int kOffset = 0;
  __m512 load(int r, int i, uint8_t* B) const {
    constexpr size_t GB = 8 * 34;
    const uint8_t *a = w + (size_t)r * rowBytes + (size_t)i * GB, *b = a + 8 * rowBytes;
    __m256i Ra[8], Rb[8];
    for (int j = 0; j < 8; j++) {
      Ra[j] = _mm256_loadu_si256((const __m256i*)(a + 16 + 32 * j));
      Rb[j] = _mm256_loadu_si256((const __m256i*)(b + 16 + 32 * j));
    }
    transpose8x8(Ra);
    transpose8x8(Rb);
    for (int k = 0; k < 8; k++) {
      _mm256_store_si256((__m256i*)(B + 64 * k), Ra[k]);
      _mm256_store_si256((__m256i*)(B + 64 * k + 32), Rb[k]);
    }
    return _mm512_cvtph_ps(_mm256_inserti128_si256(_mm256_castsi128_si256(_mm_loadu_si128((const __m128i*)a)),
                                                   _mm_loadu_si128((const __m128i*)b), 1));
  }
};

// The KernelTable tile entries: out[t·outStride + r] for rows [0, nrows) and ntok tokens of ActQ8 rows. Tokens past
// the last multiple of 16, and q8_0's lone 8-row group (nrows % 16 == 8), go to the AVX-512 tile (the same bits).
template <int TYPE>
static void amx_tile(int K, const uint8_t* w, size_t rowBytes, int nrows, const uint8_t* act, size_t actStride, int ntok, float* out,
                     size_t outStride) {
  const int nb = K / 32, full = ntok / 16 * 16, rows16 = nrows / 16 * 16;
  const TileFn avx512 = base->tile[TYPE];
  if (full < ntok)
    avx512(K, w, rowBytes, rows16, act + (size_t)full * actStride, actStride, ntok - full, out + (size_t)full * outStride, outStride);
  if (rows16 < nrows) avx512(K, w + (size_t)rows16 * rowBytes, rowBytes, nrows - rows16, act, actStride, ntok, out + rows16, outStride);
  if (full == 0 || rows16 == 0) return;
  if constexpr (TYPE == T_Q4_0_R16) amx_tiles(Q4R16{w, rowBytes}, nb, rows16, act, actStride, full, out, outStride);
  else amx_tiles(Q8R8{w, rowBytes}, nb, rows16, act, actStride, full, out, outStride);
}
static void tile_q4_0_r16(int K, const uint8_t* w, size_t rowBytes, int nrows, const uint8_t* act, size_t actStride, int ntok,
                          float* out, size_t outStride) {
  amx_tile<T_Q4_0_R16>(K, w, rowBytes, nrows, act, actStride, ntok, out, outStride);
}
static void tile_q8_0_r8(int K, const uint8_t* w, size_t rowBytes, int nrows, const uint8_t* act, size_t actStride, int ntok,
                         float* out, size_t outStride) {
  amx_tile<T_Q8_0_R8>(K, w, rowBytes, nrows, act, actStride, ntok, out, outStride);
}

// Self-test of an AMX tile against the AVX-512 one, bit for bit: 32 rows (q8_0: 40, two 16-row pairs and a lone
// group) × 256 columns of random codes with f16 scales in [0.5, 1), 40 tokens (two 16-token passes and a tail).
static bool selfTest(int type, TileFn amx, int groupRows, size_t blockBytes) {
  const int N = type == T_Q8_0_R8 ? 40 : 32, K = 256, T = 40, nb = K / 32;
  const size_t rb = (size_t)nb * (type == T_Q8_0_R8 ? 34 : 18);
  uint8_t* wq = (uint8_t*)std::aligned_alloc(64, (size_t)N * rb);
  ActQ8* x = (ActQ8*)std::aligned_alloc(64, sizeof(ActQ8) * (size_t)T * nb);
  float* o1 = (float*)std::aligned_alloc(64, sizeof(float) * (size_t)T * N);
  float* o2 = (float*)std::aligned_alloc(64, sizeof(float) * (size_t)T * N);
  uint32_t s = 12345;
  auto rnd = [&] { s = s * 1103515245u + 12345u; return s >> 8; };
  for (size_t i = 0; i < (size_t)N * rb; i++) wq[i] = (uint8_t)rnd();
  for (int g = 0; g < N / groupRows; g++)  // each block starts with its group's f16 scales (random bytes could be NaN)
    for (int i = 0; i < nb; i++)
      for (int r = 0; r < groupRows; r++)
        ((uint16_t*)(wq + (size_t)g * groupRows * rb + (size_t)i * blockBytes))[r] = (uint16_t)(0x3800 + (rnd() & 0x3ff));
  for (int i = 0; i < T * nb; i++) {
    int sum = 0;
    for (int j = 0; j < 32; j++) { x[i].qs[j] = (int8_t)((int)(rnd() % 255) - 127); sum += x[i].qs[j]; }
    x[i].d = 0.001f * (float)(1 + rnd() % 1000);
    x[i].isum = sum;
  }
  amx(K, wq, rb, N, (const uint8_t*)x, sizeof(ActQ8) * nb, T, o1, N);
  base->tile[type](K, wq, rb, N, (const uint8_t*)x, sizeof(ActQ8) * nb, T, o2, N);
  const bool same = std::memcmp(o1, o2, sizeof(float) * (size_t)T * N) == 0;
  std::free(wq); std::free(x); std::free(o1); std::free(o2);
  return same;
}

// The AVX-512 table with the AMX tiles, or null when the CPU, the OS or the self-test says no.
static const KernelTable* make() {
  base = kernels_avx512();
  if (!base || !base->tile[T_Q4_0_R16] || !base->tile[T_Q8_0_R8]) return nullptr;
#if !defined(L4_AMX_EMULATE)
  const char* env = std::getenv("LLAMA4_AMX");
  if (env && std::strcmp(env, "0") == 0) return nullptr;
  // AMX-TILE and AMX-INT8: CPUID.(EAX=7, ECX=0):EDX bits 24 and 25
  unsigned a = 0, b = 0, c = 0, d = 0;
  if (!__get_cpuid_count(7, 0, &a, &b, &c, &d) || !(d & (1u << 24)) || !(d & (1u << 25))) return nullptr;
  constexpr long kArchReqXcompPerm = 0x1023, kXfeatureXtiledata = 18;
  if (syscall(SYS_arch_prctl, kArchReqXcompPerm, kXfeatureXtiledata) != 0) return nullptr;
#endif
  static KernelTable t = *base;
  t.isa =
#if !defined(L4_AMX_EMULATE)
      "avx512-amx";
#else
      "avx512-amx-emulated";
#endif
  t.tile[T_Q4_0_R16] = tile_q4_0_r16;
  t.tile[T_Q8_0_R8] = tile_q8_0_r8;
  t.tile_rows[T_Q4_0_R16] = t.tile_rows[T_Q8_0_R8] = 64;  // 64 rows per call: the tile configuration loaded once for them
  // Hardware that disagrees with the emulated semantics is never used. (The emulated set runs the same self-test,
  // which checks the test itself on every AVX-512 machine; there a failure is left to the bit-for-bit tests to report.)
  const bool ok = selfTest(T_Q4_0_R16, tile_q4_0_r16, 16, kQ40R16Block) && selfTest(T_Q8_0_R8, tile_q8_0_r8, 8, 8 * 34);
#if !defined(L4_AMX_EMULATE)
  if (!ok) return nullptr;
#else
  if (!ok) std::fprintf(stderr, "llama4-ts: the emulated AMX tiles fail their self-test\n");
#endif
  return &t;
}

}  // namespace L4_AMX_NS

const KernelTable* L4_AMX_TABLE() {
  static const KernelTable* t = L4_AMX_NS::make();
  return t;
}
}  // namespace l4
#else
namespace l4 { const KernelTable* L4_AMX_TABLE() { return nullptr; } }
#endif
