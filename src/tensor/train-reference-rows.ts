/**
 * TypeScript reference of the training seam's row operations (train-backend.ts): RMSNorm and SwiGLU forward and
 * backward, softmax cross-entropy, AdamW, squared norms, row gather / scatter-add / dots and RoPE. Plain loops in
 * float64 arithmetic (JavaScript numbers) stored to f32; the native core (native/src/train-rows.h) computes the same
 * in f32 vectors, and the conformance suite (src/kernels/train-backend.case.test.ts) holds both to float64.
 */
import type { AdamWStep } from './train-backend.ts';

export function rmsNormFwd(
  y: Float32Array,
  r: Float32Array,
  x: Float32Array,
  w: Float32Array | null,
  rows: number,
  dim: number,
  eps: number,
): void {
  for (let i = 0; i < rows; i++) {
    const b = i * dim;
    let ss = 0;
    for (let j = 0; j < dim; j++) ss += x[b + j]! * x[b + j]!;
    const rr = 1 / Math.sqrt(ss / dim + eps);
    r[i] = rr;
    if (w) for (let j = 0; j < dim; j++) y[b + j] = x[b + j]! * rr * w[j]!;
    else for (let j = 0; j < dim; j++) y[b + j] = x[b + j]! * rr;
  }
}

export function rmsNormBwd(
  dx: Float32Array,
  dw: Float32Array | null,
  dy: Float32Array,
  x: Float32Array,
  r: Float32Array,
  w: Float32Array | null,
  rows: number,
  dim: number,
  accumulate: boolean,
): void {
  for (let i = 0; i < rows; i++) {
    const b = i * dim;
    const rr = r[i]!;
    let dot = 0;
    for (let j = 0; j < dim; j++) {
      const g = w ? dy[b + j]! * w[j]! : dy[b + j]!;
      dot += g * x[b + j]!;
      if (dw) dw[j] = dw[j]! + dy[b + j]! * x[b + j]! * rr;
    }
    const c = (rr * rr * rr * dot) / dim;
    for (let j = 0; j < dim; j++) {
      const g = w ? dy[b + j]! * w[j]! : dy[b + j]!;
      const v = rr * g - x[b + j]! * c;
      dx[b + j] = accumulate ? dx[b + j]! + v : v;
    }
  }
}

export function sigmoid(x: number): number {
  return 1 / (1 + Math.exp(-x));
}

export function swigluFwd(
  m: Float32Array,
  G: Float32Array,
  U: Float32Array,
  rows: number,
  I: number,
  stride: number,
  gOff: number,
  uOff: number,
): void {
  for (let t = 0; t < rows; t++) {
    const gb = t * stride + gOff,
      ub = t * stride + uOff;
    for (let j = 0; j < I; j++) {
      const g = G[gb + j]!;
      m[t * I + j] = (g / (1 + Math.exp(-g))) * U[ub + j]!;
    }
  }
}

export function swigluBwd(
  dG: Float32Array,
  dU: Float32Array,
  dm: Float32Array,
  G: Float32Array,
  U: Float32Array,
  rows: number,
  I: number,
  stride: number,
  gOff: number,
  uOff: number,
): void {
  for (let t = 0; t < rows; t++) {
    for (let j = 0; j < I; j++) {
      const gi = t * stride + gOff + j,
        ui = t * stride + uOff + j;
      const gv = G[gi]!,
        uv = U[ui]!,
        s = sigmoid(gv),
        d = dm[t * I + j]!;
      dG[gi] = d * uv * s * (1 + gv * (1 - s));
      dU[ui] = d * gv * s;
    }
  }
}

export function softmaxXent(
  dLogits: Float32Array,
  logits: Float32Array,
  targets: Int32Array,
  rows: number,
  V: number,
  scale: number,
): number {
  let loss = 0;
  for (let i = 0; i < rows; i++) {
    const y = targets[i]!,
      off = i * V;
    if (y < 0) {
      dLogits.fill(0, off, off + V);
      continue;
    }
    if (y >= V) throw new RangeError(`softmaxXent: target ${y} is out of range 0..${V - 1}`);
    let mx = -Infinity;
    for (let j = 0; j < V; j++) mx = Math.max(mx, logits[off + j]!);
    let s = 0;
    for (let j = 0; j < V; j++) s += Math.exp(logits[off + j]! - mx);
    const lse = mx + Math.log(s);
    loss += lse - logits[off + y]!;
    for (let j = 0; j < V; j++) dLogits[off + j] = scale * Math.exp(logits[off + j]! - lse);
    dLogits[off + y] = dLogits[off + y]! - scale;
  }
  return loss;
}

