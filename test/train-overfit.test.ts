// A tiny Llama 4 (MoE + NoPE layer + chunked attention shorter than the text) memorises a short text: loss falls
// from ~ln(V) to near zero and greedy decoding reproduces the text from its first token.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { parseTrainConfig } from '../src/train/config.ts';
import { TrainModel } from '../src/train/model.ts';
import { crossEntropy } from '../src/train/loss.ts';
import { AdamW, lrAt } from '../src/train/optim.ts';
import { greedyBatch } from '../src/train/generate.ts';

test('a tiny model overfits a short text', () => {
  const text = 'The quick brown fox jumps over the lazy dog.';
  const ids = [...Buffer.from(text, 'latin1')];
  const cfg = parseTrainConfig({
    vocab_size: 128,
    hidden_size: 32,
    num_attention_heads: 4,
    num_key_value_heads: 2,
    head_dim: 8,
    num_hidden_layers: 4,
    intermediate_size: 32,
    intermediate_size_mlp: 64,
    num_local_experts: 2,
    attention_chunk_size: 16,
    rope_theta: 1000,
  });
  const model = new TrainModel(cfg, { seed: 1 });
  const opt = new AdamW(model.params, { lr: 1e-2, weightDecay: 0 });
  const T = ids.length - 1;
  const x = Int32Array.from(ids.slice(0, T)),
    y = Int32Array.from(ids.slice(1));
  let first = 0,
    last = 0;
  const steps = 150;
  for (let s = 0; s < steps; s++) {
    model.zeroGrad();
    const r = crossEntropy(model.forward(x, 1, T), y, 128);
    model.backward(r.dLogits, 0.01);
    opt.update(lrAt(s, 1e-2, 10, steps, 0.1));
    if (s === 0) first = r.loss;
    last = r.loss;
  }
  assert.ok(first > 4, `initial loss ${first} should be near ln(128) = 4.85`);
  assert.ok(last < 0.05, `final loss ${last}`);
  const out = greedyBatch(model, [[ids[0]!]], T, []);
  assert.equal(Buffer.from([ids[0]!, ...out[0]!]).toString('latin1'), text);
});
