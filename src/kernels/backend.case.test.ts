/**
 * The shared conformance suite for Backend implementations (src/tensor/backend.ts). Every op is checked against
 * an independent float64 reference (backend-refs.case.test.ts; not another backend), on seeded random data, with a
 * per-op tolerance on the normalised mean squared error, as llama.cpp's test-backend-ops does:
 *   NMSE = Σ(out − ref)² / Σ ref².
 * Quantized matmuls may quantize activations to 8-bit blocks on the fly (ggml's vec_dot semantics), so they get
 * llama.cpp's mul_mat bound (5e-4); float paths must agree to float32 rounding.
 * Quantized weights are random bytes with sane scale fields, decoded by the registered row codecs
 * (src/tensor/quant); a type without a codec is skipped with a reason.
 * Usage: runBackendConformance('label', () => backend or a string saying why there is none).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { AttentionShape, Backend, DType, KvType, RawTensor, Weight } from '../tensor/index.ts';
import { DTYPES, allocKv, byteSize, encodeKv, kvElements } from '../tensor/index.ts';
import {
  assertSameBits,
  canDecode,
  close,
  compressKv,
  erfRef,
  nmse,
  randn,
  randomWeight,
  refAttention,
  refMatmul,
  rng,
} from './backend-refs.case.test.ts';

const MATMUL_TYPES: DType[] = [
  'f32',
  'f16',
  'bf16',
  'q8_0',
  'q4_0',
  'q4_1',
  'q5_0',
  'q5_1',
  'q2_k',
  'q3_k',
  'q4_k',
  'q5_k',
  'q6_k',
  'iq2_xxs',
  'iq2_xs',
  'iq2_s',
  'iq3_xxs',
  'iq3_s',
  'iq1_s',
  'iq1_m',
  'iq4_nl',
  'iq4_xs',
];
const FLOAT_TOL = 1e-9,
  QUANT_TOL = 5e-4;

export interface ConformanceOptions {
  /** Expect a RangeError when x/out are shorter than the shapes need (TsBackend relies on JS bounds instead). */
  readonly checksLengths?: boolean;
}

/**
 * Each query of a tile computed alone, as in decode (the cache holds exactly the keys up to its own position), must
 * give the tile's bits for it. `unit`: stored elements per key (all kv heads).
 */
function eachQueryAlone<K extends Float32Array | Uint16Array | Uint8Array>(
  be: Backend,
  tile: Float32Array,
  q: Float32Array,
  k: K,
  v: K,
  o: { T: number; qPos0: number; hd: number; unit: number; shape: (T: number, S: number, qPos0: number) => AttentionShape },
  label: string,
): void {
  for (let t = 0; t < o.T; t++) {
    const S1 = o.qPos0 + t + 1,
      one = new Float32Array(o.hd);
    be.attention(
      one,
      q.subarray(t * o.hd, (t + 1) * o.hd),
      k.subarray(0, S1 * o.unit),
      v.subarray(0, S1 * o.unit),
      o.shape(1, S1, o.qPos0 + t),
    );
    assertSameBits(tile.subarray(t * o.hd, (t + 1) * o.hd), one, `${label} query ${t}`);
  }
}

