/**
 * GGML i-quants (ggml-common.h): 256-element super-blocks (IQ4_NL: 32) whose codes index shared grids of 8 (or 4)
 * values, with 7 sign bits per 8 values extended to 8 by parity (ksigns_iq2xs), and per-32 (or per-16) odd scales.
 * Dequantizers are exact ports of ggml-quants.c's dequantize_row_iq*; the IQ4_NL / IQ4_XS quantizers port
 * quantize_iq4_nl / quantize_iq4_xs without an importance matrix (what llama-quantize calls for these types when
 * none is given). The lower-bit types need an importance matrix to quantize well and are read-only here.
 *
 * Layouts (bytes; d is an f16 super-block scale):
 *   iq2_xxs [d][qs u16×32]                         per 32: 4 grid bytes, then u32 = 4×7 sign bits | 4-bit scale
 *   iq2_xs  [d][qs u16×32][scales 8]               per 8 values: 9-bit grid index | 7 sign bits; 4-bit scale per 16
 *   iq2_s   [d][qs 32][signs 32][qh 8][scales 8]   10-bit grid index (2 high bits in qh), 8 sign bits per 8
 *   iq3_xxs [d][qs 64][scales+signs u32×8]         4-value grid, 4×7 sign bits | 4-bit scale per 32
 *   iq3_s   [d][qs 64][qh 8][signs 32][scales 4]   9-bit 4-value grid index, 8 sign bits per 8, 4-bit scale per 32
 *   iq1_s   [d][qs 32][qh u16×8]                   11-bit grid index of ±1/0 values, 3-bit scale, delta sign per 32
 *   iq1_m   [qs 32][qh 16][scales 8]               3-bit scales per 16; the f16 super scale in their top nibbles
 *   iq4_nl  [d][qs 16]                             x = d·kvalues[nibble] (32 per block)
 *   iq4_xs  [d][scales_h u16][scales_l 4][qs 128]  6-bit scale per 32, x = d·(ls − 32)·kvalues[nibble]
 */
import { checkBlocks, fr, nearestInt, readF16, writeF16 } from './f32-math.ts';
import { IQ1S_GRID, IQ2S_GRID, IQ2XS_GRID, IQ2XXS_GRID, IQ3S_GRID, IQ3XXS_GRID, KSIGNS_IQ2XS, KVALUES_IQ4NL } from './iquant-tables.ts';

const QK_K = 256;
const GROUP_MAX_EPS = fr(1e-15);
const IQ1_DELTA = 0.125;
const I1S = new Int8Array(IQ1S_GRID.buffer, IQ1S_GRID.byteOffset, IQ1S_GRID.length);

const u16 = (s: Uint8Array, p: number): number => s[p]! | (s[p + 1]! << 8);
const u32 = (s: Uint8Array, p: number): number => (s[p]! | (s[p + 1]! << 8) | (s[p + 2]! << 16) | (s[p + 3]! << 24)) >>> 0;

/** 8 values db·grid[j]·(±1) from a grid entry at byte offset g and an 8-bit sign mask. */
function put8(out: Float32Array, o: number, db: number, grid: Uint8Array, g: number, signs: number): void {
  for (let j = 0; j < 8; j++) out[o + j] = db * grid[g + j]! * ((signs >> j) & 1 ? -1 : 1);
}

// ---- dequantizers (dequantize_row_iq*) ---------------------------------------------------------------------

export function dequantIq2Xxs(src: Uint8Array, off: number, n: number, out: Float32Array, o: number): void {
  const nb = checkBlocks(n, QK_K, 'iq2_xxs');
  for (let i = 0, p = off; i < nb; i++, p += 66) {
    const d = readF16(src, p);
    for (let ib = 0; ib < 8; ib++) {
      const q = p + 2 + 8 * ib,
        aux1 = u32(src, q + 4);
      const db = fr(fr(d * (0.5 + (aux1 >>> 28))) * 0.25);
      for (let l = 0; l < 4; l++, o += 8) put8(out, o, db, IQ2XXS_GRID, 8 * src[q + l]!, KSIGNS_IQ2XS[(aux1 >>> (7 * l)) & 127]!);
    }
  }
}

export function dequantIq2Xs(src: Uint8Array, off: number, n: number, out: Float32Array, o: number): void {
  const nb = checkBlocks(n, QK_K, 'iq2_xs');
  for (let i = 0, p = off; i < nb; i++, p += 74) {
    const d = readF16(src, p);
    for (let ib = 0; ib < 8; ib++) {
      const sc = src[p + 66 + ib]!;
      const db0 = fr(fr(d * (0.5 + (sc & 15))) * 0.25),
        db1 = fr(fr(d * (0.5 + (sc >> 4))) * 0.25);
      for (let l = 0; l < 4; l++, o += 8) {
        const q = u16(src, p + 2 + 2 * (4 * ib + l));
        put8(out, o, l < 2 ? db0 : db1, IQ2XS_GRID, 8 * (q & 511), KSIGNS_IQ2XS[q >> 9]!);
      }
    }
  }
}

