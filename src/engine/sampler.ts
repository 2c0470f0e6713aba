/**
 * Token sampling composed of small pure steps (mlx-lm's make_sampler, gpt-fast's logits_to_probs):
 *   penalties -> temperature -> top-k -> top-p -> min-p -> draw.
 * Each step is exported and unit-tested alone. Temperature 0 (or below 1e-6) means greedy argmax.
 * A seed makes the draws reproducible (xoshiro128** seeded by splitmix32).
 */
import { UsageError } from '../util/index.ts';

export interface SamplerOptions {
  temperature?: number; // default 1; 0 = greedy
  topK?: number; // 0 = off
  topP?: number; // 1 = off
  minP?: number; // 0 = off
  /** HF-style: logits of seen tokens divided (if > 0) or multiplied (if < 0) by this; 1 = off. */
  repetitionPenalty?: number;
  /** OpenAI-style: subtract presencePenalty once per seen token and frequencyPenalty × its count. */
  presencePenalty?: number;
  frequencyPenalty?: number;
  /** How many recent tokens the penalties look at (0 = all). */
  penaltyWindow?: number;
  seed?: number;
}

export interface Sampler {
  /** Picks the next token. `logits` [V] is not modified; `history` is every token so far (prompt + generated). */
  sample(logits: Float32Array, history: ArrayLike<number>): number;
}

/** A candidate set: token ids with their (unnormalised, then normalised) probabilities. */
interface Candidates {
  ids: Int32Array;
  p: Float64Array;
  n: number;
}

export function argmax(logits: ArrayLike<number>): number {
  let b = 0;
  for (let i = 1; i < logits.length; i++) if (logits[i]! > logits[b]!) b = i;
  return b;
}

/** Applies repetition / presence / frequency penalties in place to a copy of the logits. */
export function applyPenalties(logits: Float32Array, history: ArrayLike<number>, o: SamplerOptions): void {
  const rep = o.repetitionPenalty ?? 1,
    pres = o.presencePenalty ?? 0,
    freq = o.frequencyPenalty ?? 0;
  if (rep === 1 && pres === 0 && freq === 0) return;
  const start = o.penaltyWindow ? Math.max(0, history.length - o.penaltyWindow) : 0;
  const counts = new Map<number, number>();
  for (let i = start; i < history.length; i++) {
    const t = history[i]!;
    counts.set(t, (counts.get(t) ?? 0) + 1);
  }
  for (const [t, c] of counts) {
    if (t < 0 || t >= logits.length) continue;
    let l = logits[t]!;
    if (rep !== 1) l = l > 0 ? l / rep : l * rep;
    l -= pres + freq * c;
    logits[t] = l;
  }
}

/** Softmax of logits/temperature over the whole vocabulary -> candidates sorted by probability (lazily, see topP). */
export function softmaxCandidates(logits: Float32Array, temperature: number): Candidates {
  const V = logits.length;
  let max = -Infinity;
  for (let i = 0; i < V; i++) if (logits[i]! > max) max = logits[i]!;
  if (max === -Infinity) throw new UsageError('every token is masked out: nothing can be sampled');
  const p = new Float64Array(V);
  const ids = new Int32Array(V);
  let sum = 0,
    n = 0;
  for (let i = 0; i < V; i++) {
    const l = logits[i]!;
    if (l === -Infinity) continue;
    const e = Math.exp((l - max) / temperature);
    if (e === 0) continue;
    ids[n] = i;
    p[n] = e;
    sum += e;
    n++;
  }
  for (let i = 0; i < n; i++) p[i]! /= sum;
  return { ids, p, n };
}

/** Sorts the first n candidates by probability, descending (ties by lower id). */
function sortCandidates(c: Candidates): void {
  const order = Array.from({ length: c.n }, (_, i) => i).sort((a, b) => c.p[b]! - c.p[a]! || c.ids[a]! - c.ids[b]!);
  const ids = order.map((i) => c.ids[i]!),
    p = order.map((i) => c.p[i]!);
  c.ids.set(ids);
  c.p.set(p);
}

/**
 * Keeps the most probable candidates: only those above a threshold are sorted, and the threshold is lowered until
 * the kept set is large enough, so a 200k vocabulary is not fully sorted on every token.
 */
function keepTop(c: Candidates, enough: (sorted: Candidates) => number): void {
  let pmax = 0;
  for (let i = 0; i < c.n; i++) if (c.p[i]! > pmax) pmax = c.p[i]!;
  for (let thr = pmax * 1e-3; ; thr = thr > 1e-300 ? thr * 1e-3 : 0) {
    const sub: Candidates = { ids: new Int32Array(c.n), p: new Float64Array(c.n), n: 0 };
    for (let i = 0; i < c.n; i++)
      if (c.p[i]! >= thr) {
        sub.ids[sub.n] = c.ids[i]!;
        sub.p[sub.n] = c.p[i]!;
        sub.n++;
      }
    sortCandidates(sub);
    const keep = enough(sub);
    if (keep <= sub.n || thr === 0) {
      c.ids.set(sub.ids.subarray(0, Math.min(keep, sub.n)));
      c.p.set(sub.p.subarray(0, Math.min(keep, sub.n)));
      c.n = Math.min(keep, sub.n);
      normalize(c);
      return;
    }
  }
}

