/**
 * GGML k-quants: 256-element super-blocks with 6- or 8-bit sub-block scales (ggml-common.h), their dequantizers
 * and bit-exact ports of ggml-quants.c's reference quantizers (quantize_row_q{2..6}_K_ref, q8_K), including the
 * scale searches make_qx_quants / make_q3_quants / make_qkx2_quants. llama-quantize without an imatrix calls
 * exactly these, so a tensor quantized here has the same bytes as llama.cpp's.
 *
 * Layouts (bytes):
 *   q2_k [scales 16: lo nibble scale, hi nibble min][qs 64: 2-bit][d f16][dmin f16]             x = d·sc·q - dmin·m
 *   q3_k [hmask 32][qs 64][scales 12: 16 × 6-bit, biased by 32][d f16]                           x = d·(sc-32)·(q-4)
 *   q4_k [d f16][dmin f16][scales 12: 8 × (6-bit scale, 6-bit min)][qs 128]                      x = d·sc·q - dmin·m
 *   q5_k [d f16][dmin f16][scales 12][qh 32][qs 128]                                             (q gains bit 4 from qh)
 *   q6_k [ql 128][qh 64][scales i8 ×16][d f16]                                                   x = d·sc·(q-32)
 *   q8_k [d f32][qs i8 ×256][bsums i16 ×16]                                                      x = d·q
 */
import { checkBlocks, fr, nearestInt, readF16, viaF16, writeF16 } from './f32-math.ts';

const QK_K = 256;
const GROUP_MAX_EPS = fr(1e-15);
const toI8 = (v: number): number => (v << 24) >> 24;

// ---- scale searches (ggml-quants.c helpers), float32 step by step ----------------------------------------------

/**
 * make_qx_quants with rmse_type 1 and no importance weights (w = x²): symmetric levels in [-nmax, nmax-1],
 * tries 19 scales around nmax/max and keeps the least weighted squared error. L gets l + nmax.
 */
function makeQxQuants(n: number, nmax: number, x: Float32Array, xs: number, L: Int8Array | Uint8Array, ls: number): number {
  let max = 0,
    amax = 0;
  for (let i = 0; i < n; i++) {
    const ax = Math.abs(x[xs + i]!);
    if (ax > amax) {
      amax = ax;
      max = x[xs + i]!;
    }
  }
  if (amax < GROUP_MAX_EPS) {
    for (let i = 0; i < n; i++) L[ls + i] = 0;
    return 0;
  }
  let iscale = fr(-nmax / max);
  let sumlx = 0,
    suml2 = 0;
  for (let i = 0; i < n; i++) {
    const xi = x[xs + i]!;
    let l = nearestInt(fr(iscale * xi));
    l = Math.max(-nmax, Math.min(nmax - 1, l));
    L[ls + i] = l + nmax;
    const w = fr(xi * xi);
    sumlx = fr(sumlx + fr(fr(w * xi) * l));
    suml2 = fr(suml2 + fr(fr(w * l) * l));
  }
  let scale = suml2 ? fr(sumlx / suml2) : 0;
  let best = fr(scale * sumlx);
  for (let is = -9; is <= 9; is++) {
    if (is === 0) continue;
    iscale = fr(-fr(nmax + fr(fr(0.1) * is)) / max);
    sumlx = 0;
    suml2 = 0;
    for (let i = 0; i < n; i++) {
      const xi = x[xs + i]!;
      let l = nearestInt(fr(iscale * xi));
      l = Math.max(-nmax, Math.min(nmax - 1, l));
      const w = fr(xi * xi);
      sumlx = fr(sumlx + fr(fr(w * xi) * l));
      suml2 = fr(suml2 + fr(fr(w * l) * l));
    }
    if (suml2 > 0 && fr(sumlx * sumlx) > fr(best * suml2)) {
      for (let i = 0; i < n; i++) {
        const l = nearestInt(fr(iscale * x[xs + i]!));
        L[ls + i] = nmax + Math.max(-nmax, Math.min(nmax - 1, l));
      }
      scale = fr(sumlx / suml2);
      best = fr(scale * sumlx);
    }
  }
  return scale;
}

