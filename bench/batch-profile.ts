// Where a batched decode step's time goes: every Backend call of forward() timed (wall clock around the call, so
// a native op includes its pool hand-off and wait), the rest of the step counted as JS between ops.
// Usage: node --import tsx bench/batch-profile.ts [-m MODEL] [-t 2] [-b 8] [-n 32] [--kv-type f16]
import { parseArgs } from 'node:util';
import { loadModel } from '../src/load.ts';
import type { Backend } from '../src/tensor/index.ts';

const { values: o } = parseArgs({
  options: {
    model: { type: 'string', short: 'm', default: 'bench-models/bench-2b-q4_0.gguf' },
    threads: { type: 'string', short: 't', default: '2' },
    batch: { type: 'string', short: 'b', default: '8' },
    gen: { type: 'string', short: 'n', default: '32' },
    'kv-type': { type: 'string', default: 'f16' },
  },
});
const B = +o.batch,
  N = +o.gen;
const { model: m } = await loadModel(o.model!, { backend: 'native', threads: +o.threads!, kvType: o['kv-type'] as 'f16' });
const be = (m as unknown as { backend: Backend }).backend;
const times = new Map<string, { ms: number; calls: number }>();
let on = false;
const proto = Object.getPrototypeOf(be) as Record<string, unknown>;
for (const name of Object.getOwnPropertyNames(proto)) {
  const f = Object.getOwnPropertyDescriptor(proto, name)?.value;
  if (typeof f !== 'function' || name === 'constructor') continue;
  (be as unknown as Record<string, unknown>)[name] = function (this: unknown, ...a: unknown[]) {
    if (!on) return (f as (...x: unknown[]) => unknown).apply(be, a);
    let key = name;
    if (name === 'matmulMany' || name === 'matmul') {
      const jobs =
        name === 'matmul'
          ? [{ T: a[3] as number, w: a[2] as { rows: number; cols: number; experts: number } }]
          : (a[0] as { T: number; w: { rows: number; cols: number; experts: number }; expert?: number }[]);
      const ex = jobs.some((j) => j.w.experts > 1);
      key = `${name}(${jobs.length} jobs${ex ? ', experts' : ''}, ${jobs
        .map((j) => `${j.w.rows}x${j.w.cols}`)
        .filter((s, i, all) => all.indexOf(s) === i)
        .join('/')})`;
    } else if (name === 'rmsNorm') key = `rmsNorm(dim ${a[4]})`;
    const t0 = performance.now();
    const r = (f as (...x: unknown[]) => unknown).apply(be, a);
    const dt = performance.now() - t0;
    const e = times.get(key) ?? { ms: 0, calls: 0 };
    e.ms += dt;
    e.calls++;
    times.set(key, e);
    return r;
  };
}
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
const seqs = Array.from({ length: B }, () => m.newSequence());
let last = m.forward(seqs.map((seq, b) => ({ seq, tokens: ids(100 + b, 16), logits: 'last' as const }))).map(argmax);
for (let i = 0; i < 4; i++) last = m.forward(seqs.map((seq, b) => ({ seq, tokens: [last[b]!], logits: 'last' as const }))).map(argmax);
on = true;
let sampleMs = 0;
const t0 = performance.now();
const c0 = process.cpuUsage();
for (let i = 0; i < N; i++) {
  const r = m.forward(seqs.map((seq, b) => ({ seq, tokens: [last[b]!], logits: 'last' as const })));
  const s0 = performance.now();
  last = r.map(argmax);
  sampleMs += performance.now() - s0;
}
const total = performance.now() - t0;
const cpu = process.cpuUsage(c0);
const rows = [...times].sort((a, b) => b[1].ms - a[1].ms);
const opMs = rows.reduce((s, [, e]) => s + e.ms, 0);
console.log(
  `B=${B}, ${N} steps, ${o.threads} threads: ${(total / N).toFixed(2)} ms/step, ${((B * N) / (total / 1000)).toFixed(1)} tok/s aggregate, ${((cpu.user + cpu.system) / 1e3 / N).toFixed(2)} ms CPU/step (all threads)`,
);
console.log('| op | ms/step | % | calls/step |\n|---|---:|---:|---:|');
for (const [k, e] of rows)
  console.log(`| ${k} | ${(e.ms / N).toFixed(3)} | ${((100 * e.ms) / total).toFixed(1)} | ${(e.calls / N).toFixed(0)} |`);
console.log(`| argmax (JS) | ${(sampleMs / N).toFixed(3)} | ${((100 * sampleMs) / total).toFixed(1)} | |`);
console.log(
  `| JS between ops | ${((total - opMs - sampleMs) / N).toFixed(3)} | ${((100 * (total - opMs - sampleMs)) / total).toFixed(1)} | |`,
);
process.exit(0);
