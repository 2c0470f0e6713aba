/**
 * One assistant turn for `llama4 run` and `llama4 chat`: render the conversation with the model's chat template,
 * encode it (special tokens recognised, no extra BOS), expand image placeholders into patch tokens, reuse the
 * cached prefix of the previous turn, and stream the answer's text until <|eot|>/<|eom|> or the token limit.
 */
import type { LoadedModel, ChatAssets } from '../load.ts';
import type { ChatMessage } from '../chat/index.ts';
import { chatPromptIds, renderChat } from '../chat/index.ts';
import { generate, type FinishReason, type SamplerOptions } from '../engine/index.ts';
import { encodeImages, expandImagePrompt } from '../model/llama4/vision-prompt.ts';
import type { SequenceState } from '../model/types.ts';
import { UsageError } from '../util/index.ts';

export interface ChatContext {
  readonly loaded: LoadedModel;
  readonly assets: ChatAssets;
  /** The cached sequence and the tokens it holds (prefix reuse across turns). */
  seq: SequenceState | null;
  cached: number[];
}

export function newChatContext(loaded: LoadedModel, assets: ChatAssets): ChatContext {
  return { loaded, assets, seq: null, cached: [] };
}

export interface TurnOptions {
  maxTokens: number;
  sampler: SamplerOptions;
  signal?: AbortSignal;
  /** Image files, in the order of the <|image|> placeholders the messages produce. */
  images?: string[];
  /** Context limit (`-c`): prompt + answer must fit; the answer stops when it is full. */
  contextLength?: number;
}

/** Streams the answer's text pieces; returns the full text and why generation ended. */
export async function* assistantTurn(ctx: ChatContext, messages: ChatMessage[], o: TurnOptions): AsyncGenerator<string, { text: string; finishReason: FinishReason }> {
  const { model, vision } = ctx.loaded;
  const { tokenizer, chatTemplate } = ctx.assets;
  const prompt = renderChat({ messages, addGenerationPrompt: true, ...(chatTemplate ? { template: chatTemplate } : {}) });
  let ids = chatPromptIds(tokenizer, prompt);
  let patchEmbeddings: Float32Array | undefined;
  if (o.images?.length) {
    if (!vision) throw new UsageError('this model has no vision tower: --image needs a multimodal checkpoint');
    const imgs = await encodeImages(vision, o.images);
    ids = expandImagePrompt(ids, imgs, vision.cfg);
    patchEmbeddings = imgs.embeddings;
  }
  if (o.contextLength !== undefined && ids.length >= o.contextLength) {
    throw new UsageError(`the prompt has ${ids.length} tokens, but the context (-c) holds ${o.contextLength}`);
  }
  const maxTokens = o.contextLength !== undefined ? Math.min(o.maxTokens, o.contextLength - ids.length) : o.maxTokens;
  // Reuse the previous turn's cache when it is a prefix of this prompt (no images: features enter at prefill only).
  let seq = ctx.seq;
  if (seq && !patchEmbeddings) {
    let common = 0;
    while (common < ctx.cached.length && common < ids.length - 1 && ctx.cached[common] === ids[common]) common++;
    if (!(common > 0 && seq.truncate(common))) seq = null;
  } else seq = null;
  seq ??= model.newSequence();
  ctx.seq = seq;
  const stopTokens = [...new Set([...tokenizer.stopIds, ...model.info.eosTokenIds])];
  const decoder = tokenizer.createStreamDecoder({ skipSpecial: true });
  const generated: number[] = [];
  let text = '';
  const it = generate(model, ids, { maxTokens, sampler: o.sampler, stopTokens, seq, ...(o.signal ? { signal: o.signal } : {}), ...(patchEmbeddings ? { patchEmbeddings } : {}) });
  let finishReason: FinishReason;
  for (;;) {
    const r = await it.next();
    if (r.done) { finishReason = r.value; break; }
    if (r.value.isStop) continue;
    generated.push(r.value.token);
    const piece = decoder.push(r.value.token);
    if (piece) { text += piece; yield piece; }
  }
  const rest = decoder.flush();
  if (rest) { text += rest; yield rest; }
  // The cache now holds the prompt plus every generated token but the last one sampled.
  ctx.cached = [...ids, ...generated].slice(0, seq.length);
  return { text, finishReason };
}
