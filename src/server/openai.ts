/**
 * OpenAI API: POST /v1/chat/completions, POST /v1/completions, GET /v1/models. Request JSON → RunParams (every
 * field checked, errors name the field), result → OpenAI's response / chunk objects.
 */
import type { ChatMessage, ContentPart, ServerEngine, ToolSpec } from './engine.ts';
import { runGeneration, type ChoiceOutput, type LogprobEntry, type RunParams, type RunResult } from './generation.ts';
import { sseResponse, type SseWriter } from './sse.ts';
import {
  type ApiError,
  badRequest,
  checkTextSize,
  field,
  isObject,
  loadImageUrl,
  randomId,
  readStops,
  toolCallSchema,
  type ImageFetchOptions,
  type Json,
  generationError,
  encodeChatWithin,
} from './util.ts';
import { compiles } from '../engine/tool-schema.ts';
import { readLogitBias } from './constraints.ts';
import { screenRawPrompt } from './moderations.ts';

export interface RequestContext {
  engine: ServerEngine;
  /** Path parameters of the route (`:id`). */
  params: Record<string, string>;
  images: ImageFetchOptions;
  /** Aborted when the client goes away. */
  signal: AbortSignal;
  /** Fields merged into this request's log line. */
  note(fields: Record<string, unknown>): void;
  /** Called once with the finished run (metrics). */
  done(r: RunResult): void;
}

/** OpenAI error body. */
export function openaiError(e: ApiError): Json {
  const type = {
    invalid_request: 'invalid_request_error',
    authentication: 'authentication_error',
    not_found: 'invalid_request_error',
    rate_limit: 'rate_limit_error',
    server: 'server_error',
    too_large: 'invalid_request_error',
  }[e.kind];
  const code = e.kind === 'not_found' && e.param === 'model' ? 'model_not_found' : e.kind === 'authentication' ? 'invalid_api_key' : null;
  return { error: { message: e.message, type, param: e.param, code } };
}

/**
 * The request's `model`: required, and (one model served, as llama-server) any name is accepted and echoed back,
 * so clients configured for another model name (`gpt-4o-mini`) work unchanged.
 */
export function checkModel(_engine: ServerEngine, body: Json): string {
  const model = field.str(body, 'model');
  if (model === undefined) throw badRequest("'model' is required", 'model');
  return model;
}

/** The tool-related fields every chat API maps the same way (see RunParams). */
export function toolParams(
  tools: ToolSpec[] | null,
  forced: boolean,
  parallel: boolean | undefined,
): Pick<RunParams, 'toolTrigger' | 'maxToolCalls'> {
  return {
    // tool_choice auto: an output that opens a JSON object must be a call to a declared tool.
    ...(tools && !forced ? { toolTrigger: toolCallSchema(tools, compiles) } : {}),
    ...(parallel === false ? { maxToolCalls: 1 } : {}),
  };
}

/** temperature/top_p/seed/penalties shared by both OpenAI endpoints (plus llama.cpp's top_k, min_p, repeat_penalty). */
export function readSampling(body: Json): RunParams['sampling'] {
  const s: RunParams['sampling'] = {};
  const t = field.num(body, 'temperature', 0, 2);
  if (t !== undefined) s.temperature = t;
  const p = field.num(body, 'top_p', 0, 1);
  if (p !== undefined) s.topP = p;
  const k = field.int(body, 'top_k', 0, 1e9);
  if (k !== undefined) s.topK = k;
  const mp = field.num(body, 'min_p', 0, 1);
  if (mp !== undefined) s.minP = mp;
  const seed = field.int(body, 'seed', -(2 ** 53), 2 ** 53);
  if (seed !== undefined) s.seed = seed;
  const pp = field.num(body, 'presence_penalty', -2, 2);
  if (pp !== undefined) s.presencePenalty = pp;
  const fp = field.num(body, 'frequency_penalty', -2, 2);
  if (fp !== undefined) s.frequencyPenalty = fp;
  const rp = field.num(body, 'repetition_penalty', 0.01, 10) ?? field.num(body, 'repeat_penalty', 0.01, 10);
  if (rp !== undefined) s.repetitionPenalty = rp;
  return s;
}

function textOf(content: unknown, path: string): string {
  if (typeof content === 'string') return content;
  if (!Array.isArray(content)) throw badRequest(`'${path}' must be a string or an array of text parts`, path);
  return content
    .map((p, i) => {
      if (!isObject(p) || p.type !== 'text' || typeof p.text !== 'string')
        throw badRequest(`'${path}[${i}]' must be a text part`, `${path}[${i}]`);
      return p.text;
    })
    .join('');
}

