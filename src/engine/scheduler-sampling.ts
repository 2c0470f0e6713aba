/**
 * What the scheduler needs from sampling: a per-choice token picker over one logits row (by default the shared
 * sampler, engine/sampler.ts; see `makePicker` in scheduler.ts), and log-probabilities for the API's logprobs.
 */
import type { SamplerOptions } from './sampler.ts';

/** Options a request may set (the shared sampler's options; greedy when temperature is 0). */
export type SamplingOptions = SamplerOptions;

/** Picks the next token from a logits row [vocab] given the tokens generated so far (for penalties). */
export interface TokenPicker {
  pick(logits: Float32Array, history: readonly number[]): number;
}

/** mulberry32: a tiny seeded PRNG (test helpers and fuzzing). Returns floats in [0, 1). */
export function seededRandom(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

export interface TopLogprob {
  token: number;
  logprob: number;
}

/** log-softmax of `row` at `token`, plus the `top` most likely tokens (best first). */
export function tokenLogprobs(row: Float32Array, token: number, top: number): { logprob: number; top: TopLogprob[] } {
  let max = -Infinity;
  for (let i = 0; i < row.length; i++) if (row[i]! > max) max = row[i]!;
  let sum = 0;
  for (let i = 0; i < row.length; i++) sum += Math.exp(row[i]! - max);
  const lse = max + Math.log(sum);
  const best: TopLogprob[] = [];
  if (top > 0) {
    // Partial selection: keep a small sorted list of the `top` best (top ≤ 20 by API contract).
    for (let i = 0; i < row.length; i++) {
      const v = row[i]!;
      if (best.length < top || v > best[best.length - 1]!.logprob) {
        let k = best.length < top ? best.length : best.length - 1;
        if (best.length < top) best.push({ token: i, logprob: v });
        while (k > 0 && best[k - 1]!.logprob < v) {
          best[k] = best[k - 1]!;
          k--;
        }
        best[k] = { token: i, logprob: v };
      }
    }
    for (const b of best) b.logprob -= lse;
  }
  return { logprob: (row[token] ?? -Infinity) - lse, top: best };
}
