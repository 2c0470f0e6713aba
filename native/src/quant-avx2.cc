// make_qkx2_quants (quant.cc) for 8 sub-blocks at once, one per AVX2 lane: the scale search that dominates q4_K /
// q5_K / q2_K quantization. Each lane performs exactly the scalar function's float operations in the same order
// (element i of every sub-block is processed together, sums accumulate over i as in the scalar loop), so results
// are bit-identical; branches become per-lane masks. Compiled with -mavx2 but without -mfma and with
// -ffp-contract=off: a fused multiply-add would change the rounding.
#include <immintrin.h>

#include <cstdint>

#include "quant.h"

namespace l4 {

namespace {

inline __m256i nearest_int8(__m256 f) {
  const __m256 v = _mm256_add_ps(f, _mm256_set1_ps(12582912.f));
  __m256i i = _mm256_sub_epi32(_mm256_and_si256(_mm256_castps_si256(v), _mm256_set1_epi32(0x007fffff)), _mm256_set1_epi32(0x00400000));
  const __m256i nan = _mm256_castps_si256(_mm256_cmp_ps(f, f, _CMP_UNORD_Q));  // NaN -> 0, as the scalar helper
  return _mm256_andnot_si256(nan, i);
}
inline __m256 sel(__m256 mask, __m256 a, __m256 b) { return _mm256_blendv_ps(b, a, mask); }  // mask ? a : b
inline __m256 absv(__m256 v) { return _mm256_and_ps(v, _mm256_castsi256_ps(_mm256_set1_epi32(0x7fffffff))); }

}  // namespace

// Sub-block j (j < 8) is x[n·j .. n·j+n) with weights w[n·j ..]; writes L[n·j + i], mins[j] (= -min) and scales[j].
void qkx2_x8_avx2(int n, int nmax, const float* x, const float* w, uint8_t* L, float* mins, float* scales, float rmin, float rdelta,
                  int nstep, bool use_mad) {
  __m256 xt[32], wt[32], xm[32];
  __m256i lb[32], la[32];
  const __m256i gidx = _mm256_mullo_epi32(_mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7), _mm256_set1_epi32(n));
  for (int i = 0; i < n; i++) {
    xt[i] = _mm256_i32gather_ps(x + i, gidx, 4);
    wt[i] = _mm256_i32gather_ps(w + i, gidx, 4);
  }
  const __m256 zero = _mm256_setzero_ps();
  const __m256i izero = _mm256_setzero_si256(), inmax = _mm256_set1_epi32(nmax);
  const __m256 fnmax = _mm256_set1_ps((float)nmax);
  __m256 mn = xt[0], mx = xt[0];
  __m256 sum_w = wt[0];
  __m256 sum_x = _mm256_mul_ps(sum_w, xt[0]);
  for (int i = 1; i < n; i++) {
    mn = _mm256_min_ps(xt[i], mn);  // x < min ? x : min
    mx = _mm256_max_ps(xt[i], mx);  // x > max ? x : max
    sum_w = _mm256_add_ps(sum_w, wt[i]);
    sum_x = _mm256_add_ps(sum_x, _mm256_mul_ps(wt[i], xt[i]));
  }
  mn = sel(_mm256_cmp_ps(mn, zero, _CMP_GT_OQ), zero, mn);
  const __m256 flat = _mm256_cmp_ps(mx, mn, _CMP_EQ_OQ);  // max == min: L = 0, scale 0
  for (int i = 0; i < n; i++) xm[i] = _mm256_sub_ps(xt[i], mn);
  __m256 iscale = _mm256_div_ps(fnmax, _mm256_sub_ps(mx, mn));
  __m256 scale = _mm256_div_ps(_mm256_set1_ps(1.f), iscale);
  __m256 best = zero;
  for (int i = 0; i < n; i++) {
    lb[i] = _mm256_min_epi32(_mm256_max_epi32(nearest_int8(_mm256_mul_ps(iscale, xm[i])), izero), inmax);
    __m256 diff = _mm256_sub_ps(_mm256_add_ps(_mm256_mul_ps(scale, _mm256_cvtepi32_ps(lb[i])), mn), xt[i]);
    diff = use_mad ? absv(diff) : _mm256_mul_ps(diff, diff);
    best = _mm256_add_ps(best, _mm256_mul_ps(wt[i], diff));
  }
  if (nstep >= 1) {
    for (int is = 0; is <= nstep; is++) {
      iscale = _mm256_div_ps(_mm256_add_ps(_mm256_set1_ps(rmin + rdelta * (float)is), fnmax), _mm256_sub_ps(mx, mn));
      __m256 sl = zero, sl2 = zero, sxl = zero;
      for (int i = 0; i < n; i++) {
        la[i] = _mm256_min_epi32(_mm256_max_epi32(nearest_int8(_mm256_mul_ps(iscale, xm[i])), izero), inmax);
        const __m256 l = _mm256_cvtepi32_ps(la[i]);
        const __m256 wl = _mm256_mul_ps(wt[i], l);
        sl = _mm256_add_ps(sl, wl);
        sl2 = _mm256_add_ps(sl2, _mm256_mul_ps(wl, l));
        sxl = _mm256_add_ps(sxl, _mm256_mul_ps(wl, xt[i]));
      }
      const __m256 D = _mm256_sub_ps(_mm256_mul_ps(sum_w, sl2), _mm256_mul_ps(sl, sl));
      const __m256 dpos = _mm256_cmp_ps(D, zero, _CMP_GT_OQ);
      if (_mm256_movemask_ps(dpos) == 0) continue;
      __m256 this_scale = _mm256_div_ps(_mm256_sub_ps(_mm256_mul_ps(sum_w, sxl), _mm256_mul_ps(sum_x, sl)), D);
      __m256 this_min = _mm256_div_ps(_mm256_sub_ps(_mm256_mul_ps(sl2, sum_x), _mm256_mul_ps(sl, sxl)), D);
      const __m256 mpos = _mm256_cmp_ps(this_min, zero, _CMP_GT_OQ);
      this_scale = sel(mpos, _mm256_div_ps(sxl, sl2), this_scale);
      this_min = sel(mpos, zero, this_min);
      __m256 cur = zero;
      for (int i = 0; i < n; i++) {
        __m256 diff = _mm256_sub_ps(_mm256_add_ps(_mm256_mul_ps(this_scale, _mm256_cvtepi32_ps(la[i])), this_min), xt[i]);
        diff = use_mad ? absv(diff) : _mm256_mul_ps(diff, diff);
        cur = _mm256_add_ps(cur, _mm256_mul_ps(wt[i], diff));
      }
      const __m256 take = _mm256_and_ps(dpos, _mm256_cmp_ps(cur, best, _CMP_LT_OQ));
      if (_mm256_movemask_ps(take) == 0) continue;
      const __m256i takei = _mm256_castps_si256(take);
      for (int i = 0; i < n; i++) lb[i] = _mm256_blendv_epi8(lb[i], la[i], takei);
      best = sel(take, cur, best);
      scale = sel(take, this_scale, scale);
      mn = sel(take, this_min, mn);
      for (int i = 0; i < n; i++) xm[i] = _mm256_sub_ps(xt[i], mn);
    }
  }
  const __m256i flati = _mm256_castps_si256(flat);
  alignas(32) int32_t lv[8];
  for (int i = 0; i < n; i++) {
    _mm256_store_si256((__m256i*)lv, _mm256_andnot_si256(flati, lb[i]));
    for (int j = 0; j < 8; j++) L[n * j + i] = (uint8_t)lv[j];
  }
  _mm256_storeu_ps(scales, sel(flat, zero, scale));
  _mm256_storeu_ps(mins, _mm256_xor_ps(mn, _mm256_set1_ps(-0.f)));  // -min (flat lanes: the clamped first minimum)
}

