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

const backends: TrainBackend[] = [new TsTrainBackend()];
for (const isa of nativeIsas()) {
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

  for (const chunk of [0, 3]) {
    const sh: AttnShape = { B: 2, T: 7, nh: 4, nkv: 2, d: 5, scale: 1 / Math.sqrt(5), chunk };
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
    test(`${be.name}: attention forward (chunk ${chunk}) against float64`, () => {
      const P = new Float32Array(sh.B * sh.nh * sh.T * sh.T),
        O = new Float32Array(nq),
        O64 = new Float64Array(nq);
      be.attnForward(q, k, v, P, O, sh);
      ref(Float64Array.from(q), Float64Array.from(k), Float64Array.from(v), O64);
      for (let i = 0; i < nq; i++) assert.ok(Math.abs(O[i]! - O64[i]!) < 1e-6, `O[${i}] ${O[i]} vs ${O64[i]}`);
    });
    test(`${be.name}: attention backward (chunk ${chunk}) against finite differences`, () => {
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
