/**
 * Anthropic Messages API: POST /v1/messages (system, text, images, tools, tool results; streaming events
 * message_start / content_block_* / message_delta / message_stop).
 */
import type { ChatMessage, ContentPart, ToolSpec } from './engine.ts';
import { runGeneration, type ChoiceOutput, type RunParams, type RunResult } from './generation.ts';
import { checkModel, compiles, toolParams, type RequestContext } from './openai.ts';
import { sseResponse, type SseWriter } from './sse.ts';
import {
  type ApiError,
  badRequest,
  decodeBase64Image,
  field,
  isObject,
  loadImageUrl,
  randomId,
  readStops,
  toolCallSchema,
  type Json,
  generationError,
  encodeChatWithin,
} from './util.ts';

export function anthropicError(e: ApiError): Json {
  const type = {
    invalid_request: 'invalid_request_error',
    authentication: 'authentication_error',
    not_found: 'not_found_error',
    rate_limit: 'rate_limit_error',
    server: 'api_error',
    too_large: 'request_too_large',
  }[e.kind];
  return { type: 'error', error: { type, message: e.message } };
}

async function readBlocks(
  content: unknown,
  path: string,
  ctx: RequestContext,
  allowTools: 'user' | 'assistant',
): Promise<{ parts: ContentPart[]; toolUses: ChatMessage['toolCalls']; toolResults: ChatMessage[] }> {
  const parts: ContentPart[] = [];
  const toolUses: NonNullable<ChatMessage['toolCalls']> = [];
  const toolResults: ChatMessage[] = [];
  if (typeof content === 'string') return { parts: [{ type: 'text', text: content }], toolUses, toolResults };
  if (!Array.isArray(content)) throw badRequest(`${path}: content must be a string or an array of content blocks`, path);
  for (let j = 0; j < content.length; j++) {
    const b = content[j];
    const bp = `${path}.${j}`;
    if (!isObject(b)) throw badRequest(`${bp}: a content block must be an object`, bp);
    switch (b.type) {
      case 'text':
        if (typeof b.text !== 'string') throw badRequest(`${bp}.text: Field required`, bp);
        parts.push({ type: 'text', text: b.text });
        break;
      case 'image': {
        if (allowTools !== 'user') throw badRequest(`${bp}: images are only allowed in user messages`, bp);
        if (!ctx.engine.supportsImages) throw badRequest(`${bp}: this model does not take images`, bp);
        const src = b.source;
        if (!isObject(src)) throw badRequest(`${bp}.source: Field required`, bp);
        if (src.type === 'base64' && typeof src.data === 'string')
          parts.push(decodeBase64Image(src.data, `${bp}.source.data`, ctx.images.maxBytes));
        else if (src.type === 'url' && typeof src.url === 'string') parts.push(await loadImageUrl(src.url, `${bp}.source.url`, ctx.images));
        else throw badRequest(`${bp}.source: must be {type: 'base64', media_type, data} or {type: 'url', url}`, bp);
        break;
      }
      case 'tool_use':
        if (allowTools !== 'assistant') throw badRequest(`${bp}: tool_use blocks belong in assistant messages`, bp);
        if (typeof b.id !== 'string' || typeof b.name !== 'string') throw badRequest(`${bp}: tool_use needs id and name`, bp);
        toolUses.push({ id: b.id, name: b.name, arguments: JSON.stringify(b.input ?? {}) });
        break;
      case 'tool_result': {
        if (allowTools !== 'user') throw badRequest(`${bp}: tool_result blocks belong in user messages`, bp);
        if (typeof b.tool_use_id !== 'string') throw badRequest(`${bp}.tool_use_id: Field required`, bp);
        const inner = b.content === undefined ? [] : await readBlocks(b.content, `${bp}.content`, ctx, 'user');
        const text = Array.isArray(inner) ? '' : inner.parts.map((p) => (p.type === 'text' ? p.text : '')).join('');
        toolResults.push({
          role: 'tool',
          toolCallId: b.tool_use_id,
          content: [{ type: 'text', text: b.is_error === true ? `Error: ${text}` : text }],
        });
        break;
      }
      default:
        throw badRequest(`${bp}.type: ${JSON.stringify(b.type)} is not supported (text, image, tool_use, tool_result)`, bp);
    }
  }
  return { parts, toolUses, toolResults };
}

function readTools(body: Json): { tools: ToolSpec[] | null; forced: boolean } {
  const tools = readToolList(body);
  const tc = isObject(body.tool_choice) ? body.tool_choice : undefined;
  return { tools, forced: tools !== null && (tc?.type === 'any' || tc?.type === 'tool') };
}

