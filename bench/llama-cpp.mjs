#!/usr/bin/env node
// llama.cpp's side of `npm run bench`: the same measurement as `llama4 bench` (pp: P prompt tokens in one batch from
// an empty context; tg: N greedy single-token steps from an empty context; medians of R runs; peak RSS) through
// node-llama-cpp's prebuilt llama.cpp, CPU only, mmap on, flash attention off (FA = 'fa': on), its default F16 KV cache.
// Usage: node bench/llama-cpp.mjs MODEL.gguf THREADS P N R [fa|no-fa]  -> one JSON line
import { getLlama, LlamaLogLevel } from 'node-llama-cpp';

const [modelPath, threadsS, pS, nS, rS, faS] = process.argv.slice(2);
const threads = Number(threadsS),
  P = Number(pS),
  N = Number(nS),
  R = Number(rS);
const median = (xs) => {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2;
};

const llama = await getLlama({ gpu: false, build: 'never', logLevel: LlamaLogLevel.error, maxThreads: threads });
const model = await llama.loadModel({ modelPath, gpuLayers: 0, useMmap: true });
const ctx = await model.createContext({
  contextSize: Math.max(P, N) + 64,
  batchSize: Math.max(P, 1),
  threads: { ideal: threads, min: threads },
  flashAttention: faS === 'fa',
  sequences: 1,
});
const seq = ctx.getSequence();
const V = 32000; // bench-2b vocabulary (ids are drawn below min(V, 32000) on both sides)
let s = 12345; // the same pseudo-random ids as `llama4 bench`
const rnd = () => {
  s = (Math.imul(s, 1103515245) + 12345) >>> 0;
  return s % Math.min(V, 32000);
};
const secs = (t0) => Number(process.hrtime.bigint() - t0) / 1e9;

// Warm-up (not timed): pages the weights in (mmap) and sets up the compute buffers.
await seq.evaluateWithoutGeneratingNewTokens(Array.from({ length: Math.min(Math.max(P, 1), 64) }, rnd));
await seq.clearHistory();
{
  let c = 0;
  for await (const tok of seq.evaluate([rnd()], { temperature: 0 })) {
    void tok;
    if (++c >= 2) break;
  }
}
await seq.clearHistory();
s = 12345;
const pp = [],
  tg = [],
  ppCpu = [],
  tgCpu = [];
const cpuMs = (c0) => {
  const c = process.cpuUsage(c0);
  return (c.user + c.system) / 1000;
};
for (let rep = 0; rep < R; rep++) {
  if (P > 0) {
    const ids = Array.from({ length: P }, rnd);
    const t0 = process.hrtime.bigint(),
      c0 = process.cpuUsage();
    await seq.evaluateWithoutGeneratingNewTokens(ids);
    pp.push(P / secs(t0));
    ppCpu.push(cpuMs(c0) / P);
    await seq.clearHistory();
  }
  if (N > 0) {
    let count = 0;
    const t0 = process.hrtime.bigint(),
      c0 = process.cpuUsage();
    for await (const tok of seq.evaluate([rnd()], { temperature: 0 })) {
      void tok;
      if (++count >= N) break;
    }
    tg.push(N / secs(t0));
    tgCpu.push(cpuMs(c0) / N);
    await seq.clearHistory();
  }
}
const peak = process.resourceUsage().maxRSS * 1024;
process.stdout.write(
  JSON.stringify({
    prefill_tps: pp.length ? median(pp) : 0,
    decode_tps: tg.length ? median(tg) : 0,
    peak_rss_bytes: peak,
    prefill_cpu_ms_per_token: ppCpu.length ? median(ppCpu) : null,
    decode_cpu_ms_per_token: tgCpu.length ? median(tgCpu) : null,
    prefill_runs: pp,
    decode_runs: tg,
  }) + '\n',
);
await ctx.dispose();
await model.dispose();
