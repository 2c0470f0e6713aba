// Hand-written AVX2/FMA/F16C kernels for the hot weight formats, included by the AVX2 and AVX-512 translation units
// (inside their own namespace). Quantized formats take 8-bit activations (ActQ8 / ActQ8K, see common.h) and use
// integer dot products as ggml does: maddubs(unsigned weight codes, signed activations), then one float multiply-add
// per block with the two scales. Offsets (q4_0's −8, q5_0's −16, q6_K's −32, the K-quants' minimums) are applied
// once per block through the activations' precomputed integer sums instead of per element.
// (immintrin.h is included by the translation unit, outside the namespace)

// Software prefetch distance in bytes: far enough ahead to cover DRAM latency at ~15 GB/s per core.
// Decode reads each weight byte once per token, so decode kernels prefetch non-temporal (PREFETCHNTA) and no longer
// evict what the token reuses (KV cache, activations): bench-2b decode on 2 threads, Zen 4, Q4_0 100-109 -> 110-125
// tok/s. Batches and prefill tiles keep T0/T1 (several tokens reuse their lines).
#ifndef L4_PF_DIST
#define L4_PF_DIST 2048
#endif
#define L4_PF(p) _mm_prefetch((const char*)(p) + L4_PF_DIST, _MM_HINT_NTA)

static inline float hsum8(__m256 v) {
  __m128 a = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
  a = _mm_add_ps(a, _mm_movehl_ps(a, a));
  a = _mm_add_ss(a, _mm_movehdup_ps(a));
  return _mm_cvtss_f32(a);
}
static inline int hsum8i(__m256i v) {
  __m128i a = _mm_add_epi32(_mm256_castsi256_si128(v), _mm256_extracti128_si256(v, 1));
  a = _mm_add_epi32(a, _mm_shuffle_epi32(a, 0x4e));
  a = _mm_add_epi32(a, _mm_shuffle_epi32(a, 0xb1));
  return _mm_cvtsi128_si32(a);
}
// The AVX2 + VNNI set (kern-avx2-vnni.cc) compiles these headers with L4_VNNI256: 1 = AVX-VNNI's VEX instruction,
// 2 = AVX512-VNNI's 256-bit EVEX form of the same operation (so that AVX-512 machines test the set's code).
// VPDPBUSD adds each lane's four u8·i8 products straight into int32, where AVX2 needs maddubs (pairs to int16) and
// madd (pairs to int32): the same integers wherever maddubs does not saturate, which no caller of these helpers
// lets it do.
#if defined(L4_VNNI256) && L4_VNNI256 == 2
#define l4_dpbusd256(acc, u, s) _mm256_dpbusd_epi32(acc, u, s)
#elif defined(L4_VNNI256)
#define l4_dpbusd256(acc, u, s) _mm256_dpbusd_avx_epi32(acc, u, s)
#endif
// Σ u8·i8 over 32 byte pairs as 8 int32 lanes (pair sums fit int16: 255·127·2 would not, but our codes are ≤ 63).
static inline __m256i dot_u8i8(__m256i u, __m256i s) {
#ifdef L4_VNNI256
  return l4_dpbusd256(_mm256_setzero_si256(), u, s);
#else
  return _mm256_madd_epi16(_mm256_maddubs_epi16(u, s), _mm256_set1_epi16(1));
#endif
}
// 16 bytes of nibbles -> 32 codes 0..15: low nibbles are elements 0..15, high nibbles 16..31 (GGML order).
static inline __m256i unpack_nibbles16(const uint8_t* p) {
  const __m128i b = _mm_loadu_si128((const __m128i*)p);
  const __m256i both = _mm256_set_m128i(_mm_srli_epi16(b, 4), b);
  return _mm256_and_si256(both, _mm256_set1_epi8(15));
}
// 32 bits -> 32 bytes of 0x10 where the bit is set (the 5th bit of q5_0/q5_1 codes).
static inline __m256i bits_to_0x10(const uint8_t* qh) {
  uint32_t x; std::memcpy(&x, qh, 4);
  const __m256i shuf = _mm256_set_epi64x(0x0303030303030303, 0x0202020202020202, 0x0101010101010101, 0x0000000000000000);
  __m256i b = _mm256_shuffle_epi8(_mm256_set1_epi32((int)x), shuf);
  const __m256i bit = _mm256_set1_epi64x((long long)0x7fbfdfeff7fbfdfe);
  b = _mm256_or_si256(b, bit);  // all ones exactly where the selected bit is set
  return _mm256_and_si256(_mm256_cmpeq_epi8(b, _mm256_set1_epi64x(-1)), _mm256_set1_epi8(0x10));
}

// ---- floats ----
static void x_rows_f32(int K, const uint8_t* w, size_t rowBytes, int nrows, const void* act, float* out, bool pf) {
  const float* x = (const float*)act;
  for (int r = 0; r < nrows; r++) {
    const float* row = (const float*)(w + (size_t)r * rowBytes);
    __m256 a0 = _mm256_setzero_ps(), a1 = a0, a2 = a0, a3 = a0;
    int k = 0;
    for (; k + 32 <= K; k += 32) {
      if (pf) { L4_PF(row + k); L4_PF(row + k + 16); }
      a0 = _mm256_fmadd_ps(_mm256_loadu_ps(row + k), _mm256_loadu_ps(x + k), a0);
      a1 = _mm256_fmadd_ps(_mm256_loadu_ps(row + k + 8), _mm256_loadu_ps(x + k + 8), a1);
      a2 = _mm256_fmadd_ps(_mm256_loadu_ps(row + k + 16), _mm256_loadu_ps(x + k + 16), a2);
      a3 = _mm256_fmadd_ps(_mm256_loadu_ps(row + k + 24), _mm256_loadu_ps(x + k + 24), a3);
    }
    for (; k + 8 <= K; k += 8) a0 = _mm256_fmadd_ps(_mm256_loadu_ps(row + k), _mm256_loadu_ps(x + k), a0);
    float s = hsum8(_mm256_add_ps(_mm256_add_ps(a0, a1), _mm256_add_ps(a2, a3)));
    for (; k < K; k++) { float v; std::memcpy(&v, row + k, 4); s += v * x[k]; }
    out[r] = s;
  }
}
static inline __m256 load_f16x8(const uint8_t* p) { return _mm256_cvtph_ps(_mm_loadu_si128((const __m128i*)p)); }
static inline __m256 load_bf16x8(const uint8_t* p) {
  return _mm256_castsi256_ps(_mm256_slli_epi32(_mm256_cvtepu16_epi32(_mm_loadu_si128((const __m128i*)p)), 16));
}
template <bool BF>
static void x_rows_half(int K, const uint8_t* w, size_t rowBytes, int nrows, const void* act, float* out, bool pf) {
  const float* x = (const float*)act;
  for (int r = 0; r < nrows; r++) {
    const uint8_t* row = w + (size_t)r * rowBytes;
    __m256 a0 = _mm256_setzero_ps(), a1 = a0, a2 = a0, a3 = a0;
    int k = 0;
    for (; k + 32 <= K; k += 32) {
      const uint8_t* p = row + 2 * k;
      if (pf) L4_PF(p);
      a0 = _mm256_fmadd_ps(BF ? load_bf16x8(p) : load_f16x8(p), _mm256_loadu_ps(x + k), a0);
      a1 = _mm256_fmadd_ps(BF ? load_bf16x8(p + 16) : load_f16x8(p + 16), _mm256_loadu_ps(x + k + 8), a1);
      a2 = _mm256_fmadd_ps(BF ? load_bf16x8(p + 32) : load_f16x8(p + 32), _mm256_loadu_ps(x + k + 16), a2);
      a3 = _mm256_fmadd_ps(BF ? load_bf16x8(p + 48) : load_f16x8(p + 48), _mm256_loadu_ps(x + k + 24), a3);
    }
    float s = hsum8(_mm256_add_ps(_mm256_add_ps(a0, a1), _mm256_add_ps(a2, a3)));
    for (; k < K; k++) s += (BF ? bf16_to_float(rd16(row + 2 * k)) : half_to_float(rd16(row + 2 * k))) * x[k];
    out[r] = s;
  }
}

