/**
 * What running the model in a worker thread costs per decode step: the same greedy decode (B sequences, one token
 * each per step, argmax on the main thread) through the in-thread model and through the model worker
 * (src/model-worker/), rounds alternating so that load on a shared machine hits both alike; then the same
 * through the Scheduler (the server's loop: setImmediate between steps, sampling, prefix bookkeeping).
 * Reports median ms per step, decode tok/s and the worker's overhead per step.
 * Usage: node --import tsx bench/worker-overhead.ts [MODEL=models/default] [steps=64] [rounds=5] [batch=1,4] [threads]
 */
import { DEFAULT_MODEL_DIR, loadModel } from '../src/load.ts';
import { Scheduler } from '../src/engine/scheduler.ts';
import type { AsyncCausalLM } from '../src/model/types.ts';
import { startModelWorker } from '../src/model-worker/index.ts';

const [path = DEFAULT_MODEL_DIR, ns = '64', rs = '5', bs = '1,4', th] = process.argv.slice(2);
const N = Number(ns);
const R = Number(rs);
const opts = th ? { threads: Number(th) } : {};
const loaded = await loadModel(path, opts);
const wm = await startModelWorker(path, opts);
const V = loaded.model.info.vocabSize;
const argmax = (row: Float32Array) => {
  let b = 0;
  for (let i = 1; i < row.length; i++) if (row[i]! > row[b]!) b = i;
  return b;
};
const prompt = (k: number) => Array.from({ length: 32 }, (_, i) => ((i + 1) * 7919 + k * 31) % V);

/** Median ms per decode step of B sequences (after a 32-token prefill each), and the tokens produced. */
async function forwardLoop(m: AsyncCausalLM, B: number): Promise<{ ms: number; ids: number[] }> {
  const seqs = Array.from({ length: B }, () => m.newSequence());
  let out = await m.forward(seqs.map((seq, k) => ({ seq, tokens: prompt(k), logits: 'last' as const })));
  let next = out.map(argmax);
  const ids: number[] = [...next];
  const times: number[] = [];
  for (let i = 0; i < N; i++) {
    const t0 = performance.now();
    out = await m.forward(seqs.map((seq, k) => ({ seq, tokens: [next[k]!], logits: 'last' as const })));
    next = out.map(argmax);
    times.push(performance.now() - t0);
    ids.push(...next);
  }
  for (const s of seqs) s.free?.();
  times.sort((a, b) => a - b);
  return { ms: times[Math.floor(times.length / 2)]!, ids };
}

/** ms per step through the Scheduler: B greedy requests of N tokens submitted together. */
async function schedulerLoop(m: AsyncCausalLM, B: number): Promise<number> {
  const s = new Scheduler(m, { parallel: B, prefixCacheSize: 0 });
  const t0 = performance.now();
  const steps0 = s.stats().steps;
  await Promise.all(
    Array.from({ length: B }, (_, k) => s.submit({ prompt: prompt(k), maxTokens: N, stopTokens: [], sampling: { temperature: 0 } })),
  );
  const ms = (performance.now() - t0) / (s.stats().steps - steps0);
  s.close();
  return ms;
}

const med = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
console.log(`${path} [${loaded.backend.name}${th ? `, ${th} threads` : ''}], ${N} decode steps, ${R} alternating rounds`);
for (const B of bs.split(',').map(Number)) {
  const f = { thread: [] as number[], worker: [] as number[] };
  const sch = { thread: [] as number[], worker: [] as number[] };
  for (let r = 0; r < R; r++) {
    const a = await forwardLoop(loaded.model, B);
    const b = await forwardLoop(wm, B);
    if (a.ids.join() !== b.ids.join()) throw new Error('worker and in-thread greedy tokens differ');
    f.thread.push(a.ms);
    f.worker.push(b.ms);
    sch.thread.push(await schedulerLoop(loaded.model, B));
    sch.worker.push(await schedulerLoop(wm, B));
  }
  const line = (what: string, x: { thread: number[]; worker: number[] }) => {
    const t = med(x.thread);
    const w = med(x.worker);
    console.log(
      `batch ${B} ${what}: in-thread ${t.toFixed(3)} ms/step (${((1000 * B) / t).toFixed(1)} tok/s), worker ${w.toFixed(3)} ms/step (${((1000 * B) / w).toFixed(1)} tok/s), overhead ${((w - t) * 1000).toFixed(0)} µs/step (${(((w - t) / t) * 100).toFixed(1)}%)`,
    );
  };
  line('forward', f);
  line('scheduler', sch);
}
await wm.close();