function readToolList(body: Json): ToolSpec[] | null {
  const raw = field.arr(body, 'tools');
  if (!raw || raw.length === 0) return null;
  const tools = raw.map((t, i): ToolSpec => {
    const p = `tools.${i}`;
    if (!isObject(t) || typeof t.name !== 'string' || !/^[a-zA-Z0-9_-]{1,64}$/.test(t.name))
      throw badRequest(`${p}.name: must match ^[a-zA-Z0-9_-]{1,64}$`, p);
    if (t.type !== undefined && t.type !== 'custom') throw badRequest(`${p}.type: server tools (${String(t.type)}) are not supported`, p);
    if (!isObject(t.input_schema)) throw badRequest(`${p}.input_schema: Field required`, p);
    return { name: t.name, ...(typeof t.description === 'string' ? { description: t.description } : {}), parameters: t.input_schema };
  });
  const tc = field.obj(body, 'tool_choice');
  if (!tc || tc.type === 'auto' || tc.type === 'any') return tools;
  if (tc.type === 'none') return null;
  if (tc.type === 'tool' && typeof tc.name === 'string') {
    const named = tools.filter((t) => t.name === tc.name);
    if (!named.length) throw badRequest(`tool_choice.name: '${tc.name}' is not in tools`, 'tool_choice');
    return named;
  }
  throw badRequest("tool_choice: must be {type: 'auto' | 'any' | 'none'} or {type: 'tool', name}", 'tool_choice');
}

function stopReason(c: ChoiceOutput): string {
  if (c.error) throw generationError(c.error);
  if (c.finishReason === 'tool_calls') return 'tool_use';
  if (c.finishReason === 'length') return 'max_tokens';
  return c.stopSequence !== null ? 'stop_sequence' : 'end_turn';
}

function contentBlocks(c: ChoiceOutput): Json[] {
  const blocks: Json[] = [];
  const text = c.toolCalls.length ? c.content : c.text;
  if (text) blocks.push({ type: 'text', text });
  for (const t of c.toolCalls) {
    let input: unknown = {};
    try {
      input = JSON.parse(t.arguments);
    } catch {
      input = { arguments: t.arguments };
    }
    blocks.push({ type: 'tool_use', id: t.id.replace(/^call_/, 'toolu_'), name: t.name, input });
  }
  return blocks;
}

const usage = (r: RunResult) => ({
  input_tokens: r.promptTokens,
  output_tokens: r.choices[0]?.completionTokens ?? 0,
  cache_read_input_tokens: r.cachedTokens,
  cache_creation_input_tokens: 0,
});

/** The conversation and tools of a Messages request (also what /v1/messages/count_tokens counts). */
export async function readAnthropicChat(
  body: Json,
  ctx: RequestContext,
): Promise<{ msgs: ChatMessage[]; tools: ToolSpec[] | null; forced: boolean }> {
  const raw = field.arr(body, 'messages');
  if (!raw || raw.length === 0) throw badRequest('messages: at least one message is required', 'messages');
  const msgs: ChatMessage[] = [];
  const sys = body.system;
  if (sys !== undefined && sys !== null) {
    const { parts } = await readBlocks(sys, 'system', ctx, 'assistant');
    msgs.push({ role: 'system', content: parts });
  }
  for (let i = 0; i < raw.length; i++) {
    const m = raw[i];
    const path = `messages.${i}`;
    if (!isObject(m)) throw badRequest(`${path}: a message must be an object`, path);
    if (m.role !== 'user' && m.role !== 'assistant') throw badRequest(`${path}.role: must be 'user' or 'assistant'`, path);
    const { parts, toolUses, toolResults } = await readBlocks(m.content, `${path}.content`, ctx, m.role);
    if (m.role === 'assistant') msgs.push({ role: 'assistant', content: parts, ...(toolUses?.length ? { toolCalls: toolUses } : {}) });
    else {
      // Tool results answer the previous assistant turn's calls; they precede any new user text.
      for (const tr of toolResults) {
        const name = msgs.flatMap((x) => x.toolCalls ?? []).find((c) => c.id === tr.toolCallId)?.name;
        msgs.push(name ? { ...tr, name } : tr);
      }
      if (parts.length || !toolResults.length) msgs.push({ role: 'user', content: parts });
    }
  }
  const { tools, forced } = readTools(body);
  return { msgs, tools, forced };
}

