/**
 * Tokenizer loaders. Each reduces its format to a BpeVocab (binary-string tokens, optional merges, specials):
 * - Meta's `tokenizer.model`: tiktoken ranks, one `base64(bytes) rank` per line; specials are not in the file and
 *   come from Meta's list (ids 200000–202047).
 * - Hugging Face `tokenizer.json`: BPE vocab and merges in GPT-2 byte-level form, `added_tokens` for specials,
 *   with `tokenizer_config.json` beside it naming bos/eos.
 * - GGUF arrays (`tokenizer.ggml.tokens/merges/token_type`): the GGUF reader calls `tokenizerFromGguf`.
 */
import { existsSync, readFileSync, statSync, type Stats } from 'node:fs';
import { basename, dirname, join } from 'node:path';
import { ModelFileError, UsageError } from '../util/errors.ts';
import { unicodeToBinary } from './byte-unicode.ts';
import { GGUF_PRE_WORD_INITIALS, hasWordInitialSplit } from './pretokenize.ts';
import { LLAMA4_NUM_BASE_TOKENS, llama4SpecialTokens } from './special-tokens.ts';
import { BpeTokenizer } from './tokenizer.ts';
import type { Tokenizer } from './types.ts';

const MAX_FILE_BYTES = 1 << 30;

function readText(file: string): string {
  let size: number;
  try {
    size = statSync(file).size;
  } catch {
    throw new ModelFileError(file, 'no such file');
  }
  if (size > MAX_FILE_BYTES) throw new ModelFileError(file, `file is ${size} bytes; a tokenizer file over 1 GiB is not plausible`);
  return readFileSync(file, 'utf8');
}

function readJson(file: string): unknown {
  const text = readText(file);
  try {
    return JSON.parse(text);
  } catch (e) {
    throw new ModelFileError(file, `invalid JSON: ${(e as Error).message}`);
  }
}

function isRecord(x: unknown): x is Record<string, unknown> {
  return typeof x === 'object' && x !== null && !Array.isArray(x);
}

const B64 = new Int8Array(128).fill(-1);
'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/'.split('').forEach((c, i) => {
  B64[c.charCodeAt(0)] = i;
});

/** Base64 text[a, b) → binary string (one char per byte), or undefined if it is not valid base64. */
function decodeBase64Binary(text: string, a: number, b: number): string | undefined {
  while (b > a && text.charCodeAt(b - 1) === 61) b--; // '=' padding
  if (b === a) return undefined;
  let out = '';
  let acc = 0;
  let bits = 0;
  for (let i = a; i < b; i++) {
    const c = text.charCodeAt(i);
    const v = c < 128 ? B64[c]! : -1;
    if (v < 0) return undefined;
    acc = ((acc << 6) | v) & 0xffffff;
    bits += 6;
    if (bits >= 8) {
      bits -= 8;
      out += String.fromCharCode((acc >> bits) & 0xff);
    }
  }
  return out;
}

