/**
 * Llama 4's pre-tokenizer: Meta's o200k-style pattern, ported to a JavaScript RegExp that splits exactly like the
 * Rust regex engine tiktoken runs (checked on every case of ../shared/tokenizer/cases.jsonl).
 *
 * Meta's pattern:
 *   [^\r\n\p{L}\p{N}]?[\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}]*[\p{Ll}\p{Lm}\p{Lo}\p{M}]+(?i:'s|'t|'re|'ve|'m|'ll|'d)?
 *   |[^\r\n\p{L}\p{N}]?[\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}]+[\p{Ll}\p{Lm}\p{Lo}\p{M}]*(?i:'s|'t|'re|'ve|'m|'ll|'d)?
 *   |\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n/]*|\s*[\r\n]+|\s+(?!\S)|\s+
 *
 * Two traps in a literal port:
 * - `\s` differs: Rust's is Unicode White_Space (has U+0085, lacks U+FEFF); JavaScript's has U+FEFF and lacks
 *   U+0085. We spell out White_Space explicitly.
 * - `(?i:...)` is not valid in Node 20. Case-insensitive contractions are spelled out, including U+017F (long s),
 *   which Unicode simple case folding maps to 's' and so matches `(?i:'s)` in Rust.
 */

/** Meta's pattern exactly as tokenizer.json spells it (Rust regex syntax), for writers of tokenizer.json files. */
export const LLAMA4_PATTERN_RUST =
  "[^\\r\\n\\p{L}\\p{N}]?[\\p{Lu}\\p{Lt}\\p{Lm}\\p{Lo}\\p{M}]*[\\p{Ll}\\p{Lm}\\p{Lo}\\p{M}]+(?i:'s|'t|'re|'ve|'m|'ll|'d)?|[^\\r\\n\\p{L}\\p{N}]?[\\p{Lu}\\p{Lt}\\p{Lm}\\p{Lo}\\p{M}]+[\\p{Ll}\\p{Lm}\\p{Lo}\\p{M}]*(?i:'s|'t|'re|'ve|'m|'ll|'d)?|\\p{N}{1,3}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n/]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+";

/** Unicode White_Space, i.e. Rust regex `\s`. */
const WS = '\\t\\n\\v\\f\\r \\x85\\xA0\\u1680\\u2000-\\u200A\\u2028\\u2029\\u202F\\u205F\\u3000';

/**
 * Letters, marks and digits new in Unicode 17.0 (this Node's ICU) that tiktoken's Rust regex tables (Unicode 16.0)
 * still call unassigned, so for tiktoken they are neither \p{L}, \p{M} nor \p{N}. Found by probing tiktoken 1.0.22
 * with every code point unassigned in Unicode 14 but a letter/mark/digit here (14,184; these 4,699 differed, and
 * with them removed none do). On an older Node they are unassigned anyway and removing them changes nothing.
 */
const NEWER_THAN_TIKTOKEN =
  '\\u{88F}\\u{C5C}\\u{CDC}\\u{1ACF}-\\u{1ADD}\\u{1AE0}-\\u{1AEB}\\u{A7CE}-\\u{A7CF}\\u{A7D2}\\u{A7D4}\\u{A7F1}' +
  '\\u{10940}-\\u{10959}\\u{10EC5}-\\u{10EC7}\\u{10EFA}-\\u{10EFB}\\u{11B60}-\\u{11B67}\\u{11DB0}-\\u{11DDB}' +
  '\\u{11DE0}-\\u{11DE9}\\u{16EA0}-\\u{16EB8}\\u{16EBB}-\\u{16ED3}\\u{16FF2}-\\u{16FF6}\\u{187F8}-\\u{187FF}' +
  '\\u{18D09}-\\u{18D1E}\\u{18D80}-\\u{18DF2}\\u{1E6C0}-\\u{1E6DE}\\u{1E6E0}-\\u{1E6F5}\\u{1E6FE}-\\u{1E6FF}' +
  '\\u{2B73A}-\\u{2B73F}\\u{2CEA2}-\\u{2CEAD}\\u{323B0}-\\u{33479}';

