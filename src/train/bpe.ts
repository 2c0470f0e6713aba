/**
 * A small byte-level BPE trainer and encoder for data preparation, writing a standard Hugging Face tokenizer.json
 * (ByteLevel + merges, Llama 4's pre-tokenizer regex, Llama 4's chat special tokens appended at the end of the
 * vocab). The byte table, the pre-tokenizer and the special-token names come from src/tokenizer; the project's
 * tokenizer loader reads the result, and a test checks that it and this encoder agree.
 */
import {
  hasWordInitialSplit,
  LLAMA4_PATTERN_RUST,
  pretokenize as llama4Pretokenize,
  splitWordInitials,
  WORD_INITIAL_PRE_TOKENIZER,
} from '../tokenizer/pretokenize.ts';
import { bytesToUnicode as tableBytesToUnicode } from '../tokenizer/byte-unicode.ts';
import { llama4SpecialTokens } from '../tokenizer/special-tokens.ts';

/** Meta's o200k pattern as written in tokenizer.json (from src/tokenizer, which implements it). */
export const LLAMA4_PATTERN = LLAMA4_PATTERN_RUST;

/** Llama 4's pre-tokenizer (src/tokenizer's implementation). */
export const pretokenize = llama4Pretokenize;

/** Pre-tokens of `text`: Meta's pattern, then (`wordInitials`) each split at its word-initial letters. */
function preTokens(text: string, wordInitials: boolean): string[] {
  const words = pretokenize(text);
  return wordInitials ? words.flatMap(splitWordInitials) : words;
}

/** GPT-2 byte ↔ printable-unicode map used by HF ByteLevel: entry b spells byte b (src/tokenizer's table). */
export function bytesToUnicode(): string[] {
  return Array.from({ length: 256 }, (_, b) => tableBytesToUnicode(Uint8Array.of(b)));
}

/**
 * The special tokens a small model gets, appended after its BPE vocab: Llama 4's named chat and image tokens (in
 * Meta's order, from src/tokenizer; the reasoning ones left out) and 13 reserved post-training tokens — 32 ids.
 */
export const SPECIAL_TOKENS = [
  ...llama4SpecialTokens().filter((t) => !t.includes('reserved') && !t.startsWith('<|reasoning')),
  ...Array.from({ length: 13 }, (_, i) => `<|text_post_train_reserved_special_token_${i}|>`),
];

export interface BpeModel {
  /** Token id → byte-level string (GPT-2 unicode form). Ids 0..255 are the single bytes. */
  vocab: string[];
  /** Merges in rank order as pairs of byte-level strings. */
  merges: [string, string][];
  /** Special token text → id (after the BPE vocab). */
  specials: Map<string, number>;
  /** Pre-tokens are also split at word-initial letters (src/tokenizer's splitWordInitials). */
  splitWordInitials?: boolean;
}

/**
 * Trains `nMerges` merges on the pre-tokens of `text` (word counts, then the most frequent adjacent pair each round,
 * ties broken by the pair's first appearance order for determinism).
 */