export async function readMessages(body: Json, ctx: RequestContext): Promise<ChatMessage[]> {
  const raw = field.arr(body, 'messages');
  if (!raw || raw.length === 0) throw badRequest("'messages' must be a non-empty array", 'messages');
  const out: ChatMessage[] = [];
  for (let i = 0; i < raw.length; i++) {
    const m = raw[i];
    const path = `messages[${i}]`;
    if (!isObject(m)) throw badRequest(`'${path}' must be an object`, path);
    const role = m.role;
    if (role === 'system' || role === 'developer')
      out.push({ role: 'system', content: [{ type: 'text', text: textOf(m.content, `${path}.content`) }] });
    else if (role === 'user') {
      const parts: ContentPart[] = [];
      if (typeof m.content === 'string') parts.push({ type: 'text', text: m.content });
      else if (Array.isArray(m.content)) {
        for (let j = 0; j < m.content.length; j++) {
          const p = m.content[j];
          const pp = `${path}.content[${j}]`;
          if (!isObject(p)) throw badRequest(`'${pp}' must be an object`, pp);
          if (p.type === 'text') {
            if (typeof p.text !== 'string') throw badRequest(`'${pp}.text' must be a string`, `${pp}.text`);
            parts.push({ type: 'text', text: p.text });
          } else if (p.type === 'image_url') {
            if (!ctx.engine.supportsImages) throw badRequest(`'${pp}': this model does not take images`, pp);
            const iu = p.image_url;
            const url = typeof iu === 'string' ? iu : isObject(iu) && typeof iu.url === 'string' ? iu.url : undefined;
            if (url === undefined) throw badRequest(`'${pp}.image_url.url' must be a string`, `${pp}.image_url.url`);
            parts.push(await loadImageUrl(url, `${pp}.image_url.url`, ctx.images));
          } else throw badRequest(`'${pp}.type' ${JSON.stringify(p.type)} is not supported (text, image_url)`, `${pp}.type`);
        }
      } else throw badRequest(`'${path}.content' must be a string or an array of parts`, `${path}.content`);
      out.push({ role: 'user', content: parts });
    } else if (role === 'assistant') {
      const text = m.content === null || m.content === undefined ? '' : textOf(m.content, `${path}.content`);
      const msg: ChatMessage = { role: 'assistant', content: text ? [{ type: 'text', text }] : [] };
      const calls = field.arr(m, 'tool_calls', `${path}.tool_calls`);
      if (calls) {
        msg.toolCalls = calls.map((c, j) => {
          const cp = `${path}.tool_calls[${j}]`;
          if (!isObject(c) || !isObject(c.function) || typeof c.function.name !== 'string')
            throw badRequest(`'${cp}' must be {id, type: 'function', function: {name, arguments}}`, cp);
          const args = c.function.arguments;
          return {
            id: typeof c.id === 'string' ? c.id : '',
            name: c.function.name,
            arguments: typeof args === 'string' ? args : JSON.stringify(args ?? {}),
          };
        });
      }
      if (!text && !msg.toolCalls?.length) throw badRequest(`'${path}' has neither content nor tool_calls`, path);
      out.push(msg);
    } else if (role === 'tool') {
      const id = field.str(m, 'tool_call_id', `${path}.tool_call_id`);
      if (id === undefined) throw badRequest(`'${path}.tool_call_id' is required`, `${path}.tool_call_id`);
      const name = out.flatMap((x) => x.toolCalls ?? []).find((c) => c.id === id)?.name;
      out.push({
        role: 'tool',
        content: [{ type: 'text', text: textOf(m.content, `${path}.content`) }],
        toolCallId: id,
        ...(name ? { name } : {}),
      });
    } else throw badRequest(`'${path}.role' must be one of system, developer, user, assistant, tool`, `${path}.role`);
  }
  return out;
}

export { compiles } from '../engine/tool-schema.ts';

/** tools + tool_choice: the tools the model may call, and whether it must call one ('required' or a named function). */
export function readTools(body: Json): { tools: ToolSpec[] | null; forced: boolean } {
  const r = readToolList(body);
  const c = body.tool_choice;
  return { tools: r, forced: r !== null && (c === 'required' || isObject(c)) };
}

