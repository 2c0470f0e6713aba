// Repacked weights (native/src/common.h): the native backend copies q4_0/q8_0 matrices into 8-row groups at load
// ("R8"; q4_K/q5_K/q6_K/IQ4_XS "R16" groups further down). The R8 kernels promise the very same bits as the kernels on
// the file layout, for decode and prefill, plain and expert-sliced weights, and getRows/toF32 must read the rows
// back unchanged.
import test from 'node:test';
import assert from 'node:assert/strict';
import { tryCreateNativeBackend, type NativeBackend } from './index.ts';
import { randomWeight, randn, rng } from '../backend-refs.case.test.ts';
import { byteSize, DTYPES, type DType, type Weight } from '../../tensor/index.ts';
import type { RawEngine } from './addon.ts';

const packed = tryCreateNativeBackend({ threads: 2, repack: true });
const plain = tryCreateNativeBackend({ threads: 2, repack: false });
const skip = packed.backend && plain.backend ? false : `native core unavailable: ${packed.reason}`;

function sameBits(a: Float32Array, b: Float32Array, what: string): void {
  const ua = new Uint32Array(a.buffer, a.byteOffset, a.length),
    ub = new Uint32Array(b.buffer, b.byteOffset, b.length);
  for (let i = 0; i < ua.length; i++) if (ua[i] !== ub[i]) assert.fail(`${what}: element ${i} differs (${a[i]} vs ${b[i]})`);
}

/** The same product x · W[e]ᵀ on two backends (each with its own handle of one weight): [A's, B's]. */
function productOnBoth(A: NativeBackend, wa: Weight, B: NativeBackend, wb: Weight, x: Float32Array, T: number, N: number, e: number) {
  const oa = new Float32Array(T * N),
    ob = new Float32Array(T * N);
  A.matmul(oa, x, wa, T, e);
  B.matmul(ob, x, wb, T, e);
  return [oa, ob] as const;
}

/** One weight on both backends (A repacks it, B keeps the file layout), its rows read back bit-exact by both. */
function loadBoth(A: NativeBackend, B: NativeBackend, dtype: DType, E: number, N: number, K: number) {
  const { bytes } = randomWeight(dtype, E * N, K, N + K);
  const t = { name: 'w', dtype, shape: E === 1 ? [N, K] : [E, N, K], bytes };
  const before = A.repackedBytes;
  const wa = A.weight(t),
    wb = B.weight(t);
  assert.equal(A.repackedBytes - before, byteSize(dtype, E * N * K), 'the packed backend repacked the weight');
  assert.equal(B.repackedBytes, 0, 'repack: false keeps the file layout');
  const ids = [0, E * N - 1, 5 % (E * N), (E * N) >> 1, 17 % (E * N)];
  const ra = new Float32Array(ids.length * K),
    rb = new Float32Array(ids.length * K);
  A.getRows(ra, wa, ids);
  B.getRows(rb, wb, ids);
  sameBits(ra, rb, `${dtype} getRows`);
  sameBits(A.toF32(wa), B.toF32(wb), `${dtype} toF32`);
  return { wa, wb };
}

for (const dtype of ['q4_0', 'q8_0'] as DType[]) {
  test(`native repack ${dtype}: same bits as the file layout (decode, prefill, experts, rows)`, { skip }, () => {
    const A = packed.backend as NativeBackend,
      B = plain.backend as NativeBackend;
    const r = rng(5);
    for (const [E, N, K] of [
      [1, 64, 256],
      [2, 32, 512], // q4_0 on AVX-512: the R16 layout (rows per expert % 16 == 0)
      [3, 24, 1024],
      [2, 8, 32],
      [1, 40, 4096],
    ] as const) {
      const { wa, wb } = loadBoth(A, B, dtype, E, N, K);
      for (const T of [1, 4, 7, 40]) {
        const x = randn(r, T * K);
        for (let e = 0; e < E; e++) {
          const [oa, ob] = productOnBoth(A, wa, B, wb, x, T, N, e);
          sameBits(oa, ob, `${dtype} [${E}, ${N}, ${K}] T=${T} expert ${e}`);
        }
      }
    }
  });
}

