/**
 * Decode speed at a given context length, and what the KV caches hold there: prefill P tokens (in 512-token pieces),
 * then time N single-token decode steps. Chunked layers must hold at most one chunk whatever P is.
 * With --kv-type T[,T...] (f32, f16, q8_0) each cache type runs on the same tokens; every type after the first is
 * compared with the first (run f32 first): max |Δlogit| and greedy agreement at the last prefill position and at
 * each decode step. On the first type's last decode step every layer's attention is also run on its K/V compressed
 * to each other type (same q, same cache contents): the attention-output error per layer kind, which — unlike the
 * logits of a random-weight model, where top-1 expert routing turns any perturbation into a different output —
 * isolates what the cache storage itself costs.
 * Usage: node --import tsx bench/long-context.ts MODEL.gguf [P=1024,8192] [N=16] [threads] [--kv-type f32,f16,q8_0]
 */
import { parseArgs } from 'node:util';
import { loadModel } from '../src/load.ts';
import type { Llama4Sequence } from '../src/model/llama4/text-model.ts';
import {
  allocKv,
  encodeKv,
  isKvType,
  kvElements,
  type AttentionShape,
  type Backend,
  type KvData,
  type KvType,
} from '../src/tensor/index.ts';

/** Wraps backend.attention for one call sequence: returns per-type [global NMSE list, chunked NMSE list]. */
function probeAttention(backend: Backend, others: KvType[]): { stats: Map<KvType, { g: number[]; c: number[] }>; stop(): void } {
  const orig = backend.attention.bind(backend);
  const stats = new Map(others.map((t) => [t, { g: [] as number[], c: [] as number[] }]));
  (backend as { attention: Backend['attention'] }).attention = (
    out: Float32Array,
    q: Float32Array,
    k: KvData,
    v: KvData,
    p: AttentionShape,
  ) => {
    orig(out, q, k, v, p);
    if ((p.kvType ?? 'f32') !== 'f32') return;
    const row = p.nKvHeads * p.headDim,
      n = p.T * p.nHeads * p.headDim;
    for (const t of others) {
      const enc = (x: Float32Array) => {
        const d = allocKv(t, kvElements(t, p.S * row));
        for (let r = 0; r < p.S; r++) encodeKv(t, x, r * row, row, d, kvElements(t, r * row));
        return d;
      };
      const o = new Float32Array(n);
      orig(o, q, enc(k as Float32Array), enc(v as Float32Array), { ...p, kvType: t });
      let e = 0,
        ss = 0;
      for (let i = 0; i < n; i++) {
        e += (o[i]! - out[i]!) ** 2;
        ss += out[i]! ** 2;
      }
      (p.mask.chunkSize > 0 ? stats.get(t)!.c : stats.get(t)!.g).push(e / ss);
    }
  };
  return {
    stats,
    stop: () => {
      (backend as { attention: Backend['attention'] }).attention = orig;
    },
  };
}

const { values, positionals } = parseArgs({ allowPositionals: true, options: { 'kv-type': { type: 'string' } } });
const [path, ps = '1024,8192', ns = '16', th] = positionals;
if (!path) throw new Error('usage: bench/long-context.ts MODEL.gguf [P,P,...] [N] [threads] [--kv-type f32,f16,q8_0]');
const types = (values['kv-type'] ?? 'f32').split(',').map((s) => s.trim());
for (const t of types) if (!isKvType(t)) throw new Error(`--kv-type: '${t}' is not f32, f16 or q8_0`);
const N = Number(ns);
const mib = (b: number) => (b / 2 ** 20).toFixed(1);