/** make_q3_quants(do_rmse = true): symmetric levels with up to 5 rounds of per-element refinement. */
function makeQ3Quants(n: number, nmax: number, x: Float32Array, xs: number, L: Int8Array, ls: number): number {
  let max = 0,
    amax = 0;
  for (let i = 0; i < n; i++) {
    const ax = Math.abs(x[xs + i]!);
    if (ax > amax) {
      amax = ax;
      max = x[xs + i]!;
    }
  }
  if (amax < GROUP_MAX_EPS) {
    for (let i = 0; i < n; i++) L[ls + i] = 0;
    return 0;
  }
  const iscale = fr(-nmax / max);
  let sumlx = 0,
    suml2 = 0;
  for (let i = 0; i < n; i++) {
    const xi = x[xs + i]!;
    let l = nearestInt(fr(iscale * xi));
    l = Math.max(-nmax, Math.min(nmax - 1, l));
    L[ls + i] = l;
    const w = fr(xi * xi);
    sumlx = fr(sumlx + fr(fr(w * xi) * l));
    suml2 = fr(suml2 + fr(fr(w * l) * l));
  }
  for (let itry = 0; itry < 5; itry++) {
    let changed = 0;
    for (let i = 0; i < n; i++) {
      const xi = x[xs + i]!,
        Li = L[ls + i]!;
      const w = fr(xi * xi);
      let slx = fr(sumlx - fr(fr(w * xi) * Li));
      if (slx > 0) {
        let sl2 = fr(suml2 - fr(fr(w * Li) * Li));
        let nl = nearestInt(fr(fr(xi * sl2) / slx));
        nl = Math.max(-nmax, Math.min(nmax - 1, nl));
        if (nl !== Li) {
          slx = fr(slx + fr(fr(w * xi) * nl));
          sl2 = fr(sl2 + fr(fr(w * nl) * nl));
          if (sl2 > 0 && fr(fr(slx * slx) * suml2) > fr(fr(sumlx * sumlx) * sl2)) {
            L[ls + i] = nl;
            sumlx = slx;
            suml2 = sl2;
            changed++;
          }
        }
      }
    }
    if (!changed) break;
  }
  for (let i = 0; i < n; i++) L[ls + i] = L[ls + i]! + nmax;
  return suml2 > 0 ? fr(sumlx / suml2) : 0;
}

const laux = new Uint8Array(32);
const xm = new Float32Array(32);

/**
 * make_qkx2_quants: asymmetric levels 0..nmax with a min (returned through out[0] as -min, scale as return).
 * Tries nstep+1 inverse scales (rmin + rdelta·is + nmax)/(max-min), solving the weighted least-squares
 * scale/min for each, and keeps the least weighted error (|diff| when useMad).
 */