// ---- 32-element block formats × ActQ8 ----
static void x_rows_q8_0(int K, const uint8_t* w, size_t rowBytes, int nrows, const void* act, float* out, bool pf) {
  const int nb = K / 32;
  for (int r = 0; r < nrows; r++) {
    const BlockQ8_0* b = (const BlockQ8_0*)(w + (size_t)r * rowBytes);
    const ActQ8* y = (const ActQ8*)act;
    __m256 acc0 = _mm256_setzero_ps(), acc1 = _mm256_setzero_ps();  // two chains hide the FMA latency
    int i = 0;
    for (; i + 2 <= nb; i += 2) {
      if (pf) { L4_PF(b + i); L4_PF((const uint8_t*)(b + i) + 64); }
      const __m256i q0 = _mm256_loadu_si256((const __m256i*)b[i].qs), q1 = _mm256_loadu_si256((const __m256i*)b[i + 1].qs);
      const __m256i v0 = _mm256_loadu_si256((const __m256i*)y[i].qs), v1 = _mm256_loadu_si256((const __m256i*)y[i + 1].qs);
      // sign trick: |q| · (v · sign(q)) keeps maddubs' first operand unsigned
      const __m256i p0 = dot_u8i8(_mm256_sign_epi8(q0, q0), _mm256_sign_epi8(v0, q0));
      const __m256i p1 = dot_u8i8(_mm256_sign_epi8(q1, q1), _mm256_sign_epi8(v1, q1));
      acc0 = _mm256_fmadd_ps(_mm256_set1_ps(_cvtsh_ss(b[i].d) * y[i].d), _mm256_cvtepi32_ps(p0), acc0);
      acc1 = _mm256_fmadd_ps(_mm256_set1_ps(_cvtsh_ss(b[i + 1].d) * y[i + 1].d), _mm256_cvtepi32_ps(p1), acc1);
    }
    for (; i < nb; i++) {
      const __m256i q = _mm256_loadu_si256((const __m256i*)b[i].qs), v = _mm256_loadu_si256((const __m256i*)y[i].qs);
      acc0 = _mm256_fmadd_ps(_mm256_set1_ps(_cvtsh_ss(b[i].d) * y[i].d), _mm256_cvtepi32_ps(dot_u8i8(_mm256_sign_epi8(q, q), _mm256_sign_epi8(v, q))), acc0);
    }
    out[r] = hsum8(_mm256_add_ps(acc0, acc1));
  }
}
static void x_rows_q4_0(int K, const uint8_t* w, size_t rowBytes, int nrows, const void* act, float* out, bool pf) {
  const int nb = K / 32;
  for (int r = 0; r < nrows; r++) {
    const BlockQ4_0* b = (const BlockQ4_0*)(w + (size_t)r * rowBytes);
    const ActQ8* y = (const ActQ8*)act;
    // Σ d·Σ(q−8)·v = Σ d·Σq·v − 8·Σ d·Σv: codes stay unsigned for maddubs, the offset is one scalar FMA per block.
    __m256 acc0 = _mm256_setzero_ps(), acc1 = _mm256_setzero_ps();
    float corr = 0;
    int i = 0;
    for (; i + 2 <= nb; i += 2) {
      if (pf) L4_PF(b + i);
      const float d0 = _cvtsh_ss(b[i].d) * y[i].d, d1 = _cvtsh_ss(b[i + 1].d) * y[i + 1].d;
      const __m256i p0 = dot_u8i8(unpack_nibbles16(b[i].qs), _mm256_loadu_si256((const __m256i*)y[i].qs));
      const __m256i p1 = dot_u8i8(unpack_nibbles16(b[i + 1].qs), _mm256_loadu_si256((const __m256i*)y[i + 1].qs));
      acc0 = _mm256_fmadd_ps(_mm256_set1_ps(d0), _mm256_cvtepi32_ps(p0), acc0);
      acc1 = _mm256_fmadd_ps(_mm256_set1_ps(d1), _mm256_cvtepi32_ps(p1), acc1);
      corr += d0 * (float)y[i].isum + d1 * (float)y[i + 1].isum;
    }
    for (; i < nb; i++) {
      const float d0 = _cvtsh_ss(b[i].d) * y[i].d;
      acc0 = _mm256_fmadd_ps(_mm256_set1_ps(d0), _mm256_cvtepi32_ps(dot_u8i8(unpack_nibbles16(b[i].qs), _mm256_loadu_si256((const __m256i*)y[i].qs))), acc0);
      corr += d0 * (float)y[i].isum;
    }
    out[r] = hsum8(_mm256_add_ps(acc0, acc1)) - 8.f * corr;
  }
}
static void x_rows_q4_1(int K, const uint8_t* w, size_t rowBytes, int nrows, const void* act, float* out, bool pf) {
  const int nb = K / 32;
  for (int r = 0; r < nrows; r++) {
    const BlockQ4_1* b = (const BlockQ4_1*)(w + (size_t)r * rowBytes);
    const ActQ8* y = (const ActQ8*)act;
    __m256 acc = _mm256_setzero_ps();
    float mins = 0;  // Σ m·d_y·Σv
    for (int i = 0; i < nb; i++) {
      if (pf) L4_PF(b + i);
      const __m256i p = dot_u8i8(unpack_nibbles16(b[i].qs), _mm256_loadu_si256((const __m256i*)y[i].qs));
      acc = _mm256_fmadd_ps(_mm256_set1_ps(_cvtsh_ss(b[i].d) * y[i].d), _mm256_cvtepi32_ps(p), acc);
      mins += _cvtsh_ss(b[i].m) * y[i].d * (float)y[i].isum;
    }
    out[r] = hsum8(acc) + mins;
  }
}
static void x_rows_q5_0(int K, const uint8_t* w, size_t rowBytes, int nrows, const void* act, float* out, bool pf) {
  const int nb = K / 32;
  for (int r = 0; r < nrows; r++) {
    const BlockQ5_0* b = (const BlockQ5_0*)(w + (size_t)r * rowBytes);
    const ActQ8* y = (const ActQ8*)act;
    __m256 acc = _mm256_setzero_ps();
    for (int i = 0; i < nb; i++) {
      if (pf) L4_PF(b + i);
      const __m256i q = _mm256_or_si256(unpack_nibbles16(b[i].qs), bits_to_0x10(b[i].qh));
      const __m256i p = _mm256_sub_epi32(dot_u8i8(q, _mm256_loadu_si256((const __m256i*)y[i].qs)),
                                         _mm256_setr_epi32(16 * y[i].isum, 0, 0, 0, 0, 0, 0, 0));
      acc = _mm256_fmadd_ps(_mm256_set1_ps(_cvtsh_ss(b[i].d) * y[i].d), _mm256_cvtepi32_ps(p), acc);
    }
    out[r] = hsum8(acc);
  }
}
static void x_rows_q5_1(int K, const uint8_t* w, size_t rowBytes, int nrows, const void* act, float* out, bool pf) {
  const int nb = K / 32;
  for (int r = 0; r < nrows; r++) {
    const BlockQ5_1* b = (const BlockQ5_1*)(w + (size_t)r * rowBytes);
    const ActQ8* y = (const ActQ8*)act;
    __m256 acc = _mm256_setzero_ps();
    float mins = 0;
    for (int i = 0; i < nb; i++) {
      if (pf) L4_PF(b + i);
      const __m256i q = _mm256_or_si256(unpack_nibbles16(b[i].qs), bits_to_0x10(b[i].qh));
      const __m256i p = dot_u8i8(q, _mm256_loadu_si256((const __m256i*)y[i].qs));
      acc = _mm256_fmadd_ps(_mm256_set1_ps(_cvtsh_ss(b[i].d) * y[i].d), _mm256_cvtepi32_ps(p), acc);
      mins += _cvtsh_ss(b[i].m) * y[i].d * (float)y[i].isum;
    }
    out[r] = hsum8(acc) + mins;
  }
}

