#!/usr/bin/env -S npx tsx
/**
 * Training throughput, TypeScript reference vs native core, in one run on the same configs: tokens/s of
 * forward + backward + AdamW on B×T batches (from the median step time; after 3 untimed warm-up steps; the TypeScript run times a quarter of the steps),
 * and the native matrix products' GFLOP/s inside those steps.
 * Usage: npm run bench:train [-- --json] [-- --steps N] [-- --rounds N] [-- --threads N] [-- --configs a,b] [-- --profile]
 * --rounds N repeats TypeScript / native / bf16 N times, alternating, and reports medians (speedup: of the per-round
 * ratios; speedup_rounds lists them).
 * --profile prints the native step's time per op (ms/step; "other" is the TypeScript glue, allocation and GC).
 * Where the CPU has BF16 products it also times the native core with bf16 products (native_bf16_tps).
 * Configs: "student"/"teacher" (the old default model's shapes) and "default" (the new default model's shape).
 */
import { parseArgs } from 'node:util';
import { parseTrainConfig } from '../../src/train/config.ts';
import { TrainModel } from '../../src/train/model.ts';
import { crossEntropy } from '../../src/train/loss.ts';
import { AdamW } from '../../src/train/optim.ts';
import { matmulStats, setTrainBackend, trainProfile } from '../../src/train/kernels.ts';
import { Rng } from '../../src/train/rng.ts';
import { TsTrainBackend } from '../../src/kernels/ts/train-ops.ts';
import { tryCreateNativeTrainBackend } from '../../src/kernels/native/train-backend.ts';
import { SKILLS_MODEL } from './skills-stages.ts';

const { values } = parseArgs({
  options: {
    json: { type: 'boolean' },
    steps: { type: 'string' },
    threads: { type: 'string' },
    configs: { type: 'string' },
    profile: { type: 'boolean' },
    rounds: { type: 'string' },
  },
});
const base = {
  vocab_size: 1024,
  num_hidden_layers: 4,
  num_attention_heads: 4,
  num_key_value_heads: 2,
  num_local_experts: 4,
  attention_chunk_size: 64,
};
const shapes: Record<string, Record<string, unknown>> = {
  student: { ...base, hidden_size: 64, head_dim: 16, intermediate_size: 128, intermediate_size_mlp: 256 },
  teacher: { ...base, hidden_size: 96, head_dim: 24, intermediate_size: 192, intermediate_size_mlp: 384 },
  default: SKILLS_MODEL,
};
const steps = Number(values.steps ?? 24);
const ROUNDS = Math.max(1, Number(values.rounds ?? 1));
const WARMUP = 3;
const { backend: native, reason } = tryCreateNativeTrainBackend(Number(values.threads ?? 2));
if (!native) {
  console.error(`native training backend unavailable: ${reason}`);
  process.exit(1);
}

interface Measured {
  tps: number;
  gflops: number;
  share: number;
}

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 ? s[s.length >> 1]! : (s[s.length / 2 - 1]! + s[s.length / 2]!) / 2;
}

function measure(raw: Record<string, unknown>, nSteps: number, profile = false): Measured {
  const m = new TrainModel(parseTrainConfig(raw));
  const opt = new AdamW(m.params, { lr: 1e-3 });
  const V = Number(raw.vocab_size);
  const rng = new Rng(1),
    B = 16,
    T = 64,
    N = B * T;
  const tok = Int32Array.from({ length: N }, () => rng.int(V)),
    tgt = Int32Array.from({ length: N }, () => rng.int(V));
  let ms = 0;
  const stepMs: number[] = [];
  // The first WARMUP steps are not timed: they allocate the tape's saved buffers and gradients, and V8 is still
  // compiling the step's functions (with one warm-up step, the native median of 8 steps swung 26k–30k tok/s on the
  // student config from run to run).
  for (let s = 1 - WARMUP; s <= nSteps; s++) {
    if (s === 1) {
      matmulStats.ms = 0;
      matmulStats.flops = 0;
      ms = 0;
      trainProfile.ms.clear();
      trainProfile.on = profile;
    }
    const t0 = performance.now();
    m.zeroGrad();
    const r = crossEntropy(m.forward(tok, B, T), tgt, V);
    m.backward(r.dLogits, 0.01);
    opt.update(1e-3);
    const dt = performance.now() - t0;
    ms += dt;
    if (s > 0) stepMs.push(dt);
  }
  if (profile) {
    trainProfile.on = false;
    let sum = 0;
    const rows = [...trainProfile.ms].sort((a, b) => b[1] - a[1]);
    for (const [, t] of rows) sum += t;
    rows.push(['other', ms - sum]);
    for (const [op, t] of rows)
      console.log(`  ${op.padEnd(16)} ${(t / nSteps).toFixed(2).padStart(8)} ms/step ${((100 * t) / ms).toFixed(1).padStart(5)}%`);
    console.log(`  ${'step'.padEnd(16)} ${(ms / nSteps).toFixed(2).padStart(8)} ms/step`);
  }
  // Tokens/s from the median step (a shared machine's preemptions land on a few steps, not on the median).
  const med = median(stepMs);
  return { tps: (N / med) * 1000, gflops: matmulStats.flops / matmulStats.ms / 1e6, share: matmulStats.ms / ms };
}