function makeQkx2Quants(
  n: number,
  nmax: number,
  x: Float32Array,
  xs: number,
  w: Float32Array,
  L: Uint8Array,
  ls: number,
  theMin: Float32Array,
  mi: number,
  rmin: number,
  rdelta: number,
  nstep: number,
  useMad: boolean,
): number {
  let min = x[xs]!,
    max = x[xs]!;
  let sumW = w[0]!;
  let sumX = fr(sumW * x[xs]!);
  for (let i = 1; i < n; i++) {
    const xi = x[xs + i]!;
    if (xi < min) min = xi;
    if (xi > max) max = xi;
    sumW = fr(sumW + w[i]!);
    sumX = fr(sumX + fr(w[i]! * xi));
  }
  if (min > 0) min = 0;
  if (max === min) {
    for (let i = 0; i < n; i++) L[ls + i] = 0;
    theMin[mi] = -min;
    return 0;
  }
  // x - min, cached until min changes (C recomputes it in every trial).
  for (let i = 0; i < n; i++) xm[i] = fr(x[xs + i]! - min);
  let iscale = fr(nmax / fr(max - min));
  let scale = fr(1 / iscale);
  let bestError = 0;
  for (let i = 0; i < n; i++) {
    const l = nearestInt(fr(iscale * xm[i]!));
    L[ls + i] = Math.max(0, Math.min(nmax, l));
    let diff = fr(fr(fr(scale * L[ls + i]!) + min) - x[xs + i]!);
    diff = useMad ? Math.abs(diff) : fr(diff * diff);
    bestError = fr(bestError + fr(w[i]! * diff));
  }
  if (nstep < 1) {
    theMin[mi] = -min;
    return scale;
  }
  for (let is = 0; is <= nstep; is++) {
    iscale = fr(fr(fr(rmin + fr(rdelta * is)) + nmax) / fr(max - min));
    let sumL = 0,
      sumL2 = 0,
      sumXL = 0;
    for (let i = 0; i < n; i++) {
      const xi = x[xs + i]!;
      let l = nearestInt(fr(iscale * xm[i]!));
      l = Math.max(0, Math.min(nmax, l));
      laux[i] = l;
      const wl = fr(w[i]! * l);
      sumL = fr(sumL + wl);
      sumL2 = fr(sumL2 + fr(wl * l));
      sumXL = fr(sumXL + fr(wl * xi));
    }
    const D = fr(fr(sumW * sumL2) - fr(sumL * sumL));
    if (D > 0) {
      let thisScale = fr(fr(fr(sumW * sumXL) - fr(sumX * sumL)) / D);
      let thisMin = fr(fr(fr(sumL2 * sumX) - fr(sumL * sumXL)) / D);
      if (thisMin > 0) {
        thisMin = 0;
        thisScale = fr(sumXL / sumL2);
      }
      let cur = 0;
      for (let i = 0; i < n; i++) {
        let diff = fr(fr(fr(thisScale * laux[i]!) + thisMin) - x[xs + i]!);
        diff = useMad ? Math.abs(diff) : fr(diff * diff);
        cur = fr(cur + fr(w[i]! * diff));
      }
      if (cur < bestError) {
        for (let i = 0; i < n; i++) L[ls + i] = laux[i]!;
        bestError = cur;
        scale = thisScale;
        min = thisMin;
        // Later trials subtract the new min (as the C code does).
        for (let i = 0; i < n; i++) xm[i] = fr(x[xs + i]! - min);
      }
    }
  }
  theMin[mi] = -min;
  return scale;
}

/** The 6-bit scale/min pair j of a q4_k/q5_k `scales[12]` field (get_scale_min_k4). */
function scaleMinK4(j: number, q: Uint8Array, p: number): [number, number] {
  if (j < 4) return [q[p + j]! & 63, q[p + j + 4]! & 63];
  return [(q[p + j + 4]! & 0xf) | ((q[p + j - 4]! >> 6) << 4), (q[p + j + 4]! >> 4) | ((q[p + j]! >> 6) << 4)];
}

// ---- q2_k -------------------------------------------------------------------------------------------------------

export function dequantQ2K(src: Uint8Array, off: number, n: number, out: Float32Array, o: number): void {
  const nb = checkBlocks(n, QK_K, 'q2_k');
  for (let i = 0, p = off; i < nb; i++, p += 84) {
    const d = readF16(src, p + 80),
      dmin = readF16(src, p + 82);
    let is = 0;
    for (let half = 0; half < 2; half++) {
      const q = p + 16 + half * 32;
      for (let shift = 0; shift < 8; shift += 2) {
        for (let k = 0; k < 2; k++) {
          const sc = src[p + is++]!;
          const dl = d * (sc & 15),
            ml = dmin * (sc >> 4);
          for (let l = 0; l < 16; l++) out[o++] = dl * ((src[q + k * 16 + l]! >> shift) & 3) - ml;
        }
      }
    }
  }
}

