/**
 * One conformance suite for the training seam (src/tensor/train-backend.ts), run on the TypeScript reference and on
 * every native kernel set this CPU has: matrix products in the three layouts against a float64 reference (odd
 * shapes hit every tile and tail path, accumulate on and off), attention forward against a float64 softmax, and
 * attention backward against central finite differences of a float64 attention.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { AttnShape, MatmulLayout, TrainBackend } from '../tensor/train-backend.ts';
import { TsTrainBackend } from './ts/train-ops.ts';
import { tryCreateNativeTrainBackend } from './native/train-backend.ts';
import { nativeIsas } from './native/index.ts';

function rand(n: number, seed: number): Float32Array {
  let s = seed >>> 0;
  const out = new Float32Array(n);
  for (let i = 0; i < n; i++) {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    out[i] = s / 2 ** 32 - 0.5;
  }
  return out;
}

// avx2-vnni changes only int8 inference kernels and trains on the avx2 set's: not run twice
const trainIsas = nativeIsas().filter((i) => i !== 'avx2-vnni');
const backends: TrainBackend[] = [new TsTrainBackend()];
for (const isa of trainIsas) {
  const { backend, reason } = tryCreateNativeTrainBackend(2, isa);
  if (backend) backends.push(backend);
  else console.log(`# native ${isa} training backend skipped: ${reason}`);
}
if (backends.length === 1) console.log('# NOTE: native training backend not available; only the TypeScript reference is checked');

function refMatmul(layout: MatmulLayout, A: Float32Array, B: Float32Array, m: number, n: number, k: number): Float64Array {
  const C = new Float64Array(m * n);
  for (let i = 0; i < m; i++)
    for (let j = 0; j < n; j++) {
      let s = 0;
      for (let p = 0; p < k; p++) {
        const a = layout === 'tn' ? A[p * m + i]! : A[i * k + p]!;
        const b = layout === 'nt' ? B[j * k + p]! : B[p * n + j]!;
        s += a * b;
      }
      C[i * n + j] = s;
    }
  return C;
}

for (const be of backends) {
  test(`${be.name}: matmul nt/nn/tn against float64, odd shapes, accumulate`, () => {
    for (const layout of ['nt', 'nn', 'tn'] as const) {
      for (const [m, n, k] of [
        [1, 1, 1],
        [3, 17, 5],
        [7, 33, 64],
        [65, 49, 31],
        [130, 300, 70],
        [4, 16, 0],
      ] as const) {
        const A = rand(m * k, m + 7 * n + k),
          B = rand(n * k, 3 * m + n + 11 * k);
        for (const acc of [false, true]) {
          const C = rand(m * n, 5),
            C0 = C.slice();
          be.matmul(layout, C, A, B, m, n, k, acc);
          const R = refMatmul(layout, A, B, m, n, k);
          for (let i = 0; i < m * n; i++) {
            const want = R[i]! + (acc ? C0[i]! : 0);
            assert.ok(
              Math.abs(C[i]! - want) <= 1e-5 * (1 + Math.sqrt(k)),
              `${layout} ${m}x${n}x${k} acc=${acc} [${i}]: ${C[i]} vs ${want}`,
            );
          }
        }
      }
    }
  });

  // Small odd shapes, and one with whole 16/32-column tiles (T 37, d 24) and chunks that cut the 4-row blocks.
  for (const [B, T, nh, nkv, d, chunk] of [
    [2, 7, 4, 2, 5, 0],
    [2, 7, 4, 2, 5, 3],
    [1, 37, 2, 1, 24, 0],
    [1, 37, 2, 1, 24, 14],
  ] as const) {
    const sh: AttnShape = { B, T, nh, nkv, d, scale: 1 / Math.sqrt(d), chunk };
    const N = sh.B * sh.T,
      nq = N * sh.nh * sh.d,
      nk = N * sh.nkv * sh.d;
    const q = rand(nq, 1),
      k = rand(nk, 2),
      v = rand(nk, 3),
      R = rand(nq, 4);
    // float64 attention; returns Σ O·R (the loss whose gradient the backward gives with dO = R).
    const ref = (q: Float64Array, k: Float64Array, v: Float64Array, O?: Float64Array): number => {
      let loss = 0;
      for (let b = 0; b < sh.B; b++)
        for (let h = 0; h < sh.nh; h++) {
          const kh = Math.floor(h / (sh.nh / sh.nkv));
          for (let t = 0; t < sh.T; t++) {
            const s0 = chunk ? Math.floor(t / chunk) * chunk : 0;
            const sc: number[] = [];
            for (let s = s0; s <= t; s++) {
              let dot = 0;
              for (let j = 0; j < sh.d; j++)
                dot += q[((b * sh.T + t) * sh.nh + h) * sh.d + j]! * k[((b * sh.T + s) * sh.nkv + kh) * sh.d + j]!;
              sc.push(dot * sh.scale);
            }
            const mx = Math.max(...sc),
              e = sc.map((x) => Math.exp(x - mx)),
              z = e.reduce((a, x) => a + x, 0);
            for (let j = 0; j < sh.d; j++) {
              let o = 0;
              for (let s = s0; s <= t; s++) o += (e[s - s0]! / z) * v[((b * sh.T + s) * sh.nkv + kh) * sh.d + j]!;
              const idx = ((b * sh.T + t) * sh.nh + h) * sh.d + j;
              if (O) O[idx] = o;
              loss += o * R[idx]!;
            }
          }
        }
      return loss;
    };
    test(`${be.name}: attention forward (T ${T}, d ${d}, chunk ${chunk}) against float64`, () => {
      const P = new Float32Array(sh.B * sh.nh * sh.T * sh.T),
        O = new Float32Array(nq),
        O64 = new Float64Array(nq);
      P.fill(Number.NaN);
      be.attnForward(q, k, v, P, O, sh);
      ref(Float64Array.from(q), Float64Array.from(k), Float64Array.from(v), O64);
      for (let i = 0; i < nq; i++) assert.ok(Math.abs(O[i]! - O64[i]!) < 1e-6, `O[${i}] ${O[i]} vs ${O64[i]}`);
      // P is written whole: a distribution over the visible keys, zeros elsewhere.
      for (let r = 0; r < sh.B * sh.nh * sh.T; r++) {
        const t = r % sh.T,
          s0 = chunk ? Math.floor(t / chunk) * chunk : 0;
        let z = 0;
        for (let s = 0; s < sh.T; s++) {
          const p = P[r * sh.T + s]!;
          if (s < s0 || s > t) assert.equal(p, 0, `P row ${r} col ${s} outside the mask`);
          else z += p;
        }
        assert.ok(Math.abs(z - 1) < 1e-6, `P row ${r} sums to ${z}`);
      }
    });
    test(`${be.name}: attention backward (T ${T}, d ${d}, chunk ${chunk}) against finite differences`, () => {
      const P = new Float32Array(sh.B * sh.nh * sh.T * sh.T),
        O = new Float32Array(nq);
      be.attnForward(q, k, v, P, O, sh);
      const dq = new Float32Array(nq),
        dk = new Float32Array(nk),
        dv = new Float32Array(nk);
      be.attnBackward(q, k, v, P, R, dq, dk, dv, sh);
      const x = [Float64Array.from(q), Float64Array.from(k), Float64Array.from(v)] as const;
      const grads = [dq, dk, dv];
      for (let w = 0; w < 3; w++) {
        for (let i = 0; i < x[w]!.length; i += 3) {
          const save = x[w]![i]!,
            h = 1e-5;
          x[w]![i] = save + h;
          const lp = ref(x[0], x[1], x[2]);
          x[w]![i] = save - h;
          const lm = ref(x[0], x[1], x[2]);
          x[w]![i] = save;
          const fd = (lp - lm) / (2 * h);
          assert.ok(Math.abs(grads[w]![i]! - fd) < 1e-4 + 1e-3 * Math.abs(fd), `grad ${'qkv'[w]}[${i}] ${grads[w]![i]} vs fd ${fd}`);
        }
      }
    });
  }
}

// Row operations: each against float64, gradients against central finite differences of a float64 loss Σ out·R.
const close = (got: number, want: number, tol: number): boolean => Math.abs(got - want) <= tol * (1 + Math.abs(want));
function fd(f: (x: Float64Array) => number, x: Float64Array, i: number, h = 1e-6): number {
  const s = x[i]!;
  x[i] = s + h;
  const p = f(x);
  x[i] = s - h;
  const m = f(x);
  x[i] = s;
  return (p - m) / (2 * h);
}

for (const be of backends) {
  test(`${be.name}: RMSNorm forward and backward against float64 and finite differences`, () => {
    for (const [rows, dim] of [
      [3, 5],
      [4, 16],
      [70, 37],
      [9, 64],
    ] as const) {
      for (const weighted of [true, false]) {
        const x = rand(rows * dim, rows + dim),
          w = weighted ? Float32Array.from(rand(dim, 9), (v) => 1 + v) : null,
          R = rand(rows * dim, 4),
          eps = 1e-5;
        const f64 = (xs: Float64Array, ws: Float64Array | null, out?: Float64Array): number => {
          let loss = 0;
          for (let i = 0; i < rows; i++) {
            let ss = 0;
            for (let j = 0; j < dim; j++) ss += xs[i * dim + j]! ** 2;
            const r = 1 / Math.sqrt(ss / dim + eps);
            for (let j = 0; j < dim; j++) {
              const y = xs[i * dim + j]! * r * (ws ? ws[j]! : 1);
              if (out) out[i * dim + j] = y;
              loss += y * R[i * dim + j]!;
            }
          }
          return loss;
        };
        const y = new Float32Array(rows * dim),
          r = new Float32Array(rows),
          y64 = new Float64Array(rows * dim);
        be.rmsNormFwd(y, r, x, w, rows, dim, eps);
        const x64 = Float64Array.from(x),
          w64 = w ? Float64Array.from(w) : null;
        f64(x64, w64, y64);
        for (let i = 0; i < y.length; i++) assert.ok(close(y[i]!, y64[i]!, 2e-6), `y[${i}] ${y[i]} vs ${y64[i]}`);
        for (const acc of [false, true]) {
          const base = rand(rows * dim, 77),
            dx = acc ? base.slice() : new Float32Array(rows * dim),
            dw = w ? rand(dim, 78) : null,
            dw0 = dw?.slice();
          be.rmsNormBwd(dx, dw, R, x, r, w, rows, dim, acc);
          for (let i = 0; i < rows * dim; i += 2) {
            const want = fd((xs) => f64(xs, w64), x64, i) + (acc ? base[i]! : 0);
            assert.ok(close(dx[i]!, want, 1e-4), `${rows}x${dim} dx[${i}] ${dx[i]} vs ${want}`);
          }
          if (dw && w64)
            for (let j = 0; j < dim; j++) {
              const want = fd((ws) => f64(x64, ws), w64, j) + dw0![j]!;
              assert.ok(close(dw[j]!, want, 1e-4), `${rows}x${dim} dw[${j}] ${dw[j]} vs ${want}`);
            }
        }
        // dx may alias dy.
        const dy = R.slice(),
          ref = new Float32Array(rows * dim);
        be.rmsNormBwd(ref, null, R, x, r, w, rows, dim, false);
        be.rmsNormBwd(dy, null, dy, x, r, w, rows, dim, false);
        assert.deepEqual(dy, ref);
      }
    }
  });

  test(`${be.name}: SwiGLU forward and backward (separate and fused gate|up rows) against float64`, () => {
    for (const [rows, I] of [
      [3, 5],
      [17, 48],
      [5, 130],
    ] as const) {
      for (const fused of [false, true]) {
        const stride = fused ? 2 * I : I,
          gOff = 0,
          uOff = fused ? I : 0;
        const G = Float32Array.from(rand(rows * stride, 3 + I), (v) => 8 * v),
          U = fused ? G : rand(rows * I, 5),
          dm = rand(rows * I, 6);
        const m = new Float32Array(rows * I);
        be.swigluFwd(m, G, U, rows, I, stride, gOff, uOff);
        const dG = new Float32Array(G.length),
          dU = fused ? dG : new Float32Array(U.length);
        be.swigluBwd(dG, dU, dm, G, U, rows, I, stride, gOff, uOff);
        for (let t = 0; t < rows; t++)
          for (let j = 0; j < I; j++) {
            const g = G[t * stride + gOff + j]!,
              u = U[t * stride + uOff + j]!,
              s = 1 / (1 + Math.exp(-g)),
              d = dm[t * I + j]!;
            assert.ok(close(m[t * I + j]!, g * s * u, 2e-6), `m ${m[t * I + j]} vs ${g * s * u}`);
            // d/dg of silu(g)·u and d/du, by finite differences in float64.
            const h = 1e-6,
              silu = (x: number): number => x / (1 + Math.exp(-x));
            const wantG = (d * u * (silu(g + h) - silu(g - h))) / (2 * h);
            assert.ok(close(dG[t * stride + gOff + j]!, wantG, 1e-5), `dg ${dG[t * stride + gOff + j]} vs ${wantG}`);
            assert.ok(close(dU[t * stride + uOff + j]!, d * silu(g), 2e-6), `du ${dU[t * stride + uOff + j]} vs ${d * silu(g)}`);
          }
      }
    }
  });

  test(`${be.name}: softmax cross-entropy loss and gradient against float64, ignored rows`, () => {
    for (const [rows, V] of [
      [3, 7],
      [6, 37],
      [5, 1024],
    ] as const) {
      const logits = Float32Array.from(rand(rows * V, V), (v) => 12 * v),
        targets = Int32Array.from({ length: rows }, (_, i) => (i === 1 ? -1 : (i * 7919) % V)),
        scale = 0.37;
      const dL = rand(rows * V, 1); // garbage: every row is overwritten
      const loss = be.softmaxXent(dL, logits, targets, rows, V, scale);
      let want = 0;
      for (let i = 0; i < rows; i++) {
        const y = targets[i]!;
        if (y < 0) {
          for (let j = 0; j < V; j++) assert.equal(dL[i * V + j], 0);
          continue;
        }
        let mx = -Infinity;
        for (let j = 0; j < V; j++) mx = Math.max(mx, logits[i * V + j]!);
        let z = 0;
        for (let j = 0; j < V; j++) z += Math.exp(logits[i * V + j]! - mx);
        const lse = mx + Math.log(z);
        want += lse - logits[i * V + y]!;
        for (let j = 0; j < V; j++) {
          const g = scale * (Math.exp(logits[i * V + j]! - lse) - (j === y ? 1 : 0));
          assert.ok(
            Math.abs(dL[i * V + j]! - g) <= 1e-6 * scale + 1e-5 * Math.abs(g),
            `${rows}x${V} d[${i},${j}] ${dL[i * V + j]} vs ${g}`,
          );
        }
      }
      assert.ok(close(loss, want, 1e-6), `loss ${loss} vs ${want}`);
    }
    assert.throws(() => be.softmaxXent(new Float32Array(4), new Float32Array(4), Int32Array.of(4), 1, 4, 1));
  });

  test(`${be.name}: AdamW steps and squared norms against float64`, () => {
    for (const n of [1, 37, 40000]) {
      const w = rand(n, n),
        m = new Float32Array(n),
        v = new Float32Array(n);
      const W = Float64Array.from(w),
        M = new Float64Array(n),
        Vv = new Float64Array(n);
      for (let step = 1; step <= 3; step++) {
        const g = rand(n, n + step);
        const h = { lr: 1e-2, beta1: 0.9, beta2: 0.95, eps: 1e-8, wd: 0.1, bc1: 1 - 0.9 ** step, bc2: 1 - 0.95 ** step, gmul: 0.5 };
        be.adamw(w, g, m, v, h);
        for (let i = 0; i < n; i++) {
          const gi = g[i]! * h.gmul;
          M[i] = h.beta1 * M[i]! + (1 - h.beta1) * gi;
          Vv[i] = h.beta2 * Vv[i]! + (1 - h.beta2) * gi * gi;
          W[i] = W[i]! - h.lr * (M[i]! / h.bc1 / (Math.sqrt(Vv[i]! / h.bc2) + h.eps) + h.wd * W[i]!);
        }
      }
      for (let i = 0; i < n; i++) assert.ok(Math.abs(w[i]! - W[i]!) < 1e-5, `w[${i}] ${w[i]} vs ${W[i]}`);
      const g = rand(n, 3),
        g0 = g.slice();
      const ss = be.sumSquares(g, 4);
      let want = 0;
      for (let i = 0; i < n; i++) {
        assert.equal(g[i], Math.fround(g0[i]! / 4));
        want += g[i]! * g[i]!;
      }
      assert.ok(close(ss, want, 1e-6), `Σg² ${ss} vs ${want}`);
    }
  });

  test(`${be.name}: row gather, scatter-add (repeated rows), row dots and RoPE`, () => {
    const rows = 11,
      dim = 37,
      nSrc = 5;
    const src = rand(nSrc * dim, 1),
      scale = rand(nSrc, 2),
      idx = Int32Array.from({ length: rows }, (_, j) => (j * 3) % nSrc);
    for (const sc of [null, scale]) {
      const out = new Float32Array(rows * dim);
      be.gatherRows(out, src, idx, sc, rows, dim);
      for (let j = 0; j < rows; j++)
        for (let x = 0; x < dim; x++) assert.equal(out[j * dim + x], Math.fround(src[idx[j]! * dim + x]! * (sc ? sc[idx[j]!]! : 1)));
      const acc = rand(nSrc * dim, 3),
        want = Float64Array.from(acc);
      be.scatterAddRows(acc, out, idx, sc, rows, dim);
      for (let j = 0; j < rows; j++) for (let x = 0; x < dim; x++) want[idx[j]! * dim + x]! += out[j * dim + x]! * (sc ? sc[idx[j]!]! : 1);
      for (let i = 0; i < want.length; i++) assert.ok(close(acc[i]!, want[i]!, 1e-6), `scatter [${i}] ${acc[i]} vs ${want[i]}`);
    }
    const a = rand(rows * dim, 4),
      dots = new Float32Array(rows);
    be.rowDots(dots, a, src, idx, rows, dim);
    for (let j = 0; j < rows; j++) {
      let s = 0;
      for (let x = 0; x < dim; x++) s += a[j * dim + x]! * src[idx[j]! * dim + x]!;
      assert.ok(close(dots[j]!, s, 1e-6), `dot ${dots[j]} vs ${s}`);
    }
    assert.throws(() => be.gatherRows(new Float32Array(dim), src, Int32Array.of(nSrc), null, 1, dim));
    // RoPE: rows [6, 3 heads, d 6] at positions i mod 4; then the inverse restores x.
    const T = 4,
      nH = 3,
      d = 6,
      n = 6,
      half = d / 2;
    const cos = new Float32Array(T * half),
      sin = new Float32Array(T * half);
    for (let i = 0; i < T * half; i++) {
      cos[i] = Math.cos(0.3 * i);
      sin[i] = Math.sin(0.3 * i);
    }
    const x = rand(n * nH * d, 8),
      x0 = x.slice();
    be.rope(x, cos, sin, n, T, nH, d, false);
    for (let i = 0; i < n; i++)
      for (let h = 0; h < nH; h++)
        for (let j = 0; j < half; j++) {
          const b = (i * nH + h) * d + 2 * j,
            c = cos[(i % T) * half + j]!,
            s = sin[(i % T) * half + j]!;
          assert.ok(close(x[b]!, x0[b]! * c - x0[b + 1]! * s, 1e-6));
          assert.ok(close(x[b + 1]!, x0[b]! * s + x0[b + 1]! * c, 1e-6));
        }
    be.rope(x, cos, sin, n, T, nH, d, true);
    for (let i = 0; i < x.length; i++) assert.ok(Math.abs(x[i]! - x0[i]!) < 1e-6);
  });

  test(`${be.name}: add and row softmax against float64`, () => {
    for (const n of [1, 37, 40000]) {
      const y = rand(n, n),
        x = rand(n, n + 1),
        y0 = y.slice();
      be.add(y, x, n);
      for (let i = 0; i < n; i++) assert.equal(y[i], Math.fround(y0[i]! + x[i]!));
    }
    for (const [rows, dim] of [
      [5, 4],
      [3, 37],
      [70, 16],
    ] as const) {
      const x = Float32Array.from(rand(rows * dim, dim), (v) => 20 * v),
        y = new Float32Array(rows * dim);
      be.softmaxRows(y, x, rows, dim);
      for (let i = 0; i < rows; i++) {
        let mx = -Infinity,
          z = 0;
        for (let j = 0; j < dim; j++) mx = Math.max(mx, x[i * dim + j]!);
        for (let j = 0; j < dim; j++) z += Math.exp(x[i * dim + j]! - mx);
        for (let j = 0; j < dim; j++) {
          const want = Math.exp(x[i * dim + j]! - mx) / z;
          assert.ok(Math.abs(y[i * dim + j]! - want) <= 1e-6 * want + 1e-12, `softmax [${i},${j}] ${y[i * dim + j]} vs ${want}`);
        }
      }
      be.softmaxRows(x, x, rows, dim); // in place
      assert.deepEqual(x, y);
    }
  });
}

// The native core splits work by shape, never by thread count: one thread and three give the same bits.
for (const isa of trainIsas) {
  test(`native ${isa}: results do not depend on the thread count`, (t) => {
    const one = tryCreateNativeTrainBackend(1, isa).backend,
      three = tryCreateNativeTrainBackend(3, isa).backend;
    if (!one || !three) return t.skip('native training backend unavailable');
    try {
      for (const layout of ['nt', 'nn', 'tn'] as const)
        for (const [m, n, k] of [
          [64, 64, 1024],
          [1024, 96, 96],
          [130, 300, 70],
        ] as const) {
          const A = rand(m * k, m + k),
            B = rand(n * k, n + k),
            C1 = new Float32Array(m * n),
            C3 = new Float32Array(m * n);
          one.matmul(layout, C1, A, B, m, n, k, false);
          three.matmul(layout, C3, A, B, m, n, k, false);
          assert.deepEqual(C1, C3, `${layout} ${m}x${n}x${k}`);
        }
      const rows = 300,
        dim = 96,
        x = rand(rows * dim, 1),
        dy = rand(rows * dim, 2),
        r = new Float32Array(rows),
        y = new Float32Array(rows * dim);
      one.rmsNormFwd(y, r, x, null, rows, dim, 1e-5);
      const dx1 = new Float32Array(rows * dim),
        dx3 = new Float32Array(rows * dim),
        dw1 = new Float32Array(dim),
        dw3 = new Float32Array(dim);
      one.rmsNormBwd(dx1, dw1, dy, x, r, rand(dim, 3), rows, dim, false);
      three.rmsNormBwd(dx3, dw3, dy, x, r, rand(dim, 3), rows, dim, false);
      assert.deepEqual(dw1, dw3);
      assert.deepEqual(dx1, dx3);
      const g = rand(100000, 4);
      assert.equal(one.sumSquares(g, 1), three.sumSquares(g, 1));
    } finally {
      one.dispose();
      three.dispose();
    }
  });
}

// BF16 products (mixed precision): each output is the f32 sum of products of bf16-rounded operands.
const f1 = new Float32Array(1),
  u1 = new Uint32Array(f1.buffer);
function bf16(x: number): number {
  f1[0] = x;
  const b = u1[0]!;
  u1[0] = ((b + 0x7fff + ((b >>> 16) & 1)) >>> 16) << 16;
  return f1[0]!;
}
for (const isa of trainIsas) {
  const { backend: be } = tryCreateNativeTrainBackend(2, isa, 'bf16');
  if (!be) continue;
  test(`${be.name}: matmul nt/nn against float64 of bf16-rounded operands, odd shapes, accumulate; tn in f32`, () => {
    for (const layout of ['nt', 'nn', 'tn'] as const)
      for (const [m, n, k] of [
        [1, 1, 1],
        [3, 17, 5],
        [7, 33, 64],
        [65, 49, 31],
        [130, 300, 70],
        [4, 16, 0],
      ] as const) {
        const A = rand(m * k, m + 7 * n + k),
          B = rand(n * k, 3 * m + n + 11 * k);
        const R = layout === 'tn' ? refMatmul(layout, A, B, m, n, k) : refMatmul(layout, A.map(bf16), B.map(bf16), m, n, k);
        for (const acc of [false, true]) {
          const C = rand(m * n, 5),
            C0 = C.slice();
          be.matmul(layout, C, A, B, m, n, k, acc);
          for (let i = 0; i < m * n; i++) {
            const want = R[i]! + (acc ? C0[i]! : 0);
            assert.ok(
              Math.abs(C[i]! - want) <= 1e-5 * (1 + Math.sqrt(k)),
              `${layout} ${m}x${n}x${k} acc=${acc} [${i}]: ${C[i]} vs ${want}`,
            );
          }
        }
      }
  });
}
