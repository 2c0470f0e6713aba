/**
 * Verdicts without free generation: Llama Guard answers `safe`, or `unsafe` then a line of category codes, so the
 * answer's probabilities are read off teacher-forced forward passes.
 *
 * - P(safe), P(unsafe): probability of each label's tokens right after the prompt (with Meta's tokenizer both are
 *   single tokens, "safe" 60411 and "unsafe" 72110, so this is the first-token distribution); normalised over the
 *   two labels: pUnsafe = P(unsafe) / (P(safe) + P(unsafe)). The verdict is unsafe when pUnsafe > threshold (0.5
 *   = greedy choice between the labels).
 * - Category distribution: q_c = P(the category line starts with code c | prompt, "unsafe\n"), teacher-forced over
 *   the tokens of "unsafe\n" + code (Meta's tokenizer: "S" then one number token "1"…"14"). Where one code's tokens
 *   are a prefix of another's (S1 and S10 in byte-level vocabularies), the longer codes' mass is subtracted.
 * - score_c = pUnsafe · q_c / Σ q over the checked categories: the probability that the model answers unsafe with c
 *   as its (first) category. Unchecked categories get no score.
 * - The category line itself: greedy decoding after "unsafe\n", restricted to comma-separated codes of the checked
 *   categories (the ones the prompt lists) and ended by a newline or a stop token (at most 24 tokens); only when the
 *   verdict is unsafe.
 */
import { turnEndTokens, type AsyncCausalLM, type SequenceState } from '../engine/index.ts';
import type { Tokenizer } from '../tokenizer/index.ts';
import type { GuardCategory } from './categories.ts';

export interface GuardVerdict {
  readonly safe: boolean;
  /** Codes of the violated categories from the greedy category line (checked categories only); [] when safe. */
  readonly categories: string[];
  /** score per checked category code (see the header). */
  readonly scores: Record<string, number>;
  /** pUnsafe: P(unsafe) / (P(safe) + P(unsafe)). */
  readonly unsafeProbability: number;
}

export interface ScoreOptions {
  categories: readonly GuardCategory[];
  threshold?: number;
  patchEmbeddings?: Float32Array;
}

const MAX_LINE_TOKENS = 24;
/** Whether `line` can still become a comma-separated list of the checked codes. */
function partialLine(line: string, codes: readonly string[]): boolean {
  const items = line.split(',');
  const last = items.pop()!;
  return items.every((x) => codes.includes(x)) && codes.some((c) => c.startsWith(last));
}

/** Whether `line` is a complete comma-separated list of the checked codes. */
function fullLine(line: string, codes: readonly string[]): boolean {
  return line.split(',').every((x) => codes.includes(x));
}

function logSoftmaxAt(row: Float32Array, id: number): number {
  let m = -Infinity;
  for (let i = 0; i < row.length; i++) if (row[i]! > m) m = row[i]!;
  let z = 0;
  for (let i = 0; i < row.length; i++) z += Math.exp(row[i]! - m);
  return row[id]! - m - Math.log(z);
}

function rowOf(all: Float32Array, r: number, V: number): Float32Array {
  return all.subarray(r * V, (r + 1) * V);
}

function commonPrefix(seqs: readonly number[][]): number {
  let n = 0;
  while (seqs.every((s) => n < s.length && s[n] === seqs[0]![n])) n++;
  return n;
}

function startsWith(a: readonly number[], prefix: readonly number[]): boolean {
  return prefix.length <= a.length && prefix.every((t, i) => a[i] === t);
}

/** Reads guard verdicts from a causal LM and its tokenizer (see the header for the arithmetic). */
export class GuardScorer {
  private lineTokens: { id: number; text: string }[] | null = null;
  /**
   * Prompts already run (most recent last): every guard prompt starts with the same task and category text, so the
   * next prompt reuses the longest common prefix (one clone + truncate) instead of recomputing it. Two entries: the
   * user-turn and agent-turn prompts differ from their first line ('User' / 'Agent').
   */
  private readonly prefixes: { ids: readonly number[]; seq: SequenceState }[] = [];
  private readonly stopIds: Set<number>;