export function quantQ2K(x: Float32Array, s: number, n: number, out: Uint8Array, off: number): void {
  const nb = checkBlocks(n, QK_K, 'q2_k');
  const L = new Uint8Array(QK_K),
    w = new Float32Array(16),
    mins = new Float32Array(16),
    scales = new Float32Array(16);
  for (let i = 0, p = off; i < nb; i++, p += 84, s += QK_K) {
    let maxScale = 0,
      maxMin = 0;
    for (let j = 0; j < 16; j++) {
      for (let l = 0; l < 16; l++) w[l] = Math.abs(x[s + 16 * j + l]!);
      scales[j] = makeQkx2Quants(16, 3, x, s + 16 * j, w, L, 16 * j, mins, j, -0.5, fr(0.1), 15, true);
      if (scales[j]! > maxScale) maxScale = scales[j]!;
      if (mins[j]! > maxMin) maxMin = mins[j]!;
    }
    if (maxScale > 0) {
      const iscale = fr(15 / maxScale);
      for (let j = 0; j < 16; j++) out[p + j] = nearestInt(fr(iscale * scales[j]!)) & 0xff;
      writeF16(out, p + 80, fr(maxScale / 15));
    } else {
      for (let j = 0; j < 16; j++) out[p + j] = 0;
      writeF16(out, p + 80, 0);
    }
    if (maxMin > 0) {
      const iscale = fr(15 / maxMin);
      for (let j = 0; j < 16; j++) out[p + j] = (out[p + j]! | (nearestInt(fr(iscale * mins[j]!)) << 4)) & 0xff;
      writeF16(out, p + 82, fr(maxMin / 15));
    } else {
      writeF16(out, p + 82, 0);
    }
    const dAll = readF16(out, p + 80),
      mAll = readF16(out, p + 82);
    for (let j = 0; j < 16; j++) {
      const d = fr(dAll * (out[p + j]! & 15));
      if (!d) continue;
      const dm = fr(mAll * (out[p + j]! >> 4));
      for (let ii = 0; ii < 16; ii++) {
        const l = nearestInt(fr(fr(x[s + 16 * j + ii]! + dm) / d));
        L[16 * j + ii] = Math.max(0, Math.min(3, l));
      }
    }
    for (let j = 0; j < QK_K; j += 128) {
      for (let l = 0; l < 32; l++) {
        out[p + 16 + j / 4 + l] = L[j + l]! | (L[j + l + 32]! << 2) | (L[j + l + 64]! << 4) | (L[j + l + 96]! << 6);
      }
    }
  }
}

// ---- q3_k -------------------------------------------------------------------------------------------------------

/** The 16 signed 6-bit scales of a q3_k block (low 4 bits in bytes 0..7, high 2 bits packed in bytes 8..11). */
function q3Scale(src: Uint8Array, sp: number, j: number): number {
  const lo = j < 8 ? src[sp + j]! & 15 : src[sp + j - 8]! >> 4;
  const hi = (src[sp + 8 + (j % 4)]! >> (2 * (j >> 2))) & 3;
  return (lo | (hi << 4)) - 32;
}

export function dequantQ3K(src: Uint8Array, off: number, n: number, out: Float32Array, o: number): void {
  const nb = checkBlocks(n, QK_K, 'q3_k');
  for (let i = 0, p = off; i < nb; i++, p += 110) {
    const dAll = readF16(src, p + 108);
    let is = 0,
      m = 1;
    for (let half = 0; half < 2; half++) {
      const q = p + 32 + half * 32;
      for (let shift = 0; shift < 8; shift += 2, m <<= 1) {
        for (let k = 0; k < 2; k++) {
          const dl = dAll * q3Scale(src, p + 96, is++);
          for (let l = 0; l < 16; l++) {
            const hm = src[p + k * 16 + l]! & m ? 0 : 4;
            out[o++] = dl * (((src[q + k * 16 + l]! >> shift) & 3) - hm);
          }
        }
      }
    }
  }
}