// make_qx_quants (quant.cc, rmse_type 1, weights x²) for the 8 sub-blocks x[n·j ..], j < 8: L[n·j + i] = l + nmax,
// scales[j] = the scale, as 8 scalar calls give them (q6_K's search).
void qx_x8_avx2(int n, int nmax, const float* x, int8_t* L, float* scales) {
  __m256 xt[32];
  __m256i lb[32], la[32];
  const __m256i gidx = _mm256_mullo_epi32(_mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7), _mm256_set1_epi32(n));
  for (int i = 0; i < n; i++) xt[i] = _mm256_i32gather_ps(x + i, gidx, 4);
  const __m256 zero = _mm256_setzero_ps();
  const __m256i lo = _mm256_set1_epi32(-nmax), hi = _mm256_set1_epi32(nmax - 1);
  __m256 amax = zero, max = zero;
  for (int i = 0; i < n; i++) {
    const __m256 ax = absv(xt[i]);
    const __m256 gt = _mm256_cmp_ps(ax, amax, _CMP_GT_OQ);
    amax = sel(gt, ax, amax);
    max = sel(gt, xt[i], max);
  }
  const __m256 small = _mm256_cmp_ps(amax, _mm256_set1_ps(1e-15f), _CMP_LT_OQ);  // GROUP_MAX_EPS: L = 0, scale 0
  // One trial: levels for iscale into lv, and the weighted sums.
  auto trial = [&](__m256 iscale, __m256i* lv, __m256& sumlx, __m256& suml2) {
    sumlx = zero;
    suml2 = zero;
    for (int i = 0; i < n; i++) {
      lv[i] = _mm256_min_epi32(_mm256_max_epi32(nearest_int8(_mm256_mul_ps(iscale, xt[i])), lo), hi);
      const __m256 l = _mm256_cvtepi32_ps(lv[i]);
      const __m256 w = _mm256_mul_ps(xt[i], xt[i]);
      sumlx = _mm256_add_ps(sumlx, _mm256_mul_ps(_mm256_mul_ps(w, xt[i]), l));
      suml2 = _mm256_add_ps(suml2, _mm256_mul_ps(_mm256_mul_ps(w, l), l));
    }
  };
  __m256 sumlx, suml2;
  trial(_mm256_div_ps(_mm256_set1_ps((float)-nmax), max), lb, sumlx, suml2);
  __m256 scale = sel(_mm256_cmp_ps(suml2, zero, _CMP_NEQ_OQ), _mm256_div_ps(sumlx, suml2), zero);  // JS truthiness
  __m256 best = _mm256_mul_ps(scale, sumlx);
  for (int is = -9; is <= 9; is++) {
    if (is == 0) continue;
    const __m256 iscale = _mm256_div_ps(_mm256_set1_ps(-((float)nmax + 0.1f * (float)is)), max);
    trial(iscale, la, sumlx, suml2);
    const __m256 take = _mm256_and_ps(_mm256_cmp_ps(suml2, zero, _CMP_GT_OQ),
                                      _mm256_cmp_ps(_mm256_mul_ps(sumlx, sumlx), _mm256_mul_ps(best, suml2), _CMP_GT_OQ));
    if (_mm256_movemask_ps(take) == 0) continue;
    const __m256i takei = _mm256_castps_si256(take);
    for (int i = 0; i < n; i++) lb[i] = _mm256_blendv_epi8(lb[i], la[i], takei);
    scale = sel(take, _mm256_div_ps(sumlx, suml2), scale);
    best = sel(take, _mm256_mul_ps(scale, sumlx), best);
  }
  const __m256i smalli = _mm256_castps_si256(small), bias = _mm256_set1_epi32(nmax);
  alignas(32) int32_t lv[8];
  for (int i = 0; i < n; i++) {
    _mm256_store_si256((__m256i*)lv, _mm256_andnot_si256(smalli, _mm256_add_epi32(lb[i], bias)));
    for (int j = 0; j < 8; j++) L[n * j + i] = (int8_t)lv[j];
  }
  _mm256_storeu_ps(scales, sel(small, zero, scale));
}

}  // namespace l4
