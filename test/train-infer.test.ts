// The KV-cache decoder used for evaluation reproduces the batch forward's logits position by position (chunk
// boundaries, NoPE temperature steps, MoE + dense layers) and greedy decoding agrees with recompute decoding.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { parseTrainConfig } from '../src/train/config.ts';
import { TrainModel } from '../src/train/model.ts';
import { KvDecoder, greedyKv } from '../src/train/infer.ts';
import { greedyBatch } from '../src/train/generate.ts';
import { Rng } from '../src/train/rng.ts';

test('KV-cache decoding equals the full forward', () => {
  const cfg = parseTrainConfig({
    vocab_size: 50, hidden_size: 24, num_attention_heads: 4, num_key_value_heads: 2, head_dim: 6, num_hidden_layers: 4,
    intermediate_size: 16, intermediate_size_mlp: 20, num_local_experts: 3, moe_layers: [0, 2, 3], attention_chunk_size: 4,
    floor_scale: 3, attn_scale: 0.4, rope_theta: 500,
  });
  const model = new TrainModel(cfg, { seed: 2, initStd: 0.2 });
  const rng = new Rng(1);
  const T = 15, toks = Array.from({ length: T }, () => rng.int(50));
  const full = model.forward(Int32Array.from(toks), 1, T, false);
  const dec = new KvDecoder(model, T);
  let maxErr = 0;
  toks.forEach((t, i) => {
    const lg = dec.step(t);
    for (let j = 0; j < 50; j++) maxErr = Math.max(maxErr, Math.abs(lg[j]! - full[i * 50 + j]!));
  });
  assert.ok(maxErr < 1e-4, `max |Δ| ${maxErr}`);
  assert.deepEqual(greedyKv(model, toks.slice(0, 5), 8, []), greedyBatch(model, [toks.slice(0, 5)], 8, [])[0]);
});
