/** What engines, the chat layer and the CLI see of a tokenizer. */

export interface EncodeOptions {
  /**
   * Recognise special-token text (`<|eot|>`, `<|image|>` …) as the special ids. Default false: special-token text
   * in user input is encoded as ordinary text, so a user cannot inject control tokens.
   * Chat prompts rendered by a template must be encoded with `allowSpecial: true` and no extra BOS (the template
   * already wrote `<|begin_of_text|>`).
   */
  allowSpecial?: boolean;
}

export interface DecodeOptions {
  /** Leave special tokens out of the text (default false: they appear as their text, e.g. `<|eot|>`). */
  skipSpecial?: boolean;
}

/** Incremental detokenizer: `push` returns only whole characters; bytes of a split character wait for the rest. */
export interface StreamDecoder {
  push(id: number): string;
  /** Whatever is still pending (an incomplete UTF-8 sequence comes out as U+FFFD). Resets the decoder. */
  flush(): string;
}

export interface Tokenizer {
  /** Number of ids: max id + 1 (Llama 4: 202048). */
  readonly vocabSize: number;
  readonly bosId: number | undefined;
  /** End of the text (`<|end_of_text|>` for Llama 4). */
  readonly eosId: number | undefined;
  /** End of turn (`<|eot|>`); undefined for tokenizers without one. */
  readonly eotId: number | undefined;
  /** Ids that end generation: end_of_text, eom, eot (Meta's stop tokens) plus any eos named by the config. */
  readonly stopIds: ReadonlySet<number>;
  /** Special (control) tokens: text → id. */
  readonly specialTokens: ReadonlyMap<string, number>;
  readonly specialIds: ReadonlySet<number>;
  encode(text: string, opts?: EncodeOptions): number[];
  decode(ids: Iterable<number>, opts?: DecodeOptions): string;
  /** Raw bytes of the ids (special tokens as their UTF-8 text unless skipped). */
  decodeBytes(ids: Iterable<number>, opts?: DecodeOptions): Uint8Array;
  /** Id of a token in its file form: special text, or GPT-2 byte-level form for ordinary tokens ("Ġhello"). */
  tokenToId(token: string): number | undefined;
  /** Inverse of tokenToId; undefined for ids without a token. */
  idToToken(id: number): string | undefined;
  createStreamDecoder(opts?: DecodeOptions): StreamDecoder;
}
