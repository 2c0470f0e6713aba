/**
 * OpenAI Responses API: POST /v1/responses, GET and DELETE /v1/responses/:id (what the Vercel AI SDK's default
 * OpenAI provider and `openai.responses.create` call). Inputs (a string or items: messages with input_text /
 * input_image / output_text parts, function_call, function_call_output, item_reference) become ChatMessages;
 * `instructions` is a leading system message (not carried to later turns, as OpenAI does); function tools,
 * tool_choice, parallel_tool_calls and text.format map onto the same RunParams as chat completions. Streaming sends
 * the semantic events the SDKs consume (response.created … response.completed), each with a sequence_number.
 *
 * Stored responses (`store`, default true) let a later request continue with `previous_response_id` and refer to
 * output items by `item_reference`. They live in memory only, bounded three ways: at most `maxCount` responses
 * (default 256), none older than `maxAgeS` (default 1 hour), and about `maxBytes` of conversation text and images
 * (default 64 MiB); the oldest go first.
 */
import type { ChatMessage, ContentPart, ToolSpec } from './engine.ts';
import { runGeneration, type ChoiceOutput, type RunParams, type RunResult } from './generation.ts';
import { checkModel, compiles, readSampling, toolParams, type RequestContext } from './openai.ts';
import { readLogitBias } from './constraints.ts';
import { sseResponse, type SseWriter } from './sse.ts';
import {
  ApiError,
  badRequest,
  field,
  isObject,
  loadImageUrl,
  randomId,
  readStops,
  toolCallSchema,
  type Json,
  encodeChatWithin,
} from './util.ts';

export interface ResponseStoreOptions {
  maxCount: number;
  maxAgeS: number;
  maxBytes: number;
}

interface StoredResponse {
  response: Json;
  /** The conversation so far, this response's output included (instructions excluded). */
  conversation: ChatMessage[];
  createdMs: number;
  bytes: number;
  itemIds: string[];
}

/** About how many bytes a message holds (UTF-16 text, image bytes). */
function messageBytes(m: ChatMessage): number {
  const parts = typeof m.content === 'string' ? [{ type: 'text' as const, text: m.content }] : m.content;
  let n = (m.toolCalls ?? []).reduce((a, c) => a + 2 * (c.arguments.length + c.name.length), 0);
  for (const p of parts) {
    if (p.type === 'text') n += 2 * p.text.length;
    else n += typeof p.data === 'string' ? 2 * p.data.length : p.data instanceof Uint8Array ? p.data.length : p.data.bytes.length;
  }
  return n;
}

/** In-memory store of responses and their output items, bounded in count, age and bytes (oldest evicted first). */
export class ResponseStore {
  readonly o: ResponseStoreOptions;
  private readonly responses = new Map<string, StoredResponse>();
  private readonly items = new Map<string, Json>();
  private bytes = 0;
  constructor(o: Partial<ResponseStoreOptions> = {}) {
    this.o = { maxCount: 256, maxAgeS: 3600, maxBytes: 64 * 1024 * 1024, ...o };
  }
  get size(): number {
    return this.responses.size;
  }
  put(id: string, response: Json, conversation: ChatMessage[]): void {
    const bytes = conversation.reduce((s, m) => s + messageBytes(m), 0);
    const itemIds = ((response.output as Json[]) ?? []).map((it) => it.id as string);
    this.responses.set(id, { response, conversation, createdMs: Date.now(), bytes, itemIds });
    for (const it of response.output as Json[]) this.items.set(it.id as string, it);
    this.bytes += bytes;
    this.prune();
  }
  get(id: string): StoredResponse | undefined {
    this.prune();
    return this.responses.get(id);
  }
  item(id: string): Json | undefined {
    this.prune();
    return this.items.get(id);
  }
  delete(id: string): boolean {
    const r = this.responses.get(id);
    if (!r) return false;
    this.responses.delete(id);
    for (const i of r.itemIds) this.items.delete(i);
    this.bytes -= r.bytes;
    return true;
  }
  private prune(): void {
    const oldest = Date.now() - this.o.maxAgeS * 1000;
    for (const [id, r] of this.responses) {
      // Map order is insertion order: the first entry is the oldest.
      if (this.responses.size > this.o.maxCount || this.bytes > this.o.maxBytes || r.createdMs < oldest) this.delete(id);
      else break;
    }
  }
}

