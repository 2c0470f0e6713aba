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

/** Unicode White_Space, i.e. Rust regex `\s`. */
const WS = '\\t\\n\\v\\f\\r \\x85\\xA0\\u1680\\u2000-\\u200A\\u2028\\u2029\\u202F\\u205F\\u3000';
const CONTRACTION = "(?:'[sS\\u017F]|'[tT]|'[rR][eE]|'[vV][eE]|'[mM]|'[lL][lL]|'[dD])?";
const UPPERISH = '[\\p{Lu}\\p{Lt}\\p{Lm}\\p{Lo}\\p{M}]';
const LOWERISH = '[\\p{Ll}\\p{Lm}\\p{Lo}\\p{M}]';
const LEAD = '[^\\r\\n\\p{L}\\p{N}]?';

export const LLAMA4_PRETOKENIZE_SOURCE = [
  `${LEAD}${UPPERISH}*${LOWERISH}+${CONTRACTION}`,
  `${LEAD}${UPPERISH}+${LOWERISH}*${CONTRACTION}`,
  '\\p{N}{1,3}',
  ` ?[^${WS}\\p{L}\\p{N}]+[\\r\\n/]*`,
  `[${WS}]*[\\r\\n]+`,
  `[${WS}]+(?![^${WS}])`,
  `[${WS}]+`,
].join('|');

/** A fresh global RegExp for the pattern (global regexes carry lastIndex state; don't share one across calls). */
export function llama4PretokenizeRegExp(): RegExp {
  return new RegExp(LLAMA4_PRETOKENIZE_SOURCE, 'gu');
}

/** The pre-tokens of `text`, in order; their concatenation is `text`. */
export function pretokenize(text: string): string[] {
  const out: string[] = [];
  const re = llama4PretokenizeRegExp();
  let m: RegExpExecArray | null;
  while ((m = re.exec(text)) !== null) out.push(m[0]);
  return out;
}
