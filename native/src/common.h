// Shared declarations of the native compute core: GGML block layouts (byte-exact with GGUF files, so weights are
// read in place), the activation formats the kernels consume, half-precision helpers and the per-ISA kernel table.
#pragma once
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <cstdlib>
#include <cmath>

namespace l4 {

// Type ids are GGML's (the `ggmlType` column of src/tensor/dtype.ts), so TS passes them through unchanged.
enum GType : int {
  T_F32 = 0, T_F16 = 1, T_Q4_0 = 2, T_Q4_1 = 3, T_Q5_0 = 6, T_Q5_1 = 7, T_Q8_0 = 8,
  T_Q2_K = 10, T_Q3_K = 11, T_Q4_K = 12, T_Q5_K = 13, T_Q6_K = 14, T_Q8_K = 15, T_BF16 = 30,
  // i-quants (kern-iquant.h)
  T_IQ2_XXS = 16, T_IQ2_XS = 17, T_IQ3_XXS = 18, T_IQ1_S = 19, T_IQ4_NL = 20, T_IQ3_S = 21, T_IQ2_S = 22, T_IQ4_XS = 23,
  T_IQ1_M = 29,
  // Our own ids (never in a file): weights repacked at load into groups of 8 or 16 rows (layouts below).
  T_Q4_0_R8 = 40, T_Q8_0_R8 = 41, T_Q4_0_R16 = 42, T_Q6_K_R16 = 43, T_Q4_K_R16 = 44, T_IQ4_XS_R16 = 45, T_Q5_K_R16 = 46, T_COUNT = 47
};

// ---- Repacked "R8" layouts ----
// A q4_0/q8_0 matrix with N % 8 == 0 may be repacked (repack_r8 in ops.cc) so that decode reads one contiguous
// stream per group of 8 rows and the 8-row kernels load what they need with a few wide loads: group g (rows 8g..8g+7)
// occupies the same bytes as those 8 rows did, [8g·rowBytes, (8g+8)·rowBytes), as K/32 blocks of 8·blockBytes:
//   [8 f16 scales, rows 0..7] [codes]
//   q8_0 codes: rows 0..7, 32 int8 each (256 B).
//   q4_0 codes: 16 nibble bytes per row in the order 0,4,1,5,2,6,3,7, so one 256-bit load holds rows k and k+4
//               (128-bit lanes), and the horizontal-add tree of the kernel ends with the row sums in natural order.
// Row bytes and expert offsets are unchanged (an expert's N rows stay where they were), and every (row, token)
// result is bit-identical to the unpacked 8-row kernels' (same integer sums, same float operations).
//
// "R16" (q4_0, N % 16 == 0, kernel sets with 16-row kernels: AVX-512): rows 16p..16p+15 as one stream of K/32
// blocks of 2·8·18 bytes: [16 f16 scales, row r at 2r] then 4 vectors of 64 bytes, vector c lane r = word c (code
// bytes 4c..4c+3) of row r, so the 16-row kernels read one contiguous stream (two streams 9 KiB apart ran at ~60% of
// one stream's bandwidth on Zen 4) and take the codes chunk-major without transposing them.
//
// "Q6_K R16" (q6_K, N % 16 == 0, AVX-512): rows 16p..16p+15 as K/256 super-blocks of 16·210 bytes, "chunk-major"
// (a 64-byte vector holds the same 4-byte word of the 16 rows, row r at 4r: repacking is a word transpose). Chunk c
// = elements 4c..4c+3 of a super-block, sub-block s = elements 16s..16s+15. A super-block is [16 f16 d, row r at
// 2r], then 4 segments of 832 bytes; segment j = 2n + p holds everything sub-blocks s = 8n + p + 2M (M = 0..3)
// need, in the order the kernel reads it:
//   +0     scales: byte 16M + r = row r's int8 scale of sub-block 8n + p + 2M
//   +64    QL: 8 vectors; vector 4h + v = word 16n + 8h + 4p + v of the rows' ql (its low nibbles are the low 4
//          bits of chunk 32n + 8h + 4p + v, its high nibbles those of that chunk + 16)
//   +576   QH: 4 vectors; vector v = word 8n + 4p + v of the rows' qh (bits 2m, 2m+1: high 2 bits of chunk
//          32n + 8m + 4p + v)
// so sub-block s = 8n + p + 2M's chunk 4s + v takes nibble M / 2 of QL vector 4(M % 2) + v and field M of QH
// vector v. Same bytes per row as the file; the kernels (kern-kquant-r16-avx512.h) have their own float structure.
constexpr size_t kQ6R16Block = 16 * 210, kQ6R16Seg = 832;
// segment j's offset in its super-block, and its parts' offsets in the segment
constexpr size_t kQ6R16Seg0 = 32, kQ6R16SegQL = 64, kQ6R16SegQH = 576;
static inline size_t q6r16_seg(int j) { return kQ6R16Seg0 + kQ6R16Seg * j; }
static inline size_t q6r16_scale_at(int M, int j, int r) { return q6r16_seg(j) + 16 * M + r; }
static inline int q6r16_subblock(int M, int j) { return 8 * (j / 2) + j % 2 + 2 * M; }
static inline size_t q6r16_ql_at(int j, int h, int v, int r) { return q6r16_seg(j) + kQ6R16SegQL + 256 * h + 64 * v + 4 * r; }
static inline int q6r16_ql_word(int j, int h, int v) { return 16 * (j / 2) + 8 * h + 4 * (j % 2) + v; }
static inline size_t q6r16_qh_at(int j, int v, int r) { return q6r16_seg(j) + kQ6R16SegQH + 64 * v + 4 * r; }
static inline int q6r16_qh_word(int j, int v) { return 8 * (j / 2) + 4 * (j % 2) + v; }
//
// "Q4_K R16" (q4_K, N % 16 == 0, AVX-512): rows 16p..16p+15 as K/256 super-blocks of 16·144 bytes:
//   [0, 32) the 16 rows' f16 d; [32, 64) their f16 dmin; [64, 256) the packed 6-bit scales and minimums, byte
//   16p + r = byte p (0..11) of row r's scales[12]; [256, 2304) QS: 32 vectors; vector u, lane r, byte b: low
//   nibble = row r's code of element 4c + b, c = 16(u / 8) + u % 8, high nibble = that of element 4(c + 8) + b.
//   Vectors 8k..8k+7 thus hold sub-block 2k (elements 64k..64k+31) in low and 2k+1 in high nibbles.
// "Q5_K R16" (q5_K, N % 16 == 0, AVX-512): super-blocks of 16·176 bytes: d, dmin and scales as q4_K's in [0, 256),
//   then QH: 8 vectors, vector w = word w of the rows' qh (bit j of byte l: 5th bit of element 32j + l), then QS
//   as q4_K's in [768, 2816).
// "IQ4_XS R16" (iq4_xs, N % 16 == 0, AVX-512): super-blocks of 16·136 bytes: [0, 32) the 16 rows' f16 d;
//   [32, 128) byte 16p + r = byte p (0..5) of row r's scales_h (2 bytes) and scales_l (4); [128, 2176) QS:
//   vector u = word u of the rows' qs, as q4_K's; in IQ4_XS order, vectors 4j..4j+3 hold sub-block j (elements
//   32j..32j+31): vector 4j + v's low nibbles are chunk 8j + v, its high nibbles chunk 8j + 4 + v. The codes
//   index kvalues_iq4nl.
// Byte offsets inside one super-block of these 16-row groups (the 16 rows' f16 d always at 0; 0 where the format
// has no such part), read by the repacker and by both kernel sets.
struct R16Q4Layout { size_t block, dmin, scales, qh, codes; };
constexpr R16Q4Layout kR16Q4K{16 * 144, 32, 64, 0, 256}, kR16Q5K{16 * 176, 32, 64, 256, 768},
    kR16IQ4XS{16 * 136, 0, 32, 0, 128};
constexpr size_t kQ40R16Block = 2 * 8 * 18, kQ40R16Codes = 32;  // q4_0 R16: one block of 16 rows; where its codes start
static inline bool is_r8(int t) { return t == T_Q4_0_R8 || t == T_Q8_0_R8 || t == T_Q4_0_R16; }
static inline bool is_r16(int t) { return t == T_Q4_0_R16 || t == T_Q6_K_R16 || t == T_Q4_K_R16 || t == T_IQ4_XS_R16 || t == T_Q5_K_R16; }
static inline bool is_repacked(int t) { return is_r8(t) || t == T_Q6_K_R16 || t == T_Q4_K_R16 || t == T_IQ4_XS_R16 || t == T_Q5_K_R16; }
// Rows per group of a repacked layout: a repacked matrix is whole groups, and reading a row reads its group.
static inline int group_rows(int t) { return is_r16(t) ? 16 : 8; }
static inline int r8_base(int t) {
  return t == T_Q4_0_R8 || t == T_Q4_0_R16 ? T_Q4_0 : t == T_Q8_0_R8 ? T_Q8_0 : t == T_Q6_K_R16 ? T_Q6_K : t == T_Q4_K_R16 ? T_Q4_K : t == T_IQ4_XS_R16 ? T_IQ4_XS : t == T_Q5_K_R16 ? T_Q5_K : t;
}
static inline int r8_of(int t) { return t == T_Q4_0 ? T_Q4_0_R8 : t == T_Q8_0 ? T_Q8_0_R8 : -1; }
static inline int r16_of(int t) { return t == T_Q4_0 ? T_Q4_0_R16 : t == T_Q6_K ? T_Q6_K_R16 : t == T_Q4_K ? T_Q4_K_R16 : t == T_IQ4_XS ? T_IQ4_XS_R16 : t == T_Q5_K ? T_Q5_K_R16 : -1; }
// Block i of R8 group g (rows 8g..8g+7) in an R8 matrix w; gb = bytes of one group block.
static inline const uint8_t* r8_block(const uint8_t* w, int64_t g, int i, size_t rowBytes, size_t gb) {
  return w + (size_t)g * 8 * rowBytes + (size_t)i * gb;
}

constexpr int QK = 32;    // elements per block of the *_0/*_1 formats
constexpr int QKK = 256;  // elements per super-block of the K-quants

// ---- GGUF block layouts (ggml-common.h). Scales are IEEE halves stored as uint16. ----
#pragma pack(push, 1)
struct BlockQ4_0 { uint16_t d; uint8_t qs[16]; };                       // 18 B: x = d·(nibble − 8)
struct BlockQ4_1 { uint16_t d, m; uint8_t qs[16]; };                    // 20 B: x = d·nibble + m
struct BlockQ5_0 { uint16_t d; uint8_t qh[4]; uint8_t qs[16]; };        // 22 B: 5th bits in qh, x = d·(q − 16)
struct BlockQ5_1 { uint16_t d, m; uint8_t qh[4]; uint8_t qs[16]; };     // 24 B
struct BlockQ8_0 { uint16_t d; int8_t qs[32]; };                        // 34 B
struct BlockQ2_K { uint8_t scales[16]; uint8_t qs[64]; uint16_t d, dmin; };                 // 84 B
struct BlockQ3_K { uint8_t hmask[32]; uint8_t qs[64]; uint8_t scales[12]; uint16_t d; };    // 110 B
struct BlockQ4_K { uint16_t d, dmin; uint8_t scales[12]; uint8_t qs[128]; };                // 144 B
struct BlockQ5_K { uint16_t d, dmin; uint8_t scales[12]; uint8_t qh[32]; uint8_t qs[128]; }; // 176 B
struct BlockQ6_K { uint8_t ql[128]; uint8_t qh[64]; int8_t scales[16]; uint16_t d; };       // 210 B
struct BlockQ8_K { float d; int8_t qs[256]; int16_t bsums[16]; };                           // 292 B
#pragma pack(pop)
static_assert(sizeof(BlockQ4_0) == 18 && sizeof(BlockQ4_1) == 20 && sizeof(BlockQ5_0) == 22 && sizeof(BlockQ5_1) == 24);
static_assert(sizeof(BlockQ8_0) == 34 && sizeof(BlockQ2_K) == 84 && sizeof(BlockQ3_K) == 110);
static_assert(sizeof(BlockQ4_K) == 144 && sizeof(BlockQ5_K) == 176 && sizeof(BlockQ6_K) == 210 && sizeof(BlockQ8_K) == 292);

// ---- Activation formats (our own, never stored in files). ----
// Like ggml, activations are quantized on the fly to 8-bit blocks where the weight format has an integer dot product.
// Unlike ggml's q8_0/q8_1 (f16 scale) we keep an f32 scale and the integer sum of the block, which the q4_0/q4_1/
// q5_x/VNNI kernels need for their offset terms (x·(q−8) = x·q − 8·Σx).
struct ActQ8 { float d; int32_t isum; int8_t qs[32]; };                  // 40 B per 32 activations
// K-quant activations: one f32 scale per 256, plus integer sums per 16 for the K-quants' per-sub-block minimums.
struct ActQ8K { float d; int16_t bsums[16]; int8_t qs[256]; };           // 292 B per 256 activations
enum ActFmt : int { ACT_F32 = 0, ACT_Q8 = 1, ACT_Q8K = 2 };

// ---- IEEE half <-> float without F16C (the scalar path must not assume it). ----
// Helpers here are `static`: each ISA translation unit gets its own copy, so the linker can never hand the scalar
// code an AVX-512-compiled instance of a shared inline function (an ODR trap with per-file ISA flags).
static inline float half_to_float(uint16_t h) {
  const uint32_t sign = (uint32_t)(h & 0x8000) << 16;
  uint32_t exp = (h >> 10) & 0x1f, mant = h & 0x3ff, bits;
  if (exp == 0) {
    if (mant == 0) bits = sign;
    else {  // subnormal half: renormalise
      exp = 113;
      while (!(mant & 0x400)) { mant <<= 1; exp--; }
      bits = sign | (exp << 23) | ((mant & 0x3ff) << 13);
    }
  } else if (exp == 31) bits = sign | 0x7f800000u | (mant << 13);
  else bits = sign | ((exp + 112) << 23) | (mant << 13);
  float f; std::memcpy(&f, &bits, 4); return f;
}
// float -> half bits, round to nearest even, NaN -> quiet NaN with the sign kept: src/tensor/half.ts f32ToF16's
// bits for every input (and kv.ts encodeF16's, whose fast path for normal halves is the first test here).
static inline uint16_t f32_to_f16(float x) {
  uint32_t b;
  std::memcpy(&b, &x, 4);
  const uint32_t sign = (b >> 16) & 0x8000u, a = b & 0x7fffffffu;
  // a normal half: rebias the exponent, add half an ulp minus one plus the odd bit, shift (a carry is the rounding)
  if (a >= 0x38800000u && a < 0x47800000u) return (uint16_t)(sign | ((a - 0x38000000u + 0xfffu + ((a >> 13) & 1u)) >> 13));
  const uint32_t exp = (b >> 23) & 0xff;
  uint32_t mant = b & 0x7fffffu;
  if (exp == 0xff) return (uint16_t)(sign | 0x7c00u | (mant ? 0x200u : 0u));
  int e = (int)exp - 127 + 15;
  if (e >= 31) return (uint16_t)(sign | 0x7c00u);
  if (e <= 0) {
    if (e < -10) return (uint16_t)sign;
    mant |= 0x800000u;
    const int shift = 14 - e;
    const uint32_t half = 1u << (shift - 1);
    uint32_t r = mant >> shift;
    const uint32_t rem = mant & ((1u << shift) - 1);
    if (rem > half || (rem == half && (r & 1u))) r++;
    return (uint16_t)(sign | r);
  }
  uint32_t r = mant >> 13;
  const uint32_t rem = mant & 0x1fffu;
  if (rem > 0x1000u || (rem == 0x1000u && (r & 1u))) {
    r++;
    if (r == 0x400u) { r = 0; e++; if (e >= 31) return (uint16_t)(sign | 0x7c00u); }
  }
  return (uint16_t)(sign | ((uint32_t)e << 10) | r);
}
static inline float bf16_to_float(uint16_t h) { uint32_t b = (uint32_t)h << 16; float f; std::memcpy(&f, &b, 4); return f; }
static inline uint16_t rd16(const uint8_t* p) { uint16_t v; std::memcpy(&v, p, 2); return v; }

// Bytes per row of K elements, elements per block and bytes per block of a type (0 when unknown).
int type_block_size(int type);
int type_block_bytes(int type);
static inline size_t row_bytes(int type, int64_t K) { return (size_t)(K / type_block_size(type)) * (size_t)type_block_bytes(type); }

// out[r] = dot(row r of w, act) for r < nrows; rows are `rowBytes` apart; K elements each.
// `prefetch` asks the kernel to software-prefetch ahead in the weight stream (decode: every weight byte comes from
// DRAM exactly once, and the hardware prefetcher does not keep up with block-quantized rows on our machines).
using RowsFn = void (*)(int K, const uint8_t* w, size_t rowBytes, int nrows, const void* act, float* out, bool prefetch);
using DequantFn = void (*)(const uint8_t* src, float* dst, int K);
using QuantActFn = void (*)(const float* x, void* dst, int K);

// Prefill tile: out[t·outStride + r] = dot(row r, activation row t) for r < nrows, t < ntok; activation rows are
// actStride bytes apart. Kernels decode each weight block once and use it for several tokens (4 at a time).
using TileFn = void (*)(int K, const uint8_t* w, size_t rowBytes, int nrows, const uint8_t* act, size_t actStride, int ntok,
                        float* out, size_t outStride);

// Attention, one query-head row against n ≤ 64 keys of a block (key/value rows `stride` bytes apart, d values each,
// stored as f32, f16 or q8_0 blocks — a compressed KV cache is read in place): sc[j] = (q·k_j)·scale; if
// max_j sc[j] > *M the running output o[d] and sum *L are rescaled to the new max; then *L += Σ exp(sc[j] − *M) and
// o += exp(sc[j] − *M)·v_j in key order. Each row's operations depend only on its own q, keys and n (batch
// invariance, see ops.cc), and an f16/q8_0 row gives exactly the f32 result on its dequantized values (the loaders
// produce the dequantized floats, then the same operations run). sc is scratch of ≥ 64 floats.
using AttnRowFn = void (*)(const float* q, const uint8_t* k, const uint8_t* v, size_t stride, int n, int d, float scale,
                           float* M, float* L, float* o, float* sc);
// Unmasked attention of nq ≤ 8 query rows (qStride floats apart) against all S keys of one kv head, repacked as
// Kt [d][Sp] (Sp = S rounded up to 16, zero padded) and Vp [S][dp] (dp = d rounded up to 16): out row m (oStride floats
// apart, d values) = softmax((q_m·kᵀ)·scale)·v. sc: scratch of 8·Sp floats (kern-avx512-attn.h).
using AttnFullFn = void (*)(const float* q, size_t qStride, int nq, const float* Kt, const float* Vp, int S, int Sp, int d, int dp,
                            float scale, float* out, size_t oStride, float* sc);
static inline int kv_index(int kvType) { return kvType == T_F16 ? 1 : kvType == T_Q8_0 ? 2 : 0; }
// Attention, nq query-head rows against the same n ≤ 64 f32 key/value rows (`stride` bytes apart): for query i,
// exactly attn_row[0]'s operations on (qs[i], M[cs[i]], L[cs[i]], acc + cs[i]·d) — the same bits — with each key and
// value load shared by the queries (prefill: the queries of a tile that see the same keys of a block). sc is scratch
// of ≥ 64·nq floats.
// n stored K/V rows (`stride` bytes apart, d values each) -> dst[n][d] f32: exactly attn_row's loaders' values.
using KvRowsFn = void (*)(float* dst, const uint8_t* src, size_t stride, int n, int d);
using AttnRowsFn = void (*)(int nq, const float* const* qs, const int* cs, const uint8_t* k, const uint8_t* v, size_t stride,
                            int n, int d, float scale, float* M, float* L, float* acc, float* sc);
// The rows of the next key block that a decode kernel fetches while it computes this one: `rows` rows `stride` bytes
// apart, the first `part` bytes of each (a unit's kv heads within a key's rows), of K and of V. step(n) issues the next
// n cache lines' prefetches (to L2: T1), so a kernel can spread them over its loop. Issued all at once, or as plain
// loads, the fetches and the arithmetic took turns: a 32k-key f16 cache read at 10-12 GB/s on one thread that way,
// 16-18 spread out (AMD EPYC Zen 4).
struct KvPrefetch {
  const uint8_t* base = nullptr;
  size_t stride = 0, part = 0;
  int rows = 0;
  int r = 0;      // cursor: row, byte within the row
  size_t o = 0;
  size_t lines() const { return (size_t)rows * ((part + 63) / 64); }
  // lines per step for a loop of `steps` steps (the kernels count one spare step: a block of < 4 keys has no score step)
  size_t perStep(size_t steps) const { return (lines() + steps - 1) / steps; }
  void step(size_t n) {
    for (; n > 0 && r < rows; n--) {
      __builtin_prefetch(base + (size_t)r * stride + o, 0, 2);
      if ((o += 64) >= part) { o = 0; r++; }
    }
  }
  void finish() { step(lines()); }  // whatever is left
};
// Decode, every kv head of one ≤ 64-key block in one call: nh heads × nqh query rows (head h's at qs/cs[h·nqh …]),
// head h's K/V rows at k/v + h·headStride, keys `stride` bytes apart; per query exactly attn_row / attn_rows_kv's
// operations (the same bits), with the block read in address order and pk/pv (nullable: nothing to fetch) fetched
// during the scores and the value sums. sc: scratch of 64·nh·nqh floats.
using AttnHeadsFn = void (*)(int nh, int nqh, const float* const* qs, const int* cs, const uint8_t* k, const uint8_t* v, size_t headStride,
                             size_t stride, int n, int d, float scale, float* M, float* L, float* acc, float* sc, KvPrefetch* pk,
                             KvPrefetch* pv);

// f16/bf16 weights packed H16 (kern-half-gemm.h) times f32 activations: out[t][n], tokens [t0, t1) × panels
// [p0, p1); output (t, n) is one fma chain over k ascending.
using HalfGemmFn = void (*)(const float* x, int K, int t0, int t1, const uint16_t* wp, int p0, int p1, int N, float* out, bool bf16);

struct KernelTable {
  const char* isa;                 // "avx512", "avx2", "scalar"
  RowsFn rows[T_COUNT];            // per weight type; null = unsupported
  TileFn tile[T_COUNT];            // optional multi-token kernels for prefill (same activation format as rows[])
  // optional small-batch decode kernels (2..kBatchMax tokens, nrows % 8 == 0): each weight byte streamed once for
  // all tokens with prefetch, results bit-identical to rows[] (kern-avx512-batch.h)
  TileFn batch[T_COUNT];
  int act[T_COUNT];                // ActFmt each rows[] kernel expects
  // optional: rows per prefill chunk for tile[] (0: ops.cc's 16). Tiles that re-lay the activations once per call
  // (the AVX-512 K-quant and i-quant tiles) amortize that over more rows.
  int tile_rows[T_COUNT];
  DequantFn dequant[T_COUNT];      // row -> f32 (getRows, toF32)
  QuantActFn quant_q8;             // f32 -> ActQ8 blocks (K % 32 == 0)
  QuantActFn quant_q8k;            // f32 -> ActQ8K blocks (K % 256 == 0)
  float (*dot_f32)(const float* a, const float* b, int n);
  void (*axpy_f32)(float* y, float a, const float* x, int n);  // y += a·x
  void (*scale_f32)(float* y, float a, int n);                 // y *= a
  AttnRowFn attn_row[3];  // by K/V storage: [0] f32, [1] f16, [2] q8_0 (see kv_index)
  AttnRowsFn attn_rows;   // optional (null: ops.cc runs attn_row per query)
  KvRowsFn kv_rows[3];    // by K/V storage, as attn_row (used with attn_rows)
  // optional: attn_rows reading the stored rows in place, by K/V storage (decode: no f32 copy of each block)
  AttnRowsFn attn_rows_kv[3];
  AttnHeadsFn attn_heads[3];  // optional, by K/V storage as attn_row (decode over all of a unit's kv heads, see ops.cc)
  // f16 caches also take the attn_rows path (each block converted once per tile): set where attn_rows blocks its
  // loads well enough that the f32 copy pays (kern-avx512-attn.h); else f16 runs attn_row[1] per query
  bool attn_rows_f16;
  AttnFullFn attn_full;   // optional: unmasked f32 attention as small GEMMs (vision), ops.cc attentionFull
  HalfGemmFn half_gemm;   // optional: f16/bf16 products-'bf16' weights the BF16 kernels do not take (kern-half-gemm.h)
  // out[dim] = x·(1/sqrt(mean(x²) + eps))·w (w may be null); the sum of squares accumulates in double (reference).
  void (*rms_norm_row)(float* out, const float* x, const float* w, int dim, float eps);
  // out[i] = silu(g[i])·u[i] = g/(1 + e^−g)·u; out may alias g or u.
  void (*silu_mul)(float* out, const float* g, const float* u, int64_t n);
  // optional: x[i] = 0.5·x·(1 + erf(x/√2)) vectorized (else std::erf per element in ops.cc)
  void (*gelu)(float* x, int64_t n);
};

const KernelTable* kernels_scalar();
const KernelTable* kernels_avx2();    // null when not compiled in
const KernelTable* kernels_avx512();  // null when not compiled in
const KernelTable* kernels_avx2_vnni();       // AVX2 + AVX-VNNI (VEX); null when not compiled in
const KernelTable* kernels_avx2_vnni_evex();  // the same set through AVX512-VNNI's 256-bit form (kern-avx2-vnni.cc)
const KernelTable* kernels_avx512_amx();           // AVX-512 + AMX-INT8 prefill tiles (kern-amx-int8.cc); null when unusable
const KernelTable* kernels_avx512_amx_emulated();  // the same tiles with the tile operations emulated (tests)

// Activation bytes per row of K for a format.
static inline size_t act_row_bytes(int fmt, int K) {
  return fmt == ACT_Q8 ? (size_t)(K / 32) * sizeof(ActQ8) : fmt == ACT_Q8K ? (size_t)(K / 256) * sizeof(ActQ8K) : (size_t)K * 4;
}

}  // namespace l4
