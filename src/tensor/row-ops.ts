/**
 * The row bookkeeping of a MoE layer and of NoPE temperature tuning (Backend.scaleRows, gatherRows, scatterAddRows,
 * routeTop1): O(rows·dim) moves with no arithmetic worth a kernel, shared by every backend. They are Backend
 * operations, not loops in the model, so a backend that records the forward (training's tape, src/train/tape.ts)
 * sees every step of it.
 */
import { scatterAddRows as scatterAddRowsScaled, sigmoid } from './train-reference-rows.ts';

/** x[r, :] *= scale[r] for r < rows. */
export function scaleRows(x: Float32Array, scale: Float32Array, rows: number, dim: number): void {
  for (let r = 0; r < rows; r++) {
    const s = scale[r]!;
    if (s === 1) continue;
    for (let i = r * dim; i < (r + 1) * dim; i++) x[i] = x[i]! * s;
  }
}

/** out[j, :] = src[idx[j], :] · (scale ? scale[idx[j]] : 1) for j < rows (training's reference, the same rows). */
export { gatherRows } from './train-reference-rows.ts';

/** out[idx[j], :] += src[j, :] for j < rows, in order (an index may repeat). */
export function scatterAddRows(out: Float32Array, src: Float32Array, idx: Int32Array, rows: number, dim: number): void {
  scatterAddRowsScaled(out, src, idx, null, rows, dim);
}

/**
 * Llama 4's router (spec §2.3): per row of logits [rows, E], choice = the argmax (the lowest index on ties; torch's
 * topk order on ties is unspecified, this is the documented choice) and score = sigmoid(logit) in float32 — no
 * softmax over the experts, no renormalisation.
 */
export function routeTop1(logits: Float32Array, rows: number, E: number, choice: Int32Array, score: Float32Array): void {
  for (let t = 0; t < rows; t++) {
    let best = 0;
    for (let e = 1; e < E; e++) if (logits[t * E + e]! > logits[t * E + best]!) best = e;
    choice[t] = best;
    score[t] = sigmoid(logits[t * E + best]!);
  }
}