export function quantQ3K(x: Float32Array, s: number, n: number, out: Uint8Array, off: number): void {
  const nb = checkBlocks(n, QK_K, 'q3_k');
  const L = new Int8Array(QK_K),
    scales = new Float32Array(16);
  for (let i = 0, p = off; i < nb; i++, p += 110, s += QK_K) {
    let maxScale = 0,
      amax = 0;
    for (let j = 0; j < 16; j++) {
      scales[j] = makeQ3Quants(16, 4, x, s + 16 * j, L, 16 * j);
      const a = Math.abs(scales[j]!);
      if (a > amax) {
        amax = a;
        maxScale = scales[j]!;
      }
    }
    const sp = p + 96;
    out.fill(0, sp, sp + 12);
    if (maxScale) {
      const iscale = fr(-32 / maxScale);
      for (let j = 0; j < 16; j++) {
        let l = toI8(nearestInt(fr(iscale * scales[j]!)));
        l = Math.max(-32, Math.min(31, l)) + 32;
        if (j < 8) out[sp + j] = l & 15;
        else out[sp + j - 8] = out[sp + j - 8]! | ((l & 15) << 4);
        l >>= 4;
        out[sp + 8 + (j % 4)] = out[sp + 8 + (j % 4)]! | (l << (2 * (j >> 2)));
      }
      writeF16(out, p + 108, fr(1 / iscale));
    } else {
      writeF16(out, p + 108, 0);
    }
    const dAll = readF16(out, p + 108);
    for (let j = 0; j < 16; j++) {
      const d = fr(dAll * q3Scale(out, sp, j));
      if (!d) continue;
      for (let ii = 0; ii < 16; ii++) {
        const l = nearestInt(fr(x[s + 16 * j + ii]! / d));
        L[16 * j + ii] = Math.max(-4, Math.min(3, l)) + 4;
      }
    }
    // High bit of element j goes to hmask[j % 32], bit j / 32.
    out.fill(0, p, p + 32);
    for (let j = 0; j < QK_K; j++) {
      if (L[j]! > 3) {
        out[p + (j & 31)] = out[p + (j & 31)]! | (1 << (j >> 5));
        L[j] = L[j]! - 4;
      }
    }
    for (let j = 0; j < QK_K; j += 128) {
      for (let l = 0; l < 32; l++) {
        out[p + 32 + j / 4 + l] = L[j + l]! | (L[j + l + 32]! << 2) | (L[j + l + 64]! << 4) | (L[j + l + 96]! << 6);
      }
    }
  }
}

// ---- q4_k / q5_k (shared scale search and scale packing) ---------------------------------------------------------

/**
 * The common first half of quantize_row_q{4,5}_K_ref: per 32-element sub-block make_qkx2_quants with weights
 * av_x + |x|, then 6-bit scales/mins relative to the block maxima, then requantization with the stored
 * (fp16-rounded) scales. Writes d, dmin, scales[12] at p and leaves the levels in L.
 */
