/**
 * The chat engine: one model (an AsyncCausalLM: in this thread or in a worker) with its tokenizer and chat layer
 * (src/chat: the model's own Jinja template when it has one, else the built-in Llama 4 format; its tool-call
 * parsers), the continuous-batching scheduler, and optionally an image encoder for early fusion. Every chat turn runs
 * through it: the server's routes (as `ServerEngine`), the library's ChatSession and `llama4 run` / `chat` (a
 * ChatSession on an engine with one slot). The turn itself — decoding, stop strings, tool calls — is completion.ts.
 */
import type { AsyncCausalLM, ImagePromptEncoder } from '../model/types.ts';
import type { StreamDecoder, Tokenizer } from '../tokenizer/index.ts';

export type { StreamDecoder } from '../tokenizer/index.ts';
import {
  SpecialTextGuard,
  chatPromptIds,
  createToolCallStreamParser,
  messageImages,
  parseToolCalls,
  renderChat,
  toTemplateMessages,
  toolDefinitions,
  type ChatMessage,
  type ToolCallStreamEvent,
  type ToolSpec,
} from '../chat/index.ts';
import { Scheduler, type SamplingOptions, type SchedulerOptions } from './scheduler.ts';
import type { TokenVocabulary } from './json-schema-mask.ts';
import { Llama4Error, UsageError } from '../util/index.ts';
import { computeHiddenStates } from './hidden-states.ts';

export interface EncodedPrompt {
  tokens: number[];
  /** [nImageTokens, hiddenSize] features for the image-token slots (see ForwardItem.patchEmbeddings). */
  patchEmbeddings?: Float32Array;
}

export interface ParsedToolCalls {
  content: string | null;
  toolCalls: { name: string; arguments: unknown }[];
}

/** Incremental tool-call extraction for streaming: prose streams out, calls come at the end. */
export interface ToolCallStream {
  /** Feeds generated text; returns the part that is certainly prose (safe to stream now). */
  push(delta: string): string;
  /** End of output: the held-back prose not yet returned, and the tool calls. */
  end(): { content: string; toolCalls: ParsedToolCalls['toolCalls'] };
}

/**
 * What a chat turn needs from a model. The HTTP routes only translate JSON to these calls (tests drive the server with
 * a fake one: a fake CausalLM and a character tokenizer, see test/server-fixtures.ts).
 */
export interface ChatEngine {
  /** The id /v1/models lists and requests must name. */
  readonly modelId: string;
  /** Unix seconds the model was loaded. */
  readonly created: number;
  readonly scheduler: Scheduler;
  /** Token texts for constrained decoding. */
  readonly vocabulary: TokenVocabulary;
  /** Tokens that end a turn: the tokenizer's stop ids (EOS, <|eot|>, <|eom|>) and the model's EOS ids, once each. */
  readonly endTokens: readonly number[];
  readonly supportsImages: boolean;
  /**
   * Renders a conversation with the chat template (generation prompt appended) and tokenizes it; decodes images into
   * patch embeddings. Throws UsageError for inputs it cannot take (bad image, unsupported role order).
   */
  encodeChat(messages: ChatMessage[], tools: ToolSpec[] | null): Promise<EncodedPrompt>;
  /** Plain completion prompt: BOS + the text's tokens. */
  encodeText(text: string): number[];
  newDecoder(): StreamDecoder;
  /** Text of one token, for logprobs (partial UTF-8 shows as U+FFFD). */
  tokenText(token: number): string;
  /** Splits a finished assistant output into prose and tool calls (never throws). */
  parseToolCalls(text: string, tools: ToolSpec[]): ParsedToolCalls;
  /** Streaming form of parseToolCalls; without it, outputs of requests with tools are buffered until the end. */
  newToolCallStream?(tools: ToolSpec[]): ToolCallStream;
  /** Token ids of plain text, no BOS; `special` recognises special-token text (llama-server's /tokenize). */
  tokenize(text: string, special?: boolean): number[];
  /** Text of token ids, special tokens included (/detokenize). */
  detokenize(tokens: readonly number[]): string;
  /** The rendered chat prompt as text, before tokenizing (/apply-template; same inputs as encodeChat). */
  renderChat(messages: ChatMessage[], tools: ToolSpec[] | null): string;
  /** The Jinja chat template in use, or null for the built-in Llama 4 format (/props, /api/show). */
  readonly chatTemplate: string | null;
  /**
   * Final-norm hidden states of a token sequence, [tokens.length, hiddenSize] (a fresh sequence, prefilled in
   * pieces of `stepTokens`; the embeddings endpoints pool them).
   */
  hiddenStates(tokens: readonly number[], signal?: AbortSignal): Promise<Float32Array>;
  /** Releases the model (stops its worker thread); the server calls it on close. */
  close?(): Promise<void>;
  /** Why the model can no longer generate (its worker thread died), or null; /health then answers 503. */
  failure?(): string | null;
  /** The model's own sampling defaults (generation_config.json), which the chat page starts from. */
  readonly samplingDefaults?: SamplingOptions;
}

