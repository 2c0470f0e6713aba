/**
 * BpeTokenizer: Llama 4's byte-level BPE behind the `Tokenizer` interface. Every loader (tiktoken ranks, HF
 * tokenizer.json, GGUF arrays) reduces its file to a `BpeVocab` and builds one of these.
 *
 * Speed: pre-tokens repeat heavily in real text, so each distinct pre-token's ids are cached (bounded); a miss
 * converts it to a binary string (one char per UTF-8 byte) and merges with Map lookups on short slices.
 */
import { ModelFileError, UsageError } from '../util/errors.ts';
import { bytePairEncode, MergeTable, NO_MERGE } from './bpe.ts';
import { bytesToUnicode, unicodeToBinary } from './byte-unicode.ts';
import { asciiPieceEnd, isAscii, llama4PretokenizeRegExp, splitWordInitials } from './pretokenize.ts';
import { LLAMA4_IDS, LLAMA4_NUM_BASE_TOKENS, llama4SpecialTokens } from './special-tokens.ts';
import type { DecodeOptions, EncodeOptions, StreamDecoder, Tokenizer } from './types.ts';

export interface BpeVocab {
  /** Ordinary (mergeable) tokens: binary string of the token's bytes → id. */
  tokens: Map<string, number>;
  /** Merges, highest priority first, as [left, right] binary strings. Absent: tiktoken ranks (priority = id). */
  merges?: [string, string][];
  /** Emit a pre-token that is itself a token without merging (tiktoken; HF `ignore_merges`). Default true. */
  ignoreMerges?: boolean;
  /** Special/control/added tokens: text → id. */
  specials: Map<string, number>;
  /** Text of the BOS / EOS tokens if the files name them (tokenizer_config.json, GGUF ids); defaults: Llama 4's. */
  bosToken?: string;
  eosTokens?: string[];
  /** Model vocab size if larger than what the tokens cover (ids past the file's tokens decode to nothing). */
  vocabSize?: number;
  /** Split each pre-token at its word-initial letters too (`splitWordInitials`; the default model's tokenizer). */
  splitWordInitials?: boolean;
  /** For error messages: the file it came from. */
  source: string;
}

const CACHE_LIMIT = 200_000;
const UTF8 = new TextEncoder();
/** ignoreBOM: a leading U+FEFF is text, not a byte-order mark to drop (TextDecoder's default drops it). */
const UTF8_DECODER = new TextDecoder('utf-8', { ignoreBOM: true });

/** UTF-8 bytes of `s` as a binary string (ASCII strings are returned as is). */
function toBinary(s: string): string {
  let ascii = true;
  for (let i = 0; i < s.length; i++)
    if (s.charCodeAt(i) >= 0x80) {
      ascii = false;
      break;
    }
  if (ascii) return s;
  const bytes = UTF8.encode(s);
  let out = '';
  for (let i = 0; i < bytes.length; i += 4096) out += String.fromCharCode(...bytes.subarray(i, i + 4096));
  return out;
}

function isPlainSpecial(text: string): boolean {
  return text.startsWith('<|') && text.endsWith('|>') && text.indexOf('|>') === text.length - 2;
}

/**
 * Finds the token whose bytes are the concatenation of two tokens' bytes without building the string: a rolling
 * hash H(s) = Σ s[i]·B^(n-1-i) (mod 2³²) combines as H(a+b) = H(a)·B^|b| + H(b), so a numeric open-addressing
 * table answers in about one cache miss where Map<string> needs a concatenation, a string hash and ~3 misses.
 */
class ConcatIndex {
  private readonly hash: Uint32Array; // per id
  private readonly len: Int32Array; // per id (0: no token)
  private readonly bin: string[]; // per id
  private readonly pow: Uint32Array; // B^k mod 2^32
  private readonly slots: Int32Array; // ids, -1 empty
  private readonly mask: number;

  constructor(tokens: Map<string, number>) {
    let maxId = 0;
    let maxLen = 0;
    for (const [bin, id] of tokens) {
      if (id > maxId) maxId = id;
      if (bin.length > maxLen) maxLen = bin.length;
    }
    this.hash = new Uint32Array(maxId + 1);
    this.len = new Int32Array(maxId + 1);
    this.bin = new Array<string>(maxId + 1);
    this.pow = new Uint32Array(2 * maxLen + 2);
    this.pow[0] = 1;
    for (let k = 1; k < this.pow.length; k++) this.pow[k] = Math.imul(this.pow[k - 1]!, 0x01000193);
    let cap = 1;
    while (cap < tokens.size * 2) cap <<= 1;
    this.slots = new Int32Array(cap).fill(-1);
    this.mask = cap - 1;
    for (const [bin, id] of tokens) {
      let h = 0;
      for (let i = 0; i < bin.length; i++) h = (Math.imul(h, 0x01000193) + bin.charCodeAt(i)) >>> 0;
      this.hash[id] = h;
      this.len[id] = bin.length;
      this.bin[id] = bin;
      let slot = this.slotOf(h, bin.length);
      while (this.slots[slot] !== -1) slot = (slot + 1) & this.mask;
      this.slots[slot] = id;
    }
  }

