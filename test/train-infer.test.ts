// One model: the training forward (src/train/model.ts: Llama4TextModel on the training tape, its tensors bound to the
// Params) and the inference model loaded the way `llama4 run` loads it (the weights through the HF layout, on a
// compute backend) produce the same logits position by position (chunk boundaries, NoPE temperature steps, MoE with shared expert
// and dense layers), on the TypeScript and native backends; greedy decoding through the inference snapshot agrees
// with recompute decoding on the training forward.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { parseTrainConfig } from '../src/train/config.ts';
import { TrainModel } from '../src/train/model.ts';
import { PolicySnapshot } from '../src/train/decode.ts';
import { greedyBatch } from '../src/train/generate.ts';
import { Rng } from '../src/train/rng.ts';
import { TsBackend } from '../src/kernels/ts/index.ts';
import { tryCreateNativeBackend } from '../src/kernels/native/index.ts';
import type { Backend } from '../src/tensor/backend.ts';

const cfg = parseTrainConfig({
  vocab_size: 50,
  hidden_size: 24,
  num_attention_heads: 4,
  num_key_value_heads: 2,
  head_dim: 6,
  num_hidden_layers: 4,
  intermediate_size: 16,
  intermediate_size_mlp: 20,
  num_local_experts: 3,
  moe_layers: [0, 2, 3],
  attention_chunk_size: 4,
  floor_scale: 3,
  attn_scale: 0.4,
  rope_theta: 500,
});
const backends: Backend[] = [new TsBackend()];
const nat = tryCreateNativeBackend({ threads: 2 });
if (nat.backend) backends.push(nat.backend);
else console.log(`# native backend skipped: ${nat.reason}`);

for (const be of backends) {
  test(`training forward = Llama4TextModel forward (${be.name})`, () => {
    const model = new TrainModel(cfg, { seed: 2, initStd: 0.2 });
    const rng = new Rng(1);
    const T = 15,
      toks = Array.from({ length: T }, () => rng.int(50));
    const full = model.forward(Int32Array.from(toks), 1, T, false);
    const snap = new PolicySnapshot(model, be);
    const seq = snap.model.newSequence();
    let maxErr = 0;
    toks.forEach((t, i) => {
      const [lg] = snap.model.forward([{ seq, tokens: [t], logits: 'last' }]) as [Float32Array];
      for (let j = 0; j < 50; j++) maxErr = Math.max(maxErr, Math.abs(lg[j]! - full[i * 50 + j]!));
    });
    assert.ok(maxErr < 1e-4, `max |Δ| ${maxErr}`);
    assert.deepEqual(snap.complete(toks.slice(0, 5), { maxNew: 8, stop: [] }), greedyBatch(model, [toks.slice(0, 5)], 8, [])[0]);
  });
}

for (const be of backends) {
  test(`forwardRows (the trainer's one-shot batch) = forward over fresh sequences, bit for bit (${be.name})`, () => {
    const model = new TrainModel(cfg, { seed: 3, initStd: 0.2 });
    const net = new PolicySnapshot(model, be).model;
    const rng = new Rng(5);
    const rows = [9, 9, 9].map((n) => Array.from({ length: n }, () => rng.int(50)));
    const one = net.forwardRows(rows);
    const many = net.forward(rows.map((tokens) => ({ seq: net.newSequence(), tokens, logits: 'all' as const })));
    assert.deepEqual(one, Float32Array.from(many.flatMap((a) => [...a])));
  });
}