export function dequantIq2S(src: Uint8Array, off: number, n: number, out: Float32Array, o: number): void {
  const nb = checkBlocks(n, QK_K, 'iq2_s');
  for (let i = 0, p = off; i < nb; i++, p += 82) {
    const d = readF16(src, p);
    const qs = p + 2,
      signs = p + 34,
      qh = p + 66,
      scales = p + 74;
    for (let ib = 0; ib < 8; ib++) {
      const sc = src[scales + ib]!,
        h = src[qh + ib]!;
      const db0 = fr(fr(d * (0.5 + (sc & 15))) * 0.25),
        db1 = fr(fr(d * (0.5 + (sc >> 4))) * 0.25);
      for (let l = 0; l < 4; l++, o += 8) {
        const idx = src[qs + 4 * ib + l]! | ((h << (8 - 2 * l)) & 0x300);
        put8(out, o, l < 2 ? db0 : db1, IQ2S_GRID, 8 * idx, src[signs + 4 * ib + l]!);
      }
    }
  }
}

export function dequantIq3Xxs(src: Uint8Array, off: number, n: number, out: Float32Array, o: number): void {
  const nb = checkBlocks(n, QK_K, 'iq3_xxs');
  for (let i = 0, p = off; i < nb; i++, p += 98) {
    const d = readF16(src, p);
    for (let ib = 0; ib < 8; ib++) {
      const aux = u32(src, p + 66 + 4 * ib),
        qs = p + 2 + 8 * ib;
      const db = fr(fr(d * (0.5 + (aux >>> 28))) * 0.5);
      for (let l = 0; l < 4; l++, o += 8) {
        const signs = KSIGNS_IQ2XS[(aux >>> (7 * l)) & 127]!;
        const g1 = 4 * src[qs + 2 * l]!,
          g2 = 4 * src[qs + 2 * l + 1]!;
        for (let j = 0; j < 4; j++) {
          out[o + j] = db * IQ3XXS_GRID[g1 + j]! * ((signs >> j) & 1 ? -1 : 1);
          out[o + j + 4] = db * IQ3XXS_GRID[g2 + j]! * ((signs >> (j + 4)) & 1 ? -1 : 1);
        }
      }
    }
  }
}

export function dequantIq3S(src: Uint8Array, off: number, n: number, out: Float32Array, o: number): void {
  const nb = checkBlocks(n, QK_K, 'iq3_s');
  for (let i = 0, p = off; i < nb; i++, p += 110) {
    const d = readF16(src, p);
    const qs = p + 2,
      qh = p + 66,
      signs = p + 74,
      scales = p + 106;
    for (let ib = 0; ib < 8; ib++) {
      const sc = src[scales + (ib >> 1)]!;
      const db = fr(d * (1 + 2 * (ib & 1 ? sc >> 4 : sc & 15)));
      const h = src[qh + ib]!;
      for (let l = 0; l < 4; l++, o += 8) {
        const s = src[signs + 4 * ib + l]!;
        const g1 = 4 * (src[qs + 8 * ib + 2 * l]! | ((h << (8 - 2 * l)) & 256));
        const g2 = 4 * (src[qs + 8 * ib + 2 * l + 1]! | ((h << (7 - 2 * l)) & 256));
        for (let j = 0; j < 4; j++) {
          out[o + j] = db * IQ3S_GRID[g1 + j]! * ((s >> j) & 1 ? -1 : 1);
          out[o + j + 4] = db * IQ3S_GRID[g2 + j]! * ((s >> (j + 4)) & 1 ? -1 : 1);
        }
      }
    }
  }
}

export function dequantIq1S(src: Uint8Array, off: number, n: number, out: Float32Array, o: number): void {
  const nb = checkBlocks(n, QK_K, 'iq1_s');
  for (let i = 0, p = off; i < nb; i++, p += 50) {
    const d = readF16(src, p);
    for (let ib = 0; ib < 8; ib++) {
      const qh = u16(src, p + 34 + 2 * ib);
      const dl = fr(d * (2 * ((qh >> 12) & 7) + 1));
      const delta = qh & 0x8000 ? -IQ1_DELTA : IQ1_DELTA;
      for (let l = 0; l < 4; l++, o += 8) {
        const g = 8 * (src[p + 2 + 4 * ib + l]! | (((qh >> (3 * l)) & 7) << 8));
        for (let j = 0; j < 8; j++) out[o + j] = dl * (I1S[g + j]! + delta);
      }
    }
  }
}