// ---- K-quants × ActQ8K ----
// The 8 (scale, min) 6-bit pairs of a q4_K/q5_K super-block, unpacked with 32-bit masks (as ggml does):
// bytes 0..7 of the result are the scales, bytes 8..15 the minimums.
static inline void k4_scales(const uint8_t* q, uint32_t u[4]) {
  const uint32_t km1 = 0x3f3f3f3f, km2 = 0x0f0f0f0f, km3 = 0x03030303;
  std::memcpy(u, q, 12);
  u[3] = ((u[2] >> 4) & km2) | (((u[1] >> 6) & km3) << 4);
  const uint32_t a = u[1] & km1;
  u[1] = (u[2] & km2) | (((u[0] >> 6) & km3) << 4);
  u[2] = a;
  u[0] &= km1;
}
template <bool Q5>
static void x_rows_q45_k(int K, const uint8_t* w, size_t rowBytes, int nrows, const void* act, float* out, bool pf) {
  const int nb = K / 256;
  const __m256i m4 = _mm256_set1_epi8(15);
  for (int r = 0; r < nrows; r++) {
    const uint8_t* row = w + (size_t)r * rowBytes;
    const ActQ8K* y = (const ActQ8K*)act;
    __m256 acc = _mm256_setzero_ps();
    __m128 accm = _mm_setzero_ps();
    for (int i = 0; i < nb; i++) {
      const uint8_t* blk = row + (size_t)i * (Q5 ? 176 : 144);
      if (pf) { L4_PF(blk); L4_PF(blk + 64); L4_PF(blk + 128); }
      const uint8_t* qh = blk + 16;
      const uint8_t* qs = blk + (Q5 ? 48 : 16);
      uint32_t u[4];
      k4_scales(blk + 4, u);
      const uint8_t* sc = (const uint8_t*)u;
      // Σ_j min_j · Σv over sub-block j: pairs of 16-sums, then an int16 dot with the 8 minimums
      const __m256i bs = _mm256_loadu_si256((const __m256i*)y[i].bsums);
      const __m128i bs8 = _mm_hadd_epi16(_mm256_castsi256_si128(bs), _mm256_extracti128_si256(bs, 1));
      const __m128i mins = _mm_cvtepu8_epi16(_mm_loadl_epi64((const __m128i*)(sc + 8)));
      const __m128i prod = _mm_madd_epi16(mins, bs8);
      __m256i sumi = _mm256_setzero_si256();
      const __m256i hb = Q5 ? _mm256_loadu_si256((const __m256i*)qh) : _mm256_setzero_si256();
      for (int j = 0; j < 4; j++) {  // 64 elements: low nibbles = sub-block 2j, high nibbles = 2j+1
        const __m256i q = _mm256_loadu_si256((const __m256i*)(qs + 32 * j));
        __m256i lo = _mm256_and_si256(q, m4), hi = _mm256_and_si256(_mm256_srli_epi16(q, 4), m4);
        if (Q5) {  // 5th bit of sub-block 2j is bit 2j of qh[l], of 2j+1 bit 2j+1
          const __m256i one = _mm256_set1_epi8(1);
          lo = _mm256_or_si256(lo, _mm256_slli_epi16(_mm256_and_si256(_mm256_srli_epi16(hb, 2 * j), one), 4));
          hi = _mm256_or_si256(hi, _mm256_slli_epi16(_mm256_and_si256(_mm256_srli_epi16(hb, 2 * j + 1), one), 4));
        }
        const __m256i p0 = _mm256_maddubs_epi16(lo, _mm256_loadu_si256((const __m256i*)(y[i].qs + 64 * j)));
        const __m256i p1 = _mm256_maddubs_epi16(hi, _mm256_loadu_si256((const __m256i*)(y[i].qs + 64 * j + 32)));
        sumi = _mm256_add_epi32(sumi, _mm256_madd_epi16(p0, _mm256_set1_epi16(sc[2 * j])));
        sumi = _mm256_add_epi32(sumi, _mm256_madd_epi16(p1, _mm256_set1_epi16(sc[2 * j + 1])));
      }
      const float d = _cvtsh_ss(rd16(blk)) * y[i].d, dm = _cvtsh_ss(rd16(blk + 2)) * y[i].d;
      acc = _mm256_fmadd_ps(_mm256_set1_ps(d), _mm256_cvtepi32_ps(sumi), acc);
      accm = _mm_fmadd_ps(_mm_set1_ps(dm), _mm_cvtepi32_ps(prod), accm);
    }
    __m128 m = _mm_add_ps(accm, _mm_movehl_ps(accm, accm));
    m = _mm_add_ss(m, _mm_movehdup_ps(m));
    out[r] = hsum8(acc) - _mm_cvtss_f32(m);
  }
}
// q6_K pieces shared by the decode and prefill kernels. Shuffles that spread the int16 scales (2c, 2c+1) of a half
// over the two 128-bit lanes, 8 copies each:
static inline void q6k_shuffles(__m256i shuf[4]) {
  for (int c = 0; c < 4; c++) {
    alignas(32) uint8_t m[32];
    for (int b = 0; b < 16; b++) { m[b] = (uint8_t)(4 * c + (b & 1)); m[16 + b] = (uint8_t)(4 * c + 2 + (b & 1)); }
    shuf[c] = _mm256_load_si256((const __m256i*)m);
  }
}
// The 6-bit codes (0..63) of half h (128 elements) of a q6_K block as 4 × 32 bytes: low 4 bits from ql, high 2 from qh.
static inline void q6k_codes(const uint8_t* ql, const uint8_t* qh, int h, __m256i q[4]) {
  const __m256i m4 = _mm256_set1_epi8(15), m3 = _mm256_set1_epi8(3);
  const __m256i A = _mm256_loadu_si256((const __m256i*)(ql + 64 * h));
  const __m256i B = _mm256_loadu_si256((const __m256i*)(ql + 64 * h + 32));
  const __m256i H = _mm256_loadu_si256((const __m256i*)(qh + 32 * h));
  q[0] = _mm256_or_si256(_mm256_and_si256(A, m4), _mm256_slli_epi16(_mm256_and_si256(H, m3), 4));
  q[1] = _mm256_or_si256(_mm256_and_si256(B, m4), _mm256_slli_epi16(_mm256_and_si256(_mm256_srli_epi16(H, 2), m3), 4));
  q[2] = _mm256_or_si256(_mm256_and_si256(_mm256_srli_epi16(A, 4), m4), _mm256_slli_epi16(_mm256_and_si256(_mm256_srli_epi16(H, 4), m3), 4));
  q[3] = _mm256_or_si256(_mm256_and_si256(_mm256_srli_epi16(B, 4), m4), _mm256_slli_epi16(_mm256_and_si256(_mm256_srli_epi16(H, 6), m3), 4));
}
static void x_rows_q6_k(int K, const uint8_t* w, size_t rowBytes, int nrows, const void* act, float* out, bool pf) {
  const int nb = K / 256;
  __m256i shuf[4];
  q6k_shuffles(shuf);
  for (int r = 0; r < nrows; r++) {
    const BlockQ6_K* b = (const BlockQ6_K*)(w + (size_t)r * rowBytes);
    const ActQ8K* y = (const ActQ8K*)act;
    __m256 acc = _mm256_setzero_ps();
    for (int i = 0; i < nb; i++) {
      if (pf) { L4_PF(b + i); L4_PF((const uint8_t*)(b + i) + 64); L4_PF((const uint8_t*)(b + i) + 128); }
      const uint8_t* ql = b[i].ql; const uint8_t* qh = b[i].qh;
      const __m256i sc16 = _mm256_cvtepi8_epi16(_mm_loadu_si128((const __m128i*)b[i].scales));
      // the −32 offset: 32 · Σ_s scale_s · Σv_s over the 16 sub-blocks
      __m256i sumi = _mm256_slli_epi32(_mm256_madd_epi16(sc16, _mm256_loadu_si256((const __m256i*)y[i].bsums)), 5);
      sumi = _mm256_sub_epi32(_mm256_setzero_si256(), sumi);
      for (int h = 0; h < 2; h++) {  // two halves of 128 elements
        const __m256i sch = h ? _mm256_permute2x128_si256(sc16, sc16, 0x11) : _mm256_permute2x128_si256(sc16, sc16, 0x00);
        __m256i q[4];
        q6k_codes(ql, qh, h, q);
        for (int c = 0; c < 4; c++) {  // 32 elements; first 16 use scale 2c, next 16 scale 2c+1 (of this half)
          const __m256i p = _mm256_maddubs_epi16(q[c], _mm256_loadu_si256((const __m256i*)(y[i].qs + 128 * h + 32 * c)));
          sumi = _mm256_add_epi32(sumi, _mm256_madd_epi16(p, _mm256_shuffle_epi8(sch, shuf[c])));
        }
      }
      const float d = _cvtsh_ss(b[i].d) * y[i].d;
      acc = _mm256_fmadd_ps(_mm256_set1_ps(d), _mm256_cvtepi32_ps(sumi), acc);
    }
    out[r] = hsum8(acc);
  }
}