for (const P of ps.split(',').map(Number)) {
  let ref: Float32Array[] | null = null;
  for (const kvType of types as KvType[]) {
    const { model, config, backend } = await loadModel(path, { backend: 'auto', kvType, ...(th ? { threads: Number(th) } : {}) });
    const V = config.vocabSize;
    const seq = model.newSequence() as Llama4Sequence;
    const logits: Float32Array[] = [];
    let t0 = performance.now();
    for (let i = 0; i < P; i += 512) {
      const n = Math.min(512, P - i);
      const out = model.forward([
        { seq, tokens: Array.from({ length: n }, (_, j) => ((i + j) * 7919) % V), logits: i + n >= P ? 'last' : 'none' },
      ]);
      if (i + n >= P) logits.push(out[0]!);
    }
    const prefillS = (performance.now() - t0) / 1000;
    const steps: number[] = [];
    for (let i = 0; i < N; i++) {
      t0 = performance.now();
      logits.push(model.forward([{ seq, tokens: [(P + i) % V], logits: 'last' }])[0]!);
      steps.push(performance.now() - t0);
    }
    let probe = '';
    if (!ref && types.length > 1) {
      // one more (untimed) step, with every layer's attention also run on compressed copies of its K/V
      const pr = probeAttention(backend, types.slice(1) as KvType[]);
      model.forward([{ seq: seq.clone(), tokens: [(P + N) % V], logits: 'last' }]);
      pr.stop();
      const mean = (a: number[]) => a.reduce((x, y) => x + y, 0) / a.length;
      probe =
        '\n  attention-output NMSE at position ' +
        (P + N) +
        ' vs ' +
        kvType +
        ': ' +
        [...pr.stats]
          .map(
            ([t, s]) =>
              `${t}: global layers mean ${mean(s.g).toExponential(2)} max ${Math.max(...s.g).toExponential(2)}, chunked layers mean ${mean(s.c).toExponential(2)} max ${Math.max(...s.c).toExponential(2)}`,
          )
          .join('; ');
    }
    steps.sort((a, b) => a - b);
    const chunked = seq.caches.filter((_, l) => config.layers[l]!.chunkSize > 0);
    const global = seq.caches.filter((_, l) => config.layers[l]!.chunkSize === 0);
    const sum = (cs: typeof seq.caches) => cs.reduce((s, c) => s + c.bytes(), 0);
    let cmp = '';
    if (!ref) ref = logits;
    else {
      let maxAbs = 0,
        maxRef = 0,
        agree = 0;
      logits.forEach((row, r) => {
        let a = 0,
          b = 0;
        for (let j = 0; j < V; j++) {
          maxAbs = Math.max(maxAbs, Math.abs(row[j]! - ref![r]![j]!));
          maxRef = Math.max(maxRef, Math.abs(ref![r]![j]!));
          if (row[j]! > row[a]!) a = j;
          if (ref![r]![j]! > ref![r]![b]!) b = j;
        }
        if (a === b) agree++;
      });
      cmp = `; vs ${types[0]} at ${logits.length} positions (${P - 1}..${P + N - 1}): max |Δlogit| ${maxAbs.toExponential(2)} (${((100 * maxAbs) / maxRef).toFixed(3)}% of max |logit|), greedy agreement ${agree}/${logits.length}`;
    }
    console.log(
      `[${backend.name}] kv ${kvType} context ${P}: prefill ${(P / prefillS).toFixed(1)} tok/s; decode ${(1000 / steps[Math.floor(N / 2)]!).toFixed(2)} tok/s (median of ${N}); ` +
        `KV cache ${mib(seq.cacheBytes())} MiB allocated (global layers ${mib(sum(global))} MiB in ${global.length}, chunked ${mib(sum(chunked))} MiB in ${chunked.length}; ` +
        `${mib(config.layers.reduce((b, f) => b + (f.chunkSize > 0 ? seq.length % f.chunkSize : seq.length), 0) * config.numKvHeads * config.headDim * 2 * (kvType === 'f32' ? 4 : kvType === 'f16' ? 2 : 34 / 32))} MiB of rows held)${cmp}${probe}`,
    );
    if ('dispose' in backend && typeof backend.dispose === 'function') backend.dispose();
  }
}