function readToolList(body: Json): ToolSpec[] | null {
  const raw = field.arr(body, 'tools');
  if (!raw || raw.length === 0) return null;
  const tools = raw.map((t, i): ToolSpec => {
    const p = `tools[${i}]`;
    if (!isObject(t) || t.type !== 'function' || !isObject(t.function))
      throw badRequest(`'${p}' must be {type: 'function', function: {...}}`, p);
    const name = t.function.name;
    if (typeof name !== 'string' || !/^[a-zA-Z0-9_.-]{1,64}$/.test(name))
      throw badRequest(`'${p}.function.name' must match [a-zA-Z0-9_.-]{1,64}`, `${p}.function.name`);
    const params = t.function.parameters;
    if (params !== undefined && !isObject(params))
      throw badRequest(`'${p}.function.parameters' must be a JSON Schema object`, `${p}.function.parameters`);
    const desc = t.function.description;
    return { name, ...(typeof desc === 'string' ? { description: desc } : {}), ...(params !== undefined ? { parameters: params } : {}) };
  });
  const choice = body.tool_choice;
  if (choice === undefined || choice === null || choice === 'auto' || choice === 'required') return tools;
  if (choice === 'none') return null;
  if (isObject(choice) && choice.type === 'function' && isObject(choice.function) && typeof choice.function.name === 'string') {
    const named = tools.filter((t) => t.name === (choice.function as Json).name);
    if (named.length === 0) throw badRequest(`'tool_choice' names '${choice.function.name}', which is not in tools`, 'tool_choice');
    return named;
  }
  throw badRequest("'tool_choice' must be 'none', 'auto', 'required' or {type: 'function', function: {name}}", 'tool_choice');
}

function readResponseFormat(body: Json): RunParams['json'] {
  const rf = field.obj(body, 'response_format');
  if (!rf || rf.type === 'text') return null;
  if (rf.type === 'json_object') return {};
  if (rf.type === 'json_schema') {
    const js = field.obj(rf, 'json_schema', 'response_format.json_schema');
    if (!js) throw badRequest("'response_format.json_schema' is required", 'response_format.json_schema');
    if (typeof js.name !== 'string') throw badRequest("'response_format.json_schema.name' is required", 'response_format.json_schema.name');
    if (js.schema !== undefined && !isObject(js.schema))
      throw badRequest("'response_format.json_schema.schema' must be an object", 'response_format.json_schema.schema');
    return js.schema === undefined ? {} : { schema: js.schema };
  }
  throw badRequest("'response_format.type' must be 'text', 'json_object' or 'json_schema'", 'response_format.type');
}

function maxTokens(body: Json, ctxLen: number, promptLen: number, dflt: number): number {
  const m = field.int(body, 'max_completion_tokens', 1, 1e9) ?? field.int(body, 'max_tokens', 1, 1e9);
  return Math.max(1, Math.min(m ?? dflt, ctxLen - promptLen));
}

const bytesOf = (s: string) => [...Buffer.from(s, 'utf8')];
const chatLogprobs = (lps: LogprobEntry[]) => ({
  content: lps.map((e) => ({
    token: e.token,
    logprob: e.logprob,
    bytes: bytesOf(e.token),
    top_logprobs: e.top.map((t) => ({ token: t.token, logprob: t.logprob, bytes: bytesOf(t.token) })),
  })),
  refusal: null,
});

function finishReasonOf(c: ChoiceOutput): string {
  if (c.error) throw generationError(c.error);
  return c.finishReason === 'cancelled' ? 'stop' : c.finishReason;
}

function usageOf(r: RunResult): Json {
  const completion = r.choices.reduce((s, c) => s + c.completionTokens, 0);
  return {
    prompt_tokens: r.promptTokens,
    completion_tokens: completion,
    total_tokens: r.promptTokens + completion,
    prompt_tokens_details: { cached_tokens: r.cachedTokens },
  };
}

const toolCallsJson = (c: ChoiceOutput) =>
  c.toolCalls.map((t) => ({ id: t.id, type: 'function', function: { name: t.name, arguments: t.arguments } }));

