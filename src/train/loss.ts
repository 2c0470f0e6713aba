/**
 * Losses on logits [N, V]. Each returns the loss value and writes dLogits (so model.backward can run).
 *
 * - crossEntropy: mean over rows whose target is ≥ 0 (−1 = ignored, e.g. prompt tokens in SFT).
 * - distillation (codistillation): α·CE(hard) + (1−α)·KL(teacher ‖ student), per kept row; the caller moves α.
 * - weighted log-likelihood: Σ c_row·(−log p(target)) with arbitrary per-row weights (DPO, policy gradient).
 */

import { softmaxXent } from './kernels.ts';

/** Row-wise log-softmax into `out` (may alias logits); returns nothing. */
export function logSoftmaxRow(out: Float32Array, logits: Float32Array, off: number, V: number): void {
  let mx = -Infinity;
  for (let j = 0; j < V; j++) mx = Math.max(mx, logits[off + j]!);
  let s = 0;
  for (let j = 0; j < V; j++) s += Math.exp(logits[off + j]! - mx);
  const lse = mx + Math.log(s);
  for (let j = 0; j < V; j++) out[off + j] = logits[off + j]! - lse;
}

export interface LossResult {
  loss: number;
  count: number;
  dLogits: Float32Array;
}

/**
 * Mixed hard/soft loss. With `teacher` null (or alpha = 1) it is plain cross-entropy.
 * `rowWeight` (optional, per row) multiplies each row's loss; targets < 0 are skipped.
 */
export function distillLoss(
  logits: Float32Array,
  targets: Int32Array,
  V: number,
  teacher: Float32Array | null = null,
  alpha = 1,
  temperature = 1,
): LossResult {
  const N = targets.length;
  const dLogits = new Float32Array(N * V);
  let count = 0;
  for (let i = 0; i < N; i++) if (targets[i]! >= 0) count++;
  if (count === 0) return { loss: 0, count: 0, dLogits };
  // Hard targets on the training backend: dLogits = α/count·(softmax − onehot), ignored rows zero.
  let loss = (alpha * softmaxXent(dLogits, logits, targets, N, V, alpha / count)) / count;
  if (teacher && alpha < 1) {
    const tp = new Float32Array(V),
      sl = new Float32Array(V);
    for (let i = 0; i < N; i++) {
      if (targets[i]! < 0) continue;
      const off = i * V;
      // Soft targets at temperature τ: KL(pt ‖ ps_τ)·τ² (Hinton scaling keeps gradient size independent of τ).
      const tau = temperature;
      for (let j = 0; j < V; j++) {
        sl[j] = logits[off + j]! / tau;
        tp[j] = teacher[off + j]! / tau;
      }
      logSoftmaxRow(sl, sl, 0, V);
      logSoftmaxRow(tp, tp, 0, V);
      let kl = 0;
      for (let j = 0; j < V; j++) {
        const pt = Math.exp(tp[j]!);
        kl += pt * (tp[j]! - sl[j]!);
        dLogits[off + j] = dLogits[off + j]! + ((1 - alpha) * tau * (Math.exp(sl[j]!) - pt)) / count;
      }
      loss += ((1 - alpha) * tau * tau * kl) / count;
    }
  }
  return { loss, count, dLogits };
}

export function crossEntropy(logits: Float32Array, targets: Int32Array, V: number): LossResult {
  return distillLoss(logits, targets, V);
}

/** log p(target) per row (0 for ignored rows). */
export function tokenLogProbs(logits: Float32Array, targets: Int32Array, V: number): Float32Array {
  const out = new Float32Array(targets.length),
    lp = new Float32Array(V);
  for (let i = 0; i < targets.length; i++) {
    const y = targets[i]!;
    if (y < 0) continue;
    logSoftmaxRow(lp, logits.subarray(i * V, i * V + V), 0, V);
    out[i] = lp[y]!;
  }
  return out;
}

/** dLogits for Σ_rows c_row·(−log p(target_row)): c·(softmax − onehot). */
export function weightedNllGrad(logits: Float32Array, targets: Int32Array, weights: Float32Array, V: number): Float32Array {
  const d = new Float32Array(logits.length),
    lp = new Float32Array(V);
  for (let i = 0; i < targets.length; i++) {
    const y = targets[i]!,
      w = weights[i]!;
    if (y < 0 || w === 0) continue;
    logSoftmaxRow(lp, logits.subarray(i * V, i * V + V), 0, V);
    for (let j = 0; j < V; j++) d[i * V + j] = w * Math.exp(lp[j]!);
    d[i * V + y] = d[i * V + y]! - w;
  }
  return d;
}