// ---- pieces shared by every q4_0/q8_0 8-row kernel (decode and prefill, file and repacked layouts) ----
// Batch invariance rests on these: a (row, token) result goes through exactly these operations in every kernel.
// Eight int32x8 partial dots, one per row -> one vector whose lane j is row j's sum.
static inline __m256i rowsums8(const __m256i d[8]) {
  const __m256i a = _mm256_hadd_epi32(_mm256_hadd_epi32(d[0], d[1]), _mm256_hadd_epi32(d[2], d[3]));  // [r0..r3 | r0..r3]
  const __m256i c = _mm256_hadd_epi32(_mm256_hadd_epi32(d[4], d[5]), _mm256_hadd_epi32(d[6], d[7]));  // [r4..r7 | r4..r7]
  return _mm256_add_epi32(_mm256_permute2x128_si256(a, c, 0x20), _mm256_permute2x128_si256(a, c, 0x31));
}
// Σ codes·v of a q8_0 block (sign trick: |q| · (v · sign(q)) keeps maddubs' first operand unsigned).
static inline __m256i dot_q8(__m256i q, __m256i v) { return dot_u8i8(_mm256_sign_epi8(q, q), _mm256_sign_epi8(v, q)); }
// Eight q8_0 rows' block sums against one activation block (lane j = row j; isum = Σv). With VNNI the codes go in
// biased, q + 128 (one XOR of the sign bit instead of two VPSIGNB), and 128·Σv comes off each row's total: the same
// integers.
static inline __m256i q8_rows8(const __m256i q[8], __m256i v, int32_t isum) {
  __m256i d[8];
#ifdef L4_VNNI256
  const __m256i bias = _mm256_set1_epi8((char)0x80);
  for (int j = 0; j < 8; j++) d[j] = l4_dpbusd256(_mm256_setzero_si256(), _mm256_xor_si256(q[j], bias), v);
  return _mm256_sub_epi32(rowsums8(d), _mm256_set1_epi32(128 * isum));
#else
  (void)isum;
  for (int j = 0; j < 8; j++) d[j] = dot_q8(q[j], v);
  return rowsums8(d);
#endif
}
// One block's float step: dw = the 8 rows' weight scales, sum = their integer block dots with activation block y
// (q4_0: of the unsigned codes; Σ(q−8)·v = Σq·v − 8·Σv is exact in int32, so the offset costs one integer subtract
// and the float step is ggml's: acc += (dw·d_y)·Σ(q−8)·v).
template <bool Q4>
static inline void q0_block(__m256 dw, const ActQ8& y, __m256i sum, __m256& acc) {
  if (Q4) sum = _mm256_sub_epi32(sum, _mm256_set1_epi32(8 * y.isum));
  acc = _mm256_fmadd_ps(_mm256_mul_ps(dw, _mm256_set1_ps(y.d)), _mm256_cvtepi32_ps(sum), acc);
}
// The f16 scales of block i of 8 rows in the file layout (one per row, 8 scattered loads).
static inline __m256 q0_scales8(const uint8_t* const p[8], size_t off) {
  return _mm256_cvtph_ps(_mm_setr_epi16((short)rd16(p[0] + off), (short)rd16(p[1] + off), (short)rd16(p[2] + off), (short)rd16(p[3] + off),
                                        (short)rd16(p[4] + off), (short)rd16(p[5] + off), (short)rd16(p[6] + off), (short)rd16(p[7] + off)));
}

// ---- 8-row matvec for q4_0/q8_0 (decode) ----
// A single-row loop spends more instructions per block on float bookkeeping (scale conversion, broadcast, FMA,
// offset) than on the integer dot product. Eight rows at a time share one activation load, reduce their eight
// int32x8 partial dots to one vector of eight row sums with horizontal adds, and do the float work once for all
// eight rows (lane j = row j): about half the instructions per block (measured with callgrind: 18 -> ~10).
template <bool Q4>
static void x_rows8_q0(int K, const uint8_t* w, size_t rowBytes, int nrows, const void* act, float* out, bool pf) {
  const int nb = K / 32;
  constexpr int BB = Q4 ? 18 : 34;
  int r = 0;
  for (; r + 8 <= nrows; r += 8) {
    const uint8_t* p[8];
    for (int j = 0; j < 8; j++) p[j] = w + (size_t)(r + j) * rowBytes;
    const ActQ8* y = (const ActQ8*)act;
    __m256 acc = _mm256_setzero_ps();
    for (int i = 0; i < nb; i++) {
      const __m256i v = _mm256_loadu_si256((const __m256i*)y[i].qs);
      __m256i d[8];
      for (int j = 0; j < 8; j++) {
        const uint8_t* b = p[j] + (size_t)i * BB;
        // prefetch the same bytes of the next 8-row group (rows are separate streams; +2 KB would land in rows
        // this group is already reading)
        if (pf && (i & 1) == 0) _mm_prefetch((const char*)b + 8 * rowBytes, _MM_HINT_NTA);
        d[j] = Q4 ? dot_u8i8(unpack_nibbles16(b + 2), v) : _mm256_loadu_si256((const __m256i*)(b + 2));  // q8_0: codes
      }
      q0_block<Q4>(q0_scales8(p, (size_t)i * BB), y[i], Q4 ? rowsums8(d) : q8_rows8(d, v, y[i].isum), acc);
    }
    _mm256_storeu_ps(out + r, acc);
  }
  if (r < nrows) (Q4 ? x_rows_q4_0 : x_rows_q8_0)(K, w + (size_t)r * rowBytes, rowBytes, nrows - r, act, out + r, pf);
}