// q4_K, q5_K, q6_K and IQ4_XS on AVX-512: 16-row groups in chunk-major layouts whose kernels sum each super-block as exact
// integers per row (kern-kquant-r16-avx512.h), so the bits differ from the file layout's kernels by rounding only;
// rows read back unchanged, and a token's result is the same whatever its batch.
for (const dtype of ['q6_k', 'q4_k', 'q5_k', 'iq4_xs'] as DType[]) {
  const packs = (() => {
    const be = packed.backend as NativeBackend | undefined;
    if (!be) return false;
    const before = be.repackedBytes;
    be.weight({ name: 'probe', dtype, shape: [16, 256], bytes: randomWeight(dtype, 16, 256, 1).bytes });
    return be.repackedBytes > before;
  })();
  test(`native repack ${dtype} (16-row groups): rows read back unchanged; products match the file layout; batch-invariant`, {
    skip: skip || (!packs && `kernel set ${packed.backend?.name} has no ${dtype} R16 kernels (AVX-512 only)`),
  }, () => {
    const A = packed.backend as NativeBackend,
      B = plain.backend as NativeBackend;
    const r = rng(6);
    for (const [E, N, K] of [
      [1, 16, 256],
      [2, 32, 512],
      [1, 48, 2048],
      [3, 16, 768],
    ] as const) {
      const { wa, wb } = loadBoth(A, B, dtype, E, N, K);
      for (const T of [1, 3, 8, 13, 40]) {
        const x = randn(r, T * K);
        for (let e = 0; e < E; e++) {
          const [oa, ob] = productOnBoth(A, wa, B, wb, x, T, N, e);
          // both exact integer sums, scaled in float32 in different orders: differences are a few ulps of the
          // row's magnitude (a wrong code, scale or row would be off by whole products)
          let scale = 0;
          for (const v of ob) scale = Math.max(scale, Math.abs(v));
          for (let i = 0; i < oa.length; i++)
            assert.ok(
              Math.abs(oa[i]! - ob[i]!) <= 2e-6 * scale * Math.sqrt(K / 256) + 1e-30,
              `${dtype} [${E}, ${N}, ${K}] T=${T} expert ${e} element ${i}: ${oa[i]} vs ${ob[i]}`,
            );
          const one = new Float32Array(N);
          for (let t = 0; t < T; t++) {
            A.matmul(one, x.subarray(t * K, (t + 1) * K), wa, 1, e);
            sameBits(oa.subarray(t * N, (t + 1) * N), one, `${dtype} R16 [${E}, ${N}, ${K}] T=${T} expert ${e} token ${t} alone`);
          }
        }
      }
    }
  });
}

// The AVX2 kernels for the q4_K, q5_K and IQ4_XS R16 layouts sum the same integers as the AVX-512 ones and take the
// same float steps (kern-kquant-r16-avx2.h): the two kernel sets agree bit for bit.
test('native R16 q4_k/q5_k/iq4_xs: the AVX2 and AVX-512 kernel sets give the same bits', { skip }, () => {
  const a512 = packed.backend as NativeBackend;
  const avx2 = tryCreateNativeBackend({ threads: 2, isa: 'avx2' }).backend;
  if (!avx2 || a512.isa !== 'avx512') return;
  try {
    const r = rng(8);
    for (const dtype of ['q4_k', 'q5_k', 'iq4_xs'] as DType[])
      for (const [E, N, K] of [
        [1, 32, 512],
        [2, 16, 1024],
      ] as const) {
        const { bytes } = randomWeight(dtype, E * N, K, 3 * N + K);
        const t = { name: 'w', dtype, shape: E === 1 ? [N, K] : [E, N, K], bytes };
        const b0 = a512.repackedBytes,
          b1 = avx2.repackedBytes;
        const wa = a512.weight(t),
          wb = avx2.weight(t);
        assert.ok(a512.repackedBytes > b0 && avx2.repackedBytes > b1, `${dtype} repacked on both kernel sets`);
        for (const T of [1, 2, 5, 9]) {
          const x = randn(r, T * K);
          // a block of tiny activations (1/d overflows: the quantizer zeroes the block) and one with a huge
          // value: codes at the ends of their range, where sign tricks and saturation would differ
          for (let i = 0; i < 256; i++) x[i] = x[i]! * 1e-38;
          if (K >= 512) x[300] = 3e38;
          for (let e = 0; e < E; e++) {
            const [oa, ob] = productOnBoth(a512, wa, avx2, wb, x, T, N, e);
            sameBits(ob, oa, `${dtype} [${E}, ${N}, ${K}] T=${T} expert ${e}: AVX2 vs AVX-512`);
          }
        }
      }
  } finally {
    avx2.dispose();
  }
});

