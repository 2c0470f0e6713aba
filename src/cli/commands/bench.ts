/**
 * `llama4 bench -m MODEL [-t THREADS] [-p 512] [-n 128] [-r 3] [--json]`: prefill and decode speed of one model,
 * as llama-bench measures them (pp: a P-token prompt in one forward pass from an empty cache; tg: N single-token
 * decode steps from an empty cache, each fed the previous step's greedy token), medians over -r runs.
 * Decode is bound by memory bandwidth, so the report also gives the weight bytes a decode step reads, as GB/s and as
 * a percentage of the read bandwidth measured with the same threads (the native backend's probe) right before and
 * after each decode run: the median over runs of each run's share.
 */
import { parseArgs } from '../args.ts';
import { readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';
import type { Command } from '../command.ts';
import type { Llama4Config } from '../../load.ts';
import type { SequenceState } from '../../engine/index.ts';
import { DEFAULT_MODEL_DIR, loadModel } from '../../load.ts';
import { MODEL_OPTIONS, MODEL_USAGE, loadOptions, parseNumber } from '../options.ts';
import { UsageError } from '../../util/index.ts';
import { runGuardBench } from './guard-bench.ts';
import { runVisionBench } from './vision-bench.ts';
import { createBackend } from '../../load.ts';

const median = (xs: number[]): number => {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m]! : (s[m - 1]! + s[m]!) / 2;
};

/** Parameters in the whole model and those one decode step reads (top-k routed experts + shared expert + head). */
export function parameterCounts(c: Llama4Config): { total: number; active: number } {
  const H = c.hiddenSize,
    d = c.headDim;
  let total = 0,
    active = 0;
  for (const f of c.layers) {
    const attn = H * c.numHeads * d * 2 + H * c.numKvHeads * d * 2;
    total += attn;
    active += attn;
    if (f.isMoe) {
      const expert = 3 * H * c.intermediateSize;
      total += H * c.numExperts + c.numExperts * expert + expert;
      active += H * c.numExperts + c.numExpertsPerTok * expert + expert;
    } else {
      total += 3 * H * c.intermediateSizeMlp;
      active += 3 * H * c.intermediateSizeMlp;
    }
  }
  const emb = c.vocabSize * H;
  total += c.tieWordEmbeddings ? emb : 2 * emb;
  active += emb; // the output head; the embedding table contributes one row
  return { total, active };
}

export function weightFileBytes(path: string): number {
  const st = statSync(path);
  if (!st.isDirectory()) return st.size;
  return readdirSync(path)
    .filter((f) => f.endsWith('.safetensors'))
    .reduce((s, f) => s + statSync(join(path, f)).size, 0);
}

/**
 * Memory read bandwidth in GB/s with the backend's threads (best of 3 reads of `buf`), when the backend has a native
 * probe. The machines this runs on share their memory with neighbours, and the bandwidth they leave can double or
 * halve within seconds, so the decode figure is compared with probes taken right before and after each repetition.
 */
export function measureBandwidth(backend: unknown, buf: Uint8Array): number | null {
  const probe = (backend as { streamRead?: (b: Uint8Array) => number }).streamRead;
  if (typeof probe !== 'function') return null;
  let best = Infinity;
  for (let i = 0; i < 3; i++) {
    const t0 = process.hrtime.bigint();
    probe.call(backend, buf);
    best = Math.min(best, Number(process.hrtime.bigint() - t0) / 1e9);
  }
  return buf.length / best / 1e9;
}
/** Bytes the bandwidth probe reads: 8 times a 32 MiB L3, so DRAM speed (cache effects vanish). */
export const PROBE_BYTES = 256 * 2 ** 20;

