/**
 * Decode attention over a long cache (one query token, bench-2b's 16 heads / 8 KV heads × 128) with the kernel set's
 * all-heads block kernel (attn_heads) against the per-head block loop it replaced, in the same run: child processes
 * alternate between the two (L4_ATTN_HEADS_KERNEL=0 selects the old path; the switch is read once per process), so
 * both see the same bandwidth phases. Each call reads a different one of 3 caches (cold, as in decode, where the
 * weights stream through between steps). Prints medians per K/V storage and the ratio.
 * Usage: node --import tsx bench/attention-decode.ts [--threads 2] [--keys 32768] [--rounds 3] [--kv f32,f16,q8_0] [--json]
 */
import { spawnSync } from 'node:child_process';
import { parseArgs } from 'node:util';
import { tryCreateNativeBackend } from '../src/kernels/native/index.ts';
import { allocKv, encodeKv, isKvType, kvElements, type KvType } from '../src/tensor/index.ts';

const { values: opt } = parseArgs({
  options: {
    threads: { type: 'string', default: '2' },
    keys: { type: 'string', default: '32768' },
    rounds: { type: 'string', default: '3' },
    kv: { type: 'string', default: 'f32,f16,q8_0' },
    json: { type: 'boolean', default: false },
    child: { type: 'boolean', default: false },
  },
});
const H = 16,
  Hkv = 8,
  d = 128,
  S = Number(opt.keys),
  threads = Number(opt.threads);
const kvTypes = opt.kv!.split(',');
for (const t of kvTypes) if (!isKvType(t)) throw new Error(`--kv: '${t}' is not f32, f16 or q8_0`);
const bytesPerCall = (t: KvType) => 2 * S * kvElements(t, Hkv * d) * (t === 'f32' ? 4 : t === 'f16' ? 2 : 1);

if (opt.child) {
  const be = tryCreateNativeBackend({ threads }).backend;
  if (!be) throw new Error('the native core is not built (npm install builds it)');
  const res: Record<string, number> = {};
  for (const t of kvTypes as KvType[]) {
    const n = S * Hkv * d,
      x = new Float32Array(n);
    const caches = Array.from({ length: 3 }, (_, c) => {
      for (let i = 0; i < n; i++) x[i] = Math.sin(i * 0.37 + c) * 0.5;
      const k = allocKv(t, kvElements(t, Hkv * d) * S);
      encodeKv(t, x, 0, n, k, 0);
      return { k, v: k.slice() };
    });
    const q = new Float32Array(H * d).map((_, i) => Math.cos(i)),
      out = new Float32Array(H * d);
    const shape = {
      nHeads: H,
      nKvHeads: Hkv,
      headDim: d,
      T: 1,
      S,
      qPos0: S - 1,
      kPos0: 0,
      scale: 1 / Math.sqrt(d),
      mask: { causal: true, chunkSize: 0 },
      kvType: t,
    };
    const ms: number[] = [];
    for (let r = 0; r < 24; r++) {
      const c = caches[r % 3]!,
        t0 = performance.now();
      be.attention(out, q, c.k, c.v, shape);
      if (r >= 4) ms.push(performance.now() - t0);
    }
    ms.sort((a, b) => a - b);
    res[t] = ms[ms.length >> 1]!;
  }
  process.stdout.write(JSON.stringify(res));
  process.exit(0);
}

const runs: Record<'heads' | 'perHead', Record<string, number[]>> = { heads: {}, perHead: {} };
for (let r = 0; r < Number(opt.rounds); r++)
  for (const variant of ['heads', 'perHead'] as const) {
    const child = spawnSync(
      process.execPath,
      [...process.execArgv, process.argv[1]!, '--child', '--threads', String(threads), '--keys', String(S), '--kv', opt.kv!],
      {
        env: { ...process.env, L4_ATTN_HEADS_KERNEL: variant === 'heads' ? '1' : '0' },
        encoding: 'utf8',
      },
    );
    if (child.status !== 0) throw new Error(`child failed: ${child.stderr}`);
    for (const [t, ms] of Object.entries(JSON.parse(child.stdout) as Record<string, number>)) (runs[variant][t] ??= []).push(ms);
  }
const median = (a: number[]) => [...a].sort((x, y) => x - y)[a.length >> 1]!;
const rows = kvTypes.map((t) => {
  const a = median(runs.heads[t]!),
    b = median(runs.perHead[t]!);
  const gb = (ms: number) => bytesPerCall(t as KvType) / ms / 1e6;
  return { kv: t, keys: S, threads, heads_ms: a, per_head_ms: b, heads_gbps: gb(a), per_head_gbps: gb(b), speedup: b / a };
});
if (opt.json) console.log(JSON.stringify(rows));
else
  for (const r of rows)
    console.log(
      `${r.kv.padEnd(5)} ${S} keys, ${threads} threads: all-heads kernel ${r.heads_ms.toFixed(2)} ms (${r.heads_gbps.toFixed(1)} GB/s), per-head loop ${r.per_head_ms.toFixed(2)} ms (${r.per_head_gbps.toFixed(1)} GB/s): x${r.speedup.toFixed(2)} (medians of ${opt.rounds} rounds)`,
    );