// The AVX2 + VNNI set (kern-avx2-vnni.cc) sums the q4_0/q8_0 family's blocks and the q4_K/q5_K/IQ4_XS R16 sub-blocks
// with VPDPBUSD where the AVX2 set uses maddubs + madd: the same integers (no caller lets maddubs saturate), so the
// same bits, on the file layout and on the repacked R8/R16 groups, decode, batches and prefill tiles.
const vnniSkip = (() => {
  if (skip) return skip;
  const made = tryCreateNativeBackend({ threads: 1, isa: 'avx2-vnni' });
  if (!made.backend) return `the avx2-vnni kernel set cannot run here (${made.reason}): it needs AVX-VNNI or AVX512-VNNI + VL`;
  made.backend.dispose();
  return false;
})();
test('native avx2-vnni: the same bits as the AVX2 set (q4_0 family, R8; q4_K, q5_K, IQ4_XS, R16)', { skip: vnniSkip }, () => {
  const sets = (['avx2-vnni', 'avx2'] as const).flatMap((isa) =>
    [true, false].map((repack) => tryCreateNativeBackend({ threads: 2, isa, repack }).backend as NativeBackend),
  );
  try {
    const r = rng(9);
    for (const dtype of ['q4_0', 'q8_0', 'q4_1', 'q5_0', 'q5_1', 'q4_k', 'q5_k', 'iq4_xs'] as DType[])
      for (const [E, N, K] of [
        [1, 48, 512],
        [2, 16, 1024],
        [1, 44, 256], // rows % 8 = 4: the single-row tails, on the file layout (nothing repacks 44 rows)
      ] as const) {
        const { bytes } = randomWeight(dtype, E * N, K, 5 * N + K);
        const t = { name: 'w', dtype, shape: E === 1 ? [N, K] : [E, N, K], bytes };
        const ws = sets.map((be) => be.weight(t));
        for (const T of [1, 3, 8, 21]) {
          const x = randn(r, T * K);
          // a token of tiny activations (1/d overflows: the quantizers zero its blocks; the biased q8_0 sums need
          // isum to be the codes' sum there too, and the token's results are only these blocks) and a huge value
          for (let i = (T - 1) * K; i < T * K; i++) x[i] = x[i]! * 1e-38;
          x[7] = 3e38;
          for (let e = 0; e < E; e++)
            for (const repack of [0, 1]) {
              const [ov, oa] = productOnBoth(sets[repack]!, ws[repack]!, sets[2 + repack]!, ws[2 + repack]!, x, T, N, e);
              sameBits(ov, oa, `${dtype} [${E}, ${N}, ${K}] T=${T} expert ${e}${repack ? ' (file layout)' : ''}: avx2-vnni vs avx2`);
            }
        }
      }
  } finally {
    for (const be of sets) be.dispose();
  }
});

