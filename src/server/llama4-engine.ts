/**
 * The real ServerEngine: a CausalLM with its tokenizer and chat layer (src/chat: the model's own Jinja template when
 * it has one, else the built-in Llama 4 format; its tool-call parsers), the scheduler, and optionally an image
 * encoder for early fusion.
 */
import type { AsyncCausalLM } from '../model/types.ts';
import type { Tokenizer } from '../tokenizer/index.ts';
import { SpecialTextGuard, chatPromptIds, createToolCallStreamParser, parseToolCalls, renderChat, type ChatMessage as ChatLayerMessage, type ToolCallStreamEvent, type ToolDefinition } from '../chat/index.ts';
import { Scheduler, type SamplingOptions, type SchedulerOptions } from '../engine/scheduler.ts';
import type { TokenVocabulary } from '../engine/json-schema-mask.ts';
import { Llama4Error, UsageError } from '../util/index.ts';
import type { ChatMessage, EncodedPrompt, ParsedToolCalls, ServerEngine, ToolCallStream, ToolSpec } from './engine.ts';

/**
 * Early fusion: given the rendered prompt's tokens (one `<|image|>` placeholder id per image, in order) and the image
 * files, returns the expanded tokens (each placeholder replaced by its tile layout of `<|patch|>` ids) and the patch
 * embeddings [nPatchTokens, hidden]. Throws UsageError for images it cannot decode.
 */
export type ImagePromptEncoder = (tokens: number[], images: Uint8Array[]) => Promise<EncodedPrompt>;

export interface Llama4EngineOptions extends SchedulerOptions {
  modelId: string;
  model: AsyncCausalLM;
  tokenizer: Tokenizer;
  /** Jinja chat template (tokenizer_config.json / GGUF tokenizer.chat_template); null = the built-in Llama 4 format. */
  chatTemplate?: string | null;
  images?: ImagePromptEncoder;
  /** Releases what the model holds (a worker thread); called when the server closes. */
  close?: () => Promise<void>;
  /** Why the model can no longer generate, or null (see ServerEngine.failure). */
  failure?: () => string | null;
  /**
   * Special-token text inside messages (`<|eot|>`, `<|header_start|>`, …) becomes control tokens, as the
   * reference's apply_chat_template + tokenizer do. Off by default: a user could then forge system or assistant
   * turns and displace images; only the template's own markers are control tokens (chat/plain-specials.ts).
   */
  specialTokensInMessages?: boolean;
  /** The model's sampling defaults (ServerEngine.samplingDefaults). */
  samplingDefaults?: SamplingOptions;
}

/** The chat layer's view of a message (OpenAI format; images become one `<|image|>` placeholder each). */
function chatMessage(m: ChatMessage): ChatLayerMessage {
  const hasImage = m.content.some((p) => p.type === 'image');
  const text = m.content.map((p) => (p.type === 'text' ? p.text : '')).join('');
  const out: ChatLayerMessage = {
    role: m.role,
    content: hasImage ? m.content.map((p) => (p.type === 'text' ? { type: 'text' as const, text: p.text } : { type: 'image' as const })) : text,
  };
  if (m.toolCalls?.length) out.tool_calls = m.toolCalls.map((c) => ({ id: c.id, type: 'function' as const, function: { name: c.name, arguments: c.arguments } }));
  if (m.toolCallId) out.tool_call_id = m.toolCallId;
  if (m.name) out.name = m.name;
  return out;
}

const toolDefinitions = (tools: ToolSpec[]): ToolDefinition[] =>
  tools.map((t) => ({ type: 'function', function: { name: t.name, ...(t.description ? { description: t.description } : {}), ...(t.parameters ? { parameters: t.parameters as Record<string, unknown> } : {}) } }));

/** Tool-call parsing through the chat layer (src/chat/tool-calls.ts), in the ServerEngine's shape. */
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

export function llama4Engine(o: Llama4EngineOptions): ServerEngine {
  const { model, tokenizer } = o;
  const bosText = tokenizer.bosId !== undefined ? (tokenizer.idToToken(tokenizer.bosId) ?? '') : '';
  const endTokens = [...new Set([...tokenizer.stopIds, ...model.info.eosTokenIds])];
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
  return {
    modelId: o.modelId,
    created: Math.floor(Date.now() / 1000),
    scheduler,
    vocabulary,
    endTokens,
    supportsImages: o.images !== undefined && model.info.imageTokenId !== null,
    async encodeChat(messages, tools) {
      const images = messages.flatMap((m) => m.content.flatMap((p) => (p.type === 'image' ? [p.data] : [])));
      if (images.length && !o.images) throw new UsageError('this model does not take images');
      let text: string;
      const chatMessages = messages.map(chatMessage);
      const toolDefs = tools ? toolDefinitions(tools) : null;
      const guard = o.specialTokensInMessages ? null : new SpecialTextGuard(tokenizer, [chatMessages, toolDefs]);
      try {
        text = renderChat({
          messages: guard ? guard.protect(chatMessages) : chatMessages,
          tools: guard ? guard.protect(toolDefs) : toolDefs,
          addGenerationPrompt: true,
          ...(o.chatTemplate ? { template: o.chatTemplate } : {}),
          ...(bosText ? { bosToken: bosText } : {}),
        });
      } catch (e) {
        if (e instanceof Llama4Error) throw e;
        throw new UsageError(`the chat template refused the conversation: ${(e as Error).message}`);
      }
      const tokens = guard ? guard.encode(text) : chatPromptIds(tokenizer, text);
      return images.length ? o.images!(tokens, images) : { tokens };
    },
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
