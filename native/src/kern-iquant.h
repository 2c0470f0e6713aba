// GGML i-quants (IQ1_S … IQ4_XS) for every kernel table: row dequantizers (dequantize_row_iq* of ggml-quants.c,
// bit-identical) and portable integer dot products against 8-bit activations, as ggml's vec_dot_iq*_q8_K generic
// code computes them: per 32 (or 16) weights an integer sum of grid code × activation with the signs applied, times
// the odd sub-block scale, summed per 256-element super-block; then one float step per super-block
// (sumf += d_w·d_a·isum) and ggml's final factor (1/8 for the IQ2 types, 1/4 for IQ3_XXS). IQ1_S/IQ1_M add their
// ±1/8 delta through the activations' per-16 sums. IQ4_NL pairs with 32-element activation blocks (ActQ8), the
// rest with 256-element ones (ActQ8K), as ggml's vec_dot_type does.
// Included inside `namespace l4::<isa>` after kern-generic.h (which provides the common.h helpers).

#include "iquant-tables.h"

#pragma pack(push, 1)
struct BlockIQ2XXS { uint16_t d; uint16_t qs[32]; };                                              // 66 B
struct BlockIQ2XS { uint16_t d; uint16_t qs[32]; uint8_t scales[8]; };                           // 74 B
struct BlockIQ2S { uint16_t d; uint8_t qs[32]; uint8_t signs[32]; uint8_t qh[8]; uint8_t scales[8]; };  // 82 B
struct BlockIQ3XXS { uint16_t d; uint8_t qs[64]; uint8_t sas[32]; };                              // 98 B
struct BlockIQ3S { uint16_t d; uint8_t qs[64]; uint8_t qh[8]; uint8_t signs[32]; uint8_t scales[4]; };  // 110 B
struct BlockIQ1S { uint16_t d; uint8_t qs[32]; uint16_t qh[8]; };                                  // 50 B
struct BlockIQ1M { uint8_t qs[32]; uint8_t qh[16]; uint8_t scales[8]; };                          // 56 B
struct BlockIQ4NL { uint16_t d; uint8_t qs[16]; };                                                // 18 B
struct BlockIQ4XS { uint16_t d; uint16_t scales_h; uint8_t scales_l[4]; uint8_t qs[128]; };       // 136 B
#pragma pack(pop)
static_assert(sizeof(BlockIQ2XXS) == 66 && sizeof(BlockIQ2XS) == 74 && sizeof(BlockIQ2S) == 82 && sizeof(BlockIQ3XXS) == 98);
static_assert(sizeof(BlockIQ3S) == 110 && sizeof(BlockIQ1S) == 50 && sizeof(BlockIQ1M) == 56 && sizeof(BlockIQ4NL) == 18);
static_assert(sizeof(BlockIQ4XS) == 136);
constexpr float IQ1_DELTA = 0.125f;

static inline const uint8_t* g8(const uint64_t* grid, int i) { return (const uint8_t*)(grid + i); }
static inline const uint8_t* g4(const uint32_t* grid, int i) { return (const uint8_t*)(grid + i); }
static inline uint16_t iq1m_scale(const uint8_t* scales) {  // the f16 super-block scale spread over 4 nibbles
  uint16_t sc[4]; std::memcpy(sc, scales, 8);
  return (uint16_t)((sc[0] >> 12) | ((sc[1] >> 8) & 0x00f0) | ((sc[2] >> 4) & 0x0f00) | (sc[3] & 0xf000));
}