/** Rescales the kept candidates to sum to 1 (each filter sees the distribution the previous one left). */
function normalize(c: Candidates): void {
  let sum = 0;
  for (let i = 0; i < c.n; i++) sum += c.p[i]!;
  for (let i = 0; i < c.n; i++) c.p[i]! /= sum;
}

/** Keeps the k most probable tokens. */
export function applyTopK(c: Candidates, k: number): void {
  if (k <= 0 || k >= c.n) return;
  keepTop(c, (s) => (s.n >= k ? k : Infinity));
}

/** Keeps the smallest set of most probable tokens whose mass reaches p (always at least one). */
export function applyTopP(c: Candidates, topP: number): void {
  if (topP >= 1) return;
  keepTop(c, (s) => {
    let cum = 0;
    for (let i = 0; i < s.n; i++) {
      cum += s.p[i]!;
      if (cum >= topP) return i + 1;
    }
    return Infinity; // not enough mass above the threshold yet: lower it
  });
}

/** Drops tokens whose probability is below minP × the top probability. */
export function applyMinP(c: Candidates, minP: number): void {
  if (minP <= 0) return;
  let pmax = 0;
  for (let i = 0; i < c.n; i++) if (c.p[i]! > pmax) pmax = c.p[i]!;
  let n = 0;
  for (let i = 0; i < c.n; i++)
    if (c.p[i]! >= minP * pmax) {
      c.ids[n] = c.ids[i]!;
      c.p[n] = c.p[i]!;
      n++;
    }
  c.n = n;
}

/** xoshiro128** — small, fast, reproducible across platforms. */
export function makeRng(seed: number): () => number {
  let s = seed >>> 0;
  const split = () => {
    s = (s + 0x9e3779b9) >>> 0;
    let z = s;
    z = Math.imul(z ^ (z >>> 16), 0x85ebca6b);
    z = Math.imul(z ^ (z >>> 13), 0xc2b2ae35);
    return (z ^ (z >>> 16)) >>> 0;
  };
  let a = split(),
    b = split(),
    c = split(),
    d = split();
  return () => {
    const r = Math.imul((Math.imul(b, 5) << 7) | (Math.imul(b, 5) >>> 25), 9) >>> 0;
    const t = (b << 9) >>> 0;
    c ^= a;
    d ^= b;
    b ^= c;
    a ^= d;
    c ^= t;
    d = ((d << 11) | (d >>> 21)) >>> 0;
    return r / 4294967296;
  };
}

/** Draws one candidate in proportion to its probability. */
export function draw(c: Candidates, rand: () => number): number {
  let total = 0;
  for (let i = 0; i < c.n; i++) total += c.p[i]!;
  let u = rand() * total;
  for (let i = 0; i < c.n; i++) {
    u -= c.p[i]!;
    if (u < 0) return c.ids[i]!;
  }
  return c.ids[c.n - 1]!;
}

export function makeSampler(o: SamplerOptions = {}): Sampler {
  const temperature = o.temperature ?? 1;
  if (!(temperature >= 0) || !Number.isFinite(temperature)) throw new UsageError(`temperature must be >= 0, got ${o.temperature}`);
  // top_p 0 keeps the single most probable token (as llama.cpp does, and as OpenAI's range 0..1 allows).
  if (o.topP !== undefined && !(o.topP >= 0 && o.topP <= 1)) throw new UsageError(`top_p must be in [0, 1], got ${o.topP}`);
  if (o.minP !== undefined && !(o.minP >= 0 && o.minP <= 1)) throw new UsageError(`min_p must be in [0, 1], got ${o.minP}`);
  if (o.topK !== undefined && !(Number.isInteger(o.topK) && o.topK >= 0))
    throw new UsageError(`top_k must be a non-negative integer, got ${o.topK}`);
  if (o.repetitionPenalty !== undefined && !(o.repetitionPenalty > 0))
    throw new UsageError(`repetition penalty must be > 0, got ${o.repetitionPenalty}`);
  const rand = makeRng(o.seed ?? Math.floor(Math.random() * 2 ** 32));
  return {
    sample(logits, history) {
      let l = logits;
      if ((o.repetitionPenalty ?? 1) !== 1 || o.presencePenalty || o.frequencyPenalty) {
        l = logits.slice();
        applyPenalties(l, history, o);
      }
      if (temperature < 1e-6) return argmax(l);
      const c = softmaxCandidates(l, temperature);
      applyTopK(c, o.topK ?? 0);
      applyTopP(c, o.topP ?? 1);
      applyMinP(c, o.minP ?? 0);
      return draw(c, rand);
    },
  };
}