const names = values.configs ? values.configs.split(',') : ['student', 'teacher'];
// Mixed precision (bf16 products, f32 everything else) where the CPU has AVX-512 BF16 or AMX-BF16.
const bf16 = tryCreateNativeTrainBackend(Number(values.threads ?? 2), undefined, 'bf16').backend;
const results: Record<
  string,
  {
    typescript_tps: number;
    native_tps: number;
    speedup: number;
    matmul_gflops: number;
    ts_matmul_gflops: number;
    native_bf16_tps?: number;
    bf16_speedup?: number;
    bf16_matmul_gflops?: number;
    speedup_rounds?: number[];
  }
> = {};
for (const name of names) {
  const raw = shapes[name];
  if (!raw) {
    console.error(`unknown config ${name}`);
    process.exit(2);
  }
  // Rounds alternate the backends, so a slow stretch of a shared machine lands on both; figures are medians over
  // rounds (speedups: the median of the per-round ratios).
  const rounds: { ts: Measured; nat: Measured; bf: Measured | null }[] = [];
  for (let r = 0; r < ROUNDS; r++) {
    setTrainBackend(new TsTrainBackend());
    const ts = measure(raw, Math.max(1, Math.ceil(steps / 4)));
    setTrainBackend(native);
    if (values.profile) console.log(`${name}: native per-op profile`);
    const nat = measure(raw, steps, values.profile);
    let bf: Measured | null = null;
    if (bf16) {
      setTrainBackend(bf16);
      if (values.profile) console.log(`${name}: native bf16-products per-op profile`);
      bf = measure(raw, steps, values.profile);
    }
    rounds.push({ ts, nat, bf });
  }
  const ts = {
    tps: median(rounds.map((x) => x.ts.tps)),
    gflops: median(rounds.map((x) => x.ts.gflops)),
    share: median(rounds.map((x) => x.ts.share)),
  };
  const nat = {
    tps: median(rounds.map((x) => x.nat.tps)),
    gflops: median(rounds.map((x) => x.nat.gflops)),
    share: median(rounds.map((x) => x.nat.share)),
  };
  const speedup = median(rounds.map((x) => x.nat.tps / x.ts.tps));
  results[name] = {
    typescript_tps: Math.round(ts.tps),
    native_tps: Math.round(nat.tps),
    speedup: +speedup.toFixed(2),
    matmul_gflops: +nat.gflops.toFixed(2),
    ts_matmul_gflops: +ts.gflops.toFixed(2),
    ...(ROUNDS > 1 ? { speedup_rounds: rounds.map((x) => +(x.nat.tps / x.ts.tps).toFixed(2)) } : {}),
  };
  let bfLine = '';
  if (bf16) {
    const bfTps = median(rounds.map((x) => x.bf!.tps)),
      bfGflops = median(rounds.map((x) => x.bf!.gflops)),
      bfSpeedup = median(rounds.map((x) => x.bf!.tps / x.ts.tps));
    Object.assign(results[name]!, {
      native_bf16_tps: Math.round(bfTps),
      bf16_speedup: +bfSpeedup.toFixed(2),
      bf16_matmul_gflops: +bfGflops.toFixed(2),
    });
    bfLine = `; ${bf16.name} ${bfTps.toFixed(0)} tok/s (${bfGflops.toFixed(2)} GFLOP/s): ${bfSpeedup.toFixed(1)}x`;
  }
  if (!values.json)
    console.log(
      `${name}: TS ${ts.tps.toFixed(0)} tok/s (${(100 * ts.share).toFixed(0)}% in products, ${ts.gflops.toFixed(2)} GFLOP/s), native ${native.name} ${nat.tps.toFixed(0)} tok/s (${(100 * nat.share).toFixed(0)}% in products, ${nat.gflops.toFixed(2)} GFLOP/s): ${(nat.tps / ts.tps).toFixed(1)}x${bfLine}`,
    );
}
const first = results[names[0]!]!;
if (values.json)
  console.log(
    JSON.stringify({
      typescript_tps: first.typescript_tps,
      native_tps: first.native_tps,
      matmul_gflops: first.matmul_gflops,
      native_bf16_tps: first.native_bf16_tps,
      config: names[0],
      backend: native.name,
      configs: results,
    }),
  );
native.dispose();
bf16?.dispose();