// ---- prefill tiles: one weight block decoded, used for 4 tokens ----
// Batch invariance: every tile computes each (row, token) output with exactly the operations, in exactly the
// order, of the row kernel the same table uses for decode (same integer sums, same float scale products, same FMA
// chains and final reductions), and hands leftover tokens and rows to that row kernel. Continuous batching relies
// on it: a request's logits must not depend on which other requests share the step.
template <bool Q5>
static void x_tile_q45_k(int K, const uint8_t* w, size_t rowBytes, int nrows, const uint8_t* act, size_t actStride, int ntok,
                         float* out, size_t outStride) {
  const int nb = K / 256;
  constexpr int BB = Q5 ? 176 : 144;
  const __m256i m4 = _mm256_set1_epi8(15);
  for (int r = 0; r < nrows; r++) {
    const uint8_t* row = w + (size_t)r * rowBytes;
    int t0 = 0;
    for (; t0 + 4 <= ntok; t0 += 4) {
      const ActQ8K* y[4];
      for (int j = 0; j < 4; j++) y[j] = (const ActQ8K*)(act + (size_t)(t0 + j) * actStride);
      __m256 acc[4] = {_mm256_setzero_ps(), _mm256_setzero_ps(), _mm256_setzero_ps(), _mm256_setzero_ps()};
      __m128 accm[4] = {_mm_setzero_ps(), _mm_setzero_ps(), _mm_setzero_ps(), _mm_setzero_ps()};
      for (int i = 0; i < nb; i++) {
        const uint8_t* blk = row + (size_t)i * BB;
        const uint8_t* qs = blk + (Q5 ? 48 : 16);
        uint32_t u[4];
        k4_scales(blk + 4, u);
        const uint8_t* sc = (const uint8_t*)u;
        const __m128i mn = _mm_cvtepu8_epi16(_mm_loadl_epi64((const __m128i*)(sc + 8)));
        const float d = _cvtsh_ss(rd16(blk)), dm = _cvtsh_ss(rd16(blk + 2));
        const __m256i hb = Q5 ? _mm256_loadu_si256((const __m256i*)(blk + 16)) : _mm256_setzero_si256();
        __m256i sumi[4] = {_mm256_setzero_si256(), _mm256_setzero_si256(), _mm256_setzero_si256(), _mm256_setzero_si256()};
        for (int j = 0; j < 4; j++) {
          const __m256i q = _mm256_loadu_si256((const __m256i*)(qs + 32 * j));
          __m256i lo = _mm256_and_si256(q, m4), hi = _mm256_and_si256(_mm256_srli_epi16(q, 4), m4);
          if (Q5) {
            const __m256i one = _mm256_set1_epi8(1);
            lo = _mm256_or_si256(lo, _mm256_slli_epi16(_mm256_and_si256(_mm256_srli_epi16(hb, 2 * j), one), 4));
            hi = _mm256_or_si256(hi, _mm256_slli_epi16(_mm256_and_si256(_mm256_srli_epi16(hb, 2 * j + 1), one), 4));
          }
          const __m256i s0 = _mm256_set1_epi16(sc[2 * j]), s1 = _mm256_set1_epi16(sc[2 * j + 1]);
          for (int t = 0; t < 4; t++) {
            const __m256i p0 = _mm256_maddubs_epi16(lo, _mm256_loadu_si256((const __m256i*)(y[t][i].qs + 64 * j)));
            const __m256i p1 = _mm256_maddubs_epi16(hi, _mm256_loadu_si256((const __m256i*)(y[t][i].qs + 64 * j + 32)));
            sumi[t] = _mm256_add_epi32(sumi[t], _mm256_add_epi32(_mm256_madd_epi16(p0, s0), _mm256_madd_epi16(p1, s1)));
          }
        }
        for (int t = 0; t < 4; t++) {  // exactly x_rows_q45_k's float work: 8-lane FMA chain, 4-lane minimum chain
          acc[t] = _mm256_fmadd_ps(_mm256_set1_ps(d * y[t][i].d), _mm256_cvtepi32_ps(sumi[t]), acc[t]);
          const __m256i bs = _mm256_loadu_si256((const __m256i*)y[t][i].bsums);
          const __m128i bs8 = _mm_hadd_epi16(_mm256_castsi256_si128(bs), _mm256_extracti128_si256(bs, 1));
          accm[t] = _mm_fmadd_ps(_mm_set1_ps(dm * y[t][i].d), _mm_cvtepi32_ps(_mm_madd_epi16(mn, bs8)), accm[t]);
        }
      }
      for (int t = 0; t < 4; t++) {
        __m128 m = _mm_add_ps(accm[t], _mm_movehl_ps(accm[t], accm[t]));
        m = _mm_add_ss(m, _mm_movehdup_ps(m));
        out[(size_t)(t0 + t) * outStride + r] = hsum8(acc[t]) - _mm_cvtss_f32(m);
      }
    }
    for (; t0 < ntok; t0++)
      x_rows_q45_k<Q5>(K, row, rowBytes, 1, act + (size_t)t0 * actStride, out + (size_t)t0 * outStride + r, false);
  }
}
static void x_tile_q6_k(int K, const uint8_t* w, size_t rowBytes, int nrows, const uint8_t* act, size_t actStride, int ntok,
                        float* out, size_t outStride) {
  const int nb = K / 256;
  __m256i shuf[4];
  q6k_shuffles(shuf);
  for (int r = 0; r < nrows; r++) {
    const BlockQ6_K* b = (const BlockQ6_K*)(w + (size_t)r * rowBytes);
    int t0 = 0;
    for (; t0 + 4 <= ntok; t0 += 4) {
      const ActQ8K* y[4];
      for (int j = 0; j < 4; j++) y[j] = (const ActQ8K*)(act + (size_t)(t0 + j) * actStride);
      __m256 acc[4] = {_mm256_setzero_ps(), _mm256_setzero_ps(), _mm256_setzero_ps(), _mm256_setzero_ps()};
      for (int i = 0; i < nb; i++) {
        const uint8_t* ql = b[i].ql; const uint8_t* qh = b[i].qh;
        const __m256i sc16 = _mm256_cvtepi8_epi16(_mm_loadu_si128((const __m128i*)b[i].scales));
        __m256i sumi[4];
        for (int t = 0; t < 4; t++)
          sumi[t] = _mm256_sub_epi32(_mm256_setzero_si256(), _mm256_slli_epi32(_mm256_madd_epi16(sc16, _mm256_loadu_si256((const __m256i*)y[t][i].bsums)), 5));
        for (int h = 0; h < 2; h++) {
          const __m256i sch = h ? _mm256_permute2x128_si256(sc16, sc16, 0x11) : _mm256_permute2x128_si256(sc16, sc16, 0x00);
          __m256i q[4];
          q6k_codes(ql, qh, h, q);
          for (int c = 0; c < 4; c++) {
            const __m256i scv = _mm256_shuffle_epi8(sch, shuf[c]);
            for (int t = 0; t < 4; t++) {
              const __m256i p = _mm256_maddubs_epi16(q[c], _mm256_loadu_si256((const __m256i*)(y[t][i].qs + 128 * h + 32 * c)));
              sumi[t] = _mm256_add_epi32(sumi[t], _mm256_madd_epi16(p, scv));
            }
          }
        }
        const float d = _cvtsh_ss(b[i].d);
        for (int t = 0; t < 4; t++) acc[t] = _mm256_fmadd_ps(_mm256_set1_ps(d * y[t][i].d), _mm256_cvtepi32_ps(sumi[t]), acc[t]);
      }
      for (int t = 0; t < 4; t++) out[(size_t)(t0 + t) * outStride + r] = hsum8(acc[t]);
    }
    for (; t0 < ntok; t0++)
      x_rows_q6_k(K, (const uint8_t*)b, rowBytes, 1, act + (size_t)t0 * actStride, out + (size_t)t0 * outStride + r, false);
  }
}