/** A property class minus the code points tiktoken does not know yet (RegExp `v` flag set subtraction). */
const known = (cls: string): string => `[[${cls}]--[${NEWER_THAN_TIKTOKEN}]]`;
const LETTER_OR_NUMBER = known('\\p{L}\\p{N}');
const CONTRACTION = "(?:'[sS\\u017F]|'[tT]|'[rR][eE]|'[vV][eE]|'[mM]|'[lL][lL]|'[dD])?";
const UPPERISH = known('\\p{Lu}\\p{Lt}\\p{Lm}\\p{Lo}\\p{M}');
const LOWERISH = known('\\p{Ll}\\p{Lm}\\p{Lo}\\p{M}');
const LEAD = `[^\\r\\n${LETTER_OR_NUMBER}]?`;

export const LLAMA4_PRETOKENIZE_SOURCE = [
  `${LEAD}${UPPERISH}*${LOWERISH}+${CONTRACTION}`,
  `${LEAD}${UPPERISH}+${LOWERISH}*${CONTRACTION}`,
  `${known('\\p{N}')}{1,3}`,
  ` ?[^${WS}${LETTER_OR_NUMBER}]+[\\r\\n\\/]*`, // '/' must be escaped in a v-mode class
  `[${WS}]*[\\r\\n]+`,
  `[${WS}]+(?![^${WS}])`,
  `[${WS}]+`,
].join('|');

/** Flags for LLAMA4_PRETOKENIZE_SOURCE: global, and `v` (Unicode sets) for the class subtraction. */
export const LLAMA4_PRETOKENIZE_FLAGS = 'gv';

/** A fresh global RegExp for the pattern (global regexes carry lastIndex state; don't share one across calls). */
export function llama4PretokenizeRegExp(): RegExp {
  return new RegExp(LLAMA4_PRETOKENIZE_SOURCE, LLAMA4_PRETOKENIZE_FLAGS);
}

/** The pre-tokens of `text`, in order; their concatenation is `text`. */
export function pretokenize(text: string): string[] {
  const out: string[] = [];
  const re = llama4PretokenizeRegExp();
  let m: RegExpExecArray | null;
  while ((m = re.exec(text)) !== null) out.push(m[0]);
  return out;
}

// ASCII fast path. On pure-ASCII text the pattern's classes collapse to byte tests (letters A–Z/a–z with no
// Lm/Lo/M overlap, digits 0–9, whitespace \t\n\v\f\r and space), and the alternatives resolve as below; this
// scanner is several times faster than the Unicode RegExp and is checked against it and tiktoken in the tests.
const K_UPPER = 1;
const K_LOWER = 2;
const K_DIGIT = 3;
const K_WS = 4; // \t \v \f space
const K_CRLF = 5; // \r \n
const K_PUNCT = 6; // everything else (incl. control characters, which are not White_Space)
const KIND = new Uint8Array(128).fill(K_PUNCT);
for (let c = 65; c <= 90; c++) KIND[c] = K_UPPER;
for (let c = 97; c <= 122; c++) KIND[c] = K_LOWER;
for (let c = 48; c <= 57; c++) KIND[c] = K_DIGIT;
for (const c of [9, 11, 12, 32]) KIND[c] = K_WS;
KIND[10] = K_CRLF;
KIND[13] = K_CRLF;

/** True when every UTF-16 unit of `s` is ASCII. */
export function isAscii(s: string): boolean {
  for (let i = 0; i < s.length; i++) if (s.charCodeAt(i) > 127) return false;
  return true;
}

/** Length of the contraction ('s 't 're 've 'm 'll 'd, any case) at i, or 0. */
function contraction(s: string, i: number): number {
  if (s.charCodeAt(i) !== 39) return 0;
  const a = s.charCodeAt(i + 1) | 0x20; // lower-cased (NaN | 0x20 = 0x20 at the end)
  if (a === 0x73 || a === 0x74 || a === 0x6d || a === 0x64) return 2; // s t m d
  const b = s.charCodeAt(i + 2) | 0x20;
  if ((a === 0x72 || a === 0x76) && b === 0x65) return 3; // re ve
  if (a === 0x6c && b === 0x6c) return 3; // ll
  return 0;
}

/**
 * End of the pre-token that starts at `p` in pure-ASCII `s` (same result as the RegExp).
 */
