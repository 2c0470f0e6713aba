/**
 * The server's batching path against the bare forward loop, in one process on one loaded model: B requests through
 * the Scheduler (what the OpenAI server runs: one forward() per step with every active sequence, greedy picks, EOS
 * ignored) and B sequences stepped by hand (bench/batching.mjs's "ours"). Decode tokens/s counts the tokens after
 * every request's first one (prefills excluded). Rounds alternate the two; medians are printed.
 * Usage: node --import tsx bench/batch-scheduler.ts [-m MODEL] [-t 2] [-b 8] [-n 32] [--rounds 3] [--kv-type f16]
 */
import { parseArgs } from 'node:util';
import { loadModel } from '../src/load.ts';
import { Scheduler } from '../src/engine/index.ts';

const { values: o } = parseArgs({
  options: {
    model: { type: 'string', short: 'm', default: 'bench-models/bench-2b-q4_0.gguf' },
    threads: { type: 'string', short: 't', default: '2' },
    batch: { type: 'string', short: 'b', default: '8' },
    gen: { type: 'string', short: 'n', default: '32' },
    rounds: { type: 'string', default: '3' },
    'kv-type': { type: 'string', default: 'f16' },
  },
});
const B = +o.batch!,
  N = +o.gen!;
const { model: m } = await loadModel(o.model!, { backend: 'native', threads: +o.threads!, kvType: o['kv-type'] as 'f16' });
const ids = (seed: number, n: number) => {
  let s = seed;
  return Array.from({ length: n }, () => {
    s = (Math.imul(s, 1103515245) + 12345) >>> 0;
    return s % 32000;
  });
};
const argmax = (r: Float32Array) => {
  let b = 0;
  for (let i = 1; i < r.length; i++) if (r[i]! > r[b]!) b = i;
  return b;
};
const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[xs.length >> 1]!;

async function viaScheduler(): Promise<number> {
  const sched = new Scheduler(m, { parallel: B, prefixCacheSize: 0 });
  const firsts: number[] = [];
  let last = 0;
  await Promise.all(
    Array.from({ length: B }, (_, b) => {
      let first = true;
      return sched.submit({
        prompt: ids(100 + b, 16),
        maxTokens: N + 1,
        stopTokens: [],
        sampling: { temperature: 0 },
        onToken() {
          last = performance.now();
          if (first) firsts.push(last);
          first = false;
        },
      });
    }),
  );
  sched.close();
  return (B * (N + 1) - B) / ((last - Math.max(...firsts)) / 1000);
}
function direct(): number {
  const seqs = Array.from({ length: B }, () => m.newSequence());
  let tok = m.forward(seqs.map((seq, b) => ({ seq, tokens: ids(100 + b, 16), logits: 'last' as const }))).map(argmax);
  const t0 = performance.now();
  for (let i = 0; i < N; i++) tok = m.forward(seqs.map((seq, b) => ({ seq, tokens: [tok[b]!], logits: 'last' as const }))).map(argmax);
  return (B * N) / ((performance.now() - t0) / 1000);
}
direct(); // warm-up
const s: number[] = [],
  d: number[] = [];
for (let r = 0; r < +o.rounds!; r++) {
  s.push(await viaScheduler());
  d.push(direct());
  console.log(`round ${r + 1}: scheduler ${s.at(-1)!.toFixed(1)} tok/s, direct forward ${d.at(-1)!.toFixed(1)} tok/s`);
}
console.log(
  `B=${B}, ${o.threads} threads, ${N} steps: scheduler median ${median(s).toFixed(1)} tok/s, direct median ${median(d).toFixed(1)} tok/s (x${(median(s) / median(d)).toFixed(2)})`,
);
process.exit(0);