// Prefill version of the above: 8 rows' codes are decoded once per block and used for 4 tokens.
template <bool Q4>
static void x_tile8_q0(int K, const uint8_t* w, size_t rowBytes, int nrows, const uint8_t* act, size_t actStride, int ntok,
                       float* out, size_t outStride) {
  const int nb = K / 32;
  constexpr int BB = Q4 ? 18 : 34;
  int r = 0;
  for (; r + 8 <= nrows; r += 8) {
    const uint8_t* p[8];
    for (int j = 0; j < 8; j++) p[j] = w + (size_t)(r + j) * rowBytes;
    int t0 = 0;
    for (; t0 + 4 <= ntok; t0 += 4) {
      const ActQ8* y[4];
      for (int t = 0; t < 4; t++) y[t] = (const ActQ8*)(act + (size_t)(t0 + t) * actStride);
      __m256 acc[4];
      for (int t = 0; t < 4; t++) acc[t] = _mm256_setzero_ps();
      for (int i = 0; i < nb; i++) {
        __m256i q[8];
        for (int j = 0; j < 8; j++) {
          const uint8_t* b = p[j] + (size_t)i * BB + 2;
          q[j] = Q4 ? unpack_nibbles16(b) : _mm256_loadu_si256((const __m256i*)b);
        }
        const __m256 dw = q0_scales8(p, (size_t)i * BB);
        for (int t = 0; t < 4; t++) {
          const __m256i v = _mm256_loadu_si256((const __m256i*)y[t][i].qs);
          __m256i sum;
          if (Q4) {
            __m256i d[8];
            for (int j = 0; j < 8; j++) d[j] = dot_u8i8(q[j], v);
            sum = rowsums8(d);
          } else sum = q8_rows8(q, v, y[t][i].isum);
          q0_block<Q4>(dw, y[t][i], sum, acc[t]);
        }
      }
      for (int t = 0; t < 4; t++) _mm256_storeu_ps(out + (size_t)(t0 + t) * outStride + r, acc[t]);
    }
    for (; t0 < ntok; t0++) x_rows8_q0<Q4>(K, p[0], rowBytes, 8, act + (size_t)t0 * actStride, out + (size_t)t0 * outStride + r, false);
  }
  // the last nrows % 8 rows: the row kernel's own single-row path, token by token (as decode computes them)
  if (r < nrows)
    for (int t = 0; t < ntok; t++) x_rows8_q0<Q4>(K, w + (size_t)r * rowBytes, rowBytes, nrows - r, act + (size_t)t * actStride, out + (size_t)t * outStride + r, false);
}

// ---- activation quantization and f32 helpers ----
static void x_quant_q8(const float* x, void* dst, int K) {
  ActQ8* y = (ActQ8*)dst;
  const __m256 signbit = _mm256_set1_ps(-0.0f);
  for (int b = 0; b < K / 32; b++, x += 32) {
    __m256 v[4], mx = _mm256_setzero_ps();
    for (int j = 0; j < 4; j++) { v[j] = _mm256_loadu_ps(x + 8 * j); mx = _mm256_max_ps(mx, _mm256_andnot_ps(signbit, v[j])); }
    __m128 m = _mm_max_ps(_mm256_castps256_ps128(mx), _mm256_extractf128_ps(mx, 1));
    m = _mm_max_ps(m, _mm_movehl_ps(m, m)); m = _mm_max_ss(m, _mm_movehdup_ps(m));
    const float amax = _mm_cvtss_f32(m);
    float d = amax / 127.f, id = d ? 1.f / d : 0.f;
    if (!(id <= 3.402823466e38f)) d = id = 0.f;  // amax < ~3.7e-37: 1/d overflows; the block counts as zero
    __m256i qi[4];
    for (int j = 0; j < 4; j++) qi[j] = _mm256_cvtps_epi32(_mm256_round_ps(_mm256_mul_ps(v[j], _mm256_set1_ps(id)), _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC));
    y[b].d = d;
    // pack 32 int32 -> 32 int8 in order (packs interleave 128-bit lanes; permute fixes it)
    __m256i a = _mm256_packs_epi32(qi[0], qi[1]), c = _mm256_packs_epi32(qi[2], qi[3]);
    __m256i p = _mm256_packs_epi16(a, c);
    p = _mm256_permutevar8x32_epi32(p, _mm256_setr_epi32(0, 4, 1, 5, 2, 6, 3, 7));
    // codes lie in −127..127; only NaN/inf inputs (INT_MIN after conversion) reach −128 and become −127, as in
    // g_quant_q8. isum is the sum of the stored codes (the avx2-vnni q8_0 kernels take 128·isum off biased codes).
    p = _mm256_max_epi8(p, _mm256_set1_epi8(-127));
    _mm256_storeu_si256((__m256i*)y[b].qs, p);
    y[b].isum = hsum8i(_mm256_madd_epi16(_mm256_maddubs_epi16(_mm256_set1_epi8(1), p), _mm256_set1_epi16(1)));
  }
}
// K-quant activations (ActQ8K), as g_quant_q8k computes them, bit for bit: amax and the rounding (nearest, ties to
// even, like nearbyint) vectorized, the 16-element sums from the stored codes. Prefill quantizes T·K values per
// matmul; the scalar version was a visible share of q4_K/q6_K prompt time.
static void x_quant_q8k(const float* x, void* dst, int K) {
  ActQ8K* y = (ActQ8K*)dst;
  const __m256 signbit = _mm256_set1_ps(-0.0f);
  for (int b = 0; b < K / 256; b++, x += 256) {
    __m256 mx = _mm256_setzero_ps();
    for (int j = 0; j < 256; j += 8) mx = _mm256_max_ps(mx, _mm256_andnot_ps(signbit, _mm256_loadu_ps(x + j)));
    __m128 m = _mm_max_ps(_mm256_castps256_ps128(mx), _mm256_extractf128_ps(mx, 1));
    m = _mm_max_ps(m, _mm_movehl_ps(m, m)); m = _mm_max_ss(m, _mm_movehdup_ps(m));
    const float amax = _mm_cvtss_f32(m);
    float d = amax / 127.f, id = d ? 1.f / d : 0.f;
    if (!(id <= 3.402823466e38f)) d = id = 0.f;  // amax < ~3.7e-37: 1/d overflows; the block counts as zero
    const __m256 vid = _mm256_set1_ps(id);
    for (int j = 0; j < 256; j += 32) {
      __m256i qi[4];
      for (int k = 0; k < 4; k++)
        qi[k] = _mm256_cvtps_epi32(_mm256_round_ps(_mm256_mul_ps(_mm256_loadu_ps(x + j + 8 * k), vid), _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC));
      __m256i p = _mm256_packs_epi16(_mm256_packs_epi32(qi[0], qi[1]), _mm256_packs_epi32(qi[2], qi[3]));
      p = _mm256_permutevar8x32_epi32(p, _mm256_setr_epi32(0, 4, 1, 5, 2, 6, 3, 7));
      // codes lie in −127..127 (kernels move signs onto them: VPSIGNB keeps −128); only NaN/inf inputs, which
      // convert to INT_MIN, reach −128, and become −127 like g_quant_q8k's
      p = _mm256_max_epi8(p, _mm256_set1_epi8(-127));
      _mm256_storeu_si256((__m256i*)(y[b].qs + j), p);
    }
    for (int i = 0; i < 16; i++) { int s = 0; for (int j = 0; j < 16; j++) s += y[b].qs[16 * i + j]; y[b].bsums[i] = (int16_t)s; }
    y[b].d = d;
  }
}
static float x_dot_f32(const float* a, const float* b, int n) {
  __m256 a0 = _mm256_setzero_ps(), a1 = a0;
  int i = 0;
  for (; i + 16 <= n; i += 16) {
    a0 = _mm256_fmadd_ps(_mm256_loadu_ps(a + i), _mm256_loadu_ps(b + i), a0);
    a1 = _mm256_fmadd_ps(_mm256_loadu_ps(a + i + 8), _mm256_loadu_ps(b + i + 8), a1);
  }
  for (; i + 8 <= n; i += 8) a0 = _mm256_fmadd_ps(_mm256_loadu_ps(a + i), _mm256_loadu_ps(b + i), a0);
  float s = hsum8(_mm256_add_ps(a0, a1));
  for (; i < n; i++) s += a[i] * b[i];
  return s;
}