export async function chatCompletions(body: Json, ctx: RequestContext): Promise<Response> {
  const { engine } = ctx;
  const model = checkModel(engine, body);
  const messages = await readMessages(body, ctx);
  const { tools, forced } = readTools(body);
  const parallelCalls = field.bool(body, 'parallel_tool_calls');
  const logitBias = readLogitBias(body.logit_bias, engine);
  let json = readResponseFormat(body);
  // A required tool call is enforced by decoding: the output must be one JSON call to one of the tools.
  if (forced && json === null) json = { schema: toolCallSchema(tools!, compiles) };
  const logprobs = field.bool(body, 'logprobs') ?? false;
  const top = field.int(body, 'top_logprobs', 0, 20);
  if (top !== undefined && !logprobs) throw badRequest("'top_logprobs' requires 'logprobs': true", 'top_logprobs');
  const stream = field.bool(body, 'stream') ?? false;
  const so = field.obj(body, 'stream_options');
  const includeUsage = stream && so !== undefined && field.bool(so, 'include_usage', 'stream_options.include_usage') === true;
  const n = field.int(body, 'n', 1, 128) ?? 1;
  const stop = readStops(body.stop, 'stop');
  const sampling = readSampling(body);
  const ctxLen = engine.scheduler.contextLength;
  const prompt = await encodeChatWithin(
    engine,
    messages,
    tools,
    ctxLen,
    'messages',
    (n) => `the prompt has ${n} tokens; this server's context holds ${ctxLen}`,
  );
  const params: RunParams = {
    tokens: prompt.tokens,
    ...(prompt.patchEmbeddings ? { patchEmbeddings: prompt.patchEmbeddings } : {}),
    maxTokens: maxTokens(body, ctxLen, prompt.tokens.length, ctxLen),
    n,
    sampling,
    stop,
    ...(logprobs ? { topLogprobs: top ?? 0 } : {}),
    json,
    tools,
    ...(json === null ? toolParams(tools, forced, parallelCalls) : parallelCalls === false ? { maxToolCalls: 1 } : {}),
    logitBias,
    signal: ctx.signal,
  };
  ctx.note({ model, n, stream, prompt_tokens: prompt.tokens.length, tools: tools?.length ?? 0, json: json !== null });
  const id = `chatcmpl-${randomId(24)}`;
  const created = Math.floor(Date.now() / 1000);
  const base = { id, created, model, system_fingerprint: 'llama4-ts' };

  if (!stream) {
    const r = await runGeneration(engine, params);
    ctx.done(r);
    return Response.json({
      ...base,
      object: 'chat.completion',
      choices: r.choices.map((c, i) => ({
        index: i,
        message: {
          role: 'assistant',
          content: c.toolCalls.length ? c.content : c.text,
          refusal: null,
          ...(c.toolCalls.length ? { tool_calls: toolCallsJson(c) } : {}),
        },
        logprobs: logprobs ? chatLogprobs(c.logprobs) : null,
        finish_reason: finishReasonOf(c),
      })),
      usage: usageOf(r),
    });
  }

  const chunk = (choices: unknown[], usage?: Json) => ({
    ...base,
    object: 'chat.completion.chunk',
    choices,
    ...(includeUsage ? { usage: usage ?? null } : {}),
  });
  let w: SseWriter | null = null;
  const early: [number, string, LogprobEntry[]][] = [];
  const send = (i: number, text: string, lps: LogprobEntry[]) => {
    if (!text && lps.length === 0) return;
    w!.send(chunk([{ index: i, delta: { content: text }, logprobs: lps.length ? chatLogprobs(lps) : null, finish_reason: null }]));
  };
  const pending = runGeneration(engine, params, (i, text, lps) => (w ? send(i, text, lps) : early.push([i, text, lps])));
  return sseResponse(
    async (writer) => {
      w = writer;
      for (let i = 0; i < n; i++)
        writer.send(chunk([{ index: i, delta: { role: 'assistant', content: '' }, logprobs: null, finish_reason: null }]));
      for (const e of early) send(...e);
      const r = await pending;
      ctx.done(r);
      const failed = r.choices.find((c) => c.error);
      if (failed) {
        writer.send(openaiError(generationError(failed.error!)));
        writer.raw('[DONE]');
        return;
      }
      r.choices.forEach((c, i) => {
        if (params.tools) {
          // Tool calls go out once the output could be parsed (and the prose too when it was buffered).
          const delta: Json = {};
          if (r.buffered) {
            if (c.toolCalls.length && c.content) delta.content = c.content;
            else if (!c.toolCalls.length && c.text) delta.content = c.text;
          }
          if (c.toolCalls.length) delta.tool_calls = toolCallsJson(c).map((t, k) => ({ index: k, ...t }));
          if (Object.keys(delta).length)
            writer.send(
              chunk([{ index: i, delta, logprobs: logprobs && r.buffered ? chatLogprobs(c.logprobs) : null, finish_reason: null }]),
            );
        }
        writer.send(chunk([{ index: i, delta: {}, logprobs: null, finish_reason: finishReasonOf(c) }]));
      });
      if (includeUsage) writer.send(chunk([], usageOf(r)));
      writer.raw('[DONE]');
    },
    () => undefined,
  );
}