/** Meta's tokenizer.model (tiktoken ranks) from its text. `specials` default: Meta's Llama 4 list. */
export function tokenizerFromTiktoken(
  text: string,
  source = 'tokenizer.model',
  opts: { specials?: Map<string, number>; bosToken?: string; eosTokens?: string[] } = {},
): BpeTokenizer {
  const tokens = new Map<string, number>();
  let maxRank = -1;
  let lineNo = 0;
  let pos = 0;
  const n = text.length;
  const bad = (detail: string): never => {
    const end = text.indexOf('\n', pos);
    throw new ModelFileError(source, `line ${lineNo}: ${detail}: ${JSON.stringify(text.slice(pos, end < 0 ? n : end).slice(0, 60))}`);
  };
  // Hand-rolled: Buffer.from(b64) per line costs ~1 s for 200k lines; this is a few times faster.
  while (pos < n) {
    lineNo++;
    let end = text.indexOf('\n', pos);
    if (end < 0) end = n;
    let lineEnd = end;
    if (lineEnd > pos && text.charCodeAt(lineEnd - 1) === 13) lineEnd--;
    if (lineEnd === pos) {
      pos = end + 1;
      continue;
    }
    const sp = text.indexOf(' ', pos);
    if (sp < 0 || sp >= lineEnd || sp === pos) bad('expected "base64 rank"');
    const bin = decodeBase64Binary(text, pos, sp);
    if (bin === undefined) bad('invalid base64');
    let rank = 0;
    if (lineEnd - sp - 1 < 1 || lineEnd - sp - 1 > 9) bad('bad rank');
    for (let i = sp + 1; i < lineEnd; i++) {
      const d = text.charCodeAt(i) - 48;
      if (d < 0 || d > 9) bad('bad rank');
      rank = rank * 10 + d;
    }
    if (tokens.has(bin!)) bad('duplicate token');
    tokens.set(bin!, rank);
    if (rank > maxRank) maxRank = rank;
    pos = end + 1;
  }
  if (tokens.size === 0) throw new ModelFileError(source, 'no ranks in file');
  let sp = opts.specials;
  if (!sp) {
    // Meta's tokenizer.py: specials are numbered from the number of ranks (200000 for Llama 4).
    const base = Math.max(maxRank + 1, tokens.size);
    if (base !== LLAMA4_NUM_BASE_TOKENS) {
      throw new ModelFileError(
        source,
        `${base} ranks; Llama 4's tokenizer.model has ${LLAMA4_NUM_BASE_TOKENS} (pass the special tokens explicitly for another vocabulary)`,
      );
    }
    sp = new Map(llama4SpecialTokens().map((t, i) => [t, base + i]));
  }
  return new BpeTokenizer({
    tokens,
    specials: sp,
    source,
    ...(opts.bosToken !== undefined ? { bosToken: opts.bosToken } : {}),
    ...(opts.eosTokens !== undefined ? { eosTokens: opts.eosTokens } : {}),
  });
}

/** Token text from a tokenizer_config.json field: a string or an AddedToken object {content}. */
function tokenText(x: unknown): string | undefined {
  if (typeof x === 'string') return x;
  if (isRecord(x) && typeof x.content === 'string') return x.content;
  return undefined;
}

/** HF tokenizer.json (parsed) plus an optional tokenizer_config.json (parsed). */
export function tokenizerFromHfJson(json: unknown, source = 'tokenizer.json', config?: unknown): BpeTokenizer {
  if (!isRecord(json) || !isRecord(json.model)) throw new ModelFileError(source, 'not a tokenizer.json (no "model" object)');
  const model = json.model;
  if (model.type !== undefined && model.type !== 'BPE')
    throw new ModelFileError(source, `model type ${String(model.type)} is not supported (byte-level BPE only)`);
  if (!isRecord(model.vocab)) throw new ModelFileError(source, 'model.vocab is not an object');
  const specials = new Map<string, number>();
  const added = Array.isArray(json.added_tokens) ? json.added_tokens : [];
  for (const t of added) {
    if (!isRecord(t) || typeof t.content !== 'string' || !Number.isInteger(t.id))
      throw new ModelFileError(source, 'malformed added_tokens entry');
    specials.set(t.content, t.id as number);
  }
  if (isRecord(config) && isRecord(config.added_tokens_decoder)) {
    for (const [id, t] of Object.entries(config.added_tokens_decoder)) {
      const text = tokenText(t);
      if (text !== undefined && /^\d+$/.test(id) && !specials.has(text)) specials.set(text, Number(id));
    }
  }
  const tokens = new Map<string, number>();
  for (const [piece, id] of Object.entries(model.vocab)) {
    if (!Number.isInteger(id) || (id as number) < 0) throw new ModelFileError(source, `vocab entry ${JSON.stringify(piece)} has a bad id`);
    const bin = unicodeToBinary(piece);
    if (bin === undefined) {
      if (specials.has(piece)) continue;
      throw new ModelFileError(source, `vocab entry ${JSON.stringify(piece)} is not in byte-level (GPT-2) form`);
    }
    tokens.set(bin, id as number);
  }
  const mergeList = Array.isArray(model.merges) ? model.merges : [];
  const merges: [string, string][] = [];
  mergeList.forEach((m: unknown, i: number) => {
    let pair: [string, string] | undefined;
    if (typeof m === 'string') {
      const sp = m.indexOf(' ', 1);
      if (sp > 0) pair = [m.slice(0, sp), m.slice(sp + 1)];
    } else if (Array.isArray(m) && m.length === 2 && typeof m[0] === 'string' && typeof m[1] === 'string') {
      pair = [m[0], m[1]];
    }
    const l = pair && unicodeToBinary(pair[0]);
    const r = pair && unicodeToBinary(pair[1]);
    if (l === undefined || r === undefined) throw new ModelFileError(source, `merge ${i} is malformed: ${JSON.stringify(m)}`);
    merges.push([l, r]);
  });
  const cfg = isRecord(config) ? config : {};
  const eos = tokenText(cfg.eos_token);
  return new BpeTokenizer({
    tokens,
    merges,
    ignoreMerges: model.ignore_merges === true,
    splitWordInitials: hasWordInitialSplit(json.pre_tokenizer),
    specials,
    bosToken: tokenText(cfg.bos_token) ?? '<|begin_of_text|>',
    eosTokens: eos === undefined ? [] : [eos],
    source,
  });
}

