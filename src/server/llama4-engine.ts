/**
 * The real ServerEngine: a CausalLM with its tokenizer and chat template (the model's own Jinja template when it has
 * one, else the plain Llama 4 turn format), the scheduler, and optionally an image encoder for early fusion.
 */
import type { CausalLM } from '../model/types.ts';
import type { Tokenizer } from '../tokenizer/index.ts';
import { JinjaTemplate } from '../chat/jinja.ts';
import { Scheduler, type SchedulerOptions } from '../engine/scheduler.ts';
import type { TokenVocabulary } from '../engine/json-schema-mask.ts';
import { UsageError } from '../util/index.ts';
import type { ChatMessage, EncodedPrompt, ServerEngine, ToolSpec } from './engine.ts';
import { parseLlama4ToolCalls } from './tool-calls.ts';

/**
 * Early fusion: given the rendered prompt's tokens (one `<|image|>` placeholder id per image, in order) and the image
 * files, returns the expanded tokens (each placeholder replaced by its tile layout of `<|patch|>` ids) and the patch
 * embeddings [nPatchTokens, hidden]. Throws UsageError for images it cannot decode.
 */
export type ImagePromptEncoder = (tokens: number[], images: Uint8Array[]) => Promise<EncodedPrompt>;

export interface Llama4EngineOptions extends SchedulerOptions {
  modelId: string;
  model: CausalLM;
  tokenizer: Tokenizer;
  /** Jinja chat template (tokenizer_config.json / GGUF tokenizer.chat_template); null = plain Llama 4 format. */
  chatTemplate?: string | null;
  images?: ImagePromptEncoder;
}

/** The chat template's view of a message (Hugging Face transformers' message format). */
function templateMessage(m: ChatMessage): Record<string, unknown> {
  const hasImage = m.content.some((p) => p.type === 'image');
  const text = m.content.map((p) => (p.type === 'text' ? p.text : '')).join('');
  const content = hasImage ? m.content.map((p) => (p.type === 'text' ? { type: 'text', text: p.text } : { type: 'image' })) : text;
  const out: Record<string, unknown> = { role: m.role, content };
  if (m.toolCalls?.length) {
    out.tool_calls = m.toolCalls.map((c) => {
      let args: unknown = c.arguments;
      try {
        args = JSON.parse(c.arguments);
      } catch {
        /* templates print it as given */
      }
      return { id: c.id, type: 'function', function: { name: c.name, arguments: args } };
    });
  }
  if (m.toolCallId) out.tool_call_id = m.toolCallId;
  if (m.name) out.name = m.name;
  return out;
}

/** The Llama 4 turn format without a template file: header, content, <|eot|>; tools listed in a system turn. */
function plainRender(messages: ChatMessage[], tools: ToolSpec[] | null, bos: string): string {
  let s = bos;
  const turn = (role: string, body: string) => `<|header_start|>${role}<|header_end|>\n\n${body}<|eot|>`;
  if (tools) {
    s += turn('system', `You may call these functions. To call one, answer with only {"name": function name, "parameters": {argument: value}}.\n${tools.map((t) => JSON.stringify({ type: 'function', function: t })).join('\n')}`);
  }
  for (const m of messages) {
    let body = m.content.map((p) => (p.type === 'text' ? p.text : '<|image|>')).join('');
    for (const c of m.toolCalls ?? []) body += `{"name": ${JSON.stringify(c.name)}, "parameters": ${c.arguments}}`;
    s += turn(m.role === 'tool' ? 'ipython' : m.role, body.trim());
  }
  return s + '<|header_start|>assistant<|header_end|>\n\n';
}

export function llama4Engine(o: Llama4EngineOptions): ServerEngine {
  const { model, tokenizer } = o;
  const template = o.chatTemplate ? new JinjaTemplate(o.chatTemplate) : null;
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
      if (template) {
        try {
          text = template.render({
            messages: messages.map(templateMessage),
            ...(tools ? { tools: tools.map((t) => ({ type: 'function', function: t })) } : {}),
            add_generation_prompt: true,
            bos_token: bosText,
          });
        } catch (e) {
          throw new UsageError(`the chat template refused the conversation: ${(e as Error).message}`);
        }
      } else text = plainRender(messages, tools, bosText);
      const tokens = tokenizer.encode(text, { allowSpecial: true });
      return images.length ? o.images!(tokens, images) : { tokens };
    },
    encodeText(text) {
      const ids = tokenizer.encode(text);
      return tokenizer.bosId !== undefined ? [tokenizer.bosId, ...ids] : ids;
    },
    newDecoder: () => tokenizer.createStreamDecoder({ skipSpecial: true }),
    tokenText: (t) => tokenizer.decode([t]),
    parseToolCalls: (text, tools) => parseLlama4ToolCalls(text, tools.map((t) => t.name)),
  };
}