export async function messages(body: Json, ctx: RequestContext): Promise<Response> {
  const { engine } = ctx;
  const model = checkModel(engine, body);
  const maxTokens = field.int(body, 'max_tokens', 1, 1e9);
  if (maxTokens === undefined) throw badRequest('max_tokens: Field required', 'max_tokens');
  const { msgs, tools, forced } = await readAnthropicChat(body, ctx);
  const tc = field.obj(body, 'tool_choice');
  const noParallel = tc !== undefined && field.bool(tc, 'disable_parallel_tool_use', 'tool_choice.disable_parallel_tool_use') === true;
  const sampling: RunParams['sampling'] = {};
  const t = field.num(body, 'temperature', 0, 1);
  if (t !== undefined) sampling.temperature = t;
  const tp = field.num(body, 'top_p', 0, 1);
  if (tp !== undefined) sampling.topP = tp;
  const tk = field.int(body, 'top_k', 0, 1e9);
  if (tk !== undefined) sampling.topK = tk;
  const stream = field.bool(body, 'stream') ?? false;
  const ctxLen = engine.scheduler.contextLength;
  const prompt = await encodeChatWithin(
    engine,
    msgs,
    tools,
    ctxLen,
    'messages',
    (n) => `prompt is too long: ${n} tokens > ${ctxLen - 1} maximum`,
  );
  const params: RunParams = {
    tokens: prompt.tokens,
    ...(prompt.patchEmbeddings ? { patchEmbeddings: prompt.patchEmbeddings } : {}),
    maxTokens: Math.min(maxTokens, ctxLen - prompt.tokens.length),
    n: 1,
    sampling,
    stop: readStops(body.stop_sequences, 'stop_sequences'),
    // tool_choice any/tool: the output must be one JSON call to one of the tools (constrained decoding).
    json: forced ? { schema: toolCallSchema(tools!, compiles) } : null,
    tools,
    ...toolParams(tools, forced, noParallel ? false : undefined),
    signal: ctx.signal,
  };
  ctx.note({ model, stream, prompt_tokens: prompt.tokens.length, tools: tools?.length ?? 0 });
  const id = `msg_${randomId(24)}`;
  if (!stream) {
    const r = await runGeneration(engine, params);
    ctx.done(r);
    const c = r.choices[0]!;
    return Response.json({
      id,
      type: 'message',
      role: 'assistant',
      model,
      content: contentBlocks(c),
      stop_reason: stopReason(c),
      stop_sequence: c.stopSequence,
      usage: usage(r),
    });
  }
  let w: SseWriter | null = null;
  const early: string[] = [];
  let textOpen = false;
  const sendText = (text: string) => {
    if (!text) return;
    if (!textOpen) {
      w!.send({ type: 'content_block_start', index: 0, content_block: { type: 'text', text: '' } }, 'content_block_start');
      textOpen = true;
    }
    w!.send({ type: 'content_block_delta', index: 0, delta: { type: 'text_delta', text } }, 'content_block_delta');
  };
  const pending = runGeneration(engine, params, (_i, text) => (w ? sendText(text) : early.push(text)));
  return sseResponse(
    async (writer) => {
      w = writer;
      writer.send(
        {
          type: 'message_start',
          message: {
            id,
            type: 'message',
            role: 'assistant',
            model,
            content: [],
            stop_reason: null,
            stop_sequence: null,
            usage: { input_tokens: prompt.tokens.length, output_tokens: 0 },
          },
        },
        'message_start',
      );
      writer.send({ type: 'ping' }, 'ping');
      for (const e of early) sendText(e);
      const r = await pending;
      ctx.done(r);
      const c = r.choices[0]!;
      if (c.error) {
        writer.send(anthropicError(generationError(c.error)), 'error');
        return;
      }
      let index = 0;
      if (params.tools) {
        // Buffered output: text first, then one tool_use block per call with its input as one JSON delta.
        for (const b of contentBlocks(c)) {
          if (b.type === 'text') {
            if (r.buffered) sendText(b.text as string); // otherwise the prose has streamed already
            continue;
          }
          if (textOpen) {
            writer.send({ type: 'content_block_stop', index }, 'content_block_stop');
            textOpen = false;
            index++;
          }
          writer.send(
            { type: 'content_block_start', index, content_block: { type: 'tool_use', id: b.id, name: b.name, input: {} } },
            'content_block_start',
          );
          writer.send(
            { type: 'content_block_delta', index, delta: { type: 'input_json_delta', partial_json: JSON.stringify(b.input) } },
            'content_block_delta',
          );
          writer.send({ type: 'content_block_stop', index }, 'content_block_stop');
          index++;
        }
      }
      if (textOpen) writer.send({ type: 'content_block_stop', index }, 'content_block_stop');
      writer.send(
        {
          type: 'message_delta',
          delta: { stop_reason: stopReason(c), stop_sequence: c.stopSequence },
          usage: { output_tokens: c.completionTokens },
        },
        'message_delta',
      );
      writer.send({ type: 'message_stop' }, 'message_stop');
    },
    () => undefined,
  );
}