const textPart = (text: string): ContentPart => ({ type: 'text', text });

/** Text of a content value: a string, or parts of type input_text / output_text / text / refusal. */
function partsOf(content: unknown, path: string, allowImages: boolean, ctx: RequestContext): Promise<ContentPart[]> | ContentPart[] {
  if (typeof content === 'string') return [textPart(content)];
  if (!Array.isArray(content)) throw badRequest(`'${path}' must be a string or an array of content parts`, path);
  return (async () => {
    const out: ContentPart[] = [];
    for (let j = 0; j < content.length; j++) {
      const p = content[j];
      const pp = `${path}[${j}]`;
      if (!isObject(p)) throw badRequest(`'${pp}' must be an object`, pp);
      if (p.type === 'input_text' || p.type === 'output_text' || p.type === 'text') {
        if (typeof p.text !== 'string') throw badRequest(`'${pp}.text' must be a string`, `${pp}.text`);
        out.push(textPart(p.text));
      } else if (p.type === 'refusal') {
        if (typeof p.refusal === 'string') out.push(textPart(p.refusal));
      } else if (p.type === 'input_image') {
        if (!allowImages) throw badRequest(`'${pp}': images are only taken in user messages`, pp);
        if (!ctx.engine.supportsImages) throw badRequest(`'${pp}': this model does not take images`, pp);
        const url =
          typeof p.image_url === 'string'
            ? p.image_url
            : isObject(p.image_url) && typeof p.image_url.url === 'string'
              ? p.image_url.url
              : undefined;
        if (url === undefined)
          throw badRequest(
            `'${pp}.image_url' must be a data: URL${p.file_id ? ' (file_id is not supported: there is no file store)' : ''}`,
            `${pp}.image_url`,
          );
        out.push(await loadImageUrl(url, `${pp}.image_url`, ctx.images));
      } else
        throw badRequest(`'${pp}.type' ${JSON.stringify(p.type)} is not supported (input_text, input_image, output_text)`, `${pp}.type`);
    }
    return out;
  })();
}

