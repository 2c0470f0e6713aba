/**
 * Conformance of what the vision tower asks of a backend beyond the shared suite (backend.case.test.ts):
 * - matmul on weights adopted with products 'bf16' (WeightOptions): either exact, or with the activations rounded to
 *   bf16 (nearest even) and the bf16·bf16 products summed in float32 — against float64 references of both, NMSE 1e-9
 *   (float32 rounding) against the one the backend claims; batch-invariant bit for bit like every matmul;
 * - unmasked attention at vision shapes (head size 88, S not a multiple of any tile), which the native AVX-512 set
 *   computes with its whole-row kernel: float64 reference, and a query alone === the same query in the full call.
 * - GELU element by element over [−20, 20] (the native AVX-512 set evaluates erfc by a Chebyshev fit, the others
 *   std::erf in float32): |error| ≤ 1e-6·|gelu(x)| + 1e-7·|x| — relative where 1 + erf is not tiny, and for x ≪ 0 the
 *   cancellation of 1 + erf(x) in float32 (about 6e-8 absolute) that std::erf has; 0, ±inf, NaN handled.
 * Usage: runVisionConformance('label', () => backend or a reason); `bf16` says whether the backend rounds
 * activations (its bf16Products kernel name) or computes exactly.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { AttentionShape, Backend, DType } from '../tensor/index.ts';
import { bf16ToF32, f32ToBf16 } from '../tensor/index.ts';
import { assertSameBits, close, erfRef, nmse, randn, randomWeight, refAttention, refMatmul, rng } from './backend-refs.case.test.ts';

const FLOAT_TOL = 1e-9;
/**
 * Rounding the activations to bf16 (8 significant bits) costs each product a relative error of at most 2^-9; over a
 * dot product of random terms the NMSE against the exact result is about 2e-6 (measured: 2.1e-6 to 2.2e-6 at
 * K = 33 … 5632). Bound: 1e-5.
 */
export const BF16_PRODUCTS_TOL = 1e-5;

const roundBf16 = (x: Float32Array): Float32Array => x.map((v) => bf16ToF32(f32ToBf16(v)));

