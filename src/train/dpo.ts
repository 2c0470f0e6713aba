/**
 * Direct Preference Optimisation on (prompt, chosen, rejected) triples against a frozen reference model:
 * loss = −log σ(β·((log π(c) − log π_ref(c)) − (log π(r) − log π_ref(r)))), log-probabilities summed over answer
 * tokens. The gradient w.r.t. each sequence's log-probability is ∓β·σ(−z), applied through weightedNllGrad.
 */
import { weightedNllGrad, tokenLogProbs } from './loss.ts';
import type { TrainModel } from './model.ts';
import { packChat } from './trainer.ts';

export interface PrefPair {
  prompt: number[];
  chosen: number[];
  rejected: number[];
}

/** Sum of answer-token log-probs per row of a packed batch. */
function seqLogProbs(logits: Float32Array, targets: Int32Array, B: number, T: number, V: number): Float64Array {
  const lp = tokenLogProbs(logits, targets, V),
    out = new Float64Array(B);
  for (let b = 0; b < B; b++) for (let t = 0; t < T; t++) if (targets[b * T + t]! >= 0) out[b] = out[b]! + lp[b * T + t]!;
  return out;
}

/**
 * One DPO micro-batch: forward/backward on policy (gradients accumulate), reference forward only.
 * `nllWeight` adds a per-token NLL term on the chosen answers (keeps their likelihood from drifting down).
 * Returns the mean DPO loss, the share of pairs whose implicit reward margin is positive, and the NLL term's value.
 */
export function dpoStep(
  policy: TrainModel,
  ref: TrainModel,
  pairs: readonly PrefPair[],
  beta: number,
  pad: number,
  nllWeight = 0,
  auxCoef = 0.01,
): { loss: number; acc: number; nll: number } {
  const P = pairs.length,
    V = policy.cfg.vocabSize;
  const batch = packChat(
    [...pairs.map((p) => ({ prompt: p.prompt, answer: p.chosen })), ...pairs.map((p) => ({ prompt: p.prompt, answer: p.rejected }))],
    4096,
    pad,
  );
  const refLp = seqLogProbs(ref.forward(batch.tokens, batch.B, batch.T, false), batch.targets, batch.B, batch.T, V);
  const logits = policy.forward(batch.tokens, batch.B, batch.T);
  const lp = seqLogProbs(logits, batch.targets, batch.B, batch.T, V);
  const w = new Float32Array(batch.B * batch.T);
  let loss = 0,
    acc = 0,
    nll = 0;
  for (let i = 0; i < P; i++) {
    const z = beta * (lp[i]! - refLp[i]! - (lp[P + i]! - refLp[P + i]!));
    loss += Math.log1p(Math.exp(-z)) / P;
    if (z > 0) acc += 1 / P;
    const g = beta / (1 + Math.exp(z)) / P; // β·σ(−z)/P
    const nc = pairs[i]!.chosen.length;
    nll += (-lp[i]! * nllWeight) / (P * nc);
    for (let t = 0; t < batch.T; t++) {
      if (batch.targets[i * batch.T + t]! >= 0) w[i * batch.T + t] = g + nllWeight / (P * nc);
      if (batch.targets[(P + i) * batch.T + t]! >= 0) w[(P + i) * batch.T + t] = -g;
    }
  }
  policy.backward(weightedNllGrad(logits, batch.targets, w, V), auxCoef);
  return { loss, acc, nll };
}