// ---- attention row (AttnRowFn, common.h) ----
// e^x, 8 lanes: 2^n·e^r with n = round(x·log2 e), r = x − n·ln 2 (two-part ln 2), e^r by a degree-6 polynomial
// (Cephes expf coefficients): relative error ~1e-7. Below −87.3 the result is 0; x is clamped to ≤ 88 (2^n stays
// finite), so e^x of a large argument is ~1.6e38 rather than inf (silu's g/(1 + e^−g) then gives ±0 as it should).
static inline __m256 exp_ps(__m256 x) {
  const __m256 lo = _mm256_set1_ps(-87.33654f);
  const __m256 under = _mm256_cmp_ps(x, lo, _CMP_LT_OQ);
  x = _mm256_min_ps(_mm256_max_ps(x, lo), _mm256_set1_ps(88.f));
  const __m256 n = _mm256_round_ps(_mm256_mul_ps(x, _mm256_set1_ps(1.44269504088896341f)), _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
  __m256 r = _mm256_fnmadd_ps(n, _mm256_set1_ps(0.693359375f), x);
  r = _mm256_fnmadd_ps(n, _mm256_set1_ps(-2.12194440e-4f), r);
  __m256 p = _mm256_set1_ps(1.9875691500e-4f);
  p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.3981999507e-3f));
  p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(8.3334519073e-3f));
  p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(4.1665795894e-2f));
  p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.6666665459e-1f));
  p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(5.0000001201e-1f));
  p = _mm256_fmadd_ps(p, _mm256_mul_ps(r, r), _mm256_add_ps(r, _mm256_set1_ps(1.f)));
  const __m256i e = _mm256_slli_epi32(_mm256_add_epi32(_mm256_cvtps_epi32(n), _mm256_set1_epi32(127)), 23);
  return _mm256_andnot_ps(under, _mm256_mul_ps(p, _mm256_castsi256_ps(e)));
}
static void x_silu_mul(float* out, const float* g, const float* u, int64_t n) {
  int64_t i = 0;
  const __m256 one = _mm256_set1_ps(1.f), neg = _mm256_set1_ps(-0.f);
  for (; i + 8 <= n; i += 8) {
    const __m256 v = _mm256_loadu_ps(g + i);
    const __m256 s = _mm256_div_ps(v, _mm256_add_ps(one, exp_ps(_mm256_xor_ps(v, neg))));
    _mm256_storeu_ps(out + i, _mm256_mul_ps(s, _mm256_loadu_ps(u + i)));
  }
  if (i < n) {  // the tail through the same vector code, so an element's result never depends on where chunks end
    alignas(32) float gt[8] = {0}, ut[8] = {0};
    std::memcpy(gt, g + i, sizeof(float) * (n - i));
    std::memcpy(ut, u + i, sizeof(float) * (n - i));
    const __m256 v = _mm256_load_ps(gt);
    _mm256_store_ps(gt, _mm256_mul_ps(_mm256_div_ps(v, _mm256_add_ps(one, exp_ps(_mm256_xor_ps(v, neg)))), _mm256_load_ps(ut)));
    std::memcpy(out + i, gt, sizeof(float) * (n - i));
  }
}
// RMSNorm of one row: squares summed in double, 8 floats per step into two 4-lane double accumulators.
static void x_rms_norm_row(float* o, const float* x, const float* w, int dim, float eps) {
  __m256d a0 = _mm256_setzero_pd(), a1 = a0;
  int i = 0;
  for (; i + 8 <= dim; i += 8) {
    const __m256 v = _mm256_loadu_ps(x + i);
    const __m256d lo = _mm256_cvtps_pd(_mm256_castps256_ps128(v)), hi = _mm256_cvtps_pd(_mm256_extractf128_ps(v, 1));
    a0 = _mm256_fmadd_pd(lo, lo, a0);
    a1 = _mm256_fmadd_pd(hi, hi, a1);
  }
  const __m256d a = _mm256_add_pd(a0, a1);
  __m128d h = _mm_add_pd(_mm256_castpd256_pd128(a), _mm256_extractf128_pd(a, 1));
  double ss = _mm_cvtsd_f64(_mm_add_sd(h, _mm_unpackhi_pd(h, h)));
  for (; i < dim; i++) ss += (double)x[i] * x[i];
  const float inv = (float)(1.0 / std::sqrt((double)(float)(ss / dim) + eps));
  const __m256 vi = _mm256_set1_ps(inv);
  i = 0;
  if (w) {
    for (; i + 8 <= dim; i += 8) _mm256_storeu_ps(o + i, _mm256_mul_ps(_mm256_mul_ps(_mm256_loadu_ps(x + i), vi), _mm256_loadu_ps(w + i)));
    for (; i < dim; i++) o[i] = (x[i] * inv) * w[i];
  } else {
    for (; i + 8 <= dim; i += 8) _mm256_storeu_ps(o + i, _mm256_mul_ps(_mm256_loadu_ps(x + i), vi));
    for (; i < dim; i++) o[i] = x[i] * inv;
  }
}
// 8 values [i, i + 8) of a stored K/V row as floats, exactly as the row dequantizer gives them (i % 8 == 0):
// f32 as is, f16 through F16C, q8_0 as int8·d of the value's block (one rounding, as dq_q8_0).
template <int KV>
static inline __m256 kv_load8(const uint8_t* r, int i) {
  if constexpr (KV == 0) return _mm256_loadu_ps((const float*)r + i);
  else if constexpr (KV == 1) return load_f16x8(r + 2 * i);
  else {
    const BlockQ8_0* b = (const BlockQ8_0*)r + i / 32;
    const __m256i q = _mm256_cvtepi8_epi32(_mm_loadl_epi64((const __m128i*)(b->qs + i % 32)));
    return _mm256_mul_ps(_mm256_cvtepi32_ps(q), _mm256_set1_ps(_cvtsh_ss(b->d)));
  }
}
// Dots of q with 4 key rows (d % 8 == 0): one accumulator per key over ascending 8-float chunks, then one fixed
// reduction tree, so a key's score is the same bits whether it shares the call with 3 other keys or with copies of
// itself (the tail).
template <int KV>
static inline __m128 dot4(const float* q, const uint8_t* k0, const uint8_t* k1, const uint8_t* k2, const uint8_t* k3, int d) {
  __m256 a0 = _mm256_setzero_ps(), a1 = a0, a2 = a0, a3 = a0;
  for (int i = 0; i < d; i += 8) {
    const __m256 qv = _mm256_loadu_ps(q + i);
    a0 = _mm256_fmadd_ps(qv, kv_load8<KV>(k0, i), a0);
    a1 = _mm256_fmadd_ps(qv, kv_load8<KV>(k1, i), a1);
    a2 = _mm256_fmadd_ps(qv, kv_load8<KV>(k2, i), a2);
    a3 = _mm256_fmadd_ps(qv, kv_load8<KV>(k3, i), a3);
  }
  const __m256 s = _mm256_hadd_ps(_mm256_hadd_ps(a0, a1), _mm256_hadd_ps(a2, a3));
  return _mm_add_ps(_mm256_castps256_ps128(s), _mm256_extractf128_ps(s, 1));
}
// The online-softmax step of an attention row over its n scores sc[0..n) (n ≤ 64, sc has room for 64): a new running
// max rescales o[d] and *L; then sc[j] = e^(sc_j − M), 8 at a time (padding lanes computed, stored and ignored), and
// their sum is added to *L: 8 lane sums over ascending 8-key groups (padding lanes masked to 0), then one fixed tree.
// The max is exact in any order; the vector sum replaces a 64-step scalar chain that cost as much as a sixth of a
// prefill tile's time.
static inline void x_attn_softmax(float* sc, int n, int d, float* M, float* L, float* o) {
  __m256 mx = _mm256_set1_ps(-INFINITY);
  int j = 0;
  for (; j + 8 <= n; j += 8) mx = _mm256_max_ps(mx, _mm256_loadu_ps(sc + j));
  __m128 m4 = _mm_max_ps(_mm256_castps256_ps128(mx), _mm256_extractf128_ps(mx, 1));
  m4 = _mm_max_ps(m4, _mm_movehl_ps(m4, m4));
  float bm = std::max(_mm_cvtss_f32(m4), _mm_cvtss_f32(_mm_shuffle_ps(m4, m4, 1)));
  for (; j < n; j++) bm = std::max(bm, sc[j]);
  if (bm > *M) {  // new running max: rescale what was accumulated so far
    const float f = std::exp(*M - bm);
    if (*L != 0) for (int i = 0; i < d; i += 8) _mm256_storeu_ps(o + i, _mm256_mul_ps(_mm256_loadu_ps(o + i), _mm256_set1_ps(f)));
    *L *= f;
    *M = bm;
  }
  const __m256 mv = _mm256_set1_ps(*M);
  __m256 ls = _mm256_setzero_ps();
  for (j = 0; j < n; j += 8) {
    const __m256 p = exp_ps(_mm256_sub_ps(_mm256_loadu_ps(sc + j), mv));
    _mm256_storeu_ps(sc + j, p);
    if (j + 8 <= n) ls = _mm256_add_ps(ls, p);
    else {
      const __m256i lane = _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7);
      ls = _mm256_add_ps(ls, _mm256_and_ps(p, _mm256_castsi256_ps(_mm256_cmpgt_epi32(_mm256_set1_epi32(n - j), lane))));
    }
  }
  __m128 s4 = _mm_add_ps(_mm256_castps256_ps128(ls), _mm256_extractf128_ps(ls, 1));
  s4 = _mm_add_ps(s4, _mm_movehl_ps(s4, s4));
  *L += _mm_cvtss_f32(_mm_add_ss(s4, _mm_shuffle_ps(s4, s4, 1)));
}
// o += p_j·v_j in key order, 4 keys per pass over o (one load and store of o per 4 FMAs), then single keys.
template <int KV>
static inline void x_attn_pv(float* o, const float* sc, const uint8_t* v, size_t stride, int n, int d) {
  int j = 0;
  for (; j + 4 <= n; j += 4) {
    const uint8_t* vj = v + (size_t)j * stride;
    const __m256 p0 = _mm256_set1_ps(sc[j]), p1 = _mm256_set1_ps(sc[j + 1]), p2 = _mm256_set1_ps(sc[j + 2]), p3 = _mm256_set1_ps(sc[j + 3]);
    for (int i = 0; i < d; i += 8) {
      __m256 a = _mm256_loadu_ps(o + i);
      a = _mm256_fmadd_ps(p0, kv_load8<KV>(vj, i), a);
      a = _mm256_fmadd_ps(p1, kv_load8<KV>(vj + stride, i), a);
      a = _mm256_fmadd_ps(p2, kv_load8<KV>(vj + 2 * stride, i), a);
      a = _mm256_fmadd_ps(p3, kv_load8<KV>(vj + 3 * stride, i), a);
      _mm256_storeu_ps(o + i, a);
    }
  }
  for (; j < n; j++) {
    const uint8_t* vj = v + (size_t)j * stride;
    const __m256 p = _mm256_set1_ps(sc[j]);
    for (int i = 0; i < d; i += 8) _mm256_storeu_ps(o + i, _mm256_fmadd_ps(p, kv_load8<KV>(vj, i), _mm256_loadu_ps(o + i)));
  }
}
template <int KV>
static void x_attn_row(const float* q, const uint8_t* k, const uint8_t* v, size_t stride, int n, int d, float scale,
                       float* M, float* L, float* o, float* sc) {
  if (d % 8 != 0 || n > 64) {
    constexpr float (*LD)(const uint8_t*, int) = KV == 0 ? kv_ld_f32 : KV == 1 ? kv_ld_f16 : kv_ld_q8_0;
    g_attn_row<LD>(q, k, v, stride, n, d, scale, M, L, o, sc);
    return;
  }
  const __m128 vs = _mm_set1_ps(scale);
  int j = 0;
  for (; j + 4 <= n; j += 4) {
    const uint8_t* kj = k + (size_t)j * stride;
    _mm_storeu_ps(sc + j, _mm_mul_ps(dot4<KV>(q, kj, kj + stride, kj + 2 * stride, kj + 3 * stride, d), vs));
  }
  for (; j < n; j++) {
    const uint8_t* kj = k + (size_t)j * stride;
    sc[j] = _mm_cvtss_f32(_mm_mul_ps(dot4<KV>(q, kj, kj, kj, kj, d), vs));
  }
  x_attn_softmax(sc, n, d, M, L, o);
  x_attn_pv<KV>(o, sc, v, stride, n, d);
}