function quantScaleMinBlock(
  x: Float32Array,
  s: number,
  out: Uint8Array,
  p: number,
  L: Uint8Array,
  nmax: number,
  rmin: number,
  nstep: number,
  w: Float32Array,
  mins: Float32Array,
  scales: Float32Array,
): void {
  let maxScale = 0,
    maxMin = 0;
  for (let j = 0; j < 8; j++) {
    let sumX2 = 0;
    for (let l = 0; l < 32; l++) {
      const v = x[s + 32 * j + l]!;
      sumX2 = fr(sumX2 + fr(v * v));
    }
    const avX = fr(Math.sqrt(fr(sumX2 / 32)));
    for (let l = 0; l < 32; l++) w[l] = fr(avX + Math.abs(x[s + 32 * j + l]!));
    scales[j] = makeQkx2Quants(32, nmax, x, s + 32 * j, w, L, 32 * j, mins, j, rmin, fr(0.1), nstep, false);
    if (scales[j]! > maxScale) maxScale = scales[j]!;
    if (mins[j]! > maxMin) maxMin = mins[j]!;
  }
  const invScale = maxScale > 0 ? fr(63 / maxScale) : 0;
  const invMin = maxMin > 0 ? fr(63 / maxMin) : 0;
  const sp = p + 4;
  for (let j = 0; j < 8; j++) {
    const ls = Math.min(63, nearestInt(fr(invScale * scales[j]!)) & 0xff);
    const lm = Math.min(63, nearestInt(fr(invMin * mins[j]!)) & 0xff);
    if (j < 4) {
      out[sp + j] = ls;
      out[sp + j + 4] = lm;
    } else {
      out[sp + j + 4] = (ls & 15) | ((lm & 15) << 4);
      out[sp + j - 4] = out[sp + j - 4]! | ((ls >> 4) << 6);
      out[sp + j] = out[sp + j]! | ((lm >> 4) << 6);
    }
  }
  writeF16(out, p, fr(maxScale / 63));
  writeF16(out, p + 2, fr(maxMin / 63));
  const dAll = readF16(out, p),
    mAll = readF16(out, p + 2);
  for (let j = 0; j < 8; j++) {
    const [sc, m] = scaleMinK4(j, out, sp);
    const d = fr(dAll * sc);
    if (!d) continue;
    const dm = fr(mAll * m);
    for (let ii = 0; ii < 32; ii++) {
      const l = nearestInt(fr(fr(x[s + 32 * j + ii]! + dm) / d));
      L[32 * j + ii] = Math.max(0, Math.min(nmax, l));
    }
  }
}

export function dequantQ4K(src: Uint8Array, off: number, n: number, out: Float32Array, o: number): void {
  const nb = checkBlocks(n, QK_K, 'q4_k');
  for (let i = 0, p = off; i < nb; i++, p += 144) {
    const d = readF16(src, p),
      dmin = readF16(src, p + 2);
    for (let j = 0, q = p + 16; j < 4; j++, q += 32) {
      const [s1, m1] = scaleMinK4(2 * j, src, p + 4),
        [s2, m2] = scaleMinK4(2 * j + 1, src, p + 4);
      const d1 = d * s1,
        mm1 = dmin * m1,
        d2 = d * s2,
        mm2 = dmin * m2;
      for (let l = 0; l < 32; l++) out[o + l] = d1 * (src[q + l]! & 15) - mm1;
      for (let l = 0; l < 32; l++) out[o + 32 + l] = d2 * (src[q + l]! >> 4) - mm2;
      o += 64;
    }
  }
}

export function quantQ4K(x: Float32Array, s: number, n: number, out: Uint8Array, off: number): void {
  const nb = checkBlocks(n, QK_K, 'q4_k');
  const L = new Uint8Array(QK_K),
    w = new Float32Array(32),
    mins = new Float32Array(8),
    scales = new Float32Array(8);
  for (let i = 0, p = off; i < nb; i++, p += 144, s += QK_K) {
    quantScaleMinBlock(x, s, out, p, L, 15, -1, 20, w, mins, scales);
    for (let j = 0, q = p + 16; j < QK_K; j += 64, q += 32) {
      for (let l = 0; l < 32; l++) out[q + l] = L[j + l]! | (L[j + l + 32]! << 4);
    }
  }
}

