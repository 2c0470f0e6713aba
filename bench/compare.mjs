#!/usr/bin/env node
// `npm run bench`: llama4 bench vs llama.cpp (node-llama-cpp) on the same bench-2b GGUFs, same threads, same run.
// Each measurement is its own process (so peak RSS is per engine); engines alternate to spread machine noise.
// Usage: node bench/compare.mjs [--models DIR] [--threads 1,2] [-p 512] [-n 128] [-r 3] [--rounds 1] [--kv-type f16] [--types q4_0,…]
//        [--flash-attn] (llama.cpp with flash attention on)
// Models: DIR/bench-2b-{q4_0,q8_0,q4_k_m}.gguf (make them with `llama4 make-test-model --preset bench-2b --type T`).
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { join, resolve, dirname } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';

const root = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const { values: o } = parseArgs({
  options: {
    models: { type: 'string', default: join(root, 'bench-models') },
    threads: { type: 'string', default: '1,2' },
    prompt: { type: 'string', short: 'p', default: '512' },
    gen: { type: 'string', short: 'n', default: '128' },
    repeat: { type: 'string', short: 'r', default: '3' },
    types: { type: 'string', default: 'q4_0,q8_0,q4_k_m' },
    // llama.cpp keeps its KV cache in F16 by default; ours defaults to exact F32. The race uses the same cache type.
    'kv-type': { type: 'string', default: 'f16' },
    // Rounds: the whole table measured again (engines alternating), then medians per figure; ratios are the median of
    // each round's own ratio (both engines of a round ran back to back, under the same machine noise).
    rounds: { type: 'string', default: '1' },
    // llama.cpp's flash attention (off by default, as node-llama-cpp's default): on is its best long-prompt path.
    'flash-attn': { type: 'boolean', default: false },
  },
});
const median = (xs) => {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2;
};

function run(cmd, args) {
  const r = spawnSync(process.execPath, args, { cwd: root, encoding: 'utf8', maxBuffer: 1 << 24 });
  const line = (r.stdout ?? '')
    .trim()
    .split('\n')
    .filter((l) => l.startsWith('{'))
    .pop();
  if (r.status !== 0 || !line) throw new Error(`${cmd} failed (${r.status}): ${(r.stderr ?? '').trim().split('\n').slice(-3).join(' | ')}`);
  return JSON.parse(line);
}
// Our side runs the built CLI (bin/llama4.js -> dist/, what `npm install` gives users; `npm run bench` builds first);
// the tsx loader would add ~20 MB of resident memory that a user never pays.
const ourCli = existsSync(join(root, 'dist/cli/main.js')) ? ['bin/llama4.js'] : ['--import', 'tsx', 'src/cli/main.ts'];
const ours = (m, t) =>
  run('llama4 bench', [
    ...ourCli,
    'bench',
    '-m',
    m,
    '-t',
    String(t),
    '-p',
    o.prompt,
    '-n',
    o.gen,
    '-r',
    o.repeat,
    '--backend',
    'native',
    '--kv-type',
    o['kv-type'],
    '--json',
  ]);
const theirs = (m, t) =>
  run('llama.cpp', ['bench/llama-cpp.mjs', m, String(t), o.prompt, o.gen, o.repeat, o['flash-attn'] ? 'fa' : 'no-fa']);

const rows = [];
const f = (x, d = 1) => (x ?? 0).toFixed(d);
for (let round = 1; round <= +o.rounds; round++) {
  for (const type of o.types.split(',')) {
    const model = join(o.models, `bench-2b-${type}.gguf`);
    if (!existsSync(model)) {
      if (round === 1) console.log(`(skipping ${type}: ${model} not found)`);
      continue;
    }
    for (const t of o.threads.split(',').map(Number)) {
      const a = ours(model, t),
        b = theirs(model, t);
      rows.push({ round, type, t, a, b });
      console.log(
        `${+o.rounds > 1 ? `round ${round} ` : ''}${type.padEnd(7)} t=${t}  prefill ${f(a.prefill_tps)} vs ${f(b.prefill_tps)} tok/s (x${f(a.prefill_tps / b.prefill_tps, 2)})  ` +
          `decode ${f(a.decode_tps)} vs ${f(b.decode_tps)} tok/s (x${f(a.decode_tps / b.decode_tps, 2)})  ` +
          `bw ${f(a.bandwidth_pct, 0)}% of ${f(a.memory_read_gbps)} GB/s (llama.cpp ${f((a.bandwidth_pct * b.decode_tps) / a.decode_tps, 0)}%)  ` +
          `RSS ${f(a.peak_rss_bytes / 2 ** 20, 0)} vs ${f(b.peak_rss_bytes / 2 ** 20, 0)} MiB` +
          // At 1 thread CPU time per token is a steadier speed figure on a busy machine (ggml's idle threads spin, so not at 2).
          (t === 1
            ? `  cpu-time speed x${f(b.prefill_cpu_ms_per_token / a.prefill_cpu_ms_per_token, 2)} prefill, x${f(b.decode_cpu_ms_per_token / a.decode_cpu_ms_per_token, 2)} decode`
            : ''),
      );
    }
  }
}
if (+o.rounds > 1) {
  console.log(`medians of ${o.rounds} rounds (ratios: median of the per-round ratios):`);
  const keys = [...new Set(rows.map((r) => `${r.type} ${r.t}`))];
  for (const k of keys) {
    const rs = rows.filter((r) => `${r.type} ${r.t}` === k),
      m = (g) => median(rs.map(g));
    console.log(
      `${rs[0].type.padEnd(7)} t=${rs[0].t}  prefill ${f(m((r) => r.a.prefill_tps))} vs ${f(m((r) => r.b.prefill_tps))} tok/s (x${f(
        m((r) => r.a.prefill_tps / r.b.prefill_tps),
        2,
      )})  ` +
        `decode ${f(m((r) => r.a.decode_tps))} vs ${f(m((r) => r.b.decode_tps))} tok/s (x${f(
          m((r) => r.a.decode_tps / r.b.decode_tps),
          2,
        )})  ` +
        `bw ${f(
          m((r) => r.a.bandwidth_pct),
          0,
        )}% (llama.cpp ${f(
          m((r) => (r.a.bandwidth_pct * r.b.decode_tps) / r.a.decode_tps),
          0,
        )}%)  ` +
        `RSS ${f(m((r) => r.a.peak_rss_bytes) / 2 ** 20, 0)} vs ${f(m((r) => r.b.peak_rss_bytes) / 2 ** 20, 0)} MiB (max ${f(Math.max(...rs.map((r) => r.a.peak_rss_bytes)) / 2 ** 20, 0)} vs ${f(Math.max(...rs.map((r) => r.b.peak_rss_bytes)) / 2 ** 20, 0)})`,
    );
  }
}
console.log(
  JSON.stringify({
    prompt: +o.prompt,
    gen: +o.gen,
    repeat: +o.repeat,
    rounds: +o.rounds,
    llama_cpp_flash_attn: o['flash-attn'],
    kv_type: o['kv-type'],
    rows: rows.map(({ round, type, t, a, b }) => ({
      round,
      type,
      threads: t,
      ours: a,
      llama_cpp: b,
      prefill_ratio: a.prefill_tps / b.prefill_tps,
      decode_ratio: a.decode_tps / b.decode_tps,
      rss_ratio: a.peak_rss_bytes / b.peak_rss_bytes,
    })),
  }),
);