/** Legacy logprobs of /v1/completions. */
function legacyLogprobs(lps: LogprobEntry[], start: number): Json {
  let off = start;
  const text_offset: number[] = [];
  for (const e of lps) {
    text_offset.push(off);
    off += e.token.length;
  }
  return {
    tokens: lps.map((e) => e.token),
    token_logprobs: lps.map((e) => e.logprob),
    top_logprobs: lps.map((e) => Object.fromEntries(e.top.map((t) => [t.token, t.logprob]))),
    text_offset,
  };
}

export async function completions(body: Json, ctx: RequestContext): Promise<Response> {
  const { engine } = ctx;
  const model = checkModel(engine, body);
  let p = body.prompt;
  if (Array.isArray(p) && p.length === 1 && (typeof p[0] === 'string' || Array.isArray(p[0]))) p = p[0];
  let tokens: number[];
  let promptText: string;
  if (typeof p === 'string') {
    checkTextSize(p.length, engine.scheduler.contextLength, 'prompt');
    tokens = engine.encodeText(p);
    promptText = p;
  } else if (Array.isArray(p) && p.length > 0 && p.every((t) => Number.isInteger(t))) {
    tokens = p as number[];
    promptText = tokens.map((t) => engine.tokenText(t)).join('');
  } else throw badRequest("'prompt' must be a string or an array of token ids (one prompt per request)", 'prompt');
  if (body.suffix !== undefined && body.suffix !== null) throw badRequest("'suffix' is not supported", 'suffix');
  const echo = field.bool(body, 'echo') ?? false;
  const lpN = field.int(body, 'logprobs', 0, 20);
  const stream = field.bool(body, 'stream') ?? false;
  const so = field.obj(body, 'stream_options');
  const includeUsage = stream && so !== undefined && field.bool(so, 'include_usage', 'stream_options.include_usage') === true;
  const n = field.int(body, 'n', 1, 128) ?? 1;
  const ctxLen = engine.scheduler.contextLength;
  if (tokens.length >= ctxLen) throw badRequest(`the prompt has ${tokens.length} tokens; this server's context holds ${ctxLen}`, 'prompt');
  await screenRawPrompt(engine, promptText, tokens, 'prompt');
  const params: RunParams = {
    tokens,
    maxTokens: maxTokens(body, ctxLen, tokens.length, 16),
    n,
    sampling: readSampling(body),
    stop: readStops(body.stop, 'stop'),
    ...(lpN !== undefined ? { topLogprobs: lpN } : {}),
    json: null,
    tools: null,
    logitBias: readLogitBias(body.logit_bias, engine),
    signal: ctx.signal,
  };
  ctx.note({ model, n, stream, prompt_tokens: tokens.length });
  const id = `cmpl-${randomId(24)}`;
  const created = Math.floor(Date.now() / 1000);
  const base = { id, object: 'text_completion', created, model, system_fingerprint: 'llama4-ts' };
  if (!stream) {
    const r = await runGeneration(engine, params);
    ctx.done(r);
    return Response.json({
      ...base,
      choices: r.choices.map((c, i) => ({
        index: i,
        text: (echo ? promptText : '') + c.text,
        logprobs: lpN !== undefined ? legacyLogprobs(c.logprobs, echo ? promptText.length : 0) : null,
        finish_reason: finishReasonOf(c),
      })),
      usage: usageOf(r),
    });
  }
  let w: SseWriter | null = null;
  const early: [number, string, LogprobEntry[]][] = [];
  const offsets = new Array<number>(n).fill(0);
  const chunk = (choices: unknown[], usage?: Json) => ({ ...base, choices, ...(includeUsage ? { usage: usage ?? null } : {}) });
  const send = (i: number, text: string, lps: LogprobEntry[]) => {
    if (!text && !lps.length) return;
    w!.send(chunk([{ index: i, text, logprobs: lpN !== undefined ? legacyLogprobs(lps, offsets[i]!) : null, finish_reason: null }]));
    offsets[i]! += text.length;
  };
  const pending = runGeneration(engine, params, (i, t, l) => (w ? send(i, t, l) : early.push([i, t, l])));
  return sseResponse(
    async (writer) => {
      w = writer;
      if (echo) for (let i = 0; i < n; i++) send(i, promptText, []);
      for (const e of early) send(...e);
      const r = await pending;
      ctx.done(r);
      const failed = r.choices.find((c) => c.error);
      if (failed) writer.send(openaiError(generationError(failed.error!)));
      else r.choices.forEach((c, i) => writer.send(chunk([{ index: i, text: '', logprobs: null, finish_reason: finishReasonOf(c) }])));
      if (includeUsage && !failed) writer.send(chunk([], usageOf(r)));
      writer.raw('[DONE]');
    },
    () => undefined,
  );
}
