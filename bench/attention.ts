// Attention kernel speed on bench-2b shapes (16 heads, 8 KV heads, d 128): prefill T=256 over 4k keys and decode over
// 4k and 32k keys, best of 5, in query-head x key pairs per second and GFLOP/s.
// Usage: node --import tsx bench/attention.ts [threads]
import { tryCreateNativeBackend } from '../src/kernels/native/index.ts';
const be = tryCreateNativeBackend({ threads: Number(process.argv[2] ?? 1) }).backend!;
const H = 16,
  Hkv = 8,
  d = 128;
for (const [T, S] of [
  [256, 4096],
  [1, 4096],
  [1, 32768],
] as [number, number][]) {
  const q = new Float32Array(T * H * d).map(() => Math.random() - 0.5),
    k = new Float32Array(S * Hkv * d).map(() => Math.random() - 0.5),
    v = k.slice();
  const out = new Float32Array(T * H * d);
  const p = {
    nHeads: H,
    nKvHeads: Hkv,
    headDim: d,
    T,
    S,
    qPos0: S - T,
    kPos0: 0,
    scale: 1 / Math.sqrt(d),
    mask: { causal: true, chunkSize: 0 },
  };
  be.attention(out, q, k, v, p);
  let best = Infinity;
  for (let i = 0; i < 5; i++) {
    const t0 = performance.now();
    be.attention(out, q, k, v, p);
    best = Math.min(best, performance.now() - t0);
  }
  let pairs = 0;
  for (let t = 0; t < T; t++) pairs += S - T + t + 1;
  console.log(
    `T=${T} S=${S}: ${best.toFixed(2)} ms, ${((pairs * H) / best / 1e3).toFixed(1)} M pair-heads/s, ${((pairs * H * 4 * d) / best / 1e6).toFixed(1)} GFLOP/s`,
  );
}