// AMX-INT8 prefill tiles (native/src/kern-amx-int8.cc) for q4_0 in 16-row groups and q8_0 in 8-row groups: the exact
// integer block sums of TDPBSUD / TDPBSSD, then the AVX-512 kernels' float steps, so the same bits as the AVX-512 set. On a CPU without AMX the same
// kernel runs with its tile operations emulated (LLAMA4_AMX_EMULATION=1 offers that set): layouts, indexing and float
// steps are checked here; only the real instructions are not.
const amxIsa = (() => {
  if (skip) return null;
  process.env.LLAMA4_AMX_EMULATION ??= '1';
  for (const isa of ['avx512-amx', 'avx512-amx-emulated'] as const) {
    const made = tryCreateNativeBackend({ threads: 1, isa });
    if (made.backend) {
      made.backend.dispose();
      return isa;
    }
  }
  return null;
})();
test(`native ${amxIsa ?? 'avx512-amx'}: q4_0 and q8_0 prefill tiles give the AVX-512 set's bits`, {
  skip: skip || (amxIsa ? false : 'neither AMX-INT8 nor its emulation is usable here (both need the AVX-512 kernel set)'),
}, () => {
  const sets = ([amxIsa!, 'avx512'] as const).map(
    (isa) => tryCreateNativeBackend({ threads: 2, isa, repack: true }).backend as NativeBackend,
  );
  try {
    const r = rng(11);
    for (const [dtype, E, N, K] of [
      ['q4_0', 1, 48, 512],
      ['q4_0', 2, 64, 1024],
      ['q4_0', 1, 80, 96], // 3 blocks per row
      ['q8_0', 1, 48, 512],
      ['q8_0', 2, 40, 256], // a lone 8-row group after the 16-row pairs
      ['q8_0', 1, 136, 64], // 64-row calls: 64, 64, then 8 rows
    ] as const) {
      const { bytes } = randomWeight(dtype, E * N, K, 3 * N + K);
      const t = { name: 'w', dtype: dtype as DType, shape: E === 1 ? [N, K] : [E, N, K], bytes };
      const ws = sets.map((be) => be.weight(t));
      for (const T of [1, 16, 17, 31, 32, 33, 64, 100]) {
        const x = randn(r, T * K);
        for (let i = (T - 1) * K; i < T * K; i++) x[i] = x[i]! * 1e-38; // a token whose blocks quantize to zero
        x[5] = 3e38;
        for (let e = 0; e < E; e++) {
          const [oa, ob] = productOnBoth(sets[0]!, ws[0]!, sets[1]!, ws[1]!, x, T, N, e);
          sameBits(oa, ob, `${dtype} [${E}, ${N}, ${K}] T=${T} expert ${e}: ${amxIsa} vs avx512`);
        }
      }
    }
  } finally {
    for (const be of sets) be.dispose();
  }
});

test('native repacked rows are read in whole groups: the addon refuses a row count that is not', { skip }, () => {
  const engine = (packed.backend as unknown as { engine: RawEngine }).engine;
  for (const dtype of ['q4_0', 'q6_k', 'q4_k'] as DType[]) {
    const type = engine.canRepack(DTYPES[dtype].ggmlType, 16);
    if (type < 0) continue;
    const bytes = new Uint8Array(byteSize(dtype, 16 * 256));
    const out = new Float32Array(16 * 256);
    // 12 rows of a 16-row (or 8-row) group layout: reading row 0 would read the whole group, past 12 rows' bytes
    assert.throws(() => engine.dequant(out, bytes.subarray(0, byteSize(dtype, 12 * 256)), type, 12, 256), /whole groups/);
    assert.throws(
      () => engine.getRows(out, bytes.subarray(0, byteSize(dtype, 12 * 256)), type, 12, 256, new Int32Array([0])),
      /whole groups/,
    );
    engine.dequant(out, bytes, type, 16, 256); // whole groups: fine
  }
});

test('native repackR8 refuses a layout the kernel set has no kernels for', { skip }, () => {
  const avx2 = tryCreateNativeBackend({ threads: 1, isa: 'avx2' }).backend;
  if (!avx2) return;
  try {
    const engine = (avx2 as unknown as { engine: RawEngine }).engine;
    const q6 = DTYPES.q6_k.ggmlType; // R16 kernels on AVX-512 only
    assert.equal(engine.canRepack(q6, 16), -1, 'the AVX2 set reads q6_K in place');
    assert.throws(() => engine.repackR8(new Uint8Array(byteSize('q6_k', 16 * 256)), q6, 16, 256), /no kernels/);
  } finally {
    avx2.dispose();
  }
});

test('native repack leaves matrices whose rows are not a multiple of 8 (and other types) in place', { skip }, () => {
  const A = packed.backend as NativeBackend;
  const before = A.repackedBytes;
  A.weight({ name: 'odd', dtype: 'q8_0', shape: [12, 64], bytes: randomWeight('q8_0', 12, 64, 1).bytes });
  A.weight({ name: 'k', dtype: 'q4_k', shape: [8, 256], bytes: randomWeight('q4_k', 8, 256, 1).bytes });
  assert.equal(A.repackedBytes, before);
});
