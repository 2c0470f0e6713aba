#!/usr/bin/env node
// Batched decode (what a server does with several requests): B sequences, each given a short prompt, then N decode
// steps in which every sequence adds one token. Ours: one forward() per step with B items (the scheduler's call).
// llama.cpp (node-llama-cpp): one context with B sequences generating concurrently (its batch dispatcher puts the B
// tokens of a step in one llama_decode). Aggregate tokens/s = B·N / decode seconds. Engines alternate per round.
// Each side also reports its process CPU time per generated token (all threads, spinning included): on a machine
// shared with other jobs wall-clock rates swing several-fold while CPU time per token stays comparable.
// Usage: npm run bench:batching -- [-m bench-models/bench-2b-q4_0.gguf] [-t 2] [-b 1,4,8,16] [-n 32] [--rounds 3] [--kv-type f16]
//        node bench/batching.mjs --side ours|llama.cpp MODEL THREADS B N KV   (one measurement, one JSON line)
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { join, resolve, dirname } from 'node:path';
import { loadavg } from 'node:os';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';

const root = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const PROMPT = 16; // prompt tokens per sequence (prefilled before the timed steps)
const median = (xs) => {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2;
};
const secs = (t0) => Number(process.hrtime.bigint() - t0) / 1e9;
const cpuMs = (c0) => {
  const c = process.cpuUsage(c0);
  return (c.user + c.system) / 1e3;
};
const argmax = (r) => {
  let b = 0;
  for (let i = 1; i < r.length; i++) if (r[i] > r[b]) b = i;
  return b;
};
function ids(seed, n) {
  let s = seed;
  return Array.from({ length: n }, () => {
    s = (Math.imul(s, 1103515245) + 12345) >>> 0;
    return s % 32000;
  });
}

async function ours(model, threads, B, N, kv) {
  const { loadModel } = await import(join(root, 'dist/load.js'));
  const { model: m } = await loadModel(model, { backend: 'native', threads, kvType: kv });
  const seqs = Array.from({ length: B }, () => m.newSequence());
  const warm = m.newSequence();
  m.forward([{ seq: warm, tokens: ids(7, 32), logits: 'last' }]);
  for (let i = 0; i < 2; i++)
    m.forward(
      seqs
        .map((seq, b) => ({ seq, tokens: ids(100 + b, PROMPT), logits: 'last' }))
        .slice(0, 1 + i * (B - 1))
        .map((it) => ({ ...it, tokens: [1] })),
    );
  for (const s of seqs) s.truncate(0);
  let last = m.forward(seqs.map((seq, b) => ({ seq, tokens: ids(100 + b, PROMPT), logits: 'last' }))).map(argmax);
  const t0 = process.hrtime.bigint();
  const c0 = process.cpuUsage();
  for (let i = 0; i < N; i++) last = m.forward(seqs.map((seq, b) => ({ seq, tokens: [last[b]], logits: 'last' }))).map(argmax);
  return { aggregate_tps: (B * N) / secs(t0), cpu_ms_per_token: cpuMs(c0) / (B * N) };
}

async function theirs(model, threads, B, N) {
  const { getLlama, LlamaLogLevel } = await import('node-llama-cpp');
  const llama = await getLlama({ gpu: false, build: 'never', logLevel: LlamaLogLevel.error, maxThreads: threads });
  const mdl = await llama.loadModel({ modelPath: model, gpuLayers: 0, useMmap: true });
  const ctx = await mdl.createContext({
    contextSize: B * (PROMPT + N + 64),
    batchSize: Math.max(B * PROMPT, 64),
    threads: { ideal: threads, min: threads },
    flashAttention: false,
    sequences: B,
  });
  const seqs = Array.from({ length: B }, () => ctx.getSequence());
  // warm-up: one short generation on every sequence, then cleared
  await Promise.all(
    seqs.map(async (s, b) => {
      let c = 0;
      for await (const t of s.evaluate(ids(100 + b, 4), { temperature: 0 })) {
        void t;
        if (++c >= 2) break;
      }
      await s.clearHistory();
    }),
  );
  await Promise.all(seqs.map((s, b) => s.evaluateWithoutGeneratingNewTokens(ids(100 + b, PROMPT))));
  const t0 = process.hrtime.bigint();
  const c0 = process.cpuUsage();
  // Each sequence generates N tokens (its first step evaluates one more prompt token, like our first step).
  await Promise.all(
    seqs.map(async (s, b) => {
      let c = 0;
      for await (const t of s.evaluate([ids(500 + b, 1)[0]], { temperature: 0 })) {
        void t;
        if (++c >= N) break;
      }
    }),
  );
  const r = { aggregate_tps: (B * N) / secs(t0), cpu_ms_per_token: cpuMs(c0) / (B * N) };
  await ctx.dispose();
  await mdl.dispose();
  return r;
}