export const benchCommand: Command = {
  name: 'bench',
  summary: 'measure prefill and decode tokens/s and decode memory bandwidth of a model',
  usage: `usage: llama4 bench [-m MODEL] [-t THREADS] [-p 512] [-n 128] [-r 3] [--json]
       llama4 bench --vision [-t THREADS] [--layers 34] [--tile 336] [-r 3] [--baseline] [--json]
Prefill: a P-token prompt in one forward pass. Decode: N single-token steps from an empty cache (llama-bench's pp/tg).
Reports medians of R runs (and CPU ms per token, steadier than wall time on a shared machine), the weight bytes each decode step reads as GB/s and as a percentage of the memory read
bandwidth measured just before and after each decode run (median over runs), and the process's peak resident memory.
--json prints {"prefill_tps", "decode_tps", "bandwidth_pct", "peak_rss_bytes", ...}.
  -p, --prompt N         prompt tokens (default 512; 0 skips prefill)
  -n, --gen N            decoded tokens (default 128; 0 skips decode)
  -r, --repeat N         runs per figure (default 3)
  --json                 one JSON object on stdout
  --guard GUARD          instead: a Llama Guard's added latency per request (input and output screening) and,
                         with -m, the model's decode tok/s before and after the guard is loaded (idle)
  --vision               instead: one image tile through a random Scout-size vision encoder built in memory (34
                         layers, width 1408, MLP 5632, 16 heads, patch 14, 336-pixel tiles = 577 rows; bf16 weights),
                         tower + adapter + projector. --json prints {"tile_seconds", "gflops", ...}: gflops = the
                         tile's matrix-product FLOPs (2·rows·N·K per product x[rows, K]·W[N, K]ᵀ, attention not
                         counted) / tile_seconds; also matmul_seconds and attention_seconds of the tile (medians)
  --layers N             with --vision: ViT layers (default 34; fewer for a quick run)
  --tile PIXELS          with --vision: tile side, a multiple of 28 (default 336)
  --baseline             with --vision: also time exact products (float32 activations, the old kernels) in turns
                         (LLAMA4_BF16_PRODUCTS=0 makes every product exact, the vision path's included)
${MODEL_USAGE}`,
  async run(argv) {
    const { values } = parseArgs({
      args: argv,
      strict: true,
      options: {
        ...MODEL_OPTIONS,
        prompt: { type: 'string', short: 'p' },
        gen: { type: 'string', short: 'n' },
        repeat: { type: 'string', short: 'r' },
        json: { type: 'boolean' },
        guard: { type: 'string' },
        vision: { type: 'boolean' },
        layers: { type: 'string' },
        tile: { type: 'string' },
        baseline: { type: 'boolean' },
      },
    });
    if (values.vision) {
      const tile = parseNumber('tile', values.tile, { int: true, min: 28 }) ?? 336;
      if (tile % 28 !== 0) throw new UsageError(`--tile must be a multiple of 28 (2 patches of 14), got ${tile}`);
      const load = loadOptions(values);
      const { backend, note } = await createBackend(load.backend, load.threads);
      if (note && !values.json) process.stderr.write(`llama4 bench: ${note}\n`);
      return runVisionBench({
        backend,
        layers: parseNumber('layers', values.layers, { int: true, min: 1 }) ?? 34,
        tilePixels: tile,
        repeat: parseNumber('repeat', values.repeat, { int: true, min: 1 }) ?? 3,
        baseline: values.baseline === true,
        json: values.json === true,
      });
    }
    if (values.guard) {
      return runGuardBench({
        guard: values.guard,
        ...(values.model ? { model: values.model } : {}),
        json: values.json === true,
        load: loadOptions(values),
        gen: parseNumber('gen', values.gen, { int: true, min: 1 }) ?? 64,
        repeat: parseNumber('repeat', values.repeat, { int: true, min: 1 }) ?? 3,
      });
    }
    const P = parseNumber('prompt', values.prompt, { int: true, min: 0 }) ?? 512;
    const N = parseNumber('gen', values.gen, { int: true, min: 0 }) ?? 128;
    const R = parseNumber('repeat', values.repeat, { int: true, min: 1 }) ?? 3;
    const path = values.model ?? DEFAULT_MODEL_DIR;
    const { model, config, backend, backendNote } = await loadModel(path, loadOptions(values));
    if (backendNote && !values.json) process.stderr.write(`llama4 bench: ${backendNote}\n`);
    if (P + N > model.info.contextLength)
      throw new UsageError(`-p + -n = ${P + N} exceeds the model's context (${model.info.contextLength})`);
    const V = config.vocabSize;
    // Deterministic pseudo-random prompt ids below the vocabulary (what llama-bench feeds too).
    let s = 12345;
    const rnd = (): number => {
      s = (Math.imul(s, 1103515245) + 12345) >>> 0;
      return s % Math.min(V, 32000);
    };
    const seconds = (t0: bigint): number => Number(process.hrtime.bigint() - t0) / 1e9;
    const argmax = (r: Float32Array): number => {
      let b = 0;
      for (let i = 1; i < r.length; i++) if (r[i]! > r[b]!) b = i;
      return b;
    };

    // One sequence for every run, emptied between runs (llama-bench clears its context the same way): a fresh
    // sequence per run would leave the previous runs' caches to the garbage collector and inflate peak RSS.
    let seq = model.newSequence();
    const fresh = (): SequenceState => (seq.truncate(0) ? seq : (seq = model.newSequence()));
    // Warm-up (not timed, as llama-bench does): pages the weights in and grows every scratch buffer once.
    {
      const seq = fresh();
      model.forward([{ seq, tokens: Array.from({ length: Math.min(Math.max(P, 1), 64) }, rnd), logits: 'last' }]);
      for (let i = 0; i < 2; i++) model.forward([{ seq, tokens: [rnd()], logits: 'last' }]);
    }
    s = 12345;
    const pp: number[] = [],
      tg: number[] = [],
      ppCpu: number[] = [],
      tgCpu: number[] = [];
    const cpuMs = (c0: NodeJS.CpuUsage): number => {
      const c = process.cpuUsage(c0);
      return (c.user + c.system) / 1000;
    };
    // Bandwidth probes: one before the first decode run and one after each; a run is compared with the mean of the
    // two around it. The buffer is allocated after the model and its warm-up (a buffer allocated before the model
    // loaded read 12% slower on one thread here, as if the memory were slower than it is), and written at once, so it
    // is resident from here on: peak RSS less its size is the model's own peak (see peakRss).
    const maxRssBeforeProbe = process.resourceUsage().maxRSS * 1024;
    const probeBuf =
      N > 0 && typeof (backend as { streamRead?: unknown }).streamRead === 'function' ? new Uint8Array(PROBE_BYTES).fill(1) : null;
    const probes: number[] = [];
    const probe = (): void => {
      const bw = probeBuf ? measureBandwidth(backend, probeBuf) : null;
      if (bw !== null) probes.push(bw);
    };
    if (N > 0) probe();
    const tgPct: number[] = [];
    for (let rep = 0; rep < R; rep++) {
      if (P > 0) {
        const ids = Array.from({ length: P }, rnd);
        const seq = fresh();
        const t0 = process.hrtime.bigint(),
          c0 = process.cpuUsage();
        model.forward([{ seq, tokens: ids, logits: 'last' }]);
        pp.push(P / seconds(t0));
        ppCpu.push(cpuMs(c0) / P);
      }
      if (N > 0) {
        const seq = fresh();
        let tok = rnd();
        const t0 = process.hrtime.bigint(),
          c0 = process.cpuUsage();
        for (let i = 0; i < N; i++) tok = argmax(model.forward([{ seq, tokens: [tok], logits: 'last' }])[0]!);
        tg.push(N / seconds(t0));
        tgCpu.push(cpuMs(c0) / N);
        probe();
      }
    }
    const peakRss = Math.max(maxRssBeforeProbe, process.resourceUsage().maxRSS * 1024 - (probeBuf?.length ?? 0));
    const { total, active } = parameterCounts(config);
    const activeBytes = (weightFileBytes(path) * active) / total;
    if (probes.length === tg.length + 1)
      tg.forEach((tps, i) => tgPct.push((100 * tps * activeBytes) / 1e9 / ((probes[i]! + probes[i + 1]!) / 2)));
    const decodeTps = tg.length ? median(tg) : 0;
    const decodeGbps = (decodeTps * activeBytes) / 1e9;
    const bw = probes.length ? median(probes) : null;
    const result = {
      prefill_tps: pp.length ? median(pp) : 0,
      decode_tps: decodeTps,
      // median over the runs of each run's weight GB/s against the probes around it
      bandwidth_pct: tgPct.length ? median(tgPct) : null,
      peak_rss_bytes: peakRss,
      decode_weight_gbps: decodeGbps,
      memory_read_gbps: bw,
      active_weight_bytes: Math.round(activeBytes),
      backend: backend.name,
      threads: (backend as { threads?: number }).threads ?? 1,
      prompt: P,
      gen: N,
      repeat: R,
      // CPU time per token (all threads): on a shared machine a steadier figure than wall time at 1 thread
      prefill_cpu_ms_per_token: ppCpu.length ? median(ppCpu) : null,
      decode_cpu_ms_per_token: tgCpu.length ? median(tgCpu) : null,
      prefill_runs: pp,
      decode_runs: tg,
      bandwidth_pct_runs: tgPct,
      memory_read_gbps_runs: probes,
    };
    if (values.json) process.stdout.write(JSON.stringify(result) + '\n');
    else {
      const f = (x: number) => x.toFixed(2);
      process.stdout.write(
        `model    ${path} (${backend.name}, ${result.threads} thread${result.threads === 1 ? '' : 's'})\n` +
          (P ? `prefill  ${f(result.prefill_tps)} tok/s (pp${P}, median of ${R})\n` : '') +
          (N
            ? `decode   ${f(decodeTps)} tok/s (tg${N}, median of ${R}); ${f(decodeGbps)} GB/s of weights` +
              (bw
                ? ` = ${result.bandwidth_pct!.toFixed(0)}% of the read bandwidth measured around each run ` +
                  `(median; probes ${probes.map((p) => p.toFixed(1)).join(', ')} GB/s)\n`
                : ' (no bandwidth probe on this backend)\n')
            : '') +
          `peak RSS ${(peakRss / 2 ** 20).toFixed(0)} MiB\n`,
      );
    }
    return 0;
  },
};
