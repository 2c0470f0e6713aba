/**
 * What the scheduler needs from sampling: a per-choice token picker over one logits row, and log-probabilities.
 * `TokenPicker` is the seam to the shared sampler (src/engine/sampler.ts, written by the lead); `makeFallbackPicker`
 * is a small seeded implementation used until/unless that module provides one (see `makePicker` in scheduler.ts).
 */

/** Options a request may set; every field is optional (greedy when temperature is 0). */
export interface SamplingOptions {
  temperature?: number;
  topK?: number;
  topP?: number;
  minP?: number;
  repetitionPenalty?: number;
  presencePenalty?: number;
  frequencyPenalty?: number;
  seed?: number;
}

/** Picks the next token from a logits row [vocab] given the tokens generated so far (for penalties). */
export interface TokenPicker {
  pick(logits: Float32Array, history: readonly number[]): number;
}

/** mulberry32: a tiny seeded PRNG so that `seed` makes sampling repeatable. Returns floats in [0, 1). */
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

/** Index of the largest finite value; ties go to the lowest index (matches torch.argmax). */
export function argmax(row: Float32Array): number {
  let best = 0;
  let bestV = -Infinity;
  for (let i = 0; i < row.length; i++) {
    const v = row[i]!;
    if (v > bestV) {
      bestV = v;
      best = i;
    }
  }
  return best;
}

/** Applies repetition / presence / frequency penalties in place (llama.cpp / OpenAI semantics). */
export function applyPenalties(row: Float32Array, history: readonly number[], o: SamplingOptions): void {
  const rep = o.repetitionPenalty ?? 1;
  const pres = o.presencePenalty ?? 0;
  const freq = o.frequencyPenalty ?? 0;
  if (rep === 1 && pres === 0 && freq === 0) return;
  const counts = new Map<number, number>();
  for (const t of history) counts.set(t, (counts.get(t) ?? 0) + 1);
  for (const [t, c] of counts) {
    if (t < 0 || t >= row.length) continue;
    let v = row[t]!;
    if (rep !== 1) v = v > 0 ? v / rep : v * rep;
    v -= pres + freq * c;
    row[t] = v;
  }
}

/** A complete sampler: penalties, temperature, top-k, top-p, min-p, then a seeded draw. */
export function makeFallbackPicker(o: SamplingOptions): TokenPicker {
  const rand = seededRandom(o.seed ?? Math.floor(Math.random() * 2 ** 32));
  const temperature = o.temperature ?? 1;
  return {
    pick(logits, history) {
      const row = new Float32Array(logits);
      applyPenalties(row, history, o);
      if (temperature <= 1e-6 || o.topK === 1) return argmax(row);
      // Candidates sorted by logit, best first; top-k bounds the sort work for big vocabularies.
      const idx: number[] = [];
      for (let i = 0; i < row.length; i++) if (row[i]! > -Infinity) idx.push(i);
      idx.sort((a, b) => row[b]! - row[a]! || a - b);
      let cand = o.topK && o.topK > 0 ? idx.slice(0, o.topK) : idx;
      const max = row[cand[0]!]!;
      let probs = cand.map((i) => Math.exp((row[i]! - max) / temperature));
      let sum = probs.reduce((s, p) => s + p, 0);
      if (o.minP && o.minP > 0) {
        const keep = probs.map((p) => p / sum >= o.minP! * (probs[0]! / sum));
        cand = cand.filter((_, k) => keep[k]);
        probs = probs.filter((_, k) => keep[k]);
        sum = probs.reduce((s, p) => s + p, 0);
      }
      if (o.topP !== undefined && o.topP < 1) {
        let acc = 0;
        let cut = probs.length;
        for (let k = 0; k < probs.length; k++) {
          acc += probs[k]! / sum;
          if (acc >= o.topP) {
            cut = k + 1;
            break;
          }
        }
        cand = cand.slice(0, cut);
        probs = probs.slice(0, cut);
        sum = probs.reduce((s, p) => s + p, 0);
      }
      let r = rand() * sum;
      for (let k = 0; k < cand.length; k++) {
        r -= probs[k]!;
        if (r <= 0) return cand[k]!;
      }
      return cand[cand.length - 1]!;
    },
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