  private slotOf(h: number, len: number): number {
    let x = (h ^ Math.imul(len, 0x9e3779b1)) >>> 0;
    x = Math.imul(x ^ (x >>> 16), 0x85ebca6b);
    return (x ^ (x >>> 13)) & this.mask;
  }

  /** Id of the token bytes(a) + bytes(b), or -1. */
  find(a: number, b: number): number {
    const lb = this.len[b]!;
    const l = this.len[a]! + lb;
    const h = (Math.imul(this.hash[a]!, this.pow[lb]!) + this.hash[b]!) >>> 0;
    for (let slot = this.slotOf(h, l); ; slot = (slot + 1) & this.mask) {
      const id = this.slots[slot]!;
      if (id < 0) return -1;
      if (this.hash[id] === h && this.len[id] === l && this.equalsConcat(id, a, b)) return id;
    }
  }

  private equalsConcat(id: number, a: number, b: number): boolean {
    const s = this.bin[id]!;
    const x = this.bin[a]!;
    const y = this.bin[b]!;
    for (let i = 0; i < x.length; i++) if (s.charCodeAt(i) !== x.charCodeAt(i)) return false;
    for (let i = 0; i < y.length; i++) if (s.charCodeAt(x.length + i) !== y.charCodeAt(i)) return false;
    return true;
  }
}

/** The merge table of a vocabulary: from its merges list, or lazily from tiktoken ranks. */
function buildMergeTable(vocab: BpeVocab): MergeTable {
  const { tokens, source } = vocab;
  const byteId: number[] = [];
  for (let b = 0; b < 256; b++) {
    const id = tokens.get(String.fromCharCode(b));
    if (id === undefined)
      throw new ModelFileError(source, `byte-level BPE vocabulary lacks a token for byte 0x${b.toString(16).padStart(2, '0')}`);
    byteId.push(id);
  }
  let table: MergeTable;
  if (vocab.merges) {
    table = new MergeTable();
    vocab.merges.forEach(([l, r], i) => {
      const a = tokens.get(l);
      const b = tokens.get(r);
      const c = tokens.get(l + r);
      if (a === undefined || b === undefined || c === undefined) {
        throw new ModelFileError(
          source,
          `merge ${i} (${JSON.stringify(l)} + ${JSON.stringify(r)}) names a token that is not in the vocabulary`,
        );
      }
      const packed = MergeTable.pack(i, c);
      if (l.length === 1 && r.length === 1) table.addBytePair(l.charCodeAt(0), r.charCodeAt(0), packed);
      table.add(a, b, packed);
    });
  } else {
    // tiktoken: A+B may merge iff its bytes are a token, at priority = that token's rank.
    const concat = new ConcatIndex(tokens);
    table = new MergeTable((a, b) => {
      const r = concat.find(a, b);
      return r < 0 ? NO_MERGE : MergeTable.pack(r, r);
    });
    for (let x = 0; x < 256; x++) {
      for (let y = 0; y < 256; y++) {
        const r = tokens.get(String.fromCharCode(x, y));
        if (r !== undefined) table.addBytePair(x, y, MergeTable.pack(r, r));
      }
    }
  }
  byteId.forEach((id, b) => table.setByte(b, id));
  return table;
}

export class BpeTokenizer implements Tokenizer {
  readonly vocabSize: number;
  readonly bosId: number | undefined;
  readonly eosId: number | undefined;
  readonly eotId: number | undefined;
  readonly stopIds: ReadonlySet<number>;
  readonly specialTokens: ReadonlyMap<string, number>;
  readonly specialIds: ReadonlySet<number>;
  readonly source: string;

  private readonly tokens: Map<string, number>;
  private readonly merges: MergeTable;
  private readonly ignoreMerges: boolean;
  /** Whether pre-tokens are split at word-initial letters (BpeVocab.splitWordInitials). */
  readonly splitsWordInitials: boolean;
  /** Decode table: bytes of id i are bytes[offset[i] .. offset[i+1]); specials hold their UTF-8 text. */
  private readonly bytes: Uint8Array;
  private readonly offset: Int32Array;
  private readonly isSpecial: Uint8Array;
  private readonly cache = new Map<string, number | number[]>();
  private readonly re = llama4PretokenizeRegExp();
  /** Null when every special is `<|…|>` without an inner `|>` (then a cheap indexOf scan finds them). */
  private readonly specialRe: RegExp | null;

