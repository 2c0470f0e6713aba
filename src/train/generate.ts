/**
 * Greedy decoding for evaluation and data filtering, batched: prompts are right-padded into one [B, T] batch and
 * each step recomputes the whole prefix (no KV cache — prompts here are short; causal masking makes the padding
 * after a sequence's end irrelevant to its own logits).
 */
import type { TrainModel } from './model.ts';

export function greedyBatch(
  model: TrainModel,
  prompts: readonly number[][],
  maxNew: number,
  stopIds: readonly number[],
  pad = 0,
): number[][] {
  const V = model.cfg.vocabSize;
  const seqs = prompts.map((p) => [...p]);
  const done = prompts.map(() => false);
  const outs: number[][] = prompts.map(() => []);
  for (let step = 0; step < maxNew && done.includes(false); step++) {
    const live = seqs.map((_, i) => i).filter((i) => !done[i]);
    const T = Math.max(...live.map((i) => seqs[i]!.length));
    const B = live.length;
    const tokens = new Int32Array(B * T).fill(pad);
    live.forEach((i, b) => tokens.set(seqs[i]!, b * T));
    const logits = model.forward(tokens, B, T, false);
    live.forEach((i, b) => {
      const row = (b * T + seqs[i]!.length - 1) * V;
      let best = 0;
      for (let j = 1; j < V; j++) if (logits[row + j]! > logits[row + best]!) best = j;
      seqs[i]!.push(best);
      outs[i]!.push(best);
      if (stopIds.includes(best)) done[i] = true;
    });
  }
  return outs;
}

/** Runs greedyBatch in groups of `group` prompts (bounded memory). */
export function greedyAll(
  model: TrainModel,
  prompts: readonly number[][],
  maxNew: number,
  stopIds: readonly number[],
  group = 32,
): number[][] {
  const out: number[][] = [];
  for (let i = 0; i < prompts.length; i += group) out.push(...greedyBatch(model, prompts.slice(i, i + group), maxNew, stopIds));
  return out;
}
