/**
 * Decode speed at a given context length, and what the KV caches hold there: prefill P tokens (in 512-token pieces),
 * then time N single-token decode steps. Chunked layers must hold at most one chunk whatever P is.
 * Usage: node --import tsx bench/long-context.ts MODEL.gguf [P=1024,8192] [N=16] [threads]
 */
import { loadModel } from '../src/load.ts';
import type { Llama4Sequence } from '../src/model/llama4/text-model.ts';

const [path, ps = '1024,8192', ns = '16', th] = process.argv.slice(2);
if (!path) throw new Error('usage: bench/long-context.ts MODEL.gguf [P,P,...] [N] [threads]');
const { model, config, backend } = await loadModel(path, { backend: 'auto', ...(th ? { threads: Number(th) } : {}) });
const N = Number(ns);
for (const P of ps.split(',').map(Number)) {
  const seq = model.newSequence() as Llama4Sequence;
  let t0 = performance.now();
  for (let i = 0; i < P; i += 512) {
    model.forward([{ seq, tokens: Array.from({ length: Math.min(512, P - i) }, (_, j) => (i + j) * 7919 % config.vocabSize), logits: 'none' }]);
  }
  const prefillS = (performance.now() - t0) / 1000;
  const steps: number[] = [];
  for (let i = 0; i < N; i++) {
    t0 = performance.now();
    model.forward([{ seq, tokens: [(P + i) % config.vocabSize], logits: 'last' }]);
    steps.push(performance.now() - t0);
  }
  steps.sort((a, b) => a - b);
  const chunked = seq.caches.filter((_, l) => config.layers[l]!.chunkSize > 0).reduce((m, c) => Math.max(m, c.bytes()), 0);
  const global = seq.caches.filter((_, l) => config.layers[l]!.chunkSize === 0).reduce((m, c) => Math.max(m, c.bytes()), 0);
  console.log(`[${backend.name}] context ${P}: prefill ${(P / prefillS).toFixed(1)} tok/s; decode ${(1000 / steps[Math.floor(N / 2)]!).toFixed(2)} tok/s (median of ${N}); ` +
    `largest chunked-layer cache ${(chunked / 2 ** 20).toFixed(1)} MiB (one chunk = ${((config.attentionChunkSize * config.numKvHeads * config.headDim * 8) / 2 ** 20).toFixed(1)} MiB), largest global-layer cache ${(global / 2 ** 20).toFixed(1)} MiB`);
}
