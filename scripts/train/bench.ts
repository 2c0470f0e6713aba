#!/usr/bin/env -S npx tsx
/**
 * Training throughput of the student and teacher shapes on this machine: tokens/s of forward+backward+AdamW on
 * B×T text batches and the share of that time spent inside matrix products (kernels.ts matmulNT).
 * Usage: nice npx tsx scripts/train/bench.ts [steps]
 */
import { parseTrainConfig } from '../../src/train/config.ts';
import { TrainModel } from '../../src/train/model.ts';
import { crossEntropy } from '../../src/train/loss.ts';
import { AdamW } from '../../src/train/optim.ts';
import { matmulStats } from '../../src/train/kernels.ts';
import { Rng } from '../../src/train/rng.ts';

const base = { vocab_size: 1024, num_hidden_layers: 4, num_attention_heads: 4, num_key_value_heads: 2, num_local_experts: 4, attention_chunk_size: 64 };
const shapes = {
  student: { ...base, hidden_size: 64, head_dim: 16, intermediate_size: 128, intermediate_size_mlp: 256 },
  teacher: { ...base, hidden_size: 96, head_dim: 24, intermediate_size: 192, intermediate_size_mlp: 384 },
};
const steps = Number(process.argv[2] ?? 6);
for (const [name, raw] of Object.entries(shapes)) {
  const m = new TrainModel(parseTrainConfig(raw));
  const opt = new AdamW(m.params, { lr: 1e-3 });
  const rng = new Rng(1), B = 16, T = 64, N = B * T;
  const tok = Int32Array.from({ length: N }, () => rng.int(1024)), tgt = Int32Array.from({ length: N }, () => rng.int(1024));
  let ms = 0;
  for (let s = 0; s <= steps; s++) {
    if (s === 1) { matmulStats.ms = 0; matmulStats.flops = 0; ms = 0; }
    const t0 = performance.now();
    m.zeroGrad();
    const r = crossEntropy(m.forward(tok, B, T), tgt, 1024);
    m.backward(r.dLogits, 0.01);
    opt.update(1e-3);
    ms += performance.now() - t0;
  }
  console.log(`${name}: ${m.paramCount()} params, ${(steps * N / ms * 1000).toFixed(0)} tok/s, ${(100 * matmulStats.ms / ms).toFixed(0)}% of step time in matrix products (${(matmulStats.flops / matmulStats.ms / 1e6).toFixed(2)} GFLOP/s there)`);
}
