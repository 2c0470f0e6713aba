// Batched decode attention on bench-2b shapes (16 heads, 8 KV heads, d 128, f16 keys): B sequences × T=1 over S keys
// each, as one attentionMany call and as B attention calls; medians of 400 calls, µs.
// L4_ATTN_HEADS=0 (read once per process) keeps one kv head per decode unit, for before/after comparisons.
// Usage: node --import tsx bench/attention-many.ts [threads] [B] [S,S,...]
import { tryCreateNativeBackend } from '../src/kernels/native/index.ts';
import type { AttentionJob } from '../src/tensor/index.ts';

const { backend: be, reason } = tryCreateNativeBackend({ threads: Number(process.argv[2] ?? 2) });
if (!be) throw new Error(`native backend unavailable: ${reason}`);
const B = Number(process.argv[3] ?? 8);
const H = 16,
  Hkv = 8,
  d = 128;
const median = (f: () => void): number => {
  for (let i = 0; i < 100; i++) f();
  const t: number[] = [];
  for (let i = 0; i < 400; i++) {
    const t0 = performance.now();
    f();
    t.push(performance.now() - t0);
  }
  return t.sort((a, b) => a - b)[200]! * 1000;
};
for (const S of (process.argv[4] ?? '48,200,1000,4000').split(',').map(Number)) {
  const jobs: AttentionJob[] = Array.from({ length: B }, () => ({
    out: new Float32Array(H * d),
    q: Float32Array.from({ length: H * d }, (_, i) => Math.sin(i)),
    k: new Uint16Array(S * Hkv * d).fill(0x3c00),
    v: new Uint16Array(S * Hkv * d).fill(0x3800),
    shape: {
      nHeads: H,
      nKvHeads: Hkv,
      headDim: d,
      T: 1,
      S,
      qPos0: S - 1,
      kPos0: 0,
      scale: 1 / Math.sqrt(d),
      mask: { causal: true, chunkSize: 8192 },
      kvType: 'f16',
    },
  }));
  const many = median(() => be.attentionMany(jobs));
  const each = median(() => {
    for (const j of jobs) be.attention(j.out, j.q, j.k, j.v, j.shape);
  });
  console.log(`${be.name}, ${B} sequences × ${S} keys: attentionMany ${many.toFixed(1)} µs, ${B} × attention ${each.toFixed(1)} µs`);
}
be.dispose();