export function asciiPieceEnd(s: string, p: number): number {
  const n = s.length;
  const k = KIND[s.charCodeAt(p)]!;
  const k1 = p + 1 < n ? KIND[s.charCodeAt(p + 1)]! : 0;
  // Alternatives 1–2: an optional non-letter/digit/CR/LF lead, then [A-Z]*[a-z]* (at least one letter), contraction.
  let q = -1;
  if (k === K_UPPER || k === K_LOWER) q = p;
  else if (k !== K_DIGIT && k !== K_CRLF && (k1 === K_UPPER || k1 === K_LOWER)) q = p + 1;
  if (q >= 0) {
    while (q < n && KIND[s.charCodeAt(q)] === K_UPPER) q++;
    while (q < n && KIND[s.charCodeAt(q)] === K_LOWER) q++;
    return q + contraction(s, q);
  }
  // Alternative 3: one to three digits.
  if (k === K_DIGIT) {
    let q3 = p + 1;
    while (q3 < n && q3 < p + 3 && KIND[s.charCodeAt(q3)] === K_DIGIT) q3++;
    return q3;
  }
  // Alternative 4: an optional space, punctuation, then CR/LF/'/'.
  if (k === K_PUNCT || (s.charCodeAt(p) === 32 && k1 === K_PUNCT)) {
    let q4 = k === K_PUNCT ? p + 1 : p + 2;
    while (q4 < n && KIND[s.charCodeAt(q4)] === K_PUNCT) q4++;
    while (q4 < n && (KIND[s.charCodeAt(q4)] === K_CRLF || s.charCodeAt(q4) === 47)) q4++;
    return q4;
  }
  // Whitespace run [p, e).
  let e = p + 1;
  let lastCrlf = k === K_CRLF ? p : -1;
  while (e < n) {
    const ke = KIND[s.charCodeAt(e)];
    if (ke === K_CRLF) lastCrlf = e;
    else if (ke !== K_WS) break;
    e++;
  }
  // Alternative 5: through the last CR/LF of the run.
  if (lastCrlf >= 0) return lastCrlf + 1;
  // Alternatives 6–7: the run, leaving its last character for the next token unless the text ends here.
  if (e === n || e - p === 1) return e;
  return e - 1;
}

/**
 * An optional second split after Meta's pattern (a HF `Split` pre-tokenizer, behaviour "Isolated"): every letter that
 * does not follow a letter is a pre-token of its own, so "Query" → "Q" "uery" and "query_tide" → "q" "uery" "_" "t"
 * "ide". A word and its capitalised form then share every token but the first. The default model's tokenizer uses it:
 * with plain BPE "Query" is "Q|u|ery" and "query" one token, and turning the user's "Query the tide" into the tool
 * name "query_tide" was a respelling that a 4 M-parameter model never learned for verbs it had not seen.
 */
export const WORD_INITIAL_PATTERN_RUST = '(?<!\\p{L})\\p{L}';
export const WORD_INITIAL_PRE_TOKENIZER = {
  type: 'Split',
  pattern: { Regex: WORD_INITIAL_PATTERN_RUST },
  behavior: 'Isolated',
  invert: false,
} as const;

/** GGUF `tokenizer.ggml.pre` of a Llama 4 tokenizer with the word-initial split (llama.cpp has no such pre-tokenizer). */
export const GGUF_PRE_WORD_INITIALS = 'llama4-word-initials';

const WORD_INITIAL = /(?<!\p{L})(\p{L})/u;

/** One pre-token of Meta's pattern split at its word-initial letters (see WORD_INITIAL_PATTERN_RUST). */
export function splitWordInitials(piece: string): string[] {
  return piece.split(WORD_INITIAL).filter((s) => s.length > 0);
}

/** Whether a tokenizer.json `pre_tokenizer` has the word-initial split (a Sequence holding that Split). */
export function hasWordInitialSplit(preTokenizer: unknown): boolean {
  const p = preTokenizer as { type?: unknown; pretokenizers?: unknown } | null;
  if (p?.type !== 'Sequence' || !Array.isArray(p.pretokenizers)) return false;
  return p.pretokenizers.some(
    (s: { type?: unknown; pattern?: { Regex?: unknown }; behavior?: unknown } | null) =>
      s?.type === 'Split' && s.pattern?.Regex === WORD_INITIAL_PATTERN_RUST && s.behavior === 'Isolated',
  );
}