/** Appends one input item to the conversation (function calls join the assistant turn before them). */
async function addItem(out: ChatMessage[], it: unknown, path: string, ctx: RequestContext, store: ResponseStore, depth = 0): Promise<void> {
  if (!isObject(it)) throw badRequest(`'${path}' must be an object`, path);
  const type = it.type ?? 'message';
  if (type === 'message') {
    const role = it.role;
    if (role === 'system' || role === 'developer')
      out.push({ role: 'system', content: await partsOf(it.content, `${path}.content`, false, ctx) });
    else if (role === 'user') out.push({ role: 'user', content: await partsOf(it.content, `${path}.content`, true, ctx) });
    else if (role === 'assistant') {
      const parts = await partsOf(it.content, `${path}.content`, false, ctx);
      const text = parts.map((p) => (p.type === 'text' ? p.text : '')).join('');
      out.push({ role: 'assistant', content: text ? [textPart(text)] : [] });
    } else throw badRequest(`'${path}.role' must be one of user, assistant, system, developer`, `${path}.role`);
  } else if (type === 'function_call') {
    const name = field.str(it, 'name', `${path}.name`);
    const callId = field.str(it, 'call_id', `${path}.call_id`);
    const args = field.str(it, 'arguments', `${path}.arguments`) ?? '{}';
    if (name === undefined || callId === undefined) throw badRequest(`'${path}' needs 'name' and 'call_id'`, path);
    const last = out[out.length - 1];
    const call = { id: callId, name, arguments: args };
    if (last?.role === 'assistant') (last.toolCalls ??= []).push(call);
    else out.push({ role: 'assistant', content: [], toolCalls: [call] });
  } else if (type === 'function_call_output') {
    const callId = field.str(it, 'call_id', `${path}.call_id`);
    if (callId === undefined) throw badRequest(`'${path}.call_id' is required`, `${path}.call_id`);
    const output = it.output;
    const text =
      typeof output === 'string'
        ? output
        : (await partsOf(output, `${path}.output`, false, ctx)).map((p) => (p.type === 'text' ? p.text : '')).join('');
    const name = out.flatMap((m) => m.toolCalls ?? []).find((c) => c.id === callId)?.name;
    out.push({ role: 'tool', content: [textPart(text)], toolCallId: callId, ...(name ? { name } : {}) });
  } else if (type === 'item_reference') {
    const id = field.str(it, 'id', `${path}.id`);
    const ref = id !== undefined && depth === 0 ? store.item(id) : undefined;
    if (!ref)
      throw new ApiError(
        404,
        'not_found',
        `'${path}': item '${String(id)}' is not stored on this server (stored items expire after ${store.o.maxAgeS} s)`,
        `${path}.id`,
      );
    await addItem(out, ref, path, ctx, store, depth + 1);
  } else if (type === 'reasoning') {
    /* this model has no reasoning items to carry */
  } else
    throw badRequest(
      `'${path}.type' ${JSON.stringify(type)} is not supported (message, function_call, function_call_output, item_reference)`,
      `${path}.type`,
    );
}

/** Function tools (the Responses API's flat form) and tool_choice. */
function readResponseTools(body: Json): { tools: ToolSpec[] | null; forced: boolean } {
  const raw = field.arr(body, 'tools');
  if (!raw || raw.length === 0) return { tools: null, forced: false };
  const tools = raw.map((t, i): ToolSpec => {
    const p = `tools[${i}]`;
    if (!isObject(t)) throw badRequest(`'${p}' must be an object`, p);
    if (t.type !== 'function')
      throw badRequest(`'${p}.type' ${JSON.stringify(t.type)} is not supported: only function tools run on this server`, `${p}.type`);
    const name = t.name;
    if (typeof name !== 'string' || !/^[a-zA-Z0-9_.-]{1,64}$/.test(name))
      throw badRequest(`'${p}.name' must match [a-zA-Z0-9_.-]{1,64}`, `${p}.name`);
    const params = t.parameters;
    if (params !== undefined && params !== null && !isObject(params))
      throw badRequest(`'${p}.parameters' must be a JSON Schema object`, `${p}.parameters`);
    return {
      name,
      ...(typeof t.description === 'string' ? { description: t.description } : {}),
      ...(isObject(params) ? { parameters: params } : {}),
    };
  });
  const c = body.tool_choice;
  if (c === undefined || c === null || c === 'auto') return { tools, forced: false };
  if (c === 'required') return { tools, forced: true };
  if (c === 'none') return { tools: null, forced: false };
  if (isObject(c) && c.type === 'function' && typeof c.name === 'string') {
    const named = tools.filter((t) => t.name === c.name);
    if (!named.length) throw badRequest(`'tool_choice' names '${c.name}', which is not in tools`, 'tool_choice');
    return { tools: named, forced: true };
  }
  throw badRequest("'tool_choice' must be 'none', 'auto', 'required' or {type: 'function', name}", 'tool_choice');
}

/** text.format → RunParams.json. */
function readTextFormat(body: Json): { json: RunParams['json']; format: Json } {
  const text = field.obj(body, 'text');
  const f = text ? field.obj(text, 'format', 'text.format') : undefined;
  if (!f || f.type === 'text') return { json: null, format: { type: 'text' } };
  if (f.type === 'json_object') return { json: {}, format: f };
  if (f.type === 'json_schema') {
    if (typeof f.name !== 'string') throw badRequest("'text.format.name' is required", 'text.format.name');
    if (!isObject(f.schema)) throw badRequest("'text.format.schema' must be a JSON Schema object", 'text.format.schema');
    return { json: { schema: f.schema }, format: f };
  }
  throw badRequest("'text.format.type' must be 'text', 'json_object' or 'json_schema'", 'text.format.type');
}