export function dequantQ5K(src: Uint8Array, off: number, n: number, out: Float32Array, o: number): void {
  const nb = checkBlocks(n, QK_K, 'q5_k');
  for (let i = 0, p = off; i < nb; i++, p += 176) {
    const d = readF16(src, p),
      dmin = readF16(src, p + 2);
    const qh = p + 16;
    let u1 = 1,
      u2 = 2;
    for (let j = 0, q = p + 48; j < 4; j++, q += 32, u1 <<= 2, u2 <<= 2) {
      const [s1, m1] = scaleMinK4(2 * j, src, p + 4),
        [s2, m2] = scaleMinK4(2 * j + 1, src, p + 4);
      const d1 = d * s1,
        mm1 = dmin * m1,
        d2 = d * s2,
        mm2 = dmin * m2;
      for (let l = 0; l < 32; l++) out[o + l] = d1 * ((src[q + l]! & 15) + (src[qh + l]! & u1 ? 16 : 0)) - mm1;
      for (let l = 0; l < 32; l++) out[o + 32 + l] = d2 * ((src[q + l]! >> 4) + (src[qh + l]! & u2 ? 16 : 0)) - mm2;
      o += 64;
    }
  }
}

export function quantQ5K(x: Float32Array, s: number, n: number, out: Uint8Array, off: number): void {
  const nb = checkBlocks(n, QK_K, 'q5_k');
  const L = new Uint8Array(QK_K),
    w = new Float32Array(32),
    mins = new Float32Array(8),
    scales = new Float32Array(8);
  for (let i = 0, p = off; i < nb; i++, p += 176, s += QK_K) {
    quantScaleMinBlock(x, s, out, p, L, 31, -0.5, 15, w, mins, scales);
    const qh = p + 16;
    out.fill(0, qh, qh + 32);
    let m1 = 1,
      m2 = 2;
    for (let nn = 0, q = p + 48; nn < QK_K; nn += 64, q += 32, m1 <<= 2, m2 <<= 2) {
      for (let j = 0; j < 32; j++) {
        let l1 = L[nn + j]!,
          l2 = L[nn + j + 32]!;
        if (l1 > 15) {
          l1 -= 16;
          out[qh + j] = out[qh + j]! | m1;
        }
        if (l2 > 15) {
          l2 -= 16;
          out[qh + j] = out[qh + j]! | m2;
        }
        out[q + j] = l1 | (l2 << 4);
      }
    }
  }
}

// ---- q6_k -------------------------------------------------------------------------------------------------------

export function dequantQ6K(src: Uint8Array, off: number, n: number, out: Float32Array, o: number): void {
  const nb = checkBlocks(n, QK_K, 'q6_k');
  for (let i = 0, p = off; i < nb; i++, p += 210) {
    const d = readF16(src, p + 208);
    for (let half = 0; half < 2; half++, o += 128) {
      const ql = p + half * 64,
        qh = p + 128 + half * 32,
        sc = p + 192 + half * 8;
      for (let l = 0; l < 32; l++) {
        const is = l >> 4;
        const h = src[qh + l]!;
        const q1 = ((src[ql + l]! & 15) | ((h & 3) << 4)) - 32;
        const q2 = ((src[ql + l + 32]! & 15) | (((h >> 2) & 3) << 4)) - 32;
        const q3 = ((src[ql + l]! >> 4) | (((h >> 4) & 3) << 4)) - 32;
        const q4 = ((src[ql + l + 32]! >> 4) | (((h >> 6) & 3) << 4)) - 32;
        // d·sc is exact in float32 (11 + 8 bits), so one rounding at the store matches C's (d*sc)*q.
        out[o + l] = d * toI8(src[sc + is]!) * q1;
        out[o + l + 32] = d * toI8(src[sc + is + 2]!) * q2;
        out[o + l + 64] = d * toI8(src[sc + is + 4]!) * q3;
        out[o + l + 96] = d * toI8(src[sc + is + 6]!) * q4;
      }
    }
  }
}