  constructor(vocab: BpeVocab) {
    this.source = vocab.source;
    this.tokens = vocab.tokens;
    this.ignoreMerges = vocab.ignoreMerges ?? true;
    this.splitsWordInitials = vocab.splitWordInitials ?? false;
    this.merges = buildMergeTable(vocab);
    const specials = new Map(vocab.specials);
    let maxId = -1;
    for (const id of vocab.tokens.values()) if (id > maxId) maxId = id;
    // Llama 4: fill the special ids the file leaves free (HF files stop at 201133; the model has 202048 rows).
    if (specials.get('<|begin_of_text|>') === LLAMA4_IDS.beginOfText && maxId < LLAMA4_NUM_BASE_TOKENS) {
      const used = new Set(specials.values());
      llama4SpecialTokens().forEach((text, i) => {
        const id = LLAMA4_NUM_BASE_TOKENS + i;
        if (!used.has(id) && !specials.has(text)) specials.set(text, id);
      });
    }
    for (const id of specials.values()) if (id > maxId) maxId = id;
    this.vocabSize = Math.max(maxId + 1, vocab.vocabSize ?? 0);
    this.specialTokens = specials;
    this.specialIds = new Set(specials.values());

    // Decode table.
    const n = this.vocabSize;
    const texts: (string | undefined)[] = new Array(n);
    const special = new Uint8Array(n);
    let total = 0;
    for (const [bin, id] of vocab.tokens) {
      if (texts[id] !== undefined) throw new ModelFileError(vocab.source, `token id ${id} is used twice`);
      texts[id] = bin;
      total += bin.length;
    }
    const specialBytes = new Map<number, Uint8Array>();
    for (const [text, id] of specials) {
      const b = UTF8.encode(text);
      specialBytes.set(id, b);
      special[id] = 1;
      total += b.length;
    }
    this.bytes = new Uint8Array(total);
    this.offset = new Int32Array(n + 1);
    let pos = 0;
    for (let id = 0; id < n; id++) {
      this.offset[id] = pos;
      const sb = specialBytes.get(id);
      if (sb) {
        this.bytes.set(sb, pos);
        pos += sb.length;
        continue;
      }
      const bin = texts[id];
      if (bin !== undefined) for (let i = 0; i < bin.length; i++) this.bytes[pos++] = bin.charCodeAt(i);
    }
    this.offset[n] = pos;
    this.isSpecial = special;

    const find = (t: string | undefined): number | undefined => (t === undefined ? undefined : specials.get(t));
    this.bosId = find(vocab.bosToken ?? '<|begin_of_text|>');
    const eosIds = (vocab.eosTokens ?? []).map(find).filter((x): x is number => x !== undefined);
    this.eosId = eosIds[0] ?? find('<|end_of_text|>');
    this.eotId = find('<|eot|>');
    const stops = new Set<number>(eosIds);
    for (const t of ['<|end_of_text|>', '<|eom|>', '<|eot|>']) {
      const id = find(t);
      if (id !== undefined) stops.add(id);
    }
    if (this.eosId !== undefined) stops.add(this.eosId);
    this.stopIds = stops;

    const plain = [...specials.keys()].every(isPlainSpecial);
    this.specialRe =
      plain || specials.size === 0
        ? null
        : new RegExp(
            [...specials.keys()]
              .sort((a, b) => b.length - a.length)
              .map((t) => t.replace(/[.*+?^${}()|[\]\\]/g, '\\$&'))
              .join('|'),
            'g',
          );
  }

  /** Empties the pre-token cache and lazily resolved merges (memory, or benchmarks of first-encounter speed). */
  clearCache(): void {
    this.cache.clear();
    this.merges.clear();
  }

  encode(text: string, opts?: EncodeOptions): number[] {
    if (typeof text !== 'string') throw new UsageError(`encode: text must be a string, got ${typeof text}`);
    // Lone surrogates cannot be UTF-8 encoded; tiktoken (and every UTF-8 pipeline) sees U+FFFD there.
    const wf = (text as { isWellFormed?: () => boolean }).isWellFormed;
    if (wf && !wf.call(text)) text = (text as unknown as { toWellFormed(): string }).toWellFormed();
    const out: number[] = [];
    if (!opts?.allowSpecial || this.specialTokens.size === 0) {
      this.encodeOrdinary(text, out);
      return out;
    }
    let start = 0;
    if (this.specialRe) {
      const re = this.specialRe;
      re.lastIndex = 0;
      let m: RegExpExecArray | null;
      while ((m = re.exec(text)) !== null) {
        if (m.index > start) this.encodeOrdinary(text.slice(start, m.index), out);
        out.push(this.specialTokens.get(m[0])!);
        start = m.index + m[0].length;
      }
    } else {
      let i = text.indexOf('<|');
      let end = -1; // the first '|>' at or after i + 2, reused across candidates (keeps "<|<|<|…" linear)
      while (i >= 0) {
        if (end < i + 2) end = text.indexOf('|>', i + 2);
        if (end < 0) break;
        const id = this.specialTokens.get(text.slice(i, end + 2));
        if (id !== undefined) {
          if (i > start) this.encodeOrdinary(text.slice(start, i), out);
          out.push(id);
          start = end + 2;
          i = text.indexOf('<|', start);
        } else {
          i = text.indexOf('<|', i + 1);
        }
      }
    }
    if (start < text.length) this.encodeOrdinary(start === 0 ? text : text.slice(start), out);
    return out;
  }