export function trainBpe(text: string, nMerges: number, opts: { wordPieces?: boolean; splitWordInitials?: boolean } = {}): BpeModel {
  const b2u = bytesToUnicode();
  const enc = new TextEncoder();
  const counts = new Map<string, number>();
  for (const w of preTokens(text, opts.splitWordInitials ?? false)) counts.set(w, (counts.get(w) ?? 0) + 1);
  const vocab = b2u.slice();
  const ids = new Map<string, number>(vocab.map((s, i) => [s, i]));
  const words: { syms: number[]; n: number }[] = [];
  for (const [w, n] of counts) words.push({ syms: [...enc.encode(w)], n });
  const merges: [string, string][] = [];
  // wordPieces: merge only letters with letters and punctuation/space with punctuation/space, never digits, so a
  // word splits into the same pieces whatever precedes it (" Paris" and "\"Paris" share "Paris"'s tokens: copying
  // a word is copying tokens) and every number is its digits.
  const cls = (id: number): number =>
    /^[A-Za-z]+$/.test(vocab[id]!) ? 1 : /[0-9]/.test(vocab[id]!) ? 3 : /[A-Za-z]/.test(vocab[id]!) ? 4 : 2;
  const ok = (a: number, b: number): boolean => !opts.wordPieces || (cls(a) === cls(b) && cls(a) <= 2);
  for (let m = 0; m < nMerges; m++) {
    const pc = new Map<number, number>();
    for (const { syms, n } of words)
      for (let i = 0; i + 1 < syms.length; i++) {
        if (!ok(syms[i]!, syms[i + 1]!)) continue;
        const k = syms[i]! * 65536 + syms[i + 1]!;
        pc.set(k, (pc.get(k) ?? 0) + n);
      }
    let best = -1,
      bestN = 0;
    for (const [k, n] of pc)
      if (n > bestN || (n === bestN && k < best)) {
        best = k;
        bestN = n;
      }
    if (best < 0 || bestN < 2) break;
    const a = Math.floor(best / 65536),
      b = best % 65536;
    const s = vocab[a]! + vocab[b]!;
    let id = ids.get(s);
    if (id === undefined) {
      id = vocab.length;
      vocab.push(s);
      ids.set(s, id);
    }
    merges.push([vocab[a]!, vocab[b]!]);
    for (const w of words) {
      const x = w.syms;
      let j = 0;
      for (let i = 0; i < x.length; i++) {
        if (i + 1 < x.length && x[i] === a && x[i + 1] === b) {
          x[j++] = id;
          i++;
        } else x[j++] = x[i]!;
      }
      x.length = j;
    }
  }
  const specials = new Map<string, number>();
  for (const t of SPECIAL_TOKENS) specials.set(t, vocab.length + specials.size);
  return { vocab, merges, specials, ...(opts.splitWordInitials ? { splitWordInitials: true } : {}) };
}

/** Encodes text (special tokens recognised when `allowSpecial`) with merges applied by rank. */
export class BpeEncoder {
  private readonly ids: Map<string, number>;
  private readonly ranks: Map<string, number>;
  private readonly b2u = bytesToUnicode();
  private readonly u2b = new Map<string, number>();
  private readonly cache = new Map<string, number[]>();
  private readonly specialRe: RegExp;
  readonly vocabSize: number;
  constructor(readonly model: BpeModel) {
    this.ids = new Map(model.vocab.map((s, i) => [s, i]));
    this.ranks = new Map(model.merges.map(([a, b], i) => [`${a} ${b}`, i]));
    this.b2u.forEach((u, b) => this.u2b.set(u, b));
    this.vocabSize = model.vocab.length + model.specials.size;
    const esc = [...model.specials.keys()].map((s) => s.replace(/[|\\^$*+?.()[\]{}]/g, '\\$&'));
    this.specialRe = new RegExp(`(${esc.join('|')})`);
  }

  special(name: string): number {
    const id = this.model.specials.get(name);
    if (id === undefined) throw new Error(`unknown special token ${name}`);
    return id;
  }

  private word(w: string): number[] {
    const hit = this.cache.get(w);
    if (hit) return hit;
    let parts = [...new TextEncoder().encode(w)].map((b) => this.b2u[b]!);
    for (;;) {
      let best = -1,
        bi = -1;
      for (let i = 0; i + 1 < parts.length; i++) {
        const r = this.ranks.get(`${parts[i]} ${parts[i + 1]}`);
        if (r !== undefined && (best < 0 || r < best)) {
          best = r;
          bi = i;
        }
      }
      if (bi < 0) break;
      parts = [...parts.slice(0, bi), parts[bi]! + parts[bi + 1]!, ...parts.slice(bi + 2)];
    }
    const out = parts.map((p) => this.ids.get(p)!);
    if (this.cache.size < 200_000) this.cache.set(w, out);
    return out;
  }