export function quantQ6K(x: Float32Array, s: number, n: number, out: Uint8Array, off: number): void {
  const nb = checkBlocks(n, QK_K, 'q6_k');
  const L = new Int8Array(QK_K),
    scales = new Float32Array(16);
  for (let i = 0, p = off; i < nb; i++, p += 210, s += QK_K) {
    let maxScale = 0,
      maxAbs = 0;
    for (let ib = 0; ib < 16; ib++) {
      const sc = makeQxQuants(16, 32, x, s + 16 * ib, L, 16 * ib);
      scales[ib] = sc;
      if (Math.abs(sc) > maxAbs) {
        maxAbs = Math.abs(sc);
        maxScale = sc;
      }
    }
    if (maxAbs < GROUP_MAX_EPS) {
      out.fill(0, p, p + 210);
      continue;
    }
    const iscale = fr(-128 / maxScale);
    writeF16(out, p + 208, fr(1 / iscale));
    for (let ib = 0; ib < 16; ib++) out[p + 192 + ib] = Math.min(127, nearestInt(fr(iscale * scales[ib]!))) & 0xff;
    const dAll = readF16(out, p + 208);
    for (let j = 0; j < 16; j++) {
      const d = fr(dAll * toI8(out[p + 192 + j]!));
      if (!d) continue;
      for (let ii = 0; ii < 16; ii++) {
        const l = nearestInt(fr(x[s + 16 * j + ii]! / d));
        L[16 * j + ii] = Math.max(-32, Math.min(31, l)) + 32;
      }
    }
    for (let j = 0; j < QK_K; j += 128) {
      const ql = p + j / 2,
        qh = p + 128 + j / 4;
      for (let l = 0; l < 32; l++) {
        const a = L[j + l]!,
          b = L[j + l + 32]!,
          c = L[j + l + 64]!,
          e = L[j + l + 96]!;
        out[ql + l] = (a & 15) | ((c & 15) << 4);
        out[ql + l + 32] = (b & 15) | ((e & 15) << 4);
        out[qh + l] = (a >> 4) | ((b >> 4) << 2) | ((c >> 4) << 4) | ((e >> 4) << 6);
      }
    }
  }
}

// ---- q8_k (activation format of the k-quant dot products) --------------------------------------------------------

export function dequantQ8K(src: Uint8Array, off: number, n: number, out: Float32Array, o: number): void {
  const nb = checkBlocks(n, QK_K, 'q8_k');
  const dv = new DataView(src.buffer, src.byteOffset, src.byteLength);
  for (let i = 0, p = off; i < nb; i++, p += 292, o += QK_K) {
    const d = dv.getFloat32(p, true);
    for (let j = 0; j < QK_K; j++) out[o + j] = d * toI8(src[p + 4 + j]!);
  }
}

export function quantQ8K(x: Float32Array, s: number, n: number, out: Uint8Array, off: number): void {
  const nb = checkBlocks(n, QK_K, 'q8_k');
  const dv = new DataView(out.buffer, out.byteOffset, out.byteLength);
  for (let i = 0, p = off; i < nb; i++, p += 292, s += QK_K) {
    let max = 0,
      amax = 0;
    for (let j = 0; j < QK_K; j++) {
      const ax = Math.abs(x[s + j]!);
      if (ax > amax) {
        amax = ax;
        max = x[s + j]!;
      }
    }
    if (!amax) {
      dv.setFloat32(p, 0, true);
      out.fill(0, p + 4, p + 292);
      continue;
    }
    const iscale = fr(-127 / max);
    for (let j = 0; j < QK_K; j++) out[p + 4 + j] = Math.min(127, nearestInt(fr(iscale * x[s + j]!))) & 0xff;
    for (let j = 0; j < 16; j++) {
      let sum = 0;
      for (let ii = 0; ii < 16; ii++) sum += toI8(out[p + 4 + 16 * j + ii]!);
      dv.setInt16(p + 260 + 2 * j, sum, true);
    }
    dv.setFloat32(p, fr(1 / iscale), true);
  }
}

/** Exposed for tests of the fp16 round trip used by every k-quant. */
export const _internal = { viaF16, makeQxQuants, makeQkx2Quants };
