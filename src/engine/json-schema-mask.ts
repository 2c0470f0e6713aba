/**
 * Token-level constraint for JSON output: for the automaton state after the text generated so far, which tokens of
 * the vocabulary may come next. Each token's decoded string is run through the automaton; the vocabulary is sorted
 * once so that tokens sharing a prefix share its work (a dead prefix skips every token that starts with it), and
 * masks are cached per automaton-state signature (inside a free string the state repeats, so the mask is computed
 * once). Special tokens (text null) are never allowed, except the end tokens once the JSON value is complete.
 */
import type { TokenConstraint } from './scheduler.ts';
import { SchemaCache } from './json-schema-cache.ts';
import { yieldToEventLoop } from './common.ts';
import { MAX_MASK_MS, MAX_MASK_WORK } from './json-schema-limits.ts';
import { UsageError } from '../util/index.ts';
import {
  advance,
  canEnd,
  compileSchema,
  freeStringRoom,
  initialState,
  isPlainStringText,
  mustEnd,
  signature,
  ANY_OBJECT,
  type JsonState,
} from './json-schema.ts';

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
  /** Tokens a free-form string takes as they are (most of a 200k vocabulary), shortest first; plainLen[i] = length of plain[i]. */
  plain: Int32Array;
  plainLen: Int32Array;
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
  const plain = entries.filter((e) => isPlainStringText(e.t)).sort((a, b) => a.t.length - b.t.length || a.id - b.id);
  p = {
    all: sortEntries(entries),
    plain: Int32Array.from(plain, (e) => e.id),
    plainLen: Int32Array.from(plain, (e) => e.t.length),
    special: sortEntries(entries.filter((e) => !isPlainStringText(e.t))),
  };
  sortedCache.set(v, p);
  return p;
}

/**
 * Sorts `vocab` for masks now (about 0.4 s for Llama 4's 200k tokens on the 2-core EPYC) instead of in the first JSON
 * request: the server calls it before it listens, so no request waits for it on the event loop.
 */
