// A checkpoint saved by the trainer loads in the engine (src/load.ts loadModel) and gives the same logits as the
// training forward within 1e-4, on a tiny model with every Llama 4 feature on (MoE + dense, chunked + NoPE with
// temperature tuning, qk-norm, llama3 rope scaling), after a few training steps so weights are not just the init.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseTrainConfig } from '../src/train/config.ts';
import { TrainModel } from '../src/train/model.ts';
import { saveCheckpoint } from '../src/train/checkpoint.ts';
import { distillLoss } from '../src/train/loss.ts';
import { AdamW } from '../src/train/optim.ts';
import { Rng } from '../src/train/rng.ts';
import { loadModel } from '../src/load.ts';

test('engine logits equal training-forward logits on a saved checkpoint', async () => {
  const cfg = parseTrainConfig({
    vocab_size: 61,
    hidden_size: 32,
    num_attention_heads: 4,
    num_key_value_heads: 2,
    head_dim: 8,
    num_hidden_layers: 4,
    intermediate_size: 24,
    intermediate_size_mlp: 40,
    num_local_experts: 3,
    moe_layers: [0, 1, 3],
    attention_chunk_size: 5,
    floor_scale: 4,
    attn_scale: 0.3,
    rope_theta: 1000,
    use_qk_norm: true,
    attn_temperature_tuning: true,
    bos_token_id: 0,
    eos_token_id: 1,
    rope_scaling: { rope_type: 'llama3', factor: 8, low_freq_factor: 1, high_freq_factor: 4, original_max_position_embeddings: 16 },
  });
  const model = new TrainModel(cfg, { seed: 5, initStd: 0.1 });
  const rng = new Rng(4);
  const opt = new AdamW(model.params, { lr: 1e-2 });
  const T = 19;
  const tokens = Int32Array.from({ length: T }, () => rng.int(61));
  for (let s = 0; s < 3; s++) {
    model.zeroGrad();
    const r = distillLoss(
      model.forward(tokens, 1, T),
      Int32Array.from(tokens, (_, i) => tokens[(i + 1) % T]!),
      61,
    );
    model.backward(r.dLogits, 0.01);
    opt.update(1e-2);
  }
  const want = model.forward(tokens, 1, T, false);
  const dir = mkdtempSync(join(tmpdir(), 'llama4-train-engine-'));
  try {
    saveCheckpoint(dir, model);
    const loaded = await loadModel(dir, { backend: 'typescript' });
    const seq = loaded.model.newSequence();
    const [got] = loaded.model.forward([{ seq, tokens: Array.from(tokens), logits: 'all' }]);
    assert.ok(got && got.length === want.length, `engine returned ${got?.length} logits, expected ${want.length}`);
    let maxErr = 0;
    for (let i = 0; i < want.length; i++) maxErr = Math.max(maxErr, Math.abs(got[i]! - want[i]!));
    assert.ok(maxErr < 1e-4, `max |Δlogit| engine vs training forward = ${maxErr}`);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
