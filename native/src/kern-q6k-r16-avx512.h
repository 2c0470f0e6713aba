// q6_K repacked into groups of 16 rows (T_Q6_K_R16, layout in common.h) on AVX-512 VNNI: decode rows, prefill
// tiles and 2..16-token batches, included by kern-avx512.cc after kern-kquant-avx512.h.
//
// Why: on the file layout a row's super-block ends in 8 int32 lanes that must be scaled per sub-block and folded
// (kq6_dot: 4 VPDPBUSD + 4 VPMADDWD/VPDPWSSD + reductions per row and token), so an 8-token batch of the q6_K
// output head ran at half the rate of the q4_0 batch kernel, about 4 ms of a 30 ms 8-sequence step of bench-2b.
// Here the codes of 16 rows are stored "chunk-major" at load: lane r of a vector holds row r's codes of 4
// consecutive elements, so one VPDPBUSD with a broadcast activation word adds 4 products to each of the 16 rows'
// sub-block sums. A sub-block of 16 elements is 4 of them, started at −32·Σy (q6_K's offset, exact), then one
// VPMULLD by the 16 rows' scales and one add: ~6 instructions per 256 products and no lane reduction at all.
//
// Float structure, per (row, token), decode, tile and batch alike: per super-block the exact integer
//   t = Σ_s scale_s · Σ_{e in sub-block s} (q_e − 32)·y_e      (|t| ≤ 16·128·16·32·127 < 2^31)
// then acc = fma(d_w·d_y, float(t), acc); the result is acc after the last super-block. Every kernel below is
// q6r::pass, which does exactly that per (row, token) whatever its token count, so a token's result does not
// depend on its batch. (The file-layout q6_K kernels keep their own structure; a kernel set reads a matrix in one
// layout only.) The layout's segments put a super-block's bytes in the order they are read (common.h).
//
// Prefetch along the chunk's one stream. Decode: one super-block (3,360 bytes) ahead into L1; at 4,096 bytes the
// prefetches alias the loads of the block in use (4 KiB apart) and T = 1 ran 1.5x slower. Batches: 32 KiB ahead
// into L2; 8 tokens' activations fill most of L1, and weights prefetched into it were evicted before use (an
// 8-token product of the 32000 x 2048 head ran slower than on the file layout). Zen 4, one thread, streamed from
// DRAM (bench/batch-kernels.ts --threads 1 --types q6_k): T = 1 2.05 -> 1.67 ms, T = 8 6.8 -> 4.0 ms.
#ifndef L4_PF_Q6R_1
#define L4_PF_Q6R_1 3360
#endif
#ifndef L4_PF_Q6R_N
#define L4_PF_Q6R_N 32768
#endif