export function runVisionConformance(label: string, make: () => Backend | string): void {
  const got = make();
  const skip = typeof got === 'string' ? got : false;
  const be = typeof got === 'string' ? (null as unknown as Backend) : got;
  const rounds = !skip && typeof (be as { bf16Products?: unknown }).bf16Products === 'string';
  const t0 = (name: string, fn: () => void): void => {
    test(`${label}: ${name}`, { skip }, fn);
  };
  const weight = (dtype: DType, shape: number[], seed: number, products: 'bf16' | 'exact' = 'bf16') => {
    const rows = shape.slice(0, -1).reduce((a, b) => a * b, 1),
      K = shape[shape.length - 1]!;
    const { bytes, values } = randomWeight(dtype, rows, K, seed);
    return { w: be.weight({ name: 'w', dtype, shape, bytes }, { products }), values };
  };

  for (const [N, K] of [
    [37, 100],
    [64, 33],
    [130, 64],
    [20, 588],
  ] as const) {
    t0(`matmul bf16 weights with products 'bf16' [${N}, ${K}]: ${rounds ? 'bf16-rounded activations' : 'exact'}`, () => {
      const r = rng(N * 1000 + K);
      for (const T of [1, 5, 45]) {
        const { w, values } = weight('bf16', [N, K], N + K);
        const x = randn(r, T * K);
        const out = new Float32Array(T * N).fill(NaN);
        be.matmul(out, x, w, T);
        const exact = refMatmul(x, values, T, N, K);
        const rounded = refMatmul(roundBf16(x), values, T, N, K);
        close(out, rounds ? rounded : exact, FLOAT_TOL, `T=${T}`);
        assert.ok(nmse(out, exact) <= BF16_PRODUCTS_TOL, `T=${T}: NMSE against exact ${nmse(out, exact)}`);
      }
    });
  }

  t0("matmul products 'bf16': expert slices of an [E, N, K] stack", () => {
    const E = 3,
      N = 24,
      K = 70,
      T = 9;
    const { w, values } = weight('bf16', [E, N, K], 5);
    const x = randn(rng(6), T * K);
    for (let e = 0; e < E; e++) {
      const out = new Float32Array(T * N);
      be.matmul(out, x, w, T, e);
      close(out, refMatmul(rounds ? roundBf16(x) : x, values, T, N, K, e * N * K), FLOAT_TOL, `expert ${e}`);
    }
  });

  t0("matmul products 'bf16' keeps f32 and f16 weights' products in float32 (f16: exact GEMM on widened weights)", () => {
    for (const dtype of ['f32', 'f16'] as const) {
      const { w, values } = weight(dtype, [19, 48], 9);
      const x = randn(rng(10), 7 * 48);
      const out = new Float32Array(7 * 19);
      be.matmul(out, x, w, 7);
      close(out, refMatmul(x, values, 7, 19, 48), FLOAT_TOL, dtype);
    }
  });

  t0("matmul products 'bf16' is batch-invariant (T=1 per row, T=7 and T=45 calls, matmulMany: bit for bit)", () => {
    const N = 70,
      K = 96,
      T = 45;
    const { w } = weight('bf16', [N, K], 11);
    const { w: w2 } = weight('bf16', [N, K], 12, 'exact');
    const x = randn(rng(12), T * K);
    const all = new Float32Array(T * N);
    be.matmul(all, x, w, T);
    for (let t = 0; t < T; t++) {
      const one = new Float32Array(N);
      be.matmul(one, x.subarray(t * K, (t + 1) * K), w, 1);
      assertSameBits(all.subarray(t * N, (t + 1) * N), one, `row ${t}`);
    }
    const seven = new Float32Array(7 * N);
    be.matmul(seven, x.subarray(10 * K, 17 * K), w, 7);
    assertSameBits(all.subarray(10 * N, 17 * N), seven, 'rows 10..16');
    const a = new Float32Array(T * N),
      b = new Float32Array(T * N);
    be.matmulMany([
      { out: a, x, w, T },
      { out: b, x, w: w2, T },
    ]);
    assertSameBits(a, all, 'matmulMany job 0');
    const b1 = new Float32Array(T * N);
    be.matmul(b1, x, w2, T);
    assertSameBits(b, b1, 'matmulMany job 1 (exact weight)');
    // f16 weights (the native backend's exact GEMM where BF16 kernels do not apply): the same invariance
    const { w: wh } = weight('f16', [N, K], 13);
    const allH = new Float32Array(T * N);
    be.matmul(allH, x, wh, T);
    for (const t of [0, 5, 44]) {
      const one = new Float32Array(N);
      be.matmul(one, x.subarray(t * K, (t + 1) * K), wh, 1);
      assertSameBits(allH.subarray(t * N, (t + 1) * N), one, `f16 row ${t}`);
    }
  });

  // Unmasked attention at the vision tower's head size (88), a row count that is no multiple of 8 or 16 queries,
  // and a GQA group (not in the tower, but allowed by the op).
  for (const [name, c] of [
    ['vision heads (d 88, 4 heads, 37 rows)', { T: 37, nHeads: 4, nKvHeads: 4, d: 88 }],
    ['GQA, d 40, 61 rows', { T: 61, nHeads: 6, nKvHeads: 2, d: 40 }],
  ] as const) {
    t0(`unmasked attention: ${name}; a query alone === in the full call`, () => {
      const r = rng(c.T * 7 + c.d);
      const shape = (T: number): AttentionShape => ({
        nHeads: c.nHeads,
        nKvHeads: c.nKvHeads,
        headDim: c.d,
        T,
        S: c.T,
        qPos0: 0,
        kPos0: 0,
        scale: 1 / Math.sqrt(c.d),
        mask: { causal: false, chunkSize: 0 },
      });
      const q = randn(r, c.T * c.nHeads * c.d, 2),
        k = randn(r, c.T * c.nKvHeads * c.d),
        v = randn(r, c.T * c.nKvHeads * c.d);
      const out = new Float32Array(q.length).fill(NaN);
      be.attention(out, q, k, v, shape(c.T));
      close(out, refAttention(q, k, v, shape(c.T)), 1e-10, name);
      const hd = c.nHeads * c.d;
      for (const t of [0, 5, c.T - 1]) {
        const one = new Float32Array(hd);
        be.attention(one, q.subarray(t * hd, (t + 1) * hd), k, v, shape(1));
        assertSameBits(out.subarray(t * hd, (t + 1) * hd), one, `query ${t}`);
      }
    });
  }

  t0('gelu: |error| ≤ 1e-6·|gelu| + 1e-7·|x| per element over [−20, 20], and 0, ±inf, NaN', () => {
    const n = 40001;
    const x = new Float32Array(n + 4);
    for (let i = 0; i < n; i++) x[i] = -20 + (40 * i) / (n - 1);
    x.set([0, Infinity, -Infinity, NaN], n);
    const y = x.slice();
    be.gelu(y, y.length);
    for (let i = 0; i < n; i++) {
      const v = x[i]!,
        ref = 0.5 * v * (1 + erfRef(v / Math.SQRT2));
      assert.ok(Math.abs(y[i]! - ref) <= 1e-6 * Math.abs(ref) + 1e-7 * Math.abs(v), `gelu(${v}) = ${y[i]}, want ${ref}`);
    }
    assert.equal(y[n], 0);
    assert.equal(y[n + 1], Infinity);
    assert.ok(y[n + 2] === 0 || Number.isNaN(y[n + 2]), `gelu(-inf) = ${y[n + 2]}`);
    assert.ok(Number.isNaN(y[n + 3]!));
  });
}