export function prepareMaskVocabulary(vocab: TokenVocabulary): void {
  sortVocab(vocab);
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

/**
 * Ids of the tokens whose whole text the automaton accepts from `state` (end tokens not included), computed in
 * slices: the generator yields after about SLICE_MS of work, so an async caller (allowedTokensAsync) lets the event
 * loop run between slices; its return value is the mask.
 */
function* allowedSlices(vocab: TokenVocabulary, state: JsonState, sliceMs = SLICE_MS): Generator<void, Int32Array, void> {
  if (mustEnd(state)) return new Int32Array(0);
  const prepared = sortVocab(vocab);
  const budget = { spent: 0, sliceMs };
  // Inside free-form strings the plain tokens that fit (all of them without maxLength) are allowed without running
  // them (a string with maxLength once walked the whole vocabulary per token: 1.6 s with Llama 4's); only the others
  // are walked.
  const room = freeStringRoom(state);
  if (room >= 0) {
    const { plain, plainLen } = prepared;
    let n = plain.length;
    if (room < Infinity) {
      let lo = 0;
      while (lo < n) {
        const mid = (lo + n) >> 1;
        if (plainLen[mid]! <= room) lo = mid + 1;
        else n = mid;
      }
    }
    const rest: number[] = [];
    yield* walk(prepared.special, state, rest, budget);
    const out = new Int32Array(n + rest.length);
    out.set(plain.subarray(0, n));
    out.set(rest, n);
    return out;
  }
  const out: number[] = [];
  yield* walk(prepared.all, state, out, budget);
  return Int32Array.from(out);
}

/** The mask of `state`, computed at once (see allowedSlices). */
export function allowedTokens(vocab: TokenVocabulary, state: JsonState): Int32Array {
  const g = allowedSlices(vocab, state);
  for (;;) {
    const r = g.next();
    if (r.done) return r.value;
  }
}

/**
 * The mask of `state`, computed in slices of about SLICE_MS with the event loop running between them (HTTP, other
 * streams, a model worker's replies): the scheduler starts it beside the step's forward pass (TokenConstraint.prepare).
 */
export async function allowedTokensAsync(vocab: TokenVocabulary, state: JsonState, sliceMs = SLICE_MS): Promise<Int32Array> {
  const g = allowedSlices(vocab, state, sliceMs);
  for (;;) {
    const r = g.next();
    if (r.done) return r.value;
    await yieldToEventLoop();
  }
}

/** Work between two yields of a sliced mask computation. */
const SLICE_MS = 4;

/**
 * Pushes onto `out` the tokens of `sv` whose whole text the automaton accepts from `state`, sharing work along common
 * prefixes; yields every budget.sliceMs (checked every 256 steps). The MAX_MASK_MS bound counts working time only (budget.spent), not the pauses.
 */
function* walk(
  sv: SortedVocab,
  state: JsonState,
  out: number[],
  budget: { spent: number; readonly sliceMs: number },
): Generator<void, void, void> {
  const { ids, texts, lcp } = sv;
  const depth: JsonState[] = [state];
  let deadAt = Infinity; // prefix length at which the previous token's path died
  let work = 0; // stack steps so far: a state with many live readings costs that many steps per character
  let steps = 0;
  let sliceStart = performance.now();
  for (let i = 0; i < ids.length; i++) {
    const t = texts[i]!;
    const l = lcp[i]!;
    if (l >= deadAt) continue; // shares a prefix already known to be rejected
    deadAt = Infinity;
    let alive = true;
    for (let d = l; d < t.length; d++) {
      work += depth[d]!.length;
      if ((++steps & 255) === 0 || work > MAX_MASK_WORK) {
        const now = performance.now();
        if (work > MAX_MASK_WORK || budget.spent + (now - sliceStart) > MAX_MASK_MS) {
          throw new UsageError(
            `the JSON schema is too expensive to follow here (one token's mask passed ${work > MAX_MASK_WORK ? `${MAX_MASK_WORK} automaton steps` : `${MAX_MASK_MS} ms`})`,
          );
        }
        if (now - sliceStart >= budget.sliceMs) {
          budget.spent += now - sliceStart;
          yield;
          sliceStart = performance.now();
        }
      }
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
}

const caches = new WeakMap<TokenVocabulary, SchemaCache>();

/** Bytes the compiled schemas and masks of `vocab` hold (tests: the cache stays in its budget). */
export function schemaCacheBytes(vocab: TokenVocabulary): number {
  return caches.get(vocab)?.bytes ?? 0;
}

/** A per-schema factory of constraints (compile once per request, build one constraint per choice). */
export type JsonConstraintFactory = () => TokenConstraint;

/**
 * Builds the constraint factory for `schema` (parsed JSON Schema; undefined = any JSON object, the json_object mode).
 * Throws UsageError when the schema uses what the automaton cannot honour.
 */
export function jsonConstraint(vocab: TokenVocabulary, endTokens: readonly number[], schema?: unknown): JsonConstraintFactory {
  const key = schema === undefined ? '' : JSON.stringify(schema);
  let perVocab = caches.get(vocab);
  if (!perVocab) caches.set(vocab, (perVocab = new SchemaCache()));
  const compiled = perVocab.schema(key, () => (schema === undefined ? ANY_OBJECT : compileSchema(schema)));
  const masks = perVocab.masks(key);
  return () => {
    let state = initialState(compiled);
    // A failure of prepare()'s computation, rethrown by mask() for the same state.
    let failed: { sig: string; error: unknown } | null = null;
    return {
      prepare() {
        const sig = signature(state);
        if (masks.get(sig)) return;
        return allowedTokensAsync(vocab, state).then(
          (allowed) => masks.set(sig, allowed),
          (error: unknown) => void (failed = { sig, error }),
        );
      },
      mask(logits: Float32Array) {
        const sig = signature(state);
        if (failed?.sig === sig) throw failed.error;
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