interface Built {
  id: string;
  model: string;
  conversation: ChatMessage[];
  params: RunParams;
  base: Json;
  store: boolean;
}

async function buildRequest(body: Json, ctx: RequestContext, store: ResponseStore): Promise<Built> {
  const { engine } = ctx;
  const model = checkModel(engine, body);
  const prevId = field.str(body, 'previous_response_id');
  const conversation: ChatMessage[] = [];
  if (prevId !== undefined) {
    const prev = store.get(prevId);
    if (!prev)
      throw new ApiError(
        404,
        'not_found',
        `Previous response with id '${prevId}' not found (responses are kept in memory for ${store.o.maxAgeS} s, ${store.o.maxCount} at most)`,
        'previous_response_id',
      );
    conversation.push(...prev.conversation);
  }
  const input = body.input;
  if (typeof input === 'string') conversation.push({ role: 'user', content: [textPart(input)] });
  else if (Array.isArray(input)) for (let i = 0; i < input.length; i++) await addItem(conversation, input[i], `input[${i}]`, ctx, store);
  else throw badRequest("'input' must be a string or an array of input items", 'input');
  if (conversation.length === 0) throw badRequest("'input' is empty", 'input');
  const instructions = field.str(body, 'instructions');
  const messages = instructions ? [{ role: 'system' as const, content: [textPart(instructions)] }, ...conversation] : conversation;
  const { tools, forced } = readResponseTools(body);
  const { json: fmtJson, format } = readTextFormat(body);
  const json = forced && fmtJson === null ? { schema: toolCallSchema(tools!, compiles) } : fmtJson;
  const parallel = field.bool(body, 'parallel_tool_calls');
  const sampling = readSampling(body);
  const maxOut = field.int(body, 'max_output_tokens', 1, 1e9);
  const stream = field.bool(body, 'stream') ?? false;
  const storeIt = field.bool(body, 'store') ?? true;
  const ctxLen = engine.scheduler.contextLength;
  const prompt = await encodeChatWithin(
    engine,
    messages,
    tools,
    ctxLen,
    'input',
    (n) => `the input has ${n} tokens; this server's context holds ${ctxLen}`,
  );
  const params: RunParams = {
    tokens: prompt.tokens,
    ...(prompt.patchEmbeddings ? { patchEmbeddings: prompt.patchEmbeddings } : {}),
    maxTokens: Math.max(1, Math.min(maxOut ?? ctxLen, ctxLen - prompt.tokens.length)),
    n: 1,
    sampling,
    stop: readStops(body.stop, 'stop'),
    json,
    tools,
    ...(json === null ? toolParams(tools, forced, parallel) : parallel === false ? { maxToolCalls: 1 } : {}),
    logitBias: readLogitBias(body.logit_bias, engine),
    signal: ctx.signal,
  };
  ctx.note({
    model,
    stream,
    prompt_tokens: prompt.tokens.length,
    tools: tools?.length ?? 0,
    json: json !== null,
    previous_response_id: prevId ?? null,
  });
  const id = `resp_${randomId(32)}`;
  const base: Json = {
    id,
    object: 'response',
    created_at: Math.floor(Date.now() / 1000),
    model,
    instructions: instructions ?? null,
    max_output_tokens: maxOut ?? null,
    parallel_tool_calls: parallel ?? true,
    previous_response_id: prevId ?? null,
    temperature: sampling.temperature ?? 1,
    top_p: sampling.topP ?? 1,
    tool_choice: body.tool_choice ?? 'auto',
    tools: (field.arr(body, 'tools') ?? []) as Json[],
    text: { format },
    store: storeIt,
    metadata: isObject(body.metadata) ? body.metadata : {},
    reasoning: { effort: null, summary: null },
    truncation: 'disabled',
    user: null,
    error: null,
    incomplete_details: null,
  };
  return { id, model, conversation, params, base, store: storeIt };
}