namespace q6r {
constexpr size_t SB = kQ6R16Block;  // bytes of one super-block of a 16-row group

// −32·Σy per sub-block of 16 of one token's super-blocks (the offset term of q − 32), as int32 to broadcast.
static int32_t* offsets(const ActQ8K* y, int nb, int32_t* dst) {
  for (int i = 0; i < nb; i++)
    for (int s = 0; s < 16; s++) dst[16 * i + s] = -32 * (int32_t)y[i].bsums[s];
  return dst;
}
static int32_t* scratch(size_t n) {
  thread_local std::vector<int32_t> buf;
  if (buf.size() < n) buf.resize(n);
  return buf.data();
}

// Codes 0..63 of sub-block s = 4M + j (elements 16s..16s+15, chunks c = 16M + 4j + v, v = 0..3) from segment j
// (common.h): V[v] lane r = row r's codes of elements 4c..4c+3. Low 4 bits: nibble M / 2 of QL vector
// 4(M % 2) + v; high 2 bits: field M (bits 2M, 2M+1 of every byte) of QH vector v.
template <int M>
static inline void codes(const uint8_t* seg, __m512i V[4]) {
  const __m512i m4 = _mm512_set1_epi8(15), m30 = _mm512_set1_epi8(0x30);
  for (int v = 0; v < 4; v++) {
    __m512i L = _mm512_loadu_si512(seg + 64 + 256 * (M % 2) + 64 * v);
    if (M >= 2) L = _mm512_srli_epi16(L, 4);  // the high nibbles (the byte above's bits land in 4..7, masked off)
    __m512i H = _mm512_loadu_si512(seg + 576 + 64 * v);
    if (M == 0) H = _mm512_slli_epi16(H, 4);  // field M to bits 4-5 (16-bit shifts: the bits kept never cross bytes)
    if (M == 1) H = _mm512_slli_epi16(H, 2);
    if (M == 3) H = _mm512_srli_epi16(H, 2);
    V[v] = _mm512_ternarylogic_epi32(_mm512_and_si512(H, m30), L, m4, 0xF8);  // (H & 0x30) | (L & 15)
  }
}
// Sub-block s = 4M + j of one super-block for NT tokens: tot[t] += scale_s · Σ (q − 32)·y per row.
template <int M, int NT>
static inline void subblock(const uint8_t* seg, int j, const int8_t* const* yq, const int32_t* const* off, __m512i* tot) {
  const int s = 4 * M + j;
  __m512i V[4];
  codes<M>(seg, V);
  const __m512i sc = _mm512_cvtepi8_epi32(_mm_loadu_si128((const __m128i*)(seg + 16 * M)));
  for (int t = 0; t < NT; t++) {
    const int32_t* q = (const int32_t*)(yq[t] + 16 * s);
    __m512i S = _mm512_set1_epi32(off[t][s]);
    for (int v = 0; v < 4; v++) S = _mm512_dpbusd_epi32(S, V[v], _mm512_set1_epi32(q[v]));
    tot[t] = _mm512_add_epi32(tot[t], _mm512_mullo_epi32(S, sc));
  }
}
// NT tokens × the rows [0, nrows) (a multiple of 16) of a Q6_K R16 chunk: out[t·outStride + r]. PF: prefetch the
// chunk's one contiguous stream ahead (decode and small batches read the weights from DRAM once per call).
template <int NT, bool PF>
static void pass(int nb, const uint8_t* w, size_t rb, int nrows, const ActQ8K* const* y, const int32_t* const* off,
                 float* out, size_t outStride) {
  const uint8_t* pfp = w;
  for (int r = 0; r < nrows; r += 16) {
    const uint8_t* g = w + (size_t)r * rb;
    __m512 acc[NT];
    for (int t = 0; t < NT; t++) acc[t] = _mm512_setzero_ps();
    for (int i = 0; i < nb; i++) {
      const uint8_t* blk = g + (size_t)i * SB;
      if (PF && NT == 1) for (const uint8_t* e = blk + L4_PF_Q6R_1; pfp < e; pfp += 64) _mm_prefetch((const char*)pfp, _MM_HINT_T0);
      if (PF && NT > 1) for (const uint8_t* e = blk + L4_PF_Q6R_N; pfp < e; pfp += 64) _mm_prefetch((const char*)pfp, _MM_HINT_T1);
      const int8_t* yq[NT];
      const int32_t* o[NT];
      __m512i tot[NT];
      for (int t = 0; t < NT; t++) { yq[t] = y[t][i].qs; o[t] = off[t] + 16 * i; tot[t] = _mm512_setzero_si512(); }
      for (int j = 0; j < 4; j++) {  // segment by segment: the block is read front to back
        const uint8_t* seg = blk + 32 + kQ6R16Seg * j;
        subblock<0, NT>(seg, j, yq, o, tot);
        subblock<1, NT>(seg, j, yq, o, tot);
        subblock<2, NT>(seg, j, yq, o, tot);
        subblock<3, NT>(seg, j, yq, o, tot);
      }
      const __m512 dw = _mm512_cvtph_ps(_mm256_loadu_si256((const __m256i*)blk));
      for (int t = 0; t < NT; t++)
        acc[t] = _mm512_fmadd_ps(_mm512_mul_ps(dw, _mm512_set1_ps(y[t][i].d)), _mm512_cvtepi32_ps(tot[t]), acc[t]);
    }
    for (int t = 0; t < NT; t++) _mm512_storeu_ps(out + (size_t)t * outStride + r, acc[t]);
  }
}
}  // namespace q6r

// Decode (one token).
static void q6r_rows(int K, const uint8_t* w, size_t rb, int nrows, const void* act, float* out, bool pf) {
  const int nb = K / 256;
  const ActQ8K* y[1] = {(const ActQ8K*)act};
  const int32_t* off[1] = {q6r::offsets(y[0], nb, q6r::scratch((size_t)nb * 16))};
  if (pf) q6r::pass<1, true>(nb, w, rb, nrows, y, off, out, 0);
  else q6r::pass<1, false>(nb, w, rb, nrows, y, off, out, 0);
}
// Prefill tile (PF = false) and small-batch decode (PF = true): tokens in passes of up to 8, each weight
// super-block decoded once per pass.
template <bool PF>
static void q6r_tile(int K, const uint8_t* w, size_t rb, int nrows, const uint8_t* act, size_t actStride, int ntok,
                     float* out, size_t outStride) {
  const int nb = K / 256;
  int32_t* buf = q6r::scratch((size_t)nb * 16 * 8);
  for (int t0 = 0; t0 < ntok; t0 += 8) {
    const int nt = std::min(8, ntok - t0);
    const ActQ8K* y[8];
    const int32_t* off[8];
    for (int t = 0; t < nt; t++) {
      y[t] = (const ActQ8K*)(act + (size_t)(t0 + t) * actStride);
      off[t] = q6r::offsets(y[t], nb, buf + (size_t)t * nb * 16);
    }
    float* o = out + (size_t)t0 * outStride;
#define L4_Q6R_PASS(n) q6r::pass<n, PF>(nb, w, rb, nrows, y, off, o, outStride)
    switch (nt) {
      case 8: L4_Q6R_PASS(8); break;
      case 7: L4_Q6R_PASS(7); break;
      case 6: L4_Q6R_PASS(6); break;
      case 5: L4_Q6R_PASS(5); break;
      case 4: L4_Q6R_PASS(4); break;
      case 3: L4_Q6R_PASS(3); break;
      case 2: L4_Q6R_PASS(2); break;
      default: L4_Q6R_PASS(1); break;
    }
#undef L4_Q6R_PASS
  }
}

static void fill_q6k_r16(KernelTable& t) {
  t.rows[T_Q6_K_R16] = q6r_rows;
  t.act[T_Q6_K_R16] = ACT_Q8K;
  t.tile[T_Q6_K_R16] = q6r_tile<false>;
  t.batch[T_Q6_K_R16] = q6r_tile<true>;
}