export function runBackendConformance(label: string, make: () => Backend | string, opts: ConformanceOptions = {}): void {
  const got = make();
  const skip = typeof got === 'string' ? got : false;
  const be = typeof got === 'string' ? (null as unknown as Backend) : got;
  const t0 = (name: string, fn: () => void): void => {
    test(`${label}: ${name}`, { skip }, fn);
  };
  const tensor = (name: string, dtype: DType, shape: number[], bytes: Uint8Array): RawTensor => ({ name, dtype, shape, bytes });

  for (const dtype of MATMUL_TYPES) {
    test(`${label}: matmul ${dtype} (decode, prefill, expert slice)`, {
      skip: skip || (!canDecode(dtype) && `no row codec for ${dtype} registered yet`),
    }, () => {
      const K = 512,
        N = 37,
        E = 3;
      const tol = DTYPES[dtype].blockSize > 1 ? QUANT_TOL : FLOAT_TOL;
      const r = rng(7 + DTYPES[dtype].ggmlType);
      const { bytes, values } = randomWeight(dtype, E * N, K, 100 + DTYPES[dtype].ggmlType);
      const w2 = be.weight(tensor('w', dtype, [N, K], bytes.subarray(0, byteSize(dtype, N * K))));
      const w3 = be.weight(tensor('e', dtype, [E, N, K], bytes));
      for (const T of [1, 3, 19]) {
        const x = randn(r, T * K);
        const out = new Float32Array(T * N).fill(NaN);
        be.matmul(out, x, w2, T);
        close(out, refMatmul(x, values, T, N, K), tol, `${dtype} T=${T}`);
        const oe = new Float32Array(T * N).fill(NaN);
        be.matmul(oe, x, w3, T, 2);
        close(oe, refMatmul(x, values, T, N, K, 2 * N * K), tol, `${dtype} expert 2 T=${T}`);
      }
      // a long row: accumulation over many blocks
      const big = randomWeight(dtype, 32, 4096, 5);
      const xb = randn(r, 4096),
        ob = new Float32Array(32);
      be.matmul(ob, xb, be.weight(tensor('b', dtype, [32, 4096], big.bytes)), 1);
      close(ob, refMatmul(xb, big.values, 1, 32, 4096), tol, `${dtype} K=4096`);
      // rows and dequantization
      const rows = new Float32Array(3 * K);
      be.getRows(rows, w3, [0, 2 * N + 5, N]);
      close(rows.subarray(0, K), values.subarray(0, K), 1e-12, `${dtype} getRows 0`);
      close(rows.subarray(K, 2 * K), values.subarray((2 * N + 5) * K, (2 * N + 6) * K), 1e-12, `${dtype} getRows`);
      close(be.toF32(w3), values, 1e-12, `${dtype} toF32`);
    });
  }

  t0('matmul on unaligned f32 bytes and a large N', () => {
    const K = 96,
      N = 300,
      T = 2;
    const { bytes, values } = randomWeight('f32', N, K, 3);
    const shifted = new Uint8Array(bytes.length + 1).subarray(1);
    shifted.set(bytes);
    const x = randn(rng(4), T * K),
      out = new Float32Array(T * N);
    be.matmul(out, x, be.weight(tensor('u', 'f32', [N, K], shifted)), T);
    close(out, refMatmul(x, values, T, N, K), FLOAT_TOL, 'unaligned f32');
  });

  t0('bad weights and calls throw one clear error', () => {
    const bytes = new Uint8Array(byteSize('q8_0', 64 * 4));
    assert.throws(() => be.weight(tensor('w', 'q8_0', [4, 64], bytes.subarray(1))), RangeError);
    const w = be.weight(tensor('w', 'q8_0', [2, 2, 64], bytes));
    assert.throws(() => be.matmul(new Float32Array(2), new Float32Array(64), w, 1, 2), RangeError);
    if (opts.checksLengths ?? true) {
      assert.throws(() => be.matmul(new Float32Array(1), new Float32Array(64), w, 1), RangeError);
      assert.throws(() => be.matmul(new Float32Array(2), new Float32Array(63), w, 1), RangeError);
      assert.throws(() => be.rmsNorm(new Float32Array(10), new Float32Array(10), null, 2, 10, 1e-5), RangeError);
      assert.throws(
        () =>
          be.attention(new Float32Array(8), new Float32Array(8), new Float32Array(8), new Float32Array(7), {
            nHeads: 1,
            nKvHeads: 1,
            headDim: 8,
            T: 1,
            S: 1,
            qPos0: 0,
            kPos0: 0,
            scale: 1,
            mask: { causal: true, chunkSize: 0 },
          }),
        RangeError,
      );
    }
    assert.throws(() => be.getRows(new Float32Array(64), w, [4]), RangeError);
    be.matmul(new Float32Array(0), new Float32Array(0), w, 0); // T = 0 is a no-op
  });

  t0('rmsNorm with and without weight, in place', () => {
    const r = rng(11),
      rows = 5,
      dim = 320;
    const x = randn(r, rows * dim, 3),
      wt = randn(r, dim);
    for (const weight of [wt, null]) {
      const ref = new Float64Array(rows * dim);
      for (let i = 0; i < rows; i++) {
        let ss = 0;
        for (let j = 0; j < dim; j++) ss += x[i * dim + j]! ** 2;
        const inv = 1 / Math.sqrt(ss / dim + 1e-5);
        for (let j = 0; j < dim; j++) ref[i * dim + j] = x[i * dim + j]! * inv * (weight ? weight[j]! : 1);
      }
      const out = new Float32Array(rows * dim);
      be.rmsNorm(out, x, weight, rows, dim, 1e-5);
      close(out, ref, 1e-12, 'rmsNorm');
      const y = x.slice();
      be.rmsNorm(y, y, weight, rows, dim, 1e-5);
      close(y, ref, 1e-12, 'rmsNorm in place');
    }
  });

  t0('layerNorm', () => {
    const r = rng(12),
      rows = 4,
      dim = 200;
    const x = randn(r, rows * dim, 2),
      w = randn(r, dim),
      b = randn(r, dim);
    const ref = new Float64Array(rows * dim);
    for (let i = 0; i < rows; i++) {
      let m = 0,
        v = 0;
      for (let j = 0; j < dim; j++) m += x[i * dim + j]!;
      m /= dim;
      for (let j = 0; j < dim; j++) v += (x[i * dim + j]! - m) ** 2;
      const inv = 1 / Math.sqrt(v / dim + 1e-6);
      for (let j = 0; j < dim; j++) ref[i * dim + j] = (x[i * dim + j]! - m) * inv * w[j]! + b[j]!;
    }
    const out = new Float32Array(rows * dim);
    be.layerNorm(out, x, w, b, rows, dim, 1e-6);
    close(out, ref, 1e-12, 'layerNorm');
  });

  t0('rope rotates interleaved pairs', () => {
    const r = rng(13),
      T = 6,
      H = 3,
      d = 16;
    const x = randn(r, T * H * d),
      cos = new Float32Array((T * d) / 2),
      sin = new Float32Array((T * d) / 2);
    for (let i = 0; i < cos.length; i++) {
      const a = r.u() * 6;
      cos[i] = Math.cos(a);
      sin[i] = Math.sin(a);
    }
    const ref = new Float64Array(x.length);
    for (let t = 0; t < T; t++)
      for (let h = 0; h < H; h++)
        for (let j = 0; j < d / 2; j++) {
          const o = (t * H + h) * d,
            c = cos[(t * d) / 2 + j]!,
            s = sin[(t * d) / 2 + j]!,
            a = x[o + 2 * j]!,
            b = x[o + 2 * j + 1]!;
          ref[o + 2 * j] = a * c - b * s;
          ref[o + 2 * j + 1] = a * s + b * c;
        }
    const y = x.slice();
    be.rope(y, T, H, d, cos, sin);
    close(y, ref, 1e-12, 'rope');
  });

  const attnCases: Array<[string, Partial<AttentionShape> & { causal: boolean; chunk: number }]> = [
    ['causal prefill, GQA', { T: 21, S: 21, qPos0: 0, kPos0: 0, causal: true, chunk: 0 }],
    ['decode against a cache', { T: 1, S: 40, qPos0: 39, kPos0: 0, causal: true, chunk: 0 }],
    ['chunked mask crossing chunk borders', { T: 12, S: 30, qPos0: 18, kPos0: 0, causal: true, chunk: 8 }],
    ['chunked cache window (kPos0 > 0)', { T: 3, S: 10, qPos0: 21, kPos0: 14, causal: true, chunk: 8 }],
    ['bidirectional (vision)', { T: 9, S: 9, qPos0: 0, kPos0: 0, causal: false, chunk: 0 }],
    ['long prefill tile edges', { T: 70, S: 70, qPos0: 0, kPos0: 0, causal: true, chunk: 32 }],
    ['decode over a long cache (key slices)', { T: 1, S: 2600, qPos0: 2599, kPos0: 0, causal: true, chunk: 0 }],
    ['decode over a long chunked cache', { T: 2, S: 2600, qPos0: 2598, kPos0: 0, causal: true, chunk: 1024 }],
  ];
  for (const [name, c] of attnCases) {
    t0(`attention: ${name}`, () => {
      const r = rng(17 + c.T!),
        nHeads = 4,
        nKvHeads = 2,
        d = 32;
      const p: AttentionShape = {
        nHeads,
        nKvHeads,
        headDim: d,
        T: c.T!,
        S: c.S!,
        qPos0: c.qPos0!,
        kPos0: c.kPos0!,
        scale: 1 / Math.sqrt(d),
        mask: { causal: c.causal, chunkSize: c.chunk },
      };
      const q = randn(r, p.T * nHeads * d),
        k = randn(r, p.S * nKvHeads * d),
        v = randn(r, p.S * nKvHeads * d);
      const ref = refAttention(q, k, v, p);
      const out = new Float32Array(q.length).fill(NaN);
      be.attention(out, q, k, v, p);
      close(out, ref, 1e-10, `attention ${name}`);
    });
  }

  // Batch invariance: continuous batching must give each request exactly what it gets alone, so a token's
  // matmul row and a query's attention output may not depend on how many other tokens share the call (nor on how
  // threads split the work). Compared bit for bit, on random sizes that are not multiples of the tile sizes.
  for (const dtype of MATMUL_TYPES) {
    test(`${label}: matmul ${dtype} is batch-invariant (T=1 per row === one T>1 call, bit for bit)`, {
      skip: skip || (!canDecode(dtype) && `no row codec for ${dtype} registered yet`),
    }, () => {
      const r = rng(31 + DTYPES[dtype].ggmlType);
      const bs = DTYPES[dtype].blockSize;
      for (let round = 0; round < 3; round++) {
        const K = bs === 1 ? 8 + Math.floor(r.u() * 300) : bs * (1 + Math.floor(r.u() * (bs === 256 ? 6 : 40)));
        // round 0 uses a multiple of 8 rows (the native core repacks q4_0/q8_0 such matrices into 8-row groups)
        const N = round === 0 ? 8 * (1 + Math.floor(r.u() * 8)) : 1 + Math.floor(r.u() * 70),
          T = 2 + Math.floor(r.u() * 69),
          E = 2;
        const { bytes } = randomWeight(dtype, E * N, K, 200 + round);
        const w3 = be.weight(tensor('e', dtype, [E, N, K], bytes));
        const w2 = be.weight(tensor('w', dtype, [N, K], bytes.subarray(0, byteSize(dtype, N * K))));
        const x = randn(r, T * K);
        for (const [w, expert] of [
          [w2, undefined],
          [w3, 1],
        ] as const) {
          const batched = new Float32Array(T * N);
          be.matmul(batched, x, w, T, expert);
          const one = new Float32Array(N);
          for (let t = 0; t < T; t++) {
            be.matmul(one, x.subarray(t * K, (t + 1) * K), w, 1, expert);
            assertSameBits(
              batched.subarray(t * N, (t + 1) * N),
              one,
              `${dtype} K=${K} N=${N} T=${T}${expert === undefined ? '' : ' expert 1'} token ${t}`,
            );
          }
        }
      }
    });
  }

  // Small batches (2..16 tokens: decoding sequences, an expert's few tokens) have kernels of their own on some
  // kernel sets; rows a multiple of 8 (repacked q4_0/q8_0), including an odd number of 8-row groups, and odd T.
  for (const dtype of ['q4_0', 'q8_0', 'q4_k', 'q5_k', 'q6_k'] as const) {
    test(`${label}: matmul ${dtype} small batches (T=2..16) are batch-invariant`, { skip }, () => {
      const r = rng(77 + DTYPES[dtype].ggmlType);
      for (const [N, K] of [
        [40, 256],
        [64, 512],
        [8, 256],
      ] as const) {
        const { bytes } = randomWeight(dtype, N, K, 300 + N);
        const w = be.weight(tensor('w', dtype, [N, K], bytes));
        const x = randn(r, 16 * K);
        const one = new Float32Array(N);
        for (const T of [2, 3, 5, 8, 9, 16]) {
          const batched = new Float32Array(T * N);
          be.matmul(batched, x, w, T);
          for (let t = 0; t < T; t++) {
            be.matmul(one, x.subarray(t * K, (t + 1) * K), w, 1);
            assertSameBits(batched.subarray(t * N, (t + 1) * N), one, `${dtype} K=${K} N=${N} T=${T} token ${t}`);
          }
        }
      }
    });
  }

  t0('matmulMany gives each job exactly what matmul gives (shared inputs, experts, mixed types and sizes, T = 0)', () => {
    const r = rng(901);
    const K = 256;
    const mk = (dtype: DType, E: number, N: number, seed: number): Weight =>
      be.weight(tensor('w', dtype, E > 1 ? [E, N, K] : [N, K], randomWeight(dtype, E * N, K, seed).bytes));
    const wa = mk('q4_0', 1, 48, 1),
      wb = mk('q8_0', 1, 40, 2),
      wc = mk('q6_k', 1, 24, 3),
      we = mk('q4_0', 4, 16, 4),
      wf = mk('f32', 1, 8, 5);
    const x1 = randn(r, 19 * K),
      x2 = randn(r, 3 * K),
      x3 = randn(r, K);
    const jobs: Array<{ x: Float32Array; w: Weight; T: number; expert?: number; N: number }> = [
      { x: x1, w: wa, T: 19, N: 48 },
      { x: x1, w: wb, T: 19, N: 40 },
      { x: x2, w: wa, T: 3, N: 48 },
      { x: x2, w: wc, T: 3, N: 24 },
      { x: x3, w: we, T: 1, expert: 2, N: 16 },
      { x: x2, w: we, T: 3, expert: 1, N: 16 },
      { x: x3, w: wf, T: 0, N: 8 },
      { x: x3, w: wf, T: 1, N: 8 },
    ];
    const outs = jobs.map((j) => new Float32Array(j.T * j.N).fill(NaN));
    be.matmulMany(jobs.map((j, i) => ({ out: outs[i]!, x: j.x, w: j.w, T: j.T, ...(j.expert !== undefined ? { expert: j.expert } : {}) })));
    jobs.forEach((j, i) => {
      const want = new Float32Array(j.T * j.N);
      be.matmul(want, j.x, j.w, j.T, j.expert);
      assertSameBits(outs[i]!, want, `job ${i}`);
    });
  });

  t0('attentionMany gives each sequence exactly what attention gives (mixed lengths, chunked and not, f32/f16/q8_0 K/V)', () => {
    const r = rng(4242);
    const nh = 4,
      nkv = 2,
      d = 32;
    const cases = [
      { T: 1, S: 9, qPos0: 8, chunk: 0, kv: 'f32' },
      { T: 3, S: 40, qPos0: 37, chunk: 16, kv: 'f32' },
      { T: 0, S: 5, qPos0: 5, chunk: 0, kv: 'f32' },
      { T: 1, S: 700, qPos0: 699, chunk: 0, kv: 'f16' },
      { T: 18, S: 18, qPos0: 0, chunk: 0, kv: 'q8_0' },
      { T: 1, S: 1, qPos0: 0, chunk: 8, kv: 'f16' },
    ] as const;
    const jobs = cases.map((c) => {
      const kf = randn(r, c.S * nkv * d),
        vf = randn(r, c.S * nkv * d);
      const k = c.kv === 'f32' ? kf : compressKv(c.kv, kf, nkv * d).data,
        v = c.kv === 'f32' ? vf : compressKv(c.kv, vf, nkv * d).data;
      const shape: AttentionShape = {
        nHeads: nh,
        nKvHeads: nkv,
        headDim: d,
        T: c.T,
        S: c.S,
        qPos0: c.qPos0,
        kPos0: 0,
        scale: 0.17,
        mask: { causal: true, chunkSize: c.chunk },
        kvType: c.kv,
      };
      return { out: new Float32Array(c.T * nh * d).fill(NaN), q: randn(r, c.T * nh * d), k, v, shape };
    });
    be.attentionMany(jobs);
    jobs.forEach((j, i) => {
      const want = new Float32Array(j.out.length);
      be.attention(want, j.q, j.k, j.v, j.shape);
      assertSameBits(j.out, want, `job ${i}`);
    });
  });

  const invCases: Array<[string, { T: number; S: number; qPos0: number; chunk: number; d: number }]> = [
    ['causal prefill', { T: 70, S: 70, qPos0: 0, chunk: 0, d: 32 }],
    ['chunked prefill, odd head size', { T: 45, S: 45, qPos0: 0, chunk: 16, d: 40 }],
    ['long cache (key slices when alone, none in the batch)', { T: 70, S: 2600, qPos0: 2530, chunk: 0, d: 32 }],
    ['long cache, few queries (split both ways)', { T: 3, S: 1700, qPos0: 1697, chunk: 1024, d: 32 }],
    // Llama 4's head size: AVX-512's register-blocked kernel holds a row in 8 zmm, 3 queries per value pass
    ['head size 128, long cache (decode reads the cache in place, prefill converts it)', { T: 21, S: 900, qPos0: 879, chunk: 0, d: 128 }],
  ];
  for (const [name, c] of invCases) {
    t0(`attention is batch-invariant: ${name}`, () => {
      const r = rng(41 + c.T),
        nHeads = 4,
        nKvHeads = 2,
        d = c.d;
      const shape = (T: number, S: number, qPos0: number): AttentionShape => ({
        nHeads,
        nKvHeads,
        headDim: d,
        T,
        S,
        qPos0,
        kPos0: 0,
        scale: 1 / Math.sqrt(d),
        mask: { causal: true, chunkSize: c.chunk },
      });
      const q = randn(r, c.T * nHeads * d),
        k = randn(r, c.S * nKvHeads * d),
        v = randn(r, c.S * nKvHeads * d);
      const batched = new Float32Array(q.length);
      be.attention(batched, q, k, v, shape(c.T, c.S, c.qPos0));
      const hd = nHeads * d,
        kd = nKvHeads * d;
      eachQueryAlone(be, batched, q, k, v, { T: c.T, qPos0: c.qPos0, hd, unit: kd, shape }, `attention ${name}`);
    });
  }

  // Compressed KV caches (--kv-type f16 | q8_0): attention reads f16 halves / q8_0 blocks in place. Checked against
  // the float64 reference fed the same dequantized K/V, and bit for bit against this backend's own f32 path on the
  // dequantized values (the loaders must change the storage, not the arithmetic).
  const kvCases = attnCases.filter(([name]) => !name.startsWith('bidirectional'));
  for (const kvType of ['f16', 'q8_0'] as const) {
    for (const [name, c] of kvCases) {
      t0(`attention, ${kvType} K/V: ${name}`, () => {
        const r = rng(23 + c.T!),
          nHeads = 4,
          nKvHeads = 2,
          d = 64;
        const p: AttentionShape = {
          nHeads,
          nKvHeads,
          headDim: d,
          T: c.T!,
          S: c.S!,
          qPos0: c.qPos0!,
          kPos0: c.kPos0!,
          scale: 1 / Math.sqrt(d),
          mask: { causal: c.causal, chunkSize: c.chunk },
        };
        const q = randn(r, p.T * nHeads * d),
          k = randn(r, p.S * nKvHeads * d, 2),
          v = randn(r, p.S * nKvHeads * d);
        const kc = compressKv(kvType, k, nKvHeads * d),
          vc = compressKv(kvType, v, nKvHeads * d);
        const out = new Float32Array(q.length).fill(NaN);
        be.attention(out, q, kc.data, vc.data, { ...p, kvType });
        close(out, refAttention(q, kc.values, vc.values, p), 1e-10, `attention ${kvType} ${name}`);
        const viaF32 = new Float32Array(q.length);
        be.attention(viaF32, q, kc.values, vc.values, p);
        assertSameBits(out, viaF32, `attention ${kvType} ${name} vs f32 path on the dequantized K/V`);
        // and the compression is really lossy: the exact f32 K/V give a different answer
        const exact = new Float32Array(q.length);
        be.attention(exact, q, k, v, p);
        assert.ok(nmse(out, exact) > 0, 'compressed K/V should differ from the exact ones');
      });
    }
    for (const [name, c] of invCases) {
      const d = kvType === 'q8_0' ? 32 * Math.ceil(c.d / 32) : c.d; // q8_0 rows are whole 32-value blocks
      t0(`attention is batch-invariant with ${kvType} K/V: ${name} (d=${d})`, () => {
        const r = rng(43 + c.T),
          nHeads = 4,
          nKvHeads = 2;
        const shape = (T: number, S: number, qPos0: number): AttentionShape => ({
          nHeads,
          nKvHeads,
          headDim: d,
          T,
          S,
          qPos0,
          kPos0: 0,
          scale: 1 / Math.sqrt(d),
          mask: { causal: true, chunkSize: c.chunk },
          kvType,
        });
        const q = randn(r, c.T * nHeads * d);
        const kc = compressKv(kvType, randn(r, c.S * nKvHeads * d), nKvHeads * d).data,
          vc = compressKv(kvType, randn(r, c.S * nKvHeads * d), nKvHeads * d).data;
        const batched = new Float32Array(q.length);
        be.attention(batched, q, kc, vc, shape(c.T, c.S, c.qPos0));
        const hd = nHeads * d,
          unit = kvElements(kvType, nKvHeads * d);
        eachQueryAlone(be, batched, q, kc, vc, { T: c.T, qPos0: c.qPos0, hd, unit, shape }, `attention ${kvType} ${name}`);
      });
    }
  }

  // Decode over many kv heads (Llama 4's 8, with Scout's 5 query heads per kv head and bench-2b's 2): one token
  // alone, or two, reads every kv head of a key block in one kernel call where the kernel set has one (attn_heads);
  // its queries must get the bits a prefill tile gives them, for every K/V storage.
  for (const kvType of ['f32', 'f16', 'q8_0'] as const)
    for (const [nHeads, chunk] of [
      [40, 0],
      [16, 1024],
    ] as const)
      t0(`attention is batch-invariant over ${nHeads}/8 heads × 128 with ${kvType} K/V (chunk ${chunk}): 1 and 2 tokens vs a tile`, () => {
        const r = rng(59 + nHeads),
          nKvHeads = 8,
          d = 128,
          S = 1300,
          T = 6,
          qPos0 = S - T;
        const shape = (T1: number, S1: number, q0: number): AttentionShape => ({
          nHeads,
          nKvHeads,
          headDim: d,
          T: T1,
          S: S1,
          qPos0: q0,
          kPos0: 0,
          scale: 1 / Math.sqrt(d),
          mask: { causal: true, chunkSize: chunk },
          kvType,
        });
        const q = randn(r, T * nHeads * d);
        const store = (x: Float32Array) => (kvType === 'f32' ? x : compressKv(kvType, x, nKvHeads * d).data);
        const kc = store(randn(r, S * nKvHeads * d)),
          vc = store(randn(r, S * nKvHeads * d));
        const hd = nHeads * d,
          unit = kvElements(kvType, nKvHeads * d);
        const tile = new Float32Array(q.length);
        be.attention(tile, q, kc, vc, shape(T, S, qPos0));
        eachQueryAlone(be, tile, q, kc, vc, { T, qPos0, hd, unit, shape }, `${kvType} alone`);
        const two = new Float32Array(2 * hd);
        be.attention(
          two,
          q.subarray(2 * hd, 4 * hd),
          kc.subarray(0, (qPos0 + 4) * unit),
          vc.subarray(0, (qPos0 + 4) * unit),
          shape(2, qPos0 + 4, qPos0 + 2),
        );
        assertSameBits(tile.subarray(2 * hd, 4 * hd), two, `${kvType} queries 2-3 together`);
      });

  t0('compressed K/V: wrong array kind, head size or length throw one clear error', () => {
    const p = (kvType: KvType, d: number, S = 1): AttentionShape => ({
      nHeads: 1,
      nKvHeads: 1,
      headDim: d,
      T: 1,
      S,
      qPos0: S - 1,
      kPos0: 0,
      scale: 1,
      mask: { causal: true, chunkSize: 0 },
      kvType,
    });
    const q = new Float32Array(64),
      out = new Float32Array(64);
    assert.throws(() => be.attention(out, q, new Float32Array(32), new Float32Array(32), p('f16', 32)), TypeError);
    assert.throws(() => be.attention(out, q, new Uint16Array(34), new Uint16Array(34), p('q8_0', 32)), TypeError);
    assert.throws(() => be.attention(out, q, new Uint8Array(34), new Uint8Array(34), p('f32', 32)), TypeError);
    assert.throws(() => be.attention(out, q, new Uint8Array(68), new Uint8Array(68), p('q8_0', 40)), RangeError);
    assert.throws(() => be.attention(out, q, new Uint8Array(34), new Uint8Array(33), p('q8_0', 32)), RangeError);
    assert.throws(() => be.attention(out, q, new Uint16Array(64), new Uint16Array(63), p('f16', 32, 2)), RangeError);
  });

  t0('siluMul (aliasing gate), gelu, addInPlace, addBias', () => {
    const r = rng(19),
      n = 1000;
    const g = randn(r, n, 3),
      u = randn(r, n);
    const ref = Array.from(g, (v, i) => (v / (1 + Math.exp(-v))) * u[i]!);
    const out = g.slice();
    be.siluMul(out, out, u, n);
    close(out, ref, 1e-12, 'siluMul');
    const x = randn(r, n, 3),
      gx = x.slice();
    be.gelu(gx, n);
    // erf by its Taylor series is exact enough for |x| < 12 in float64 reference terms; use the identity with erfc
    close(
      gx,
      Array.from(x, (v) => 0.5 * v * (1 + erfRef(v / Math.SQRT2))),
      1e-12,
      'gelu',
    );
    const a = randn(r, n),
      b = randn(r, n),
      s = a.slice();
    be.addInPlace(s, b, n);
    close(
      s,
      Array.from(a, (v, i) => v + b[i]!),
      1e-14,
      'addInPlace',
    );
    const bias = randn(r, 10),
      m = randn(r, 100),
      mb = m.slice();
    be.addBias(mb, bias, 10, 10);
    close(
      mb,
      Array.from(m, (v, i) => v + bias[i % 10]!),
      1e-14,
      'addBias',
    );
  });

  t0('scaleRows, gatherRows, scatterAddRows, routeTop1 (MoE row bookkeeping, NoPE temperature)', () => {
    const r = rng(23),
      rows = 7,
      dim = 5;
    const x = randn(r, rows * dim),
      scale = Float32Array.from({ length: rows }, (_, i) => (i === 2 ? 1 : 0.5 + i / 4));
    const xs = x.slice();
    be.scaleRows(xs, scale, rows, dim);
    close(
      xs,
      Array.from(x, (v, i) => Math.fround(v * scale[Math.floor(i / dim)]!)),
      0,
      'scaleRows',
    );
    const idx = Int32Array.from([3, 0, 6, 3, 1]);
    const g = new Float32Array(idx.length * dim);
    be.gatherRows(g, x, idx, scale, idx.length, dim);
    close(
      g,
      Array.from(g, (_, i) => Math.fround(x[idx[Math.floor(i / dim)]! * dim + (i % dim)]! * scale[idx[Math.floor(i / dim)]!]!)),
      0,
      'gatherRows (scaled)',
    );
    be.gatherRows(g, x, idx, null, idx.length, dim);
    close(
      g,
      Array.from(g, (_, i) => x[idx[Math.floor(i / dim)]! * dim + (i % dim)]!),
      0,
      'gatherRows',
    );
    const acc = randn(r, rows * dim),
      want = Float64Array.from(acc);
    // float32 adds in order of j: every backend gives the sequential sum's bits
    for (let j = 0; j < idx.length; j++)
      for (let c = 0; c < dim; c++) want[idx[j]! * dim + c] = Math.fround(want[idx[j]! * dim + c]! + g[j * dim + c]!);
    be.scatterAddRows(acc, g, idx, idx.length, dim);
    close(acc, want, 0, 'scatterAddRows (index 3 twice)');
    assert.throws(() => be.gatherRows(g, x, Int32Array.from([rows]), null, 1, dim), RangeError, 'gatherRows: a row past src');
    assert.throws(() => be.scatterAddRows(acc, g, Int32Array.from([-1]), 1, dim), RangeError, 'scatterAddRows: a negative row');
    const E = 4,
      logits = randn(r, rows * E, 2);
    logits[5 * E + 1] = logits[5 * E + 3] = 9; // a tie: the lower index wins
    const choice = new Int32Array(rows),
      score = new Float32Array(rows);
    be.routeTop1(logits, rows, E, choice, score);
    for (let t = 0; t < rows; t++) {
      let best = 0;
      for (let e = 1; e < E; e++) if (logits[t * E + e]! > logits[t * E + best]!) best = e;
      assert.equal(choice[t], best, `routeTop1 choice of row ${t}`);
      close([score[t]!], [1 / (1 + Math.exp(-logits[t * E + best]!))], 1e-14, `routeTop1 score of row ${t}`);
    }
    assert.equal(choice[5], 1, 'routeTop1 tie goes to the lowest index');
  });

  t0('encodeKv (where the backend has it): the bits of kv.ts for every kind of float32', () => {
    if (!be.encodeKv) return;
    const r = rng(29);
    const vals = [0, -0, 1, -1, 65504, 65520, -65519.99, 1e9, -Infinity, Number.NaN, 6.1e-5, 5.96e-8, 2.98e-8, 2.99e-8, 1e-12, -3e-6];
    // halfway cases between two halves (round to even), normal and subnormal
    for (const base of [1, 1.5, 1024, 3e-5]) vals.push(base * (1 + 2 ** -11), base * (1 + 3 * 2 ** -11));
    for (let i = 0; i < 200; i++) vals.push((r.u() - 0.5) * 10 ** (r.u() * 12 - 8));
    const src = Float32Array.from(vals);
    for (const type of ['f16', 'q8_0', 'f32'] as KvType[]) {
      const n = type === 'q8_0' ? 192 : src.length - 4;
      const mine = allocKv(type, kvElements(type, n) + 8),
        ref = allocKv(type, kvElements(type, n) + 8);
      be.encodeKv(type, src, 4, n, mine, 8);
      encodeKv(type, src, 4, n, ref, 8);
      assert.deepEqual(mine, ref, `encodeKv ${type}`);
    }
  });
}