export function dequantIq1M(src: Uint8Array, off: number, n: number, out: Float32Array, o: number): void {
  const nb = checkBlocks(n, QK_K, 'iq1_m');
  const f16 = new Uint8Array(2);
  for (let i = 0, p = off; i < nb; i++, p += 56) {
    const sc = [u16(src, p + 48), u16(src, p + 50), u16(src, p + 52), u16(src, p + 54)];
    const h = (sc[0]! >> 12) | ((sc[1]! >> 8) & 0x00f0) | ((sc[2]! >> 4) & 0x0f00) | (sc[3]! & 0xf000);
    f16[0] = h & 0xff;
    f16[1] = h >> 8;
    const d = readF16(f16, 0);
    for (let ib = 0; ib < 8; ib++) {
      const s = sc[ib >> 1]!,
        sh = 6 * (ib % 2);
      const dl1 = fr(d * (2 * ((s >> sh) & 7) + 1)),
        dl2 = fr(d * (2 * ((s >> (sh + 3)) & 7) + 1));
      const qs = p + 4 * ib,
        qh0 = src[p + 32 + 2 * ib]!,
        qh1 = src[p + 33 + 2 * ib]!;
      const idx = [
        src[qs]! | ((qh0 << 8) & 0x700),
        src[qs + 1]! | ((qh0 << 4) & 0x700),
        src[qs + 2]! | ((qh1 << 8) & 0x700),
        src[qs + 3]! | ((qh1 << 4) & 0x700),
      ];
      const delta = [qh0 & 0x08, qh0 & 0x80, qh1 & 0x08, qh1 & 0x80].map((b) => (b ? -IQ1_DELTA : IQ1_DELTA));
      for (let l = 0; l < 4; l++, o += 8) {
        const dl = l < 2 ? dl1 : dl2,
          g = 8 * idx[l]!;
        for (let j = 0; j < 8; j++) out[o + j] = dl * (I1S[g + j]! + delta[l]!);
      }
    }
  }
}

export function dequantIq4Nl(src: Uint8Array, off: number, n: number, out: Float32Array, o: number): void {
  const nb = checkBlocks(n, 32, 'iq4_nl');
  for (let i = 0, p = off; i < nb; i++, p += 18, o += 32) {
    const d = readF16(src, p);
    for (let j = 0; j < 16; j++) {
      const q = src[p + 2 + j]!;
      out[o + j] = d * KVALUES_IQ4NL[q & 15]!;
      out[o + j + 16] = d * KVALUES_IQ4NL[q >> 4]!;
    }
  }
}

export function dequantIq4Xs(src: Uint8Array, off: number, n: number, out: Float32Array, o: number): void {
  const nb = checkBlocks(n, QK_K, 'iq4_xs');
  for (let i = 0, p = off; i < nb; i++, p += 136) {
    const d = readF16(src, p),
      sh = u16(src, p + 2);
    for (let ib = 0; ib < 8; ib++, o += 32) {
      const ls = ((src[p + 4 + (ib >> 1)]! >> (4 * (ib % 2))) & 15) | (((sh >> (2 * ib)) & 3) << 4);
      const dl = fr(d * (ls - 32));
      const qs = p + 8 + 16 * ib;
      for (let j = 0; j < 16; j++) {
        const q = src[qs + j]!;
        out[o + j] = dl * KVALUES_IQ4NL[q & 15]!;
        out[o + j + 16] = dl * KVALUES_IQ4NL[q >> 4]!;
      }
    }
  }
}

// ---- IQ4 quantizers (quantize_row_iq4_nl_impl, ntry = 7, no importance matrix) --------------------------------

/** best_index_int8 over kvalues_iq4nl: the nearest of the 16 values (ties to the upper one), in float32. */
function bestIndex(x: number): number {
  const v = KVALUES_IQ4NL;
  if (x <= v[0]!) return 0;
  if (x >= v[15]!) return 15;
  let ml = 0,
    mu = 15;
  while (mu - ml > 1) {
    const mav = (ml + mu) >> 1;
    if (x < v[mav]!) mu = mav;
    else ml = mav;
  }
  return fr(x - v[mu - 1]!) < fr(v[mu]! - x) ? mu - 1 : mu;
}

const NTRY = 7;
const weight = new Float32Array(32);

/**
 * One block of 32 at x[s..]: its best scale over 2·NTRY+1 trials (weights x², as ggml without an imatrix); the
 * block's codes are left in L[ls..] as the first (pre-trial) assignment, which ggml also keeps.
 */