// ---- row dequantizers ----
static void dq_iq2_xxs(const uint8_t* s, float* y, int K) {
  for (int b = 0; b < K / 256; b++) {
    const BlockIQ2XXS* x = (const BlockIQ2XXS*)s + b;
    const float d = half_to_float(x->d);
    for (int ib = 0; ib < 8; ib++) {
      uint32_t aux[2]; std::memcpy(aux, x->qs + 4 * ib, 8);
      const float db = d * (0.5f + (aux[1] >> 28)) * 0.25f;
      for (int l = 0; l < 4; l++, y += 8) {
        const uint8_t* grid = g8(iq2xxs_grid, ((const uint8_t*)aux)[l]);
        const uint8_t signs = ksigns_iq2xs[(aux[1] >> 7 * l) & 127];
        for (int j = 0; j < 8; j++) y[j] = db * grid[j] * (signs & kmask_iq2xs[j] ? -1.f : 1.f);
      }
    }
  }
}
static void dq_iq2_xs(const uint8_t* s, float* y, int K) {
  for (int b = 0; b < K / 256; b++) {
    const BlockIQ2XS* x = (const BlockIQ2XS*)s + b;
    const float d = half_to_float(x->d);
    for (int ib = 0; ib < 8; ib++) {
      const float db[2] = {d * (0.5f + (x->scales[ib] & 0xf)) * 0.25f, d * (0.5f + (x->scales[ib] >> 4)) * 0.25f};
      for (int l = 0; l < 4; l++, y += 8) {
        const uint16_t q = x->qs[4 * ib + l];
        const uint8_t* grid = g8(iq2xs_grid, q & 511);
        const uint8_t signs = ksigns_iq2xs[q >> 9];
        for (int j = 0; j < 8; j++) y[j] = db[l / 2] * grid[j] * (signs & kmask_iq2xs[j] ? -1.f : 1.f);
      }
    }
  }
}
static void dq_iq2_s(const uint8_t* s, float* y, int K) {
  for (int b = 0; b < K / 256; b++) {
    const BlockIQ2S* x = (const BlockIQ2S*)s + b;
    const float d = half_to_float(x->d);
    for (int ib = 0; ib < 8; ib++) {
      const float db[2] = {d * (0.5f + (x->scales[ib] & 0xf)) * 0.25f, d * (0.5f + (x->scales[ib] >> 4)) * 0.25f};
      for (int l = 0; l < 4; l++, y += 8) {
        const uint8_t* grid = g8(iq2s_grid, x->qs[4 * ib + l] | ((x->qh[ib] << (8 - 2 * l)) & 0x300));
        const uint8_t signs = x->signs[4 * ib + l];
        for (int j = 0; j < 8; j++) y[j] = db[l / 2] * grid[j] * (signs & kmask_iq2xs[j] ? -1.f : 1.f);
      }
    }
  }
}
static void dq_iq3_xxs(const uint8_t* s, float* y, int K) {
  for (int b = 0; b < K / 256; b++) {
    const BlockIQ3XXS* x = (const BlockIQ3XXS*)s + b;
    const float d = half_to_float(x->d);
    for (int ib = 0; ib < 8; ib++) {
      uint32_t aux; std::memcpy(&aux, x->sas + 4 * ib, 4);
      const float db = d * (0.5f + (aux >> 28)) * 0.5f;
      const uint8_t* qs = x->qs + 8 * ib;
      for (int l = 0; l < 4; l++, y += 8) {
        const uint8_t signs = ksigns_iq2xs[(aux >> 7 * l) & 127];
        const uint8_t *g1 = g4(iq3xxs_grid, qs[2 * l]), *g2 = g4(iq3xxs_grid, qs[2 * l + 1]);
        for (int j = 0; j < 4; j++) {
          y[j] = db * g1[j] * (signs & kmask_iq2xs[j] ? -1.f : 1.f);
          y[j + 4] = db * g2[j] * (signs & kmask_iq2xs[j + 4] ? -1.f : 1.f);
        }
      }
    }
  }
}
static void dq_iq3_s(const uint8_t* s, float* y, int K) {
  for (int b = 0; b < K / 256; b++) {
    const BlockIQ3S* x = (const BlockIQ3S*)s + b;
    const float d = half_to_float(x->d);
    for (int ib = 0; ib < 8; ib++) {
      const float db = d * (1 + 2 * (ib & 1 ? x->scales[ib / 2] >> 4 : x->scales[ib / 2] & 0xf));
      const uint8_t* qs = x->qs + 8 * ib; const uint8_t h = x->qh[ib];
      for (int l = 0; l < 4; l++, y += 8) {
        const uint8_t* g1 = g4(iq3s_grid, qs[2 * l] | ((h << (8 - 2 * l)) & 256));
        const uint8_t* g2 = g4(iq3s_grid, qs[2 * l + 1] | ((h << (7 - 2 * l)) & 256));
        const uint8_t sg = x->signs[4 * ib + l];
        for (int j = 0; j < 4; j++) {
          y[j] = db * g1[j] * (sg & kmask_iq2xs[j] ? -1.f : 1.f);
          y[j + 4] = db * g2[j] * (sg & kmask_iq2xs[j + 4] ? -1.f : 1.f);
        }
      }
    }
  }
}
static void dq_iq1_s(const uint8_t* s, float* y, int K) {
  for (int b = 0; b < K / 256; b++) {
    const BlockIQ1S* x = (const BlockIQ1S*)s + b;
    const float d = half_to_float(x->d);
    for (int ib = 0; ib < 8; ib++) {
      const uint16_t qh = x->qh[ib];
      const float dl = d * (2 * ((qh >> 12) & 7) + 1), delta = qh & 0x8000 ? -IQ1_DELTA : IQ1_DELTA;
      for (int l = 0; l < 4; l++, y += 8) {
        const int8_t* grid = (const int8_t*)(iq1s_grid + (x->qs[4 * ib + l] | (((qh >> 3 * l) & 7) << 8)));
        for (int j = 0; j < 8; j++) y[j] = dl * (grid[j] + delta);
      }
    }
  }
}
static void dq_iq1_m(const uint8_t* s, float* y, int K) {
  for (int b = 0; b < K / 256; b++) {
    const BlockIQ1M* x = (const BlockIQ1M*)s + b;
    const float d = half_to_float(iq1m_scale(x->scales));
    uint16_t sc[4]; std::memcpy(sc, x->scales, 8);
    for (int ib = 0; ib < 8; ib++) {
      const float dl1 = d * (2 * ((sc[ib / 2] >> (6 * (ib % 2) + 0)) & 7) + 1);
      const float dl2 = d * (2 * ((sc[ib / 2] >> (6 * (ib % 2) + 3)) & 7) + 1);
      const uint8_t* qs = x->qs + 4 * ib; const uint8_t* qh = x->qh + 2 * ib;
      const int idx[4] = {qs[0] | ((qh[0] << 8) & 0x700), qs[1] | ((qh[0] << 4) & 0x700), qs[2] | ((qh[1] << 8) & 0x700), qs[3] | ((qh[1] << 4) & 0x700)};
      const float delta[4] = {qh[0] & 0x08 ? -IQ1_DELTA : IQ1_DELTA, qh[0] & 0x80 ? -IQ1_DELTA : IQ1_DELTA,
                              qh[1] & 0x08 ? -IQ1_DELTA : IQ1_DELTA, qh[1] & 0x80 ? -IQ1_DELTA : IQ1_DELTA};
      for (int l = 0; l < 4; l++, y += 8) {
        const int8_t* grid = (const int8_t*)(iq1s_grid + idx[l]);
        const float dl = l < 2 ? dl1 : dl2;
        for (int j = 0; j < 8; j++) y[j] = dl * (grid[j] + delta[l]);
      }
    }
  }
}
static void dq_iq4_nl(const uint8_t* s, float* y, int K) {
  for (int b = 0; b < K / 32; b++, y += 32) {
    const BlockIQ4NL* x = (const BlockIQ4NL*)s + b;
    const float d = half_to_float(x->d);
    for (int j = 0; j < 16; j++) { y[j] = d * kvalues_iq4nl[x->qs[j] & 0xf]; y[j + 16] = d * kvalues_iq4nl[x->qs[j] >> 4]; }
  }
}
static void dq_iq4_xs(const uint8_t* s, float* y, int K) {
  for (int b = 0; b < K / 256; b++) {
    const BlockIQ4XS* x = (const BlockIQ4XS*)s + b;
    const float d = half_to_float(x->d);
    for (int ib = 0; ib < 8; ib++, y += 32) {
      const int ls = ((x->scales_l[ib / 2] >> 4 * (ib % 2)) & 0xf) | (((x->scales_h >> 2 * ib) & 3) << 4);
      const float dl = d * (ls - 32);
      const uint8_t* qs = x->qs + 16 * ib;
      for (int j = 0; j < 16; j++) { y[j] = dl * kvalues_iq4nl[qs[j] & 0xf]; y[j + 16] = dl * kvalues_iq4nl[qs[j] >> 4]; }
    }
  }
}