  constructor(
    private readonly model: AsyncCausalLM,
    private readonly tokenizer: Tokenizer,
  ) {
    this.stopIds = new Set(turnEndTokens(tokenizer, model));
  }

  private enc(s: string): number[] {
    return this.tokenizer.encode(s);
  }

  /** Tokens that can appear in a category line (made only of 'S', digits and commas), found once per guard. */
  private categoryLineTokens(): { id: number; text: string }[] {
    if (this.lineTokens) return this.lineTokens;
    const out: { id: number; text: string }[] = [];
    const n = Math.min(this.tokenizer.vocabSize, this.model.info.vocabSize);
    for (let id = 0; id < n; id++) {
      if (this.tokenizer.specialIds.has(id)) continue;
      const t = this.tokenizer.idToToken(id);
      if (t === undefined || !/^[S0-9,]+$/.test(t)) continue; // byte-level forms of S, digits and ',' are themselves
      out.push({ id, text: t });
    }
    return (this.lineTokens = out);
  }

  /** A sequence holding the longest cached prefix of `ids` (at most ids.length - 1 tokens), and that length. */
  private reuse(ids: readonly number[]): { seq: SequenceState; from: number } {
    let best: { seq: SequenceState; ids: readonly number[] } | null = null,
      bestLen = 0;
    for (const p of this.prefixes) {
      let k = 0;
      while (k < p.ids.length && k < ids.length - 1 && p.ids[k] === ids[k]) k++;
      if (k > bestLen) {
        best = p;
        bestLen = k;
      }
    }
    if (best) {
      const seq = best.seq.clone();
      if (seq.truncate(bestLen)) return { seq, from: bestLen };
      seq.free?.();
    }
    return { seq: this.model.newSequence(), from: 0 };
  }

  private remember(ids: readonly number[], seq: SequenceState): void {
    this.prefixes.push({ ids: [...ids], seq });
    if (this.prefixes.length > 2) this.prefixes.shift()!.seq.free?.();
  }