const usageOf = (r: RunResult) => {
  const out = r.choices[0]?.completionTokens ?? 0;
  return {
    input_tokens: r.promptTokens,
    input_tokens_details: { cached_tokens: r.cachedTokens },
    output_tokens: out,
    output_tokens_details: { reasoning_tokens: 0 },
    total_tokens: r.promptTokens + out,
  };
};

/** The assistant text of a finished choice (the prose beside tool calls, or all of it). */
const textOf = (c: ChoiceOutput) => (c.toolCalls.length ? (c.content ?? '') : c.text);

const messageItem = (id: string, text: string, status: string): Json => ({
  id,
  type: 'message',
  status,
  role: 'assistant',
  content: [{ type: 'output_text', text, annotations: [], logprobs: [] }],
});
/** A function_call output item; its item id derives from the call id (unique, the same when streamed). */
const callItem = (c: ChoiceOutput['toolCalls'][number], status: string): Json => ({
  id: `fc_${c.id.replace(/^call_/, '')}`,
  type: 'function_call',
  status,
  call_id: c.id,
  name: c.name,
  arguments: c.arguments,
});

function finalResponse(b: Built, r: RunResult, msgId: string, forceMessage: boolean): Json {
  const c = r.choices[0]!;
  if (c.error) throw new ApiError(500, 'server', `generation failed: ${c.error.message}`);
  const incomplete = c.finishReason === 'length';
  const status = incomplete ? 'incomplete' : 'completed';
  const text = textOf(c);
  const output: Json[] = [];
  if (text.trim() !== '' || forceMessage || c.toolCalls.length === 0) output.push(messageItem(msgId, text, status));
  for (const tc of c.toolCalls) output.push(callItem(tc, 'completed'));
  return { ...b.base, status, incomplete_details: incomplete ? { reason: 'max_output_tokens' } : null, output, usage: usageOf(r) };
}

function remember(b: Built, store: ResponseStore, resp: Json, r: RunResult): void {
  if (!b.store) return;
  const c = r.choices[0]!;
  const text = textOf(c);
  const reply: ChatMessage = {
    role: 'assistant',
    content: text ? [textPart(text)] : [],
    ...(c.toolCalls.length ? { toolCalls: c.toolCalls } : {}),
  };
  store.put(b.id, resp, [...b.conversation, reply]);
}

/** POST /v1/responses. */
export async function createResponse(body: Json, ctx: RequestContext, store: ResponseStore): Promise<Response> {
  const b = await buildRequest(body, ctx, store);
  const msgId = `msg_${randomId(32)}`;
  if (!(field.bool(body, 'stream') ?? false)) {
    const r = await runGeneration(ctx.engine, b.params);
    ctx.done(r);
    const resp = finalResponse(b, r, msgId, false);
    remember(b, store, resp, r);
    return Response.json(resp);
  }
  return streamResponse(b, ctx, store, msgId);
}

