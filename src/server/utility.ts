/**
 * llama-server's utility endpoints and model facts: POST /tokenize, /detokenize, /apply-template, GET /props,
 * /v1/models (with context length and capabilities), and Anthropic's POST /v1/messages/count_tokens.
 */
import { readFileSync } from 'node:fs';
import { readAnthropicChat } from './anthropic.ts';
import type { ServerEngine } from './engine.ts';
import { checkModel, readMessages, readTools, type RequestContext } from './openai.ts';
import { badRequest, chatChars, checkTextSize, field, isObject, type Json } from './util.ts';

/** This package's version (the `build` of /props and Ollama's /api/version). */
export const PACKAGE_VERSION: string = (() => {
  try {
    return (JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as { version: string }).version;
  } catch {
    return '0.0.0';
  }
})();

/** What the served model can do, in the words /v1/models and Ollama's /api/show use. */
export function capabilities(engine: ServerEngine): string[] {
  return ['completion', 'chat', 'tools', 'embeddings', ...(engine.supportsImages ? ['vision'] : [])];
}

/** Model facts shared by /v1/models, /props and /api/show. */
export function modelFacts(engine: ServerEngine): {
  contextLength: number;
  trainedContext: number;
  hiddenSize: number;
  vocabSize: number;
  architecture: string;
} {
  const info = engine.scheduler.model.info;
  return {
    contextLength: engine.scheduler.contextLength,
    trainedContext: info.contextLength,
    hiddenSize: info.hiddenSize,
    vocabSize: info.vocabSize,
    architecture: info.architecture,
  };
}

/** GET /v1/models: the one model under its listed name (--alias, else the file name). */
export function modelsList(engine: ServerEngine, name: string): Json {
  const f = modelFacts(engine);
  return {
    object: 'list',
    data: [
      {
        id: name,
        object: 'model',
        created: engine.created,
        owned_by: 'llama4-ts',
        context_length: f.contextLength,
        capabilities: capabilities(engine),
        meta: {
          n_ctx: f.contextLength,
          n_ctx_train: f.trainedContext,
          n_embd: f.hiddenSize,
          n_vocab: f.vocabSize,
          architecture: f.architecture,
        },
      },
    ],
  };
}

/** POST /tokenize: {content, add_special?, parse_special?, with_pieces?} → {tokens: [id] or [{id, piece}]}. */
export async function tokenizeRoute(body: Json, ctx: RequestContext): Promise<Response> {
  const { engine } = ctx;
  const content = field.str(body, 'content');
  if (content === undefined) throw badRequest("'content' is required (a string)", 'content');
  checkTextSize(content.length, engine.scheduler.contextLength * 4, 'content');
  const addSpecial = field.bool(body, 'add_special') ?? false;
  const parseSpecial = field.bool(body, 'parse_special') ?? true;
  const withPieces = field.bool(body, 'with_pieces') ?? false;
  const bos = engine.scheduler.model.info.bosTokenId;
  const ids = [...(addSpecial && bos !== null ? [bos] : []), ...engine.tokenize(content, parseSpecial)];
  return Response.json({ tokens: withPieces ? ids.map((id) => ({ id, piece: engine.detokenize([id]) })) : ids });
}

/** POST /detokenize: {tokens: [id]} → {content}. */
export async function detokenizeRoute(body: Json, ctx: RequestContext): Promise<Response> {
  const { engine } = ctx;
  const tokens = field.arr(body, 'tokens');
  if (!tokens) throw badRequest("'tokens' is required (an array of token ids)", 'tokens');
  const V = engine.vocabulary.size;
  tokens.forEach((t, i) => {
    if (!Number.isInteger(t) || (t as number) < 0 || (t as number) >= V)
      throw badRequest(`'tokens[${i}]' must be a token id in 0..${V - 1}`, 'tokens');
  });
  if (tokens.length > engine.scheduler.contextLength * 4)
    throw badRequest(`'tokens' has ${tokens.length} ids; at most ${engine.scheduler.contextLength * 4}`, 'tokens');
  return Response.json({ content: engine.detokenize(tokens as number[]) });
}

/** POST /apply-template: OpenAI chat messages (and tools) → {prompt} as the chat template renders it. */
export async function applyTemplateRoute(body: Json, ctx: RequestContext): Promise<Response> {
  const messages = await readMessages(body, ctx);
  checkTextSize(chatChars(messages), ctx.engine.scheduler.contextLength, 'messages');
  const { tools } = readTools(body);
  return Response.json({ prompt: ctx.engine.renderChat(messages, tools) });
}

/** GET /props: model facts, context length, chat template, build (the fields llama-server clients read). */
export function props(engine: ServerEngine, name: string): Json {
  const f = modelFacts(engine);
  const info = engine.scheduler.model.info;
  return {
    model_alias: name,
    model_path: engine.modelId,
    total_slots: engine.scheduler.parallel,
    default_generation_settings: { n_ctx: f.contextLength, params: { temperature: 1, top_k: 0, top_p: 1, min_p: 0, n_predict: -1 } },
    n_ctx: f.contextLength,
    n_ctx_train: f.trainedContext,
    n_embd: f.hiddenSize,
    n_vocab: f.vocabSize,
    architecture: f.architecture,
    chat_template: engine.chatTemplate ?? '',
    chat_template_builtin: engine.chatTemplate === null,
    bos_token: info.bosTokenId !== null ? engine.tokenText(info.bosTokenId) : '',
    eos_token: info.eosTokenIds.map((t) => engine.detokenize([t])),
    modalities: { vision: engine.supportsImages, audio: false },
    capabilities: capabilities(engine),
    build_info: `llama4-ts ${PACKAGE_VERSION}`,
  };
}

/** POST /v1/messages/count_tokens: the prompt tokens a Messages request would use. */
export async function countTokens(body: Json, ctx: RequestContext): Promise<Response> {
  checkModel(ctx.engine, body);
  const { msgs, tools } = await readAnthropicChat(body, ctx);
  if (!isObject(body) || msgs.length === 0) throw badRequest('messages: at least one message is required', 'messages');
  checkTextSize(chatChars(msgs), ctx.engine.scheduler.contextLength, 'messages');
  const prompt = await ctx.engine.encodeChat(msgs, tools);
  return Response.json({ input_tokens: prompt.tokens.length });
}