const argv = process.argv.slice(2);
if (argv[0] === '--side') {
  const [, side, model, t, B, N, kv] = argv;
  const r = side === 'ours' ? await ours(model, +t, +B, +N, kv) : await theirs(model, +t, +B, +N);
  process.stdout.write(JSON.stringify(r) + '\n');
  process.exit(0);
}
const { values: o } = parseArgs({
  args: argv,
  options: {
    model: { type: 'string', short: 'm', default: join(root, 'bench-models/bench-2b-q4_0.gguf') },
    threads: { type: 'string', short: 't', default: '2' },
    batches: { type: 'string', short: 'b', default: '1,4,8,16' },
    gen: { type: 'string', short: 'n', default: '32' },
    rounds: { type: 'string', default: '3' },
    'kv-type': { type: 'string', default: 'f16' },
    'ours-only': { type: 'boolean' },
  },
});
if (!existsSync(o.model))
  throw new Error(`${o.model} not found (make it with llama4 make-test-model --preset bench-2b --type q4_0 ${o.model})`);
function side(name, B) {
  const r = spawnSync(
    process.execPath,
    [fileURLToPath(import.meta.url), '--side', name, o.model, o.threads, String(B), o.gen, o['kv-type']],
    { cwd: root, encoding: 'utf8' },
  );
  const line = (r.stdout ?? '')
    .trim()
    .split('\n')
    .filter((l) => l.startsWith('{'))
    .pop();
  if (r.status !== 0 || !line) throw new Error(`${name} B=${B} failed: ${(r.stderr ?? '').trim().split('\n').slice(-3).join(' | ')}`);
  return JSON.parse(line);
}
const Bs = o.batches.split(',').map(Number);
const res = new Map(Bs.map((B) => [B, { a: [], b: [], ca: [], cb: [] }]));
for (let round = 1; round <= +o.rounds; round++) {
  for (const B of Bs) {
    const r = res.get(B);
    const x = side('ours', B);
    r.a.push(x.aggregate_tps);
    r.ca.push(x.cpu_ms_per_token);
    if (!o['ours-only']) {
      const y = side('llama.cpp', B);
      r.b.push(y.aggregate_tps);
      r.cb.push(y.cpu_ms_per_token);
    }
    console.log(
      `round ${round} B=${String(B).padStart(2)}  ours ${r.a.at(-1).toFixed(1)} tok/s (${r.ca.at(-1).toFixed(2)} CPU ms/token)` +
        (o['ours-only']
          ? ''
          : `  llama.cpp ${r.b.at(-1).toFixed(1)} tok/s (${r.cb.at(-1).toFixed(2)} CPU ms/token) (x${(r.a.at(-1) / r.b.at(-1)).toFixed(2)})`) +
        `  load ${loadavg()[0].toFixed(1)}`,
    );
  }
}
const a1 = res.has(1) ? median(res.get(1).a) : null,
  b1 = res.has(1) && !o['ours-only'] ? median(res.get(1).b) : null;
console.log(
  `\n${o.model}, ${o.threads} threads, ${o.gen} steps, KV ${o['kv-type']}; medians of ${o.rounds} rounds (ratio: median of per-round ratios)`,
);
console.log(
  '| sequences | ours tok/s | llama.cpp tok/s | ours / llama.cpp | ours vs our 1 | llama.cpp vs its 1 | ours CPU ms/token | llama.cpp CPU ms/token |\n|---:|---:|---:|---:|---:|---:|---:|---:|',
);
for (const B of Bs) {
  const r = res.get(B),
    a = median(r.a),
    b = r.b.length ? median(r.b) : NaN;
  const ratio = r.b.length ? median(r.a.map((x, i) => x / r.b[i])) : NaN;
  console.log(
    `| ${B} | ${a.toFixed(1)} | ${b.toFixed(1)} | ${ratio.toFixed(2)} | ${a1 ? (a / a1).toFixed(2) : '-'} | ${b1 ? (b / b1).toFixed(2) : '-'} | ${median(r.ca).toFixed(2)} | ${r.cb.length ? median(r.cb).toFixed(2) : '-'} |`,
  );
}