function blockScale(x: Float32Array, s: number, L: Uint8Array, ls: number): number {
  let amax = 0,
    max = 0;
  for (let j = 0; j < 32; j++) {
    const xj = x[s + j]!;
    weight[j] = fr(xj * xj);
    const ax = Math.abs(xj);
    if (ax > amax) {
      amax = ax;
      max = xj;
    }
  }
  if (amax < GROUP_MAX_EPS) return 0;
  const v = KVALUES_IQ4NL;
  let d = fr(-max / v[0]!);
  let id = fr(1 / d);
  let sumqx = 0,
    sumq2 = 0;
  for (let j = 0; j < 32; j++) {
    const xj = x[s + j]!;
    const l = bestIndex(fr(id * xj));
    L[ls + j] = l;
    const q = v[l]!,
      wq = fr(weight[j]! * q);
    sumqx = fr(sumqx + fr(wq * xj));
    sumq2 = fr(sumq2 + fr(wq * q));
  }
  d = sumq2 > 0 ? fr(sumqx / sumq2) : 0;
  let best = fr(d * sumqx);
  for (let itry = -NTRY; itry <= NTRY; itry++) {
    id = fr((itry + v[0]!) / max);
    sumqx = 0;
    sumq2 = 0;
    for (let j = 0; j < 32; j++) {
      const xj = x[s + j]!;
      const q = v[bestIndex(fr(id * xj))]!,
        wq = fr(weight[j]! * q);
      sumqx = fr(sumqx + fr(wq * xj));
      sumq2 = fr(sumq2 + fr(wq * q));
    }
    if (sumq2 > 0 && fr(sumqx * sumqx) > fr(best * sumq2)) {
      d = fr(sumqx / sumq2);
      best = fr(d * sumqx);
    }
  }
  return d;
}

/** Codes of n values (n/32 blocks) into nibble bytes: low nibbles elements 0..15 of a block, high 16..31. */
function packNibbles(L: Uint8Array, n: number, out: Uint8Array, p: number): void {
  for (let i = 0; i < n / 32; i++) for (let j = 0; j < 16; j++) out[p + 16 * i + j] = L[32 * i + j]! | (L[32 * i + 16 + j]! << 4);
}

export function quantIq4Nl(x: Float32Array, s: number, n: number, out: Uint8Array, off: number): void {
  const nb = checkBlocks(n, 32, 'iq4_nl');
  const L = new Uint8Array(32);
  for (let i = 0, p = off; i < nb; i++, p += 18, s += 32) {
    const d = blockScale(x, s, L, 0);
    writeF16(out, p, d);
    const id = d ? fr(1 / d) : 0;
    for (let j = 0; j < 32; j++) L[j] = bestIndex(fr(id * x[s + j]!));
    packNibbles(L, 32, out, p + 2);
  }
}

export function quantIq4Xs(x: Float32Array, s: number, n: number, out: Uint8Array, off: number): void {
  const nb = checkBlocks(n, QK_K, 'iq4_xs');
  const L = new Uint8Array(QK_K),
    scales = new Float32Array(8);
  for (let i = 0, p = off; i < nb; i++, p += 136, s += QK_K) {
    let maxScale = 0,
      amaxScale = 0;
    for (let ib = 0; ib < 8; ib++) {
      const d = (scales[ib] = blockScale(x, s + 32 * ib, L, 32 * ib));
      if (Math.abs(d) > amaxScale) {
        amaxScale = Math.abs(d);
        maxScale = d;
      }
    }
    const d = fr(-maxScale / 32); // -0 for an all-zero super-block, stored as f16 0x8000 as in ggml
    writeF16(out, p, d);
    const id = d ? fr(1 / d) : 0;
    let sh = 0;
    out[p + 4] = out[p + 5] = out[p + 6] = out[p + 7] = 0;
    for (let ib = 0; ib < 8; ib++) {
      let l = nearestInt(fr(id * scales[ib]!));
      l = Math.max(-32, Math.min(31, l));
      const dl = fr(d * l),
        idl = dl ? fr(1 / dl) : 0;
      for (let j = 0; j < 32; j++) L[32 * ib + j] = bestIndex(fr(idl * x[s + 32 * ib + j]!));
      l += 32;
      out[p + 4 + (ib >> 1)] = out[p + 4 + (ib >> 1)]! | ((l & 15) << (4 * (ib % 2)));
      sh |= (l >> 4) << (2 * ib);
    }
    out[p + 2] = sh & 0xff;
    out[p + 3] = sh >> 8;
    packNibbles(L, QK_K, out, p + 8);
  }
}
