// Byte-exact C++ ports of the TypeScript weight quantizers (src/tensor/quant/{legacy,kquants,iquants}.ts), which
// port ggml-quants.c. Each function mirrors its TypeScript twin line by line: `float` locals where TS wraps a result
// in fr(), `int` where TS keeps a small integer. Built with -ffp-contract=off and without fast-math (binding.gyp):
// a fused multiply-add or a reassociated sum would change the rounding and so the bytes.
//
// Where the TypeScript relies on JavaScript's integer conversions (ToInt32 of a truncated float, `& 0xff`), the
// helpers below reproduce them exactly, including for the inf/NaN that a subnormal block scale can produce
// (1/d overflows): C's float -> int8_t conversion would be undefined there.
#include "quant.h"

#include <cmath>
#include <cstring>

#include "common.h"
#include "iquant-tables.h"

namespace l4 {
namespace {

constexpr float GROUP_MAX_EPS = 1e-15f;

// The 8-lane scale search (quant-avx2.cc) where the CPU has AVX2, else none; g_simd: use it for this row.
using Qkx2x8 = void (*)(int, int, const float*, const float*, uint8_t*, float*, float*, float, float, int, bool);
Qkx2x8 pick_qkx2_x8() {
#if defined(__x86_64__)
  __builtin_cpu_init();
  if (__builtin_cpu_supports("avx2")) return qkx2_x8_avx2;
#endif
  return nullptr;
}
const Qkx2x8 qkx2_x8 = pick_qkx2_x8();
using Qxx8 = void (*)(int, int, const float*, int8_t*, float*);
#if defined(__x86_64__)
const Qxx8 qx_x8 = qkx2_x8 ? qx_x8_avx2 : nullptr;  // same CPU requirement
#else
const Qxx8 qx_x8 = nullptr;
#endif
thread_local bool g_simd = false;

// JavaScript ToInt32 of a number that is already an integer or ±inf/NaN (0 for those), wrapping modulo 2³².
inline int32_t js_i32(double v) {
  if (!std::isfinite(v)) return 0;
  if (v > -2147483648.0 && v < 2147483648.0) return (int32_t)v;
  double m = std::fmod(std::trunc(v), 4294967296.0);
  if (m < 0) m += 4294967296.0;
  return (int32_t)(uint32_t)m;
}
// TS toI8(Math.trunc(v)): truncate, ToInt32, keep the low byte as a signed value.
inline int trunc_i8(float v) { return (int8_t)(uint8_t)(js_i32(std::trunc((double)v)) & 0xff); }
inline int to_i8(int v) { return (int8_t)(uint8_t)(v & 0xff); }
// JavaScript truthiness of a number (`d ? a : b`, `if (!d)`): false for ±0 and NaN.
inline bool truthy(float v) { return v == v && v != 0; }

// ggml's nearest_int: round half to even via 1.5·2²³, and for |v| > 2²² the same bits the C code produces.
inline int nearest_int(float fval) {
  if (std::isnan(fval)) return 0;  // JS stores the canonical NaN, whose low mantissa bits give 0
  float val = fval + 12582912.f;
  int32_t i;
  std::memcpy(&i, &val, 4);
  return (i & 0x007fffff) - 0x00400000;
}

inline void put_f16(uint8_t* p, float v) {
  const uint16_t h = f32_to_f16(v);
  p[0] = (uint8_t)(h & 0xff);
  p[1] = (uint8_t)(h >> 8);
}
inline float get_f16(const uint8_t* p) { return half_to_float((uint16_t)(p[0] | (p[1] << 8))); }
inline void put_u32(uint8_t* p, uint32_t v) { p[0] = v & 0xff; p[1] = (v >> 8) & 0xff; p[2] = (v >> 16) & 0xff; p[3] = v >> 24; }
template <class T> inline T clamp(T v, T lo, T hi) { return v < lo ? lo : v > hi ? hi : v; }

// ---- legacy 32-element formats (legacy.ts) ------------------------------------------------------------------

// The value of largest magnitude (the first such, as the C loop keeps `<`).
inline float signed_max(const float* x, int n) {
  float amax = 0, max = 0;
  for (int j = 0; j < n; j++) {
    const float a = std::fabs(x[j]);
    if (amax < a) { amax = a; max = x[j]; }
  }
  return max;
}
inline void min_max(const float* x, int n, float& mn, float& mx) {
  mn = INFINITY; mx = -INFINITY;
  for (int j = 0; j < n; j++) { if (x[j] < mn) mn = x[j]; if (x[j] > mx) mx = x[j]; }
}

void quant_q4_0(const float* x, uint8_t* p, int nb) {
  for (int i = 0; i < nb; i++, p += 18, x += QK) {
    const float d = signed_max(x, QK) / -8;
    const float id = truthy(d) ? 1 / d : 0;
    put_f16(p, d);
    for (int j = 0; j < 16; j++) {
      const float x0 = x[j] * id, x1 = x[16 + j] * id;
      const int q0 = std::min(15, trunc_i8(x0 + 8.5f)), q1 = std::min(15, trunc_i8(x1 + 8.5f));
      p[2 + j] = (uint8_t)((q0 & 0xff) | ((q1 << 4) & 0xff));
    }
  }
}

void quant_q4_1(const float* x, uint8_t* p, int nb) {
  for (int i = 0; i < nb; i++, p += 20, x += QK) {
    float mn, mx;
    min_max(x, QK, mn, mx);
    const float d = (mx - mn) / 15;
    const float id = truthy(d) ? 1 / d : 0;
    put_f16(p, d);
    put_f16(p + 2, mn);
    for (int j = 0; j < 16; j++) {
      const float x0 = (x[j] - mn) * id, x1 = (x[16 + j] - mn) * id;
      const int q0 = std::min(15, trunc_i8(x0 + 0.5f)), q1 = std::min(15, trunc_i8(x1 + 0.5f));
      p[4 + j] = (uint8_t)((q0 & 0xff) | ((q1 << 4) & 0xff));
    }
  }
}

void quant_q5_0(const float* x, uint8_t* p, int nb) {
  for (int i = 0; i < nb; i++, p += 22, x += QK) {
    const float d = signed_max(x, QK) / -16;
    const float id = truthy(d) ? 1 / d : 0;
    put_f16(p, d);
    uint32_t qh = 0;
    for (int j = 0; j < 16; j++) {
      const float x0 = x[j] * id, x1 = x[16 + j] * id;
      const int q0 = std::min(31, trunc_i8(x0 + 16.5f)) & 0xff, q1 = std::min(31, trunc_i8(x1 + 16.5f)) & 0xff;
      p[6 + j] = (uint8_t)((q0 & 15) | ((q1 & 15) << 4));
      qh |= (uint32_t)((q0 & 16) >> 4) << j;
      qh |= (uint32_t)((q1 & 16) >> 4) << (j + 16);
    }
    put_u32(p + 2, qh);
  }
}

void quant_q5_1(const float* x, uint8_t* p, int nb) {
  for (int i = 0; i < nb; i++, p += 24, x += QK) {
    float mn, mx;
    min_max(x, QK, mn, mx);
    const float d = (mx - mn) / 31;
    const float id = truthy(d) ? 1 / d : 0;
    put_f16(p, d);
    put_f16(p + 2, mn);
    uint32_t qh = 0;
    for (int j = 0; j < 16; j++) {
      const float x0 = (x[j] - mn) * id, x1 = (x[16 + j] - mn) * id;
      // no clamp, as the C reference: (uint8_t)(x + 0.5f)
      const int q0 = js_i32(std::trunc((double)(x0 + 0.5f))) & 0xff, q1 = js_i32(std::trunc((double)(x1 + 0.5f))) & 0xff;
      p[8 + j] = (uint8_t)((q0 & 15) | ((q1 & 15) << 4));
      qh |= (uint32_t)((q0 & 16) >> 4) << j;
      qh |= (uint32_t)((q1 & 16) >> 4) << (j + 16);
    }
    put_u32(p + 4, qh);
  }
}

void quant_q8_0(const float* x, uint8_t* p, int nb) {
  for (int i = 0; i < nb; i++, p += 34, x += QK) {
    float amax = 0;
    for (int j = 0; j < QK; j++) amax = std::max(amax, std::fabs(x[j]));
    const float d = amax / 127;
    const float id = truthy(d) ? 1 / d : 0;
    put_f16(p, d);
    for (int j = 0; j < QK; j++) p[2 + j] = (uint8_t)(js_i32(std::round((double)(x[j] * id))) & 0xff);
  }
}

// ---- k-quant scale searches (kquants.ts) ----------------------------------------------------------------------

// make_qx_quants, rmse_type 1, weights x²: levels in [-nmax, nmax-1] stored as l + nmax; returns the scale.
float make_qx_quants(int n, int nmax, const float* x, int8_t* L) {
  float max = 0, amax = 0;
  for (int i = 0; i < n; i++) {
    const float ax = std::fabs(x[i]);
    if (ax > amax) { amax = ax; max = x[i]; }
  }
  if (amax < GROUP_MAX_EPS) {
    for (int i = 0; i < n; i++) L[i] = 0;
    return 0;
  }
  float iscale = -nmax / max;
  float sumlx = 0, suml2 = 0;
  for (int i = 0; i < n; i++) {
    const float xi = x[i];
    int l = clamp(nearest_int(iscale * xi), -nmax, nmax - 1);
    L[i] = (int8_t)(l + nmax);
    const float w = xi * xi;
    sumlx = sumlx + (w * xi) * (float)l;
    suml2 = suml2 + (w * (float)l) * (float)l;
  }
  float scale = truthy(suml2) ? sumlx / suml2 : 0;
  float best = scale * sumlx;
  for (int is = -9; is <= 9; is++) {
    if (is == 0) continue;
    iscale = -((float)nmax + 0.1f * (float)is) / max;
    sumlx = 0;
    suml2 = 0;
    for (int i = 0; i < n; i++) {
      const float xi = x[i];
      const int l = clamp(nearest_int(iscale * xi), -nmax, nmax - 1);
      const float w = xi * xi;
      sumlx = sumlx + (w * xi) * (float)l;
      suml2 = suml2 + (w * (float)l) * (float)l;
    }
    if (suml2 > 0 && sumlx * sumlx > best * suml2) {
      for (int i = 0; i < n; i++) L[i] = (int8_t)(nmax + clamp(nearest_int(iscale * x[i]), -nmax, nmax - 1));
      scale = sumlx / suml2;
      best = scale * sumlx;
    }
  }
  return scale;
}

// make_q3_quants(do_rmse = true).
float make_q3_quants(int n, int nmax, const float* x, int8_t* L) {
  float max = 0, amax = 0;
  for (int i = 0; i < n; i++) {
    const float ax = std::fabs(x[i]);
    if (ax > amax) { amax = ax; max = x[i]; }
  }
  if (amax < GROUP_MAX_EPS) {
    for (int i = 0; i < n; i++) L[i] = 0;
    return 0;
  }
  const float iscale = -nmax / max;
  float sumlx = 0, suml2 = 0;
  for (int i = 0; i < n; i++) {
    const float xi = x[i];
    const int l = clamp(nearest_int(iscale * xi), -nmax, nmax - 1);
    L[i] = (int8_t)l;
    const float w = xi * xi;
    sumlx = sumlx + (w * xi) * (float)l;
    suml2 = suml2 + (w * (float)l) * (float)l;
  }
  for (int itry = 0; itry < 5; itry++) {
    int changed = 0;
    for (int i = 0; i < n; i++) {
      const float xi = x[i];
      const int Li = L[i];
      const float w = xi * xi;
      float slx = sumlx - (w * xi) * (float)Li;
      if (slx > 0) {
        float sl2 = suml2 - (w * (float)Li) * (float)Li;
        const int nl = clamp(nearest_int((xi * sl2) / slx), -nmax, nmax - 1);
        if (nl != Li) {
          slx = slx + (w * xi) * (float)nl;
          sl2 = sl2 + (w * (float)nl) * (float)nl;
          if (sl2 > 0 && (slx * slx) * suml2 > (sumlx * sumlx) * sl2) {
            L[i] = (int8_t)nl;
            sumlx = slx;
            suml2 = sl2;
            changed++;
          }
        }
      }
    }
    if (!changed) break;
  }
  for (int i = 0; i < n; i++) L[i] = (int8_t)(L[i] + nmax);
  return suml2 > 0 ? sumlx / suml2 : 0;
}

// make_qkx2_quants: asymmetric levels 0..nmax; returns the scale, *the_min = -min.
float make_qkx2_quants(int n, int nmax, const float* x, const float* w, uint8_t* L, float* the_min, float rmin, float rdelta,
                       int nstep, bool use_mad) {
  float xm[32];
  uint8_t laux[32];
  float min = x[0], max = x[0];
  float sum_w = w[0];
  float sum_x = sum_w * x[0];
  for (int i = 1; i < n; i++) {
    if (x[i] < min) min = x[i];
    if (x[i] > max) max = x[i];
    sum_w = sum_w + w[i];
    sum_x = sum_x + w[i] * x[i];
  }
  if (min > 0) min = 0;
  if (max == min) {
    for (int i = 0; i < n; i++) L[i] = 0;
    *the_min = -min;
    return 0;
  }
  for (int i = 0; i < n; i++) xm[i] = x[i] - min;
  float iscale = (float)nmax / (max - min);
  float scale = 1 / iscale;
  float best_error = 0;
  for (int i = 0; i < n; i++) {
    L[i] = (uint8_t)clamp(nearest_int(iscale * xm[i]), 0, nmax);
    float diff = (scale * (float)L[i] + min) - x[i];
    diff = use_mad ? std::fabs(diff) : diff * diff;
    best_error = best_error + w[i] * diff;
  }
  if (nstep < 1) {
    *the_min = -min;
    return scale;
  }
  for (int is = 0; is <= nstep; is++) {
    iscale = ((rmin + rdelta * (float)is) + (float)nmax) / (max - min);
    float sum_l = 0, sum_l2 = 0, sum_xl = 0;
    for (int i = 0; i < n; i++) {
      const int l = clamp(nearest_int(iscale * xm[i]), 0, nmax);
      laux[i] = (uint8_t)l;
      const float wl = w[i] * (float)l;
      sum_l = sum_l + wl;
      sum_l2 = sum_l2 + wl * (float)l;
      sum_xl = sum_xl + wl * x[i];
    }
    const float D = sum_w * sum_l2 - sum_l * sum_l;
    if (D > 0) {
      float this_scale = (sum_w * sum_xl - sum_x * sum_l) / D;
      float this_min = (sum_l2 * sum_x - sum_l * sum_xl) / D;
      if (this_min > 0) {
        this_min = 0;
        this_scale = sum_xl / sum_l2;
      }
      float cur = 0;
      for (int i = 0; i < n; i++) {
        float diff = (this_scale * (float)laux[i] + this_min) - x[i];
        diff = use_mad ? std::fabs(diff) : diff * diff;
        cur = cur + w[i] * diff;
      }
      if (cur < best_error) {
        for (int i = 0; i < n; i++) L[i] = laux[i];
        best_error = cur;
        scale = this_scale;
        min = this_min;
        for (int i = 0; i < n; i++) xm[i] = x[i] - min;
      }
    }
  }
  *the_min = -min;
  return scale;
}

// get_scale_min_k4: the 6-bit scale/min pair j of a q4_K/q5_K scales[12] field.
inline void scale_min_k4(int j, const uint8_t* q, int& sc, int& m) {
  if (j < 4) { sc = q[j] & 63; m = q[j + 4] & 63; }
  else { sc = (q[j + 4] & 0xf) | ((q[j - 4] >> 6) << 4); m = (q[j + 4] >> 4) | ((q[j] >> 6) << 4); }
}

// ---- q2_K / q3_K ------------------------------------------------------------------------------------------------

void quant_q2_k(const float* x, uint8_t* p, int nb) {
  uint8_t L[QKK];
  float w[QKK], mins[16], scales[16];
  for (int i = 0; i < nb; i++, p += 84, x += QKK) {
    float max_scale = 0, max_min = 0;
    for (int l = 0; l < QKK; l++) w[l] = std::fabs(x[l]);
    if (g_simd) {
      for (int h = 0; h < 2; h++) qkx2_x8(16, 3, x + 128 * h, w + 128 * h, L + 128 * h, mins + 8 * h, scales + 8 * h, -0.5f, 0.1f, 15, true);
    } else {
      for (int j = 0; j < 16; j++) scales[j] = make_qkx2_quants(16, 3, x + 16 * j, w + 16 * j, L + 16 * j, &mins[j], -0.5f, 0.1f, 15, true);
    }
    for (int j = 0; j < 16; j++) {
      if (scales[j] > max_scale) max_scale = scales[j];
      if (mins[j] > max_min) max_min = mins[j];
    }
    if (max_scale > 0) {
      const float iscale = 15 / max_scale;
      for (int j = 0; j < 16; j++) p[j] = (uint8_t)(nearest_int(iscale * scales[j]) & 0xff);
      put_f16(p + 80, max_scale / 15);
    } else {
      for (int j = 0; j < 16; j++) p[j] = 0;
      put_f16(p + 80, 0);
    }
    if (max_min > 0) {
      const float iscale = 15 / max_min;
      for (int j = 0; j < 16; j++) p[j] = (uint8_t)((p[j] | (nearest_int(iscale * mins[j]) << 4)) & 0xff);
      put_f16(p + 82, max_min / 15);
    } else {
      put_f16(p + 82, 0);
    }
    const float d_all = get_f16(p + 80), m_all = get_f16(p + 82);
    for (int j = 0; j < 16; j++) {
      const float d = d_all * (float)(p[j] & 15);
      if (!truthy(d)) continue;
      const float dm = m_all * (float)(p[j] >> 4);
      for (int ii = 0; ii < 16; ii++) L[16 * j + ii] = (uint8_t)clamp(nearest_int((x[16 * j + ii] + dm) / d), 0, 3);
    }
    for (int j = 0; j < QKK; j += 128)
      for (int l = 0; l < 32; l++)
        p[16 + j / 4 + l] = (uint8_t)(L[j + l] | (L[j + l + 32] << 2) | (L[j + l + 64] << 4) | (L[j + l + 96] << 6));
  }
}

inline int q3_scale(const uint8_t* sp, int j) {
  const int lo = j < 8 ? sp[j] & 15 : sp[j - 8] >> 4;
  const int hi = (sp[8 + (j % 4)] >> (2 * (j >> 2))) & 3;
  return (lo | (hi << 4)) - 32;
}

void quant_q3_k(const float* x, uint8_t* p, int nb) {
  int8_t L[QKK];
  float scales[16];
  for (int i = 0; i < nb; i++, p += 110, x += QKK) {
    float max_scale = 0, amax = 0;
    for (int j = 0; j < 16; j++) {
      scales[j] = make_q3_quants(16, 4, x + 16 * j, L + 16 * j);
      const float a = std::fabs(scales[j]);
      if (a > amax) { amax = a; max_scale = scales[j]; }
    }
    uint8_t* sp = p + 96;
    std::memset(sp, 0, 12);
    if (truthy(max_scale)) {
      const float iscale = -32 / max_scale;
      for (int j = 0; j < 16; j++) {
        int l = to_i8(nearest_int(iscale * scales[j]));
        l = clamp(l, -32, 31) + 32;
        if (j < 8) sp[j] = (uint8_t)(l & 15);
        else sp[j - 8] = (uint8_t)(sp[j - 8] | ((l & 15) << 4));
        l >>= 4;
        sp[8 + (j % 4)] = (uint8_t)(sp[8 + (j % 4)] | (l << (2 * (j >> 2))));
      }
      put_f16(p + 108, 1 / iscale);
    } else {
      put_f16(p + 108, 0);
    }
    const float d_all = get_f16(p + 108);
    for (int j = 0; j < 16; j++) {
      const float d = d_all * (float)q3_scale(sp, j);
      if (!truthy(d)) continue;
      for (int ii = 0; ii < 16; ii++) L[16 * j + ii] = (int8_t)(clamp(nearest_int(x[16 * j + ii] / d), -4, 3) + 4);
    }
    std::memset(p, 0, 32);  // hmask: high bit of element j at byte j % 32, bit j / 32
    for (int j = 0; j < QKK; j++)
      if (L[j] > 3) { p[j & 31] |= (uint8_t)(1 << (j >> 5)); L[j] = (int8_t)(L[j] - 4); }
    for (int j = 0; j < QKK; j += 128)
      for (int l = 0; l < 32; l++)
        p[32 + j / 4 + l] = (uint8_t)(L[j + l] | (L[j + l + 32] << 2) | (L[j + l + 64] << 4) | (L[j + l + 96] << 6));
  }
}

// ---- q4_K / q5_K -------------------------------------------------------------------------------------------------

// quantScaleMinBlock of kquants.ts: sub-block searches with weights av_x + |x|, 6-bit scales/mins, requantization
// with the stored scales. Writes d, dmin, scales[12] at p; leaves the levels in L.
void scale_min_block(const float* x, uint8_t* p, uint8_t* L, int nmax, float rmin, int nstep) {
  float w[QKK], mins[8], scales[8];
  float max_scale = 0, max_min = 0;
  for (int j = 0; j < 8; j++) {
    float sum_x2 = 0;
    for (int l = 0; l < 32; l++) sum_x2 = sum_x2 + x[32 * j + l] * x[32 * j + l];
    const float av_x = std::sqrt(sum_x2 / 32);
    for (int l = 0; l < 32; l++) w[32 * j + l] = av_x + std::fabs(x[32 * j + l]);
  }
  if (g_simd) qkx2_x8(32, nmax, x, w, L, mins, scales, rmin, 0.1f, nstep, false);
  else
    for (int j = 0; j < 8; j++) scales[j] = make_qkx2_quants(32, nmax, x + 32 * j, w + 32 * j, L + 32 * j, &mins[j], rmin, 0.1f, nstep, false);
  for (int j = 0; j < 8; j++) {
    if (scales[j] > max_scale) max_scale = scales[j];
    if (mins[j] > max_min) max_min = mins[j];
  }
  const float inv_scale = max_scale > 0 ? 63 / max_scale : 0;
  const float inv_min = max_min > 0 ? 63 / max_min : 0;
  uint8_t* sp = p + 4;
  for (int j = 0; j < 8; j++) {
    const int ls = std::min(63, nearest_int(inv_scale * scales[j]) & 0xff);
    const int lm = std::min(63, nearest_int(inv_min * mins[j]) & 0xff);
    if (j < 4) {
      sp[j] = (uint8_t)ls;
      sp[j + 4] = (uint8_t)lm;
    } else {
      sp[j + 4] = (uint8_t)((ls & 15) | ((lm & 15) << 4));
      sp[j - 4] = (uint8_t)(sp[j - 4] | ((ls >> 4) << 6));
      sp[j] = (uint8_t)(sp[j] | ((lm >> 4) << 6));
    }
  }
  put_f16(p, max_scale / 63);
  put_f16(p + 2, max_min / 63);
  const float d_all = get_f16(p), m_all = get_f16(p + 2);
  for (int j = 0; j < 8; j++) {
    int sc, m;
    scale_min_k4(j, sp, sc, m);
    const float d = d_all * (float)sc;
    if (!truthy(d)) continue;
    const float dm = m_all * (float)m;
    for (int ii = 0; ii < 32; ii++) L[32 * j + ii] = (uint8_t)clamp(nearest_int((x[32 * j + ii] + dm) / d), 0, nmax);
  }
}

void quant_q4_k(const float* x, uint8_t* p, int nb) {
  uint8_t L[QKK];
  for (int i = 0; i < nb; i++, p += 144, x += QKK) {
    scale_min_block(x, p, L, 15, -1.f, 20);
    uint8_t* q = p + 16;
    for (int j = 0; j < QKK; j += 64, q += 32)
      for (int l = 0; l < 32; l++) q[l] = (uint8_t)(L[j + l] | (L[j + l + 32] << 4));
  }
}

void quant_q5_k(const float* x, uint8_t* p, int nb) {
  uint8_t L[QKK];
  for (int i = 0; i < nb; i++, p += 176, x += QKK) {
    scale_min_block(x, p, L, 31, -0.5f, 15);
    uint8_t* qh = p + 16;
    std::memset(qh, 0, 32);
    uint8_t m1 = 1, m2 = 2;
    uint8_t* q = p + 48;
    for (int n = 0; n < QKK; n += 64, q += 32, m1 <<= 2, m2 <<= 2) {
      for (int j = 0; j < 32; j++) {
        int l1 = L[n + j], l2 = L[n + j + 32];
        if (l1 > 15) { l1 -= 16; qh[j] |= m1; }
        if (l2 > 15) { l2 -= 16; qh[j] |= m2; }
        q[j] = (uint8_t)(l1 | (l2 << 4));
      }
    }
  }
}

// ---- q6_K / q8_K -------------------------------------------------------------------------------------------------

void quant_q6_k(const float* x, uint8_t* p, int nb) {
  int8_t L[QKK];
  float scales[16];
  for (int i = 0; i < nb; i++, p += 210, x += QKK) {
    float max_scale = 0, max_abs = 0;
    if (g_simd)
      for (int h = 0; h < 2; h++) qx_x8(16, 32, x + 128 * h, L + 128 * h, scales + 8 * h);
    else
      for (int ib = 0; ib < 16; ib++) scales[ib] = make_qx_quants(16, 32, x + 16 * ib, L + 16 * ib);
    for (int ib = 0; ib < 16; ib++) {
      const float sc = scales[ib];
      if (std::fabs(sc) > max_abs) { max_abs = std::fabs(sc); max_scale = sc; }
    }
    if (max_abs < GROUP_MAX_EPS) {
      std::memset(p, 0, 210);
      continue;
    }
    const float iscale = -128 / max_scale;
    put_f16(p + 208, 1 / iscale);
    for (int ib = 0; ib < 16; ib++) p[192 + ib] = (uint8_t)(std::min(127, nearest_int(iscale * scales[ib])) & 0xff);
    const float d_all = get_f16(p + 208);
    for (int j = 0; j < 16; j++) {
      const float d = d_all * (float)to_i8(p[192 + j]);
      if (!truthy(d)) continue;
      for (int ii = 0; ii < 16; ii++) L[16 * j + ii] = (int8_t)(clamp(nearest_int(x[16 * j + ii] / d), -32, 31) + 32);
    }
    for (int j = 0; j < QKK; j += 128) {
      uint8_t* ql = p + j / 2;
      uint8_t* qh = p + 128 + j / 4;
      for (int l = 0; l < 32; l++) {
        const int a = L[j + l], b = L[j + l + 32], c = L[j + l + 64], e = L[j + l + 96];
        ql[l] = (uint8_t)((a & 15) | ((c & 15) << 4));
        ql[l + 32] = (uint8_t)((b & 15) | ((e & 15) << 4));
        qh[l] = (uint8_t)((a >> 4) | ((b >> 4) << 2) | ((c >> 4) << 4) | ((e >> 4) << 6));
      }
    }
  }
}

void quant_q8_k(const float* x, uint8_t* p, int nb) {
  for (int i = 0; i < nb; i++, p += 292, x += QKK) {
    float max = 0, amax = 0;
    for (int j = 0; j < QKK; j++) {
      const float ax = std::fabs(x[j]);
      if (ax > amax) { amax = ax; max = x[j]; }
    }
    if (!truthy(amax)) {
      std::memset(p, 0, 292);
      continue;
    }
    const float iscale = -127 / max;
    for (int j = 0; j < QKK; j++) p[4 + j] = (uint8_t)(std::min(127, nearest_int(iscale * x[j])) & 0xff);
    for (int j = 0; j < 16; j++) {
      int sum = 0;
      for (int ii = 0; ii < 16; ii++) sum += to_i8(p[4 + 16 * j + ii]);
      const int16_t s16 = (int16_t)sum;
      std::memcpy(p + 260 + 2 * j, &s16, 2);
    }
    const float d = 1 / iscale;
    std::memcpy(p, &d, 4);
  }
}

// ---- IQ4_NL / IQ4_XS (iquants.ts: quantize_row_iq4_nl_impl, ntry 7, no importance matrix) ---------------------

inline int best_index(float x) {
  const int8_t* v = kvalues_iq4nl;
  if (x <= (float)v[0]) return 0;
  if (x >= (float)v[15]) return 15;
  int ml = 0, mu = 15;
  while (mu - ml > 1) {
    const int mav = (ml + mu) >> 1;
    if (x < (float)v[mav]) mu = mav;
    else ml = mav;
  }
  return x - (float)v[mu - 1] < (float)v[mu] - x ? mu - 1 : mu;
}

// One block of 32: the best scale over 2·7+1 trials (weights x²); L gets the first (pre-trial) assignment.
float iq4_block_scale(const float* x, uint8_t* L) {
  constexpr int NTRY = 7;
  const int8_t* v = kvalues_iq4nl;
  float weight[32];
  float amax = 0, max = 0;
  for (int j = 0; j < 32; j++) {
    weight[j] = x[j] * x[j];
    const float ax = std::fabs(x[j]);
    if (ax > amax) { amax = ax; max = x[j]; }
  }
  if (amax < GROUP_MAX_EPS) return 0;
  float d = -max / (float)v[0];
  float id = 1 / d;
  float sumqx = 0, sumq2 = 0;
  for (int j = 0; j < 32; j++) {
    const int l = best_index(id * x[j]);
    L[j] = (uint8_t)l;
    const float q = (float)v[l], wq = weight[j] * q;
    sumqx = sumqx + wq * x[j];
    sumq2 = sumq2 + wq * q;
  }
  d = sumq2 > 0 ? sumqx / sumq2 : 0;
  float best = d * sumqx;
  for (int itry = -NTRY; itry <= NTRY; itry++) {
    id = (float)(itry + v[0]) / max;
    sumqx = 0;
    sumq2 = 0;
    for (int j = 0; j < 32; j++) {
      const float q = (float)v[best_index(id * x[j])], wq = weight[j] * q;
      sumqx = sumqx + wq * x[j];
      sumq2 = sumq2 + wq * q;
    }
    if (sumq2 > 0 && sumqx * sumqx > best * sumq2) {
      d = sumqx / sumq2;
      best = d * sumqx;
    }
  }
  return d;
}

inline void pack_nibbles(const uint8_t* L, int n, uint8_t* p) {
  for (int i = 0; i < n / 32; i++)
    for (int j = 0; j < 16; j++) p[16 * i + j] = (uint8_t)(L[32 * i + j] | (L[32 * i + 16 + j] << 4));
}

void quant_iq4_nl(const float* x, uint8_t* p, int nb) {
  uint8_t L[32];
  for (int i = 0; i < nb; i++, p += 18, x += 32) {
    const float d = iq4_block_scale(x, L);
    put_f16(p, d);
    const float id = truthy(d) ? 1 / d : 0;
    for (int j = 0; j < 32; j++) L[j] = (uint8_t)best_index(id * x[j]);
    pack_nibbles(L, 32, p + 2);
  }
}

void quant_iq4_xs(const float* x, uint8_t* p, int nb) {
  uint8_t L[QKK];
  float scales[8];
  for (int i = 0; i < nb; i++, p += 136, x += QKK) {
    float max_scale = 0, amax_scale = 0;
    for (int ib = 0; ib < 8; ib++) {
      const float d = scales[ib] = iq4_block_scale(x + 32 * ib, L + 32 * ib);
      if (std::fabs(d) > amax_scale) { amax_scale = std::fabs(d); max_scale = d; }
    }
    const float d = -max_scale / 32;  // -0 for an all-zero super-block (f16 0x8000, as ggml)
    put_f16(p, d);
    const float id = truthy(d) ? 1 / d : 0;
    int sh = 0;
    p[4] = p[5] = p[6] = p[7] = 0;
    for (int ib = 0; ib < 8; ib++) {
      int l = clamp(nearest_int(id * scales[ib]), -32, 31);
      const float dl = d * (float)l, idl = truthy(dl) ? 1 / dl : 0;
      for (int j = 0; j < 32; j++) L[32 * ib + j] = (uint8_t)best_index(idl * x[32 * ib + j]);
      l += 32;
      p[4 + (ib >> 1)] = (uint8_t)(p[4 + (ib >> 1)] | ((l & 15) << (4 * (ib % 2))));
      sh |= (l >> 4) << (2 * ib);
    }
    p[2] = (uint8_t)(sh & 0xff);
    p[3] = (uint8_t)((sh >> 8) & 0xff);
    pack_nibbles(L, QKK, p + 8);
  }
}

using QuantFn = void (*)(const float* x, uint8_t* p, int nb);
QuantFn quant_fn(int type) {
  switch (type) {
    case T_Q4_0: return quant_q4_0;
    case T_Q4_1: return quant_q4_1;
    case T_Q5_0: return quant_q5_0;
    case T_Q5_1: return quant_q5_1;
    case T_Q8_0: return quant_q8_0;
    case T_Q2_K: return quant_q2_k;
    case T_Q3_K: return quant_q3_k;
    case T_Q4_K: return quant_q4_k;
    case T_Q5_K: return quant_q5_k;
    case T_Q6_K: return quant_q6_k;
    case T_Q8_K: return quant_q8_k;
    case T_IQ4_NL: return quant_iq4_nl;
    case T_IQ4_XS: return quant_iq4_xs;
    default: return nullptr;
  }
}

}  // namespace

bool can_quantize(int type) { return quant_fn(type) != nullptr; }

void quantize_row(int type, const float* x, uint8_t* out, int K, bool simd) {
  g_simd = simd && qkx2_x8 != nullptr;
  const int bs = (type == T_Q4_0 || type == T_Q4_1 || type == T_Q5_0 || type == T_Q5_1 || type == T_Q8_0 || type == T_IQ4_NL) ? QK : QKK;
  quant_fn(type)(x, out, K / bs);
}

}  // namespace l4