  async score(promptIds: readonly number[], o: ScoreOptions): Promise<GuardVerdict> {
    const V = this.model.info.vocabSize;
    const cats = o.categories;
    const { seq: base, from } = o.patchEmbeddings ? { seq: this.model.newSequence(), from: 0 } : this.reuse(promptIds);
    const seqs: SequenceState[] = [base];
    try {
      const [l0] = await this.model.forward([
        { seq: base, tokens: promptIds.slice(from), logits: 'last', ...(o.patchEmbeddings ? { patchEmbeddings: o.patchEmbeddings } : {}) },
      ]);
      const first = l0!;
      if (!o.patchEmbeddings) this.remember(promptIds, base.clone());
      const safeIds = this.enc('safe');
      const unsafeIds = this.enc('unsafe');
      const newline = this.enc('unsafe\n');
      const catIds = cats.map((c) => this.enc('unsafe\n' + c.code));
      // A: the tokens every category answer shares ("unsafe", "\n", "S" with Meta's tokenizer), all logits kept.
      const shared = catIds[0]!.slice(0, commonPrefix(catIds));
      if (!startsWith(shared, unsafeIds) || !startsWith(shared, newline))
        throw new Error('guard: tokenizer splits "unsafe\\n" unexpectedly');
      const a = base.clone();
      seqs.push(a);
      const items = [{ seq: a, tokens: shared, logits: 'all' as const }];
      let b: SequenceState | null = null;
      if (safeIds.length > 1) {
        b = base.clone();
        seqs.push(b);
        items.push({ seq: b, tokens: safeIds.slice(0, -1), logits: 'all' as const });
      }
      const outs = await this.model.forward(items);
      const aRows = outs[0]!;
      // Teacher-forced log-probability of `ids` given the first row and the rows after each of its tokens.
      const forced = (ids: readonly number[], firstRow: Float32Array, rows: Float32Array): number =>
        ids.reduce((s, t, i) => s + logSoftmaxAt(i === 0 ? firstRow : rowOf(rows, i - 1, V), t), 0);
      const lpUnsafe = forced(unsafeIds, first, aRows);
      const lpSafe = b ? forced(safeIds, first, outs[1]!) : logSoftmaxAt(first, safeIds[0]!);
      const mx = Math.max(lpSafe, lpUnsafe);
      const pUnsafe = Math.exp(lpUnsafe - mx) / (Math.exp(lpSafe - mx) + Math.exp(lpUnsafe - mx));

      // Category probabilities after the shared prefix.
      const afterShared = rowOf(aRows, shared.length - 1, V);
      const rests = catIds.map((ids) => ids.slice(shared.length));
      const lp = new Array<number>(cats.length).fill(0);
      const longer = rests.map((r) => r.length > 1);
      if (longer.some(Boolean)) {
        const clones = rests.map((r) => (r.length > 1 ? a.clone() : null));
        clones.forEach((c) => c && seqs.push(c));
        const idx = rests.map((_, i) => i).filter((i) => clones[i]);
        const res = await this.model.forward(idx.map((i) => ({ seq: clones[i]!, tokens: rests[i]!.slice(0, -1), logits: 'all' as const })));
        idx.forEach((i, k) => (lp[i] = forced(rests[i]!, afterShared, res[k]!)));
      }
      rests.forEach((r, i) => {
        if (r.length === 1) lp[i] = logSoftmaxAt(afterShared, r[0]!);
      });
      const p = lp.map((x) => Math.exp(x));
      // A code whose tokens begin another code's (S1 / S10): its string ends there only without that continuation.
      const q = p.map((pi, i) =>
        Math.max(
          0,
          pi - rests.reduce((s, r, j) => (j !== i && r.length > rests[i]!.length && startsWith(r, rests[i]!) ? s + p[j]! : s), 0),
        ),
      );
      const zq = q.reduce((s, x) => s + x, 0);
      const scores: Record<string, number> = {};
      cats.forEach((c, i) => (scores[c.code] = zq > 0 ? (pUnsafe * q[i]!) / zq : 0));

      const safe = !(pUnsafe > (o.threshold ?? 0.5));
      const categories = safe ? [] : await this.categoryLine(a, aRows, shared, newline.length, cats, seqs);
      return { safe, categories, scores, unsafeProbability: pUnsafe };
    } catch (e) {
      // A failed pass may leave the cached prefixes unusable (a model worker that died took their caches with it).
      for (const p of this.prefixes.splice(0)) p.seq.free?.();
      throw e;
    } finally {
      for (const s of seqs) s.free?.();
    }
  }

  /** Greedy decode of the category line, continuing sequence `a` (which holds the shared prefix). */
  private async categoryLine(
    a: SequenceState,
    aRows: Float32Array,
    shared: number[],
    lineStart: number,
    cats: readonly GuardCategory[],
    seqs: SequenceState[],
  ): Promise<string[]> {
    const V = this.model.info.vocabSize;
    const seq = a.clone();
    seqs.push(seq);
    let line = this.tokenizer.decode(shared.slice(lineStart));
    let row = rowOf(aRows, shared.length - 1, V);
    const cands = this.categoryLineTokens();
    const codes = cats.map((c) => c.code);
    for (let step = 0; step < MAX_LINE_TOKENS; step++) {
      let best = -1,
        bestLogit = -Infinity;
      if (fullLine(line, codes)) {
        for (const id of this.stopIds)
          if (id < V && row[id]! > bestLogit) {
            best = id;
            bestLogit = row[id]!;
          }
        const nl = this.enc('\n')[0];
        if (nl !== undefined && row[nl]! > bestLogit) {
          best = nl;
          bestLogit = row[nl]!;
        }
      }
      let stop = best >= 0;
      for (const c of cands) {
        if (row[c.id]! > bestLogit && partialLine(line + c.text, codes)) {
          best = c.id;
          bestLogit = row[c.id]!;
          stop = false;
        }
      }
      if (best < 0 || stop) break;
      line += cands.find((c) => c.id === best)!.text;
      const [next] = await this.model.forward([{ seq, tokens: [best], logits: 'last' }]);
      row = next!;
    }
    return [...new Set(line.split(',').filter((s) => codes.includes(s)))];
  }
}