#include "kern-x86-attn.h"

static void fill_x86(KernelTable& t) {
  auto set = [&](int ty, RowsFn r, int a) { t.rows[ty] = r; t.act[ty] = a; };
  set(T_F32, x_rows_f32, ACT_F32);
  set(T_F16, x_rows_half<false>, ACT_F32);
  set(T_BF16, x_rows_half<true>, ACT_F32);
  set(T_Q8_0, x_rows8_q0<false>, ACT_Q8);
  set(T_Q4_0, x_rows8_q0<true>, ACT_Q8);
  set(T_Q4_1, x_rows_q4_1, ACT_Q8);
  set(T_Q5_0, x_rows_q5_0, ACT_Q8);
  set(T_Q5_1, x_rows_q5_1, ACT_Q8);
  set(T_Q4_K, x_rows_q45_k<false>, ACT_Q8K);
  set(T_Q5_K, x_rows_q45_k<true>, ACT_Q8K);
  set(T_Q6_K, x_rows_q6_k, ACT_Q8K);
  t.tile[T_Q8_0] = x_tile8_q0<false>;
  t.tile[T_Q4_0] = x_tile8_q0<true>;
  t.tile[T_Q4_K] = x_tile_q45_k<false>;
  t.tile[T_Q5_K] = x_tile_q45_k<true>;
  t.tile[T_Q6_K] = x_tile_q6_k;
  t.quant_q8 = x_quant_q8;
  t.quant_q8k = x_quant_q8k;
  t.dot_f32 = x_dot_f32;
  t.attn_row[0] = x_attn_row<0>; t.attn_row[1] = x_attn_row<1>; t.attn_row[2] = x_attn_row<2>;
  t.attn_rows = x_attn_rows;
  t.kv_rows[0] = x_kv_rows<0>; t.kv_rows[1] = x_kv_rows<1>; t.kv_rows[2] = x_kv_rows<2>;
  t.attn_heads[0] = x_attn_heads_t<0>; t.attn_heads[1] = x_attn_heads_t<1>; t.attn_heads[2] = x_attn_heads_t<2>;
  t.rms_norm_row = x_rms_norm_row;
  t.silu_mul = x_silu_mul;
}