  encode(text: string, allowSpecial = true): number[] {
    const out: number[] = [];
    const pieces = allowSpecial ? text.split(this.specialRe) : [text];
    for (const piece of pieces) {
      if (!piece) continue;
      const sp = allowSpecial ? this.model.specials.get(piece) : undefined;
      if (sp !== undefined) {
        out.push(sp);
        continue;
      }
      for (const w of preTokens(piece, this.model.splitWordInitials ?? false)) out.push(...this.word(w));
    }
    return out;
  }

  decode(ids: readonly number[]): string {
    const bytes: number[] = [];
    let s = '';
    const flush = (): void => {
      s += new TextDecoder().decode(new Uint8Array(bytes));
      bytes.length = 0;
    };
    for (const id of ids) {
      if (id >= this.model.vocab.length) {
        flush();
        for (const [k, v] of this.model.specials) if (v === id) s += k;
        continue;
      }
      for (const ch of this.model.vocab[id]!) bytes.push(this.u2b.get(ch)!);
    }
    flush();
    return s;
  }
}

/** The model as an HF tokenizer.json object. */
export function toTokenizerJson(model: BpeModel): Record<string, unknown> {
  const vocab: Record<string, number> = {};
  model.vocab.forEach((s, i) => (vocab[s] = i));
  const bos = model.specials.get('<|begin_of_text|>')!;
  return {
    version: '1.0',
    truncation: null,
    padding: null,
    added_tokens: [...model.specials].map(([content, id]) => ({
      id,
      content,
      single_word: false,
      lstrip: false,
      rstrip: false,
      normalized: false,
      special: true,
    })),
    normalizer: null,
    pre_tokenizer: {
      type: 'Sequence',
      pretokenizers: [
        { type: 'Split', pattern: { Regex: LLAMA4_PATTERN }, behavior: 'Isolated', invert: false },
        ...(model.splitWordInitials ? [WORD_INITIAL_PRE_TOKENIZER] : []),
        { type: 'ByteLevel', add_prefix_space: false, trim_offsets: true, use_regex: false },
      ],
    },
    post_processor: {
      type: 'TemplateProcessing',
      single: [{ SpecialToken: { id: '<|begin_of_text|>', type_id: 0 } }, { Sequence: { id: 'A', type_id: 0 } }],
      pair: [
        { SpecialToken: { id: '<|begin_of_text|>', type_id: 0 } },
        { Sequence: { id: 'A', type_id: 0 } },
        { SpecialToken: { id: '<|begin_of_text|>', type_id: 1 } },
        { Sequence: { id: 'B', type_id: 1 } },
      ],
      special_tokens: { '<|begin_of_text|>': { id: '<|begin_of_text|>', ids: [bos], tokens: ['<|begin_of_text|>'] } },
    },
    decoder: { type: 'ByteLevel', add_prefix_space: true, trim_offsets: true, use_regex: true },
    model: {
      type: 'BPE',
      dropout: null,
      unk_token: null,
      continuing_subword_prefix: null,
      end_of_word_suffix: null,
      fuse_unk: false,
      byte_fallback: false,
      ignore_merges: false,
      vocab,
      merges: model.merges,
    },
  };
}

/** Reads back a tokenizer.json written by toTokenizerJson (for resuming the pipeline). */
export function fromTokenizerJson(j: Record<string, unknown>): BpeModel {
  const m = j.model as { vocab: Record<string, number>; merges: [string, string][] };
  const vocab: string[] = [];
  for (const [s, i] of Object.entries(m.vocab)) vocab[i] = s;
  const specials = new Map<string, number>();
  for (const t of j.added_tokens as { id: number; content: string }[]) specials.set(t.content, t.id);
  return {
    vocab,
    merges: m.merges.map((x) => (typeof x === 'string' ? ((x as string).split(' ') as [string, string]) : x)),
    specials,
    ...(hasWordInitialSplit(j.pre_tokenizer) ? { splitWordInitials: true } : {}),
  };
}