  /** Appends the ids of `text` (no special-token recognition) to `out`. */
  private encodeOrdinary(text: string, out: number[]): void {
    if (isAscii(text)) {
      // Pure ASCII (English, code): a byte-class scanner splits exactly like the RegExp, ~2x faster.
      for (let p = 0; p < text.length; ) {
        const e = asciiPieceEnd(text, p);
        this.encodeCached(text.slice(p, e), out);
        p = e;
      }
      return;
    }
    const re = this.re;
    re.lastIndex = 0;
    let m: RegExpExecArray | null;
    while ((m = re.exec(text)) !== null) this.encodeCached(m[0], out);
  }

  private encodeCached(piece: string, out: number[]): void {
    const cache = this.cache;
    let ids = cache.get(piece);
    if (ids === undefined) {
      ids = this.encodePiece(piece);
      if (cache.size >= CACHE_LIMIT) cache.clear();
      cache.set(piece, ids);
    }
    if (typeof ids === 'number') out.push(ids);
    else for (let k = 0; k < ids.length; k++) out.push(ids[k]!);
  }

  private encodePiece(piece: string): number | number[] {
    if (this.splitsWordInitials) {
      const parts = splitWordInitials(piece);
      if (parts.length > 1) {
        const out: number[] = [];
        for (const part of parts) {
          const ids = this.encodeSplitPiece(part);
          if (typeof ids === 'number') out.push(ids);
          else out.push(...ids);
        }
        return out;
      }
    }
    return this.encodeSplitPiece(piece);
  }

  private encodeSplitPiece(piece: string): number | number[] {
    const bin = toBinary(piece);
    if (this.ignoreMerges) {
      const id = this.tokens.get(bin);
      if (id !== undefined) return id;
    }
    const ids = bytePairEncode(bin, this.merges);
    return ids.length === 1 ? ids[0]! : ids;
  }

  private checkId(id: number): void {
    if (!Number.isInteger(id) || id < 0 || id >= this.vocabSize) {
      throw new UsageError(`token id ${String(id)} is out of range [0, ${this.vocabSize})`);
    }
  }

  decodeBytes(ids: Iterable<number>, opts?: DecodeOptions): Uint8Array {
    const list = Array.isArray(ids) ? (ids as number[]) : [...ids];
    const skip = opts?.skipSpecial ?? false;
    let total = 0;
    for (const id of list) {
      this.checkId(id);
      if (!(skip && this.isSpecial[id])) total += this.offset[id + 1]! - this.offset[id]!;
    }
    const out = new Uint8Array(total);
    let pos = 0;
    for (const id of list) {
      if (skip && this.isSpecial[id]) continue;
      const a = this.offset[id]!;
      const b = this.offset[id + 1]!;
      if (b - a === 1) out[pos++] = this.bytes[a]!;
      else {
        out.set(this.bytes.subarray(a, b), pos);
        pos += b - a;
      }
    }
    return out;
  }

  decode(ids: Iterable<number>, opts?: DecodeOptions): string {
    return UTF8_DECODER.decode(this.decodeBytes(ids, opts));
  }

  tokenToId(token: string): number | undefined {
    const s = this.specialTokens.get(token);
    if (s !== undefined) return s;
    const bin = unicodeToBinary(token);
    return bin === undefined ? undefined : this.tokens.get(bin);
  }

  idToToken(id: number): string | undefined {
    if (!Number.isInteger(id) || id < 0 || id >= this.vocabSize) return undefined;
    const a = this.offset[id]!;
    const b = this.offset[id + 1]!;
    if (a === b) return undefined;
    const bytes = this.bytes.subarray(a, b);
    return this.isSpecial[id] ? UTF8_DECODER.decode(bytes) : bytesToUnicode(bytes);
  }

  createStreamDecoder(opts?: DecodeOptions): StreamDecoder {
    let dec = new TextDecoder('utf-8', { ignoreBOM: true });
    return {
      push: (id: number): string => dec.decode(this.decodeBytes([id], opts), { stream: true }),
      flush: (): string => {
        const s = dec.decode();
        dec = new TextDecoder('utf-8', { ignoreBOM: true });
        return s;
      },
    };
  }
}