export interface GgufVocabArrays {
  /** `tokenizer.ggml.tokens`: ordinary tokens in GPT-2 byte-level form, control/user tokens as plain text. */
  tokens: string[];
  /** `tokenizer.ggml.merges`: "left right" in byte-level form, highest priority first. */
  merges?: string[];
  /** `tokenizer.ggml.token_type`: 1 normal, 2 unknown, 3 control, 4 user-defined, 5 unused, 6 byte. */
  tokenTypes?: number[];
  bosId?: number;
  eosId?: number;
  /** eot / eom ids that should also stop generation. */
  extraEosIds?: number[];
  /** Model vocab size (embedding rows) if larger than `tokens.length`. */
  vocabSize?: number;
  /** `tokenizer.ggml.pre`: "llama4", or "llama4-word-initials" for Meta's pattern plus the word-initial split. */
  pre?: string;
  source?: string;
}

/** A tokenizer from GGUF metadata arrays (`tokenizer.ggml.model = gpt2`, pre `llama4`). */
export function tokenizerFromGguf(v: GgufVocabArrays): BpeTokenizer {
  const source = v.source ?? 'GGUF';
  if (!Array.isArray(v.tokens) || v.tokens.length === 0) throw new ModelFileError(source, 'tokenizer.ggml.tokens is missing or empty');
  if (v.tokenTypes && v.tokenTypes.length !== v.tokens.length) {
    throw new ModelFileError(source, `token_type has ${v.tokenTypes.length} entries for ${v.tokens.length} tokens`);
  }
  const tokens = new Map<string, number>();
  const specials = new Map<string, number>();
  v.tokens.forEach((piece, id) => {
    if (typeof piece !== 'string') throw new ModelFileError(source, `token ${id} is not a string`);
    const type = v.tokenTypes?.[id] ?? 1;
    // Unused slots (llama.cpp writes "[PAD{i}]" up to the model's vocab size) are neither matched nor decoded.
    if (type === 5) return;
    const bin = type === 1 || type === 6 ? unicodeToBinary(piece) : undefined;
    if (bin !== undefined && !tokens.has(bin)) tokens.set(bin, id);
    else if (type === 1 || type === 6)
      throw new ModelFileError(source, `token ${id} ${JSON.stringify(piece)} is not in byte-level form or is a duplicate`);
    else specials.set(piece, id);
  });
  const merges: [string, string][] = [];
  (v.merges ?? []).forEach((m, i) => {
    const sp = typeof m === 'string' ? m.indexOf(' ', 1) : -1;
    const l = sp > 0 ? unicodeToBinary(m.slice(0, sp)) : undefined;
    const r = sp > 0 ? unicodeToBinary(m.slice(sp + 1)) : undefined;
    if (l === undefined || r === undefined) throw new ModelFileError(source, `merge ${i} is malformed: ${JSON.stringify(m)}`);
    merges.push([l, r]);
  });
  const name = (id: number | undefined): string | undefined => (id === undefined ? undefined : v.tokens[id]);
  const eos = [v.eosId, ...(v.extraEosIds ?? [])].map(name).filter((x): x is string => x !== undefined);
  return new BpeTokenizer({
    tokens,
    // llama.cpp's llama4 pre-tokenizer sets ignore_merges, like the HF file it was converted from.
    ...(v.merges && v.merges.length > 0 ? { merges } : {}),
    ignoreMerges: true,
    splitWordInitials: v.pre === GGUF_PRE_WORD_INITIALS,
    specials,
    ...(name(v.bosId) !== undefined ? { bosToken: name(v.bosId)! } : {}),
    eosTokens: eos,
    vocabSize: Math.max(v.vocabSize ?? 0, v.tokens.length),
    source,
  });
}