// ---- integer dot products of one row (nb super-blocks / blocks) with quantized activations ----
// Σ over 8 values of grid[j]·q8[j]·(±1 per sign bit j)
static inline int sdot8(const uint8_t* grid, const int8_t* q8, uint8_t signs) {
  int s = 0;
  for (int j = 0; j < 8; j++) s += grid[j] * q8[j] * (signs & kmask_iq2xs[j] ? -1 : 1);
  return s;
}
static inline int sdot4x2(const uint8_t* g1, const uint8_t* g2, const int8_t* q8, uint8_t signs) {
  int s = 0;
  for (int j = 0; j < 4; j++) {
    s += g1[j] * q8[j] * (signs & kmask_iq2xs[j] ? -1 : 1);
    s += g2[j] * q8[j + 4] * (signs & kmask_iq2xs[j + 4] ? -1 : 1);
  }
  return s;
}

static float vd_iq2_xxs(const uint8_t* w, const ActQ8K* y, int nb) {
  float sumf = 0;
  for (int i = 0; i < nb; i++, y++) {
    const BlockIQ2XXS* x = (const BlockIQ2XXS*)w + i;
    const int8_t* q8 = y->qs;
    int bsum = 0;
    for (int ib = 0; ib < 8; ib++) {
      uint32_t aux[2]; std::memcpy(aux, x->qs + 4 * ib, 8);
      int sumi = 0;
      for (int l = 0; l < 4; l++, q8 += 8) sumi += sdot8(g8(iq2xxs_grid, ((const uint8_t*)aux)[l]), q8, ksigns_iq2xs[(aux[1] >> 7 * l) & 127]);
      bsum += sumi * (int)(2 * (aux[1] >> 28) + 1);
    }
    sumf += half_to_float(x->d) * y->d * (float)bsum;
  }
  return 0.125f * sumf;
}
static float vd_iq2_xs(const uint8_t* w, const ActQ8K* y, int nb) {
  float sumf = 0;
  for (int i = 0; i < nb; i++, y++) {
    const BlockIQ2XS* x = (const BlockIQ2XS*)w + i;
    const int8_t* q8 = y->qs;
    int bsum = 0;
    for (int ib = 0; ib < 8; ib++) {
      int s1 = 0, s2 = 0;
      for (int l = 0; l < 4; l++, q8 += 8) {
        const uint16_t q = x->qs[4 * ib + l];
        (l < 2 ? s1 : s2) += sdot8(g8(iq2xs_grid, q & 511), q8, ksigns_iq2xs[q >> 9]);
      }
      bsum += s1 * (2 * (x->scales[ib] & 0xf) + 1) + s2 * (2 * (x->scales[ib] >> 4) + 1);
    }
    sumf += half_to_float(x->d) * y->d * (float)bsum;
  }
  return 0.125f * sumf;
}
static float vd_iq2_s(const uint8_t* w, const ActQ8K* y, int nb) {
  float sumf = 0;
  for (int i = 0; i < nb; i++, y++) {
    const BlockIQ2S* x = (const BlockIQ2S*)w + i;
    const int8_t* q8 = y->qs;
    int bsum = 0;
    for (int ib = 0; ib < 8; ib++) {
      int s1 = 0, s2 = 0;
      for (int l = 0; l < 4; l++, q8 += 8)
        (l < 2 ? s1 : s2) += sdot8(g8(iq2s_grid, x->qs[4 * ib + l] | ((x->qh[ib] << (8 - 2 * l)) & 0x300)), q8, x->signs[4 * ib + l]);
      bsum += s1 * (2 * (x->scales[ib] & 0xf) + 1) + s2 * (2 * (x->scales[ib] >> 4) + 1);
    }
    sumf += half_to_float(x->d) * y->d * (float)bsum;
  }
  return 0.125f * sumf;
}
static float vd_iq3_xxs(const uint8_t* w, const ActQ8K* y, int nb) {
  float sumf = 0;
  for (int i = 0; i < nb; i++, y++) {
    const BlockIQ3XXS* x = (const BlockIQ3XXS*)w + i;
    const int8_t* q8 = y->qs;
    int bsum = 0;
    for (int ib = 0; ib < 8; ib++) {
      uint32_t aux; std::memcpy(&aux, x->sas + 4 * ib, 4);
      const uint8_t* qs = x->qs + 8 * ib;
      int sumi = 0;
      for (int l = 0; l < 4; l++, q8 += 8)
        sumi += sdot4x2(g4(iq3xxs_grid, qs[2 * l]), g4(iq3xxs_grid, qs[2 * l + 1]), q8, ksigns_iq2xs[(aux >> 7 * l) & 127]);
      bsum += sumi * (int)(2 * (aux >> 28) + 1);
    }
    sumf += half_to_float(x->d) * y->d * (float)bsum;
  }
  return 0.25f * sumf;
}
static float vd_iq3_s(const uint8_t* w, const ActQ8K* y, int nb) {
  float sumf = 0;
  for (int i = 0; i < nb; i++, y++) {
    const BlockIQ3S* x = (const BlockIQ3S*)w + i;
    const int8_t* q8 = y->qs;
    int bsum = 0;
    for (int ib = 0; ib < 8; ib++) {
      const uint8_t* qs = x->qs + 8 * ib; const uint8_t h = x->qh[ib];
      int sumi = 0;
      for (int l = 0; l < 4; l++, q8 += 8)
        sumi += sdot4x2(g4(iq3s_grid, qs[2 * l] | ((h << (8 - 2 * l)) & 256)), g4(iq3s_grid, qs[2 * l + 1] | ((h << (7 - 2 * l)) & 256)), q8, x->signs[4 * ib + l]);
      bsum += sumi * (2 * (ib & 1 ? x->scales[ib / 2] >> 4 : x->scales[ib / 2] & 0xf) + 1);
    }
    sumf += half_to_float(x->d) * y->d * (float)bsum;
  }
  return sumf;
}
static float vd_iq1_s(const uint8_t* w, const ActQ8K* y, int nb) {
  float sumf = 0;
  for (int i = 0; i < nb; i++, y++) {
    const BlockIQ1S* x = (const BlockIQ1S*)w + i;
    const int8_t* q8 = y->qs;
    int sumi = 0, sumi1 = 0;
    for (int ib = 0; ib < 8; ib++) {
      const uint16_t qh = x->qh[ib];
      const int ls = 2 * ((qh >> 12) & 7) + 1, delta = qh & 0x8000 ? -1 : 1;
      int lsum = 0;
      for (int l = 0; l < 4; l++, q8 += 8) {
        const int8_t* grid = (const int8_t*)(iq1s_grid + (x->qs[4 * ib + l] | (((qh >> 3 * l) & 7) << 8)));
        for (int j = 0; j < 8; j++) lsum += q8[j] * grid[j];
      }
      sumi += ls * lsum;
      sumi1 += ls * delta * (y->bsums[2 * ib] + y->bsums[2 * ib + 1]);
    }
    sumf += half_to_float(x->d) * y->d * ((float)sumi + IQ1_DELTA * (float)sumi1);
  }
  return sumf;
}
static float vd_iq1_m(const uint8_t* w, const ActQ8K* y, int nb) {
  float sumf = 0;
  for (int i = 0; i < nb; i++, y++) {
    const BlockIQ1M* x = (const BlockIQ1M*)w + i;
    uint16_t sc[4]; std::memcpy(sc, x->scales, 8);
    const int8_t* q8 = y->qs;
    int sumi1 = 0, sumi2 = 0;
    for (int ib = 0; ib < 8; ib++) {
      const uint8_t* qs = x->qs + 4 * ib; const uint8_t* qh = x->qh + 2 * ib;
      const int delta[4] = {qh[0] & 0x08 ? -1 : 1, qh[0] & 0x80 ? -1 : 1, qh[1] & 0x08 ? -1 : 1, qh[1] & 0x80 ? -1 : 1};
      int sum1[2] = {0, 0}, sum2[2] = {0, 0};
      for (int l = 0; l < 4; l++, q8 += 8) {
        const int8_t* grid = (const int8_t*)(iq1s_grid + (qs[l] | (((uint16_t)qh[l / 2] << (8 - 4 * (l % 2))) & 0x700)));
        int lsum1 = 0, lsum2 = 0;
        for (int j = 0; j < 8; j++) { lsum1 += q8[j] * grid[j]; lsum2 += q8[j]; }
        sum1[l / 2] += lsum1; sum2[l / 2] += lsum2 * delta[l];
      }
      const int ls1 = 2 * ((sc[ib / 2] >> (6 * (ib % 2) + 0)) & 7) + 1, ls2 = 2 * ((sc[ib / 2] >> (6 * (ib % 2) + 3)) & 7) + 1;
      sumi1 += sum1[0] * ls1 + sum1[1] * ls2;
      sumi2 += sum2[0] * ls1 + sum2[1] * ls2;
    }
    sumf += half_to_float(iq1m_scale(x->scales)) * y->d * ((float)sumi1 + IQ1_DELTA * (float)sumi2);
  }
  return sumf;
}
static float vd_iq4_xs(const uint8_t* w, const ActQ8K* y, int nb) {
  float sumf = 0;
  for (int i = 0; i < nb; i++, y++) {
    const BlockIQ4XS* x = (const BlockIQ4XS*)w + i;
    const int8_t* q8 = y->qs;
    int bsum = 0;
    for (int ib = 0; ib < 8; ib++, q8 += 32) {
      const int ls = (((x->scales_l[ib / 2] >> 4 * (ib % 2)) & 0xf) | (((x->scales_h >> 2 * ib) & 3) << 4)) - 32;
      const uint8_t* qs = x->qs + 16 * ib;
      int sumi = 0;
      for (int j = 0; j < 16; j++) sumi += q8[j] * kvalues_iq4nl[qs[j] & 0xf] + q8[j + 16] * kvalues_iq4nl[qs[j] >> 4];
      bsum += ls * sumi;
    }
    sumf += half_to_float(x->d) * y->d * (float)bsum;
  }
  return sumf;
}

