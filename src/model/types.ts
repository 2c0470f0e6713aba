/**
 * What engines see of a model: a causal LM that runs batches of sequence pieces and keeps per-sequence caches.
 * Engines (generation, scheduler, server) depend on this file only, so they can be tested with a fake model.
 */

/** Facts about a model that engines need. */
export interface ModelInfo {
  readonly architecture: string;
  readonly vocabSize: number;
  readonly hiddenSize: number;
  /** Tokens the model was configured for (max_position_embeddings / GGUF context_length). */
  readonly contextLength: number;
  readonly bosTokenId: number | null;
  /** Generation stops on any of these (config + generation_config.json). */
  readonly eosTokenIds: readonly number[];
  /** `<|patch|>` id whose embedding slots take image features (multimodal models), else null. */
  readonly imageTokenId: number | null;
}

/**
 * The per-sequence state a model keeps between calls (the KV caches of every layer).
 * `length` is the number of tokens already processed; the next token goes at position `length`.
 */
export interface SequenceState {
  readonly length: number;
  /**
   * Forgets tokens from `length` on. Returns false when the cache can no longer reach that length (a chunked layer
   * already dropped positions before it); the caller must then start a fresh sequence.
   */
  truncate(length: number): boolean;
  /** An independent copy (prefix reuse, n > 1 completions). */
  clone(): SequenceState;
  /** Bytes held by the caches (for memory tests and metrics). */
  cacheBytes(): number;
  /**
   * The lowest length truncate() can still reach: truncatable lengths form one interval [floor, length] (full caches
   * from 0, chunked caches from the start of the chunk they still hold). Optional: without it only `length` is known
   * to be reachable. The model worker reports it with every sequence so the host side can answer truncate() at once.
   */
  truncateFloor?(): number;
  /**
   * Releases the caches now; the state must not be used again. Optional: in-process states are simply
   * garbage-collected, while a state living in another thread (a model worker) needs the word to free its memory.
   */
  free?(): void;
}

/** One sequence's share of a forward call. */
export interface ForwardItem {
  readonly seq: SequenceState;
  /** Tokens appended at positions seq.length, seq.length + 1, … */
  readonly tokens: ArrayLike<number>;
  /**
   * What to return: the logits of every new position, of the last one only, none (pure prefill), or 'hidden': the
   * final-norm hidden states of every new position, [rows, hiddenSize] (embeddings; the same rows the output
   * projection would read).
   */
  readonly logits: 'all' | 'last' | 'none' | 'hidden';
  /**
   * Early fusion: rows [nPatchTokens, hiddenSize] that replace, in order, the embeddings of this item's tokens equal
   * to ModelInfo.imageTokenId. The count must match.
   */
  readonly patchEmbeddings?: Float32Array;
}

export interface CausalLM {
  readonly info: ModelInfo;
  newSequence(): SequenceState;
  /**
   * Runs every item in one batched pass (matrix products over all items' tokens together, attention per sequence),
   * appends to each item's cache, and returns per item the requested logits as [rows, vocabSize] (or hidden states
   * as [rows, hiddenSize] for `logits: 'hidden'`). The returned arrays
   * belong to the caller (the model keeps no reference to them: the model worker transfers their buffers); several
   * items' arrays may be views of one buffer.
   */
  forward(items: readonly ForwardItem[]): Float32Array[];
}

/**
 * A CausalLM whose forward may answer later (a model running in a worker thread; see src/model-worker/).
 * Every CausalLM is one. The scheduler takes this type; sequence handles stay synchronous (the worker's proxy mirrors
 * their length, truncation limit and cache size).
 */
export interface AsyncCausalLM {
  readonly info: ModelInfo;
  newSequence(): SequenceState;
  forward(items: readonly ForwardItem[]): Float32Array[] | Promise<Float32Array[]>;
}

/** An image as callers give it: a file path or data URL, the file's bytes, or bytes with a label for messages. */
export type ImageSource = string | Uint8Array | { readonly bytes: Uint8Array; readonly label?: string };

/** A prompt after early fusion: image placeholders expanded into patch tokens, and their features. */
export interface EncodedImagePrompt {
  tokens: number[];
  /** [nImageTokens, hiddenSize] features for the image-token slots (see ForwardItem.patchEmbeddings). */
  patchEmbeddings: Float32Array;
}

/**
 * Early fusion: given a rendered prompt's tokens (one `<|image|>` placeholder id per image, in order) and the images,
 * returns the expanded tokens (each placeholder replaced by its tile layout of `<|patch|>` ids) and the patch
 * embeddings. Throws a Llama4Error (UsageError, ImageError) for images it cannot decode.
 */
export type ImagePromptEncoder = (tokens: number[], images: readonly ImageSource[]) => Promise<EncodedImagePrompt>;