/** Where the tokenizer files of a model folder are. */
export function findTokenizerFiles(dir: string): { tokenizerJson?: string; tiktoken?: string; config?: string } {
  const pick = (...names: string[]): string | undefined => names.map((n) => join(dir, n)).find((p) => existsSync(p));
  const out: { tokenizerJson?: string; tiktoken?: string; config?: string } = {};
  const tj = pick('tokenizer.json');
  const tk = pick('tokenizer.model', 'original/tokenizer.model');
  const cfg = pick('tokenizer_config.json');
  if (tj) out.tokenizerJson = tj;
  if (tk) out.tiktoken = tk;
  if (cfg) out.config = cfg;
  return out;
}

/**
 * Loads a tokenizer from a model folder (tokenizer.json, else tokenizer.model / original/tokenizer.model, with
 * tokenizer_config.json for bos/eos) or from one of those files.
 */
export function loadTokenizer(path: string): Tokenizer {
  let st: Stats;
  try {
    st = statSync(path);
  } catch {
    throw new UsageError(`tokenizer path not found: ${path}`);
  }
  if (st.isDirectory()) {
    const f = findTokenizerFiles(path);
    const config = f.config ? readJson(f.config) : undefined;
    if (f.tokenizerJson) return tokenizerFromHfJson(readJson(f.tokenizerJson), f.tokenizerJson, config);
    if (f.tiktoken) {
      // tokenizer.model carries no bos/eos names; tokenizer_config.json beside it may.
      const cfg = isRecord(config) ? config : {};
      const eos = tokenText(cfg.eos_token);
      const bos = tokenText(cfg.bos_token);
      return tokenizerFromTiktoken(readText(f.tiktoken), f.tiktoken, {
        ...(bos !== undefined ? { bosToken: bos } : {}),
        ...(eos !== undefined ? { eosTokens: [eos] } : {}),
      });
    }
    throw new ModelFileError(path, 'no tokenizer.json or tokenizer.model in this folder');
  }
  const name = basename(path);
  if (name.endsWith('.gguf')) throw new UsageError(`${path}: a GGUF's tokenizer is read with the model (loadModel), not loadTokenizer`);
  if (name === 'tokenizer_config.json') return loadTokenizer(dirname(path));
  if (name.endsWith('.json')) {
    const cfgPath = join(dirname(path), 'tokenizer_config.json');
    return tokenizerFromHfJson(readJson(path), path, existsSync(cfgPath) ? readJson(cfgPath) : undefined);
  }
  return tokenizerFromTiktoken(readText(path), path);
}
