/**
 * Token-level constraint for JSON output: for the automaton state after the text generated so far, which tokens of
 * the vocabulary may come next. Each token's decoded string is run through the automaton; the vocabulary is sorted
 * once so that tokens sharing a prefix share its work (a dead prefix skips every token that starts with it), and
 * masks are cached per automaton-state signature (inside a free string the state repeats, so the mask is computed
 * once). Special tokens (text null) are never allowed, except the end tokens once the JSON value is complete.
 */
import type { TokenConstraint } from './scheduler.ts';
import { advance, canEnd, compileSchema, inFreeString, initialState, isPlainStringText, mustEnd, signature, ANY_OBJECT, type JsonState, type Schema } from './json-schema.ts';

/** The decoded text of each token id: null for special/control tokens. Partial UTF-8 bytes decode to U+FFFD. */
export interface TokenVocabulary {
  readonly size: number;
  text(id: number): string | null;
}

interface SortedVocab {
  /** Token ids sorted by text; texts[i] is the text of ids[i]; lcp[i] = common prefix length with texts[i-1]. */
  ids: Int32Array;
  texts: string[];
  lcp: Int32Array;
}

interface PreparedVocab {
  all: SortedVocab;
  /** Tokens a free-form string takes as they are (most of a 200k vocabulary), and the rest, sorted. */
  plain: Int32Array;
  special: SortedVocab;
}

const sortedCache = new WeakMap<TokenVocabulary, PreparedVocab>();

function sortVocab(v: TokenVocabulary): PreparedVocab {
  let p = sortedCache.get(v);
  if (p) return p;
  const entries: { id: number; t: string }[] = [];
  for (let id = 0; id < v.size; id++) {
    const t = v.text(id);
    if (t) entries.push({ id, t });
  }
  p = {
    all: sortEntries(entries),
    plain: Int32Array.from(entries.filter((e) => isPlainStringText(e.t)).map((e) => e.id)),
    special: sortEntries(entries.filter((e) => !isPlainStringText(e.t))),
  };
  sortedCache.set(v, p);
  return p;
}

function sortEntries(entries: { id: number; t: string }[]): SortedVocab {
  entries.sort((a, b) => (a.t < b.t ? -1 : a.t > b.t ? 1 : a.id - b.id));
  const ids = new Int32Array(entries.length);
  const texts: string[] = new Array(entries.length);
  const lcp = new Int32Array(entries.length);
  for (let i = 0; i < entries.length; i++) {
    ids[i] = entries[i]!.id;
    texts[i] = entries[i]!.t;
    if (i > 0) {
      const a = texts[i - 1]!;
      const b = texts[i]!;
      let k = 0;
      while (k < a.length && k < b.length && a[k] === b[k]) k++;
      lcp[i] = k;
    }
  }
  return { ids, texts, lcp };
}

/** Ids of the tokens whose whole text the automaton accepts from `state` (end tokens not included). */
export function allowedTokens(vocab: TokenVocabulary, state: JsonState): Int32Array {
  if (mustEnd(state)) return new Int32Array(0);
  const prepared = sortVocab(vocab);
  // Inside a free-form string the plain tokens are all allowed without running them; only the others are walked.
  if (inFreeString(state)) {
    const rest = walk(prepared.special, state);
    const out = new Int32Array(prepared.plain.length + rest.length);
    out.set(prepared.plain);
    out.set(rest, prepared.plain.length);
    return out;
  }
  return Int32Array.from(walk(prepared.all, state));
}

/** The tokens of `sv` whose whole text the automaton accepts from `state`, sharing work along common prefixes. */
function walk(sv: SortedVocab, state: JsonState): number[] {
  const { ids, texts, lcp } = sv;
  const out: number[] = [];
  const depth: JsonState[] = [state];
  let deadAt = Infinity; // prefix length at which the previous token's path died
  for (let i = 0; i < ids.length; i++) {
    const t = texts[i]!;
    const l = lcp[i]!;
    if (l >= deadAt) continue; // shares a prefix already known to be rejected
    deadAt = Infinity;
    let alive = true;
    for (let d = l; d < t.length; d++) {
      const next = advance(depth[d]!, t[d]!);
      depth[d + 1] = next;
      if (next.length === 0) {
        deadAt = d + 1;
        alive = false;
        break;
      }
    }
    if (alive) out.push(ids[i]!);
  }
  return out;
}

/** Masks shared by every request with the same vocabulary and schema, keyed by state signature (LRU). */
class MaskCache {
  private readonly map = new Map<string, Int32Array>();
  constructor(private readonly cap: number) {}
  get(k: string): Int32Array | undefined {
    const v = this.map.get(k);
    if (v) {
      this.map.delete(k);
      this.map.set(k, v);
    }
    return v;
  }
  set(k: string, v: Int32Array): void {
    this.map.set(k, v);
    if (this.map.size > this.cap) this.map.delete(this.map.keys().next().value!);
  }
}
const caches = new WeakMap<TokenVocabulary, Map<string, { schema: Schema; masks: MaskCache }>>();

/** A per-schema factory of constraints (compile once per request, build one constraint per choice). */
export type JsonConstraintFactory = () => TokenConstraint;

/**
 * Builds the constraint factory for `schema` (parsed JSON Schema; undefined = any JSON object, the json_object mode).
 * Throws UsageError when the schema uses what the automaton cannot honour.
 */
export function jsonConstraint(vocab: TokenVocabulary, endTokens: readonly number[], schema?: unknown): JsonConstraintFactory {
  const key = schema === undefined ? '' : JSON.stringify(schema);
  let perVocab = caches.get(vocab);
  if (!perVocab) caches.set(vocab, (perVocab = new Map()));
  let entry = perVocab.get(key);
  if (!entry) {
    entry = { schema: schema === undefined ? ANY_OBJECT : compileSchema(schema), masks: new MaskCache(512) };
    perVocab.set(key, entry);
    if (perVocab.size > 64) perVocab.delete(perVocab.keys().next().value!);
  }
  const { schema: compiled, masks } = entry;
  return () => {
    let state = initialState(compiled);
    return {
      mask(logits: Float32Array) {
        const sig = signature(state);
        let allowed = masks.get(sig);
        if (!allowed) masks.set(sig, (allowed = allowedTokens(vocab, state)));
        const keep = new Float32Array(allowed.length);
        for (let i = 0; i < allowed.length; i++) keep[i] = logits[allowed[i]!]!;
        const ends = canEnd(state) ? endTokens.map((t) => logits[t]!) : [];
        logits.fill(-Infinity);
        for (let i = 0; i < allowed.length; i++) logits[allowed[i]!] = keep[i]!;
        if (ends.length) endTokens.forEach((t, i) => (logits[t] = Number.isNaN(ends[i]!) ? 0 : ends[i]!));
      },
      accept(token: number) {
        const t = vocab.text(token);
        if (t !== null) state = advance(state, t);
      },
      get done() {
        return mustEnd(state);
      },
    };
  };
}
