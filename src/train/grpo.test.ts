// GRPO loss: gradient against central finite differences (float64 re-evaluation of the loss), and the KL term
// vanishes when the policy equals the reference.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { grpoLoss } from './grpo.ts';
import { Rng } from './rng.ts';

test('grpoLoss gradient matches finite differences; KL is 0 at the reference', () => {
  const rng = new Rng(5),
    B = 3,
    T = 4,
    V = 7;
  const logits = Float32Array.from({ length: B * T * V }, () => rng.normal());
  const ref = Float32Array.from({ length: B * T * V }, () => rng.normal());
  const targets = Int32Array.from([-1, 2, 5, -1, -1, -1, 0, 6, 1, 1, -1, -1]);
  const adv = [0.7, -1.2, 0.4],
    beta = 0.3;
  const { dLogits } = grpoLoss(logits, ref, targets, B, T, V, adv, beta);
  for (let i = 0; i < logits.length; i += 2) {
    const save = logits[i]!,
      h = 1e-2;
    logits[i] = save + h;
    const lp = grpoLoss(logits, ref, targets, B, T, V, adv, beta).loss;
    logits[i] = save - h;
    const lm = grpoLoss(logits, ref, targets, B, T, V, adv, beta).loss;
    logits[i] = save;
    const fd = (lp - lm) / (2 * h);
    assert.ok(Math.abs(fd - dLogits[i]!) < 2e-3 + 2e-2 * Math.abs(fd), `d[${i}] ${dLogits[i]} vs fd ${fd}`);
  }
  assert.ok(Math.abs(grpoLoss(logits, logits, targets, B, T, V, adv, beta).kl) < 1e-7);
});
