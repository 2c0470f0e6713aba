/** Llama 4 tokenizer: byte-level BPE with Meta's o200k-style pre-tokenizer and special tokens 200000–202047. */
export type { Tokenizer, EncodeOptions, DecodeOptions, StreamDecoder } from './types.ts';
export { BpeTokenizer, type BpeVocab } from './tokenizer.ts';
export {
  loadTokenizer,
  findTokenizerFiles,
  tokenizerFromTiktoken,
  tokenizerFromHfJson,
  tokenizerFromGguf,
  type GgufVocabArrays,
} from './load.ts';
export {
  pretokenize,
  llama4PretokenizeRegExp,
  LLAMA4_PRETOKENIZE_SOURCE,
  LLAMA4_PRETOKENIZE_FLAGS,
  splitWordInitials,
  hasWordInitialSplit,
  WORD_INITIAL_PRE_TOKENIZER,
  GGUF_PRE_WORD_INITIALS,
} from './pretokenize.ts';
export { llama4SpecialTokens, LLAMA4_IDS, LLAMA4_NUM_BASE_TOKENS, LLAMA4_NUM_SPECIAL_TOKENS } from './special-tokens.ts';
export { bytesToUnicode, unicodeToBytes, gpt2ByteChars } from './byte-unicode.ts';
