/**
 * Generation as small functions (gpt-fast's prefill / decode_one_token / decode_n_tokens):
 * prefill the prompt in bounded pieces, then decode one token per step, streaming each token as an async iterator.
 * Between steps control returns to the event loop, so servers stay responsive and an AbortSignal can stop it.
 */
import type { CausalLM, SequenceState } from '../model/types.ts';
import { UsageError } from '../util/index.ts';
import type { Sampler, SamplerOptions } from './sampler.ts';
import { makeSampler } from './sampler.ts';
import { yieldToEventLoop, type FinishReason } from './common.ts';

export type { FinishReason } from './common.ts';

export interface GenerateOptions {
  /** Tokens to generate at most. */
  maxTokens: number;
  sampler?: Sampler | SamplerOptions;
  /** Stop after any of these ids (the model's eos ids by default); the stop token is yielded, flagged. */
  stopTokens?: readonly number[];
  signal?: AbortSignal;
  /** Prompt tokens per forward call during prefill (bounds activation memory). Default 512. */
  prefillChunk?: number;
  /** Continue an existing sequence (its cached tokens are the prefix of `prompt`'s context). */
  seq?: SequenceState;
  /** Image features for the prompt's <|patch|> tokens, in order (see ForwardItem.patchEmbeddings). */
  patchEmbeddings?: Float32Array;
  /** Called with each step's logits before sampling (logprobs, constrained decoding). May modify them. */
  onLogits?: (logits: Float32Array, history: readonly number[]) => void;
}

export interface GenerationStep {
  readonly token: number;
  /** True when this token is a stop token (it ends generation). */
  readonly isStop: boolean;
  /** The logits the token was sampled from. */
  readonly logits: Float32Array;
}

/**
 * Runs `tokens` through the model in pieces of `chunk`, returning the last position's logits.
 * Image features are split across pieces by counting <|patch|> tokens.
 */
export async function prefill(
  model: CausalLM,
  seq: SequenceState,
  tokens: readonly number[],
  chunk = 512,
  patchEmbeddings?: Float32Array,
  signal?: AbortSignal,
): Promise<Float32Array> {
  if (tokens.length === 0) throw new UsageError('the prompt is empty');
  const H = model.info.hiddenSize;
  const img = model.info.imageTokenId;
  let featRow = 0;
  let logits: Float32Array = new Float32Array(0);
  for (let i = 0; i < tokens.length; i += chunk) {
    if (signal?.aborted) throw signal.reason ?? new Error('aborted');
    const piece = tokens.slice(i, i + chunk);
    const last = i + chunk >= tokens.length;
    let feats: Float32Array | undefined;
    if (patchEmbeddings && img !== null) {
      const n = piece.reduce((s, t) => s + (t === img ? 1 : 0), 0);
      if (n > 0) feats = patchEmbeddings.subarray(featRow * H, (featRow + n) * H);
      featRow += n;
    }
    [logits] = model.forward([{ seq, tokens: piece, logits: last ? 'last' : 'none', ...(feats ? { patchEmbeddings: feats } : {}) }]) as [
      Float32Array,
    ];
    if (!last) await yieldToEventLoop();
  }
  if (patchEmbeddings && featRow * H !== patchEmbeddings.length) {
    throw new UsageError(`the prompt has ${featRow} <|patch|> tokens but the images give ${patchEmbeddings.length / H} feature rows`);
  }
  return logits;
}

/**
 * Streams generated tokens. The generator's return value is why it stopped.
 * The prompt must not already be in `opts.seq` beyond its current length: tokens from seq.length on are prefilled.
 */
export async function* generate(
  model: CausalLM,
  prompt: readonly number[],
  opts: GenerateOptions,
): AsyncGenerator<GenerationStep, FinishReason> {
  const sampler = opts.sampler && 'sample' in opts.sampler ? opts.sampler : makeSampler(opts.sampler ?? {});
  const stops = new Set(opts.stopTokens ?? model.info.eosTokenIds);
  const seq = opts.seq ?? model.newSequence();
  if (seq.length > prompt.length)
    throw new UsageError(`the sequence already holds ${seq.length} tokens, more than the ${prompt.length}-token prompt`);
  if (prompt.length + opts.maxTokens > model.info.contextLength && prompt.length >= model.info.contextLength) {
    throw new UsageError(`the prompt (${prompt.length} tokens) does not fit the model's context of ${model.info.contextLength} tokens`);
  }
  const history = [...prompt];
  let logits: Float32Array;
  try {
    logits = await prefill(model, seq, prompt.slice(seq.length), opts.prefillChunk ?? 512, opts.patchEmbeddings, opts.signal);
  } catch (e) {
    if (opts.signal?.aborted) return 'cancelled';
    throw e;
  }
  for (let i = 0; i < opts.maxTokens; i++) {
    if (opts.signal?.aborted) return 'cancelled';
    opts.onLogits?.(logits, history);
    const token = sampler.sample(logits, history);
    const isStop = stops.has(token);
    history.push(token);
    yield { token, isStop, logits };
    if (isStop) return 'stop';
    if (i + 1 === opts.maxTokens || history.length >= model.info.contextLength) return 'length';
    await yieldToEventLoop();
    if (opts.signal?.aborted) return 'cancelled';
    [logits] = model.forward([{ seq, tokens: [token], logits: 'last' }]) as [Float32Array];
  }
  return 'length';
}

/** Collects a whole generation: the generated ids (stop token excluded) and why it ended. */
export async function generateAll(
  model: CausalLM,
  prompt: readonly number[],
  opts: GenerateOptions,
): Promise<{ tokens: number[]; finishReason: FinishReason }> {
  const tokens: number[] = [];
  const it = generate(model, prompt, opts);
  for (;;) {
    const r = await it.next();
    if (r.done) return { tokens, finishReason: r.value };
    if (!r.value.isStop) tokens.push(r.value.token);
  }
}