function streamResponse(b: Built, ctx: RequestContext, store: ResponseStore, msgId: string): Response {
  let seq = 0;
  let w: SseWriter | null = null;
  const early: string[] = [];
  const ev = (type: string, data: Json) => w!.send({ type, sequence_number: seq++, ...data }, type);
  let open = false;
  let held = '';
  const part = (t: string) => ({ type: 'output_text', text: t, annotations: [], logprobs: [] });
  const openMessage = () => {
    if (open) return;
    open = true;
    ev('response.output_item.added', {
      output_index: 0,
      item: { id: msgId, type: 'message', status: 'in_progress', role: 'assistant', content: [] },
    });
    ev('response.content_part.added', { item_id: msgId, output_index: 0, content_index: 0, part: part('') });
  };
  const delta = (t: string) => {
    if (!t) return;
    // With tools, whitespace before a call is not worth a message item: it waits for visible text.
    if (!open && b.params.tools && (held + t).trim() === '') {
      held += t;
      return;
    }
    openMessage();
    ev('response.output_text.delta', { item_id: msgId, output_index: 0, content_index: 0, delta: held + t, logprobs: [] });
    held = '';
  };
  const pending = runGeneration(ctx.engine, b.params, (_i, t) => (w ? delta(t) : early.push(t)));
  const inProgress = { ...b.base, status: 'in_progress', output: [], usage: null };
  return sseResponse(
    async (writer) => {
      w = writer;
      ev('response.created', { response: inProgress });
      ev('response.in_progress', { response: inProgress });
      for (const t of early) delta(t);
      let r: RunResult;
      try {
        r = await pending;
      } catch (e) {
        ev('error', { code: 'server_error', message: `generation failed: ${(e as Error).message}`, param: null });
        return;
      }
      ctx.done(r);
      const c = r.choices[0]!;
      if (c.error) {
        const failed = {
          ...b.base,
          status: 'failed',
          error: { code: 'server_error', message: `generation failed: ${c.error.message}` },
          output: [],
          usage: usageOf(r),
        };
        ev('response.failed', { response: failed });
        return;
      }
      if (r.buffered && textOf(c).trim()) delta(textOf(c));
      const resp = finalResponse(b, r, msgId, open);
      const status = resp.status as string;
      let index = 0;
      if (open) {
        const full = (resp.output as Json[])[0]!;
        const finalText = ((full.content as Json[])[0]!.text as string) ?? '';
        ev('response.output_text.done', { item_id: msgId, output_index: 0, content_index: 0, text: finalText, logprobs: [] });
        ev('response.content_part.done', { item_id: msgId, output_index: 0, content_index: 0, part: part(finalText) });
        ev('response.output_item.done', { output_index: 0, item: full });
        index = 1;
      } else if (c.toolCalls.length === 0) {
        // An empty answer is still one (empty) message item, as in the non-streaming response.
        openMessage();
        ev('response.output_text.done', { item_id: msgId, output_index: 0, content_index: 0, text: '', logprobs: [] });
        ev('response.content_part.done', { item_id: msgId, output_index: 0, content_index: 0, part: part('') });
        ev('response.output_item.done', { output_index: 0, item: (resp.output as Json[])[0]! });
        index = 1;
      }
      c.toolCalls.forEach((tc) => {
        const item = callItem(tc, 'completed');
        ev('response.output_item.added', { output_index: index, item: { ...item, status: 'in_progress', arguments: '' } });
        ev('response.function_call_arguments.delta', { item_id: item.id, output_index: index, delta: tc.arguments });
        ev('response.function_call_arguments.done', { item_id: item.id, output_index: index, name: tc.name, arguments: tc.arguments });
        ev('response.output_item.done', { output_index: index, item });
        index++;
      });
      remember(b, store, resp, r);
      ev(status === 'incomplete' ? 'response.incomplete' : 'response.completed', { response: resp });
    },
    () => undefined,
  );
}

/** GET /v1/responses/:id. */
export async function getResponse(ctx: RequestContext, store: ResponseStore): Promise<Response> {
  const id = ctx.params.id ?? '';
  const r = store.get(id);
  if (!r) throw new ApiError(404, 'not_found', `Response with id '${id}' not found`, 'response_id');
  return Response.json(r.response);
}

/** DELETE /v1/responses/:id. */
export async function deleteResponse(ctx: RequestContext, store: ResponseStore): Promise<Response> {
  const id = ctx.params.id ?? '';
  if (!store.delete(id)) throw new ApiError(404, 'not_found', `Response with id '${id}' not found`, 'response_id');
  return Response.json({ id, object: 'response', deleted: true });
}