template <float (*VD)(const uint8_t*, const ActQ8K*, int)>
static void iq_rows(int K, const uint8_t* w, size_t rowBytes, int nrows, const void* act, float* out, bool) {
  for (int r = 0; r < nrows; r++) out[r] = VD(w + (size_t)r * rowBytes, (const ActQ8K*)act, K / 256);
}
static void iq4_nl_rows(int K, const uint8_t* w, size_t rowBytes, int nrows, const void* act, float* out, bool) {
  const ActQ8* y = (const ActQ8*)act;
  for (int r = 0; r < nrows; r++) {
    const BlockIQ4NL* x = (const BlockIQ4NL*)(w + (size_t)r * rowBytes);
    float sumf = 0;
    for (int b = 0; b < K / 32; b++) {
      int sumi = 0;
      for (int j = 0; j < 16; j++) sumi += y[b].qs[j] * kvalues_iq4nl[x[b].qs[j] & 0xf] + y[b].qs[j + 16] * kvalues_iq4nl[x[b].qs[j] >> 4];
      sumf += half_to_float(x[b].d) * y[b].d * (float)sumi;
    }
    out[r] = sumf;
  }
}

// Every i-quant in a table: dequantizers and the portable integer kernels (SIMD tables override some rows[] later).
static void fill_iquant(KernelTable& t) {
  auto set = [&](int ty, RowsFn r, int a, DequantFn dq) { t.rows[ty] = r; t.act[ty] = a; t.dequant[ty] = dq; };
  set(T_IQ2_XXS, iq_rows<vd_iq2_xxs>, ACT_Q8K, dq_iq2_xxs);
  set(T_IQ2_XS, iq_rows<vd_iq2_xs>, ACT_Q8K, dq_iq2_xs);
  set(T_IQ2_S, iq_rows<vd_iq2_s>, ACT_Q8K, dq_iq2_s);
  set(T_IQ3_XXS, iq_rows<vd_iq3_xxs>, ACT_Q8K, dq_iq3_xxs);
  set(T_IQ3_S, iq_rows<vd_iq3_s>, ACT_Q8K, dq_iq3_s);
  set(T_IQ1_S, iq_rows<vd_iq1_s>, ACT_Q8K, dq_iq1_s);
  set(T_IQ1_M, iq_rows<vd_iq1_m>, ACT_Q8K, dq_iq1_m);
  set(T_IQ4_NL, iq4_nl_rows, ACT_Q8, dq_iq4_nl);
  set(T_IQ4_XS, iq_rows<vd_iq4_xs>, ACT_Q8K, dq_iq4_xs);
}