export function adamw(w: Float32Array, g: Float32Array, m: Float32Array, v: Float32Array, h: AdamWStep): void {
  const { lr, beta1, beta2, eps, wd, bc1, bc2, gmul } = h;
  for (let i = 0; i < w.length; i++) {
    const gi = g[i]! * gmul;
    const mi = (m[i] = beta1 * m[i]! + (1 - beta1) * gi);
    const vi = (v[i] = beta2 * v[i]! + (1 - beta2) * gi * gi);
    // Decoupled weight decay (AdamW): w ← w − lr·(m̂/(√v̂+ε) + wd·w).
    w[i] = w[i]! - lr * (mi / bc1 / (Math.sqrt(vi / bc2) + eps) + wd * w[i]!);
  }
}

export function sumSquares(g: Float32Array, div: number): number {
  if (div !== 1) for (let i = 0; i < g.length; i++) g[i] = g[i]! / div;
  let s = 0;
  for (let i = 0; i < g.length; i++) s += g[i]! * g[i]!;
  return s;
}

export function gatherRows(
  out: Float32Array,
  src: Float32Array,
  idx: Int32Array,
  scale: Float32Array | null,
  rows: number,
  dim: number,
): void {
  for (let j = 0; j < rows; j++) {
    const n = idx[j]!,
      b = n * dim;
    if (!(b >= 0 && b + dim <= src.length)) throw new RangeError(`gatherRows: row ${n} out of range`);
    if (!scale) out.set(src.subarray(b, b + dim), j * dim);
    else {
      const s = scale[n]!;
      for (let x = 0; x < dim; x++) out[j * dim + x] = src[b + x]! * s;
    }
  }
}

export function scatterAddRows(
  out: Float32Array,
  src: Float32Array,
  idx: Int32Array,
  scale: Float32Array | null,
  rows: number,
  dim: number,
): void {
  for (let j = 0; j < rows; j++) {
    const n = idx[j]!,
      b = n * dim,
      s = scale ? scale[n]! : 1;
    if (!(b >= 0 && b + dim <= out.length)) throw new RangeError(`scatterAddRows: row ${n} out of range`);
    for (let x = 0; x < dim; x++) out[b + x] = out[b + x]! + src[j * dim + x]! * s;
  }
}

export function rowDots(out: Float32Array, a: Float32Array, b: Float32Array, idx: Int32Array, rows: number, dim: number): void {
  for (let j = 0; j < rows; j++) {
    const bb = idx[j]! * dim;
    let s = 0;
    for (let x = 0; x < dim; x++) s += a[j * dim + x]! * b[bb + x]!;
    out[j] = s;
  }
}

export function add(y: Float32Array, x: Float32Array, n: number): void {
  for (let i = 0; i < n; i++) y[i] = y[i]! + x[i]!;
}

export function softmaxRows(y: Float32Array, x: Float32Array, rows: number, dim: number): void {
  for (let i = 0; i < rows; i++) {
    const b = i * dim;
    let mx = -Infinity;
    for (let j = 0; j < dim; j++) mx = Math.max(mx, x[b + j]!);
    let s = 0;
    for (let j = 0; j < dim; j++) {
      const e = Math.exp(x[b + j]! - mx);
      y[b + j] = e;
      s += e;
    }
    for (let j = 0; j < dim; j++) y[b + j] = y[b + j]! / s;
  }
}

export function rope(
  x: Float32Array,
  cos: Float32Array,
  sin: Float32Array,
  rows: number,
  T: number,
  nH: number,
  d: number,
  inverse: boolean,
): void {
  const half = d / 2;
  for (let i = 0; i < rows; i++) {
    const t = i % T;
    for (let hh = 0; hh < nH; hh++) {
      const b = (i * nH + hh) * d;
      for (let j = 0; j < half; j++) {
        const cs = cos[t * half + j]!,
          sn = inverse ? -sin[t * half + j]! : sin[t * half + j]!;
        const x0 = x[b + 2 * j]!,
          x1 = x[b + 2 * j + 1]!;
        x[b + 2 * j] = x0 * cs - x1 * sn;
        x[b + 2 * j + 1] = x0 * sn + x1 * cs;
      }
    }
  }
}
