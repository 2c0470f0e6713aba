/**
 * `loadGuard(path)` + `guard.check(conversation)`: a Llama Guard 4 checkpoint (any Llama 4 the loader reads; Guard
 * 4 itself is a dense Llama 4 with attention_chunk_size null and a vision tower) as a safety classifier.
 */
import { SpecialTextGuard } from '../chat/index.ts';
import type { AsyncCausalLM, ImagePromptEncoder } from '../engine/index.ts';
import { loadChatAssets, loadModel, type LoadedModel, type LoadOptions } from '../load.ts';
import type { Tokenizer } from '../tokenizer/index.ts';
import { UsageError } from '../util/index.ts';
import { LLAMA_GUARD_4_CATEGORIES, parseCategoryCodes, type GuardCategory } from './categories.ts';
import { guardImages, isGuardTemplate, promptCategories, renderGuardPrompt, renderGuardTemplate, type GuardMessage } from './prompt.ts';
import { GuardScorer, type GuardVerdict } from './verdict.ts';

export interface GuardCheckOptions {
  /** Categories to check: codes ("S1,S10" or ["S1", "S10"]) or category objects; default all 14. */
  categories?: string | readonly string[] | readonly GuardCategory[];
  /** Unsafe when P(unsafe)/(P(safe)+P(unsafe)) exceeds this (default 0.5). */
  threshold?: number;
}

export interface GuardCheckResult extends GuardVerdict {
  /** Whose last message was judged. */
  readonly role: 'User' | 'Agent';
  /** Prompt length in tokens (images expanded). */
  readonly promptTokens: number;
}

/** A conversation, or one user message as text. */
export type GuardInput = string | readonly GuardMessage[];

/**
 * What a guard computes with: a causal LM (in this thread, or a model worker's proxy so that checks run off the event
 * loop) and, for checkpoints with a vision tower, its early-fusion image encoder.
 */
export interface GuardModel {
  readonly model: AsyncCausalLM;
  readonly images?: ImagePromptEncoder | null | undefined;
}

export class Guard {
  readonly scorer: GuardScorer;
  /** Where the prompt comes from: the checkpoint's own guard template, or the built-in Llama Guard 4 format. */
  readonly promptSource: 'checkpoint template' | 'built-in';
  /** The loaded checkpoint when the guard computes in this thread (loadGuard); undefined for a worker-backed guard. */
  readonly loaded: LoadedModel | undefined;
  private readonly compute: GuardModel;

  constructor(
    compute: LoadedModel | GuardModel,
    readonly tokenizer: Tokenizer,
    readonly chatTemplate: string | null,
  ) {
    this.loaded = 'backend' in compute ? compute : undefined;
    this.compute = compute;
    this.scorer = new GuardScorer(compute.model, tokenizer);
    this.promptSource = isGuardTemplate(chatTemplate) ? 'checkpoint template' : 'built-in';
  }

  /** The exact prompt text for a conversation. */
  render(input: GuardInput, opts: GuardCheckOptions = {}): string {
    const messages = toMessages(input);
    const categories = resolveCategories(opts.categories);
    return this.promptSource === 'checkpoint template'
      ? renderGuardTemplate(this.chatTemplate!, messages, { categories })
      : renderGuardPrompt(messages, { categories });
  }

  async check(input: GuardInput, opts: GuardCheckOptions = {}): Promise<GuardCheckResult> {
    const messages = toMessages(input);
    const chosen = resolveCategories(opts.categories);
    const threshold = opts.threshold ?? 0.5;
    if (!(threshold >= 0 && threshold < 1)) throw new UsageError(`guard: threshold must be in [0, 1), got ${threshold}`);
    // Special-token text inside the judged messages ("<|eot|>…") stays text: only the prompt's own markers are control
    // tokens, so a message cannot end the guard's user turn and write its own verdict.
    const specials = new SpecialTextGuard(this.tokenizer, messages);
    const prompt = this.render(specials.protect(messages), { categories: chosen });
    let ids = specials.encode(prompt);
    let patchEmbeddings: Float32Array | undefined;
    const images = guardImages(messages);
    if (images.length) {
      const encode = this.compute.images;
      if (!encode) throw new UsageError('guard: this checkpoint has no vision tower, so it cannot check images');
      const enc = await encode(ids, images);
      ids = enc.tokens;
      patchEmbeddings = enc.patchEmbeddings;
    }
    const contextLength = this.compute.model.info.contextLength;
    if (ids.length >= contextLength)
      throw new UsageError(`guard: the prompt has ${ids.length} tokens, over the guard's context of ${contextLength}`);
    const categories = promptCategories(messages, { categories: chosen });
    const v = await this.scorer.score(ids, { categories, threshold, ...(patchEmbeddings ? { patchEmbeddings } : {}) });
    return { ...v, role: messages.length % 2 === 1 ? 'User' : 'Agent', promptTokens: ids.length };
  }
}

function toMessages(input: GuardInput): GuardMessage[] {
  if (typeof input === 'string') return [{ role: 'user', content: input }];
  if (!Array.isArray(input)) throw new UsageError('guard: give a conversation (a list of user/assistant messages) or a text');
  return input as GuardMessage[];
}

function resolveCategories(c: GuardCheckOptions['categories']): GuardCategory[] {
  if (c === undefined) return [...LLAMA_GUARD_4_CATEGORIES];
  if (typeof c === 'string') return parseCategoryCodes(c);
  if (c.length > 0 && typeof c[0] === 'object') return parseCategoryCodes((c as readonly GuardCategory[]).map((x) => x.code));
  return parseCategoryCodes(c as readonly string[]);
}

export interface LoadGuardOptions extends LoadOptions {
  /** Tokenizer (and template) location when not beside the weights. */
  tokenizer?: string;
}

/** Loads a Llama Guard checkpoint (HF folder or GGUF) with its tokenizer and, if it has one, its guard template. */
export async function loadGuard(path: string, opts: LoadGuardOptions = {}): Promise<Guard> {
  const loaded = await loadModel(path, opts);
  const assets = loadChatAssets(loaded, opts.tokenizer);
  return new Guard(loaded, assets.tokenizer, assets.chatTemplate);
}
