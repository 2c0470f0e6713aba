/**
 * Decode speed as one sequence grows: prefill to each context length in turn (512-token pieces), then time N decode
 * steps there; prints the caches' sizes at each point (chunked layers must stay at one chunk, global ones grow).
 * With the native backend it also gives each point's byte roof share: the bytes a decode step reads (active weights
 * plus every layer's visible K/V) per second, against the read bandwidth probed right before and after the steps.
 * One sequence serves every length, so a 1k/8k/32k sweep prefills 32k tokens once instead of 41k.
 * Usage: node --import tsx bench/context-sweep.ts MODEL.gguf [P=1024,8192,32768] [N=12] [threads] [--kv-type f32|f16|q8_0]
 */
import { parseArgs } from 'node:util';
import { loadModel } from '../src/load.ts';
import type { Llama4Sequence } from '../src/model/llama4/text-model.ts';
import { isKvType, kvBytesPerValue, type KvType } from '../src/tensor/index.ts';
import { measureBandwidth, PROBE_BYTES, parameterCounts, weightFileBytes } from '../src/cli/commands/bench.ts';

const { values, positionals } = parseArgs({ allowPositionals: true, options: { 'kv-type': { type: 'string', default: 'f32' } } });
const [path, ps = '1024,8192,32768', ns = '12', th] = positionals;
if (!path) throw new Error('usage: bench/context-sweep.ts MODEL.gguf [P,P,...] [N] [threads] [--kv-type f32|f16|q8_0]');
const kvType = values['kv-type']!;
if (!isKvType(kvType)) throw new Error(`--kv-type: '${kvType}' is not f32, f16 or q8_0`);
const { model, config, backend } = await loadModel(path, {
  backend: 'auto',
  kvType: kvType as KvType,
  ...(th ? { threads: Number(th) } : {}),
});
const V = config.vocabSize,
  N = Number(ns);
const seq = model.newSequence() as Llama4Sequence;
// allocated after the model: a buffer allocated before it read 12% slower on one thread (see llama4 bench)
const probeBuf = new Uint8Array(PROBE_BYTES).fill(1);
const mib = (b: number) => (b / 2 ** 20).toFixed(1);
let prefillMs = 0,
  prefilled = 0;
for (const P of ps.split(',').map(Number)) {
  const t0 = performance.now();
  while (seq.length < P) {
    const n = Math.min(512, P - seq.length),
      at = seq.length;
    model.forward([{ seq, tokens: Array.from({ length: n }, (_, j) => ((at + j) * 7919) % V), logits: 'none' }]);
    prefilled += n;
  }
  prefillMs += performance.now() - t0;
  const bw0 = measureBandwidth(backend, probeBuf);
  const steps: number[] = [];
  for (let i = 0; i < N; i++) {
    const s0 = performance.now();
    model.forward([{ seq, tokens: [(seq.length * 31) % V], logits: 'last' }]);
    steps.push(performance.now() - s0);
  }
  const bw1 = measureBandwidth(backend, probeBuf);
  steps.sort((a, b) => a - b);
  // Bytes per step: active weights, and per layer the K and V rows its query sees (chunked layers: its own chunk).
  const { total, active } = parameterCounts(config);
  const pos = seq.length - 1;
  let kvBytes = 0;
  for (const f of config.layers) {
    const visible = f.chunkSize > 0 ? (pos % f.chunkSize) + 1 : pos + 1;
    kvBytes += 2 * visible * config.numKvHeads * config.headDim * kvBytesPerValue(kvType as KvType);
  }
  const stepBytes = (weightFileBytes(path) * active) / total + kvBytes;
  const tps = 1000 / steps[steps.length >> 1]!;
  const roof =
    bw0 !== null && bw1 !== null
      ? `; reads ${(stepBytes / 1e9).toFixed(3)} GB per step = ${((tps * stepBytes) / 1e9).toFixed(1)} GB/s, ` +
        `${((100 * tps * stepBytes) / 1e9 / ((bw0 + bw1) / 2)).toFixed(0)}% of the ${bw0.toFixed(1)} / ${bw1.toFixed(1)} GB/s probed before / after`
      : '';
  const sizes = (chunked: boolean) =>
    seq.caches.filter((_, l) => config.layers[l]!.chunkSize > 0 === chunked).reduce((m, c) => Math.max(m, c.bytes()), 0);
  console.log(
    `[${backend.name}, kv ${kvType}] context ${P}: decode ${tps.toFixed(2)} tok/s (median of ${N})${roof}; ` +
      `prefill so far ${((prefilled / prefillMs) * 1000).toFixed(1)} tok/s over ${prefilled} tokens; largest chunked-layer cache ${mib(sizes(true))} MiB, ` +
      `largest global-layer cache ${mib(sizes(false))} MiB, all caches ${mib(seq.cacheBytes())} MiB, RSS ${mib(process.memoryUsage().rss)} MiB`,
  );
}