export interface ChatEngineOptions extends SchedulerOptions {
  modelId: string;
  model: AsyncCausalLM;
  tokenizer: Tokenizer;
  /** Jinja chat template (tokenizer_config.json / GGUF tokenizer.chat_template); null = the built-in Llama 4 format. */
  chatTemplate?: string | null;
  images?: ImagePromptEncoder;
  /** Releases what the model holds (a worker thread); called by close(). */
  close?: () => Promise<void>;
  /** Why the model can no longer generate, or null (see ChatEngine.failure). */
  failure?: () => string | null;
  /**
   * Special-token text inside messages (`<|eot|>`, `<|header_start|>`, …) becomes control tokens, as the
   * reference's apply_chat_template + tokenizer do. Off by default: a user could then forge system or assistant
   * turns and displace images; only the template's own markers are control tokens (chat/plain-specials.ts).
   */
  specialTokensInMessages?: boolean;
  /** The model's sampling defaults (ChatEngine.samplingDefaults). */
  samplingDefaults?: SamplingOptions;
}

/** The tokens that end a turn: the tokenizer's stop ids and the model's EOS ids, each once, in that order. */
export function turnEndTokens(tokenizer: Pick<Tokenizer, 'stopIds'>, model: Pick<AsyncCausalLM, 'info'>): number[] {
  return [...new Set([...tokenizer.stopIds, ...model.info.eosTokenIds])];
}

/** Tool-call parsing through the chat layer (src/chat/tool-calls.ts), in the ChatEngine's shape. */
export const chatLayerToolCalls = {
  parse(text: string): ParsedToolCalls {
    return parseToolCalls(text);
  },
  stream(): ToolCallStream {
    const parser = createToolCallStreamParser();
    const content = (evs: ToolCallStreamEvent[]) => evs.map((e) => (e.type === 'content' ? e.text : '')).join('');
    return {
      push: (delta) => content(parser.push(delta)),
      end() {
        const evs = parser.end();
        return { content: content(evs), toolCalls: evs.flatMap((e) => (e.type === 'tool_calls' ? e.calls : [])) };
      },
    };
  },
};

export function createChatEngine(o: ChatEngineOptions): ChatEngine {
  const { model, tokenizer } = o;
  const bosText = tokenizer.bosId !== undefined ? (tokenizer.idToToken(tokenizer.bosId) ?? '') : '';
  const endTokens = turnEndTokens(tokenizer, model);
  const scheduler = new Scheduler(model, o);
  // Token texts for constrained decoding, built on first use (a decode per id).
  let texts: (string | null)[] | null = null;
  const vocabulary: TokenVocabulary = {
    size: model.info.vocabSize,
    text(id) {
      if (!texts) {
        const dec = new TextDecoder('utf-8', { fatal: false });
        texts = new Array(model.info.vocabSize);
        for (let i = 0; i < model.info.vocabSize; i++) {
          texts[i] = tokenizer.specialIds.has(i) || tokenizer.idToToken(i) === undefined ? null : dec.decode(tokenizer.decodeBytes([i]));
        }
      }
      return texts[id] ?? null;
    },
  };
  /** The rendered prompt; with a guard, special-token text in the messages is marked (see chat/plain-specials.ts). */
  const render = (messages: ChatMessage[], tools: ToolSpec[] | null, guard: SpecialTextGuard | null = null): string => {
    const templateMessages = toTemplateMessages(messages);
    const toolDefs = tools ? toolDefinitions(tools) : null;
    try {
      return renderChat({
        messages: guard ? guard.protect(templateMessages) : templateMessages,
        tools: guard ? guard.protect(toolDefs) : toolDefs,
        addGenerationPrompt: true,
        ...(o.chatTemplate ? { template: o.chatTemplate } : {}),
        ...(bosText ? { bosToken: bosText } : {}),
      });
    } catch (e) {
      if (e instanceof Llama4Error) throw e;
      throw new UsageError(`the chat template refused the conversation: ${(e as Error).message}`);
    }
  };
  return {
    modelId: o.modelId,
    created: Math.floor(Date.now() / 1000),
    scheduler,
    vocabulary,
    endTokens,
    supportsImages: o.images !== undefined && model.info.imageTokenId !== null,
    async encodeChat(messages, tools) {
      const images = messageImages(messages);
      if (images.length && !o.images) throw new UsageError('this model does not take images');
      // Only the template's own markers become control tokens, unless the reference's behaviour was asked for.
      const guard = o.specialTokensInMessages ? null : new SpecialTextGuard(tokenizer, [messages, tools]);
      const text = render(messages, tools, guard);
      const tokens = guard ? guard.encode(text) : chatPromptIds(tokenizer, text);
      return images.length ? o.images!(tokens, images) : { tokens };
    },
    renderChat: (messages, tools) => render(messages, tools),
    chatTemplate: o.chatTemplate ?? null,
    tokenize: (text, special) => tokenizer.encode(text, { allowSpecial: special === true }),
    detokenize: (ids) => tokenizer.decode([...ids]),
    hiddenStates: (tokens, signal) => computeHiddenStates(model, tokens, o.stepTokens ?? 128, signal),
    encodeText(text) {
      const ids = tokenizer.encode(text);
      return tokenizer.bosId !== undefined ? [tokenizer.bosId, ...ids] : ids;
    },
    newDecoder: () => tokenizer.createStreamDecoder({ skipSpecial: true }),
    tokenText: (t) => tokenizer.decode([t]),
    parseToolCalls: (text) => chatLayerToolCalls.parse(text),
    newToolCallStream: () => chatLayerToolCalls.stream(),
    ...(o.close ? { close: o.close } : {}),
    ...(o.failure ? { failure: o.failure } : {}),
    ...(o.samplingDefaults ? { samplingDefaults: o.samplingDefaults } : {}),
  };
}
