/**
 * Ollama's API, for the `ollama` clients and the tools built on them: POST /api/chat, /api/generate, /api/show,
 * /api/embed (and the legacy /api/embeddings), GET /api/tags, /api/ps, /api/version. Streaming is NDJSON (Ollama's
 * default is `stream: true`); `options` map onto the sampler (num_predict, num_ctx, temperature, top_k, top_p, min_p,
 * seed, stop, repeat_penalty, repeat_last_n, presence_penalty, frequency_penalty; others are ignored as Ollama
 * ignores unknown ones); `format` is "json" or a JSON schema (constrained decoding); tools use OpenAI's shape with
 * arguments as objects; images are base64 strings. Errors are Ollama's `{"error": "..."}`.
 *
 * The served model is loaded once: any model name is accepted, `num_ctx` can only narrow the server's context, and
 * keep_alive is ignored.
 */
import type { Hono } from 'hono';
import type { RouteMaker } from './app.ts';
import type { ChatMessage, ContentPart, ServerEngine } from './engine.ts';
import { embedAll, readEmbeddingInputs } from './embeddings.ts';
import { runGeneration, type ChoiceOutput, type RunParams, type RunResult } from './generation.ts';
import { readTools, toolParams, type RequestContext } from './openai.ts';
import { ApiError, badRequest, checkTextSize, decodeBase64Image, field, isObject, readStops, type Json, encodeChatWithin } from './util.ts';
import { streamingResponse } from './sse.ts';
import { capabilities, modelFacts, PACKAGE_VERSION } from './utility.ts';
import { screenRawPrompt } from './moderations.ts';

const nowIso = () => new Date().toISOString();
const ns = (ms: number) => Math.round(ms * 1e6);

/** Ollama's `details` block for the served model. */
function details(engine: ServerEngine): Json {
  const arch = modelFacts(engine).architecture;
  return {
    parent_model: '',
    format: engine.modelId.includes('gguf') ? 'gguf' : 'safetensors',
    family: arch,
    families: [arch],
    parameter_size: '',
    quantization_level: '',
  };
}

function modelEntry(engine: ServerEngine, name: string): Json {
  return { name, model: name, modified_at: new Date(engine.created * 1000).toISOString(), size: 0, digest: '', details: details(engine) };
}

/** `options` → sampling, stop strings, token and context limits. Wrong types are 400s naming the option. */
function readOptions(
  body: Json,
  ctxLen: number,
): { sampling: RunParams['sampling']; stop: string[]; numPredict: number | undefined; numCtx: number } {
  const o = field.obj(body, 'options') ?? {};
  const at = (k: string) => `options.${k}`;
  const s: RunParams['sampling'] = {};
  const t = field.num(o, 'temperature', 0, 100, at('temperature'));
  if (t !== undefined) s.temperature = t;
  const k = field.int(o, 'top_k', 0, 1e9, at('top_k'));
  if (k !== undefined) s.topK = k;
  const p = field.num(o, 'top_p', 0, 1, at('top_p'));
  if (p !== undefined) s.topP = p;
  const mp = field.num(o, 'min_p', 0, 1, at('min_p'));
  if (mp !== undefined) s.minP = mp;
  const seed = field.int(o, 'seed', -(2 ** 53), 2 ** 53, at('seed'));
  if (seed !== undefined) s.seed = seed;
  const rp = field.num(o, 'repeat_penalty', 0.01, 10, at('repeat_penalty'));
  if (rp !== undefined) s.repetitionPenalty = rp;
  const rl = field.int(o, 'repeat_last_n', -1, 1e9, at('repeat_last_n'));
  if (rl !== undefined) s.penaltyWindow = rl === -1 ? 0 : rl === 0 ? 1 : rl;
  const pp = field.num(o, 'presence_penalty', -2, 2, at('presence_penalty'));
  if (pp !== undefined) s.presencePenalty = pp;
  const fp = field.num(o, 'frequency_penalty', -2, 2, at('frequency_penalty'));
  if (fp !== undefined) s.frequencyPenalty = fp;
  const np = field.int(o, 'num_predict', -2, 1e9, at('num_predict'));
  const nc = field.int(o, 'num_ctx', 1, 1e9, at('num_ctx'));
  return {
    sampling: s,
    stop: readStops(o.stop, at('stop')),
    numPredict: np !== undefined && np > 0 ? np : undefined,
    numCtx: Math.min(nc ?? ctxLen, ctxLen),
  };
}

/** `format`: "json" (any JSON object), a JSON schema, or absent/"" (free text). */
function readFormat(body: Json): RunParams['json'] {
  const f = body.format;
  if (f === undefined || f === null || f === '') return null;
  if (f === 'json') return {};
  if (isObject(f)) return { schema: f };
  throw badRequest('\'format\' must be "json" or a JSON schema object', 'format');
}

function images(v: unknown, path: string, ctx: RequestContext): ContentPart[] {
  if (v === undefined || v === null) return [];
  if (!Array.isArray(v)) throw badRequest(`'${path}' must be an array of base64 strings`, path);
  if (v.length && !ctx.engine.supportsImages) throw badRequest(`'${path}': this model does not take images`, path);
  return v.map((b, i) => {
    if (typeof b !== 'string') throw badRequest(`'${path}[${i}]' must be a base64 string`, path);
    return decodeBase64Image(b.replace(/^data:[^,]*,/, ''), `${path}[${i}]`, ctx.images.maxBytes);
  });
}

function readChatMessages(body: Json, ctx: RequestContext): ChatMessage[] {
  const raw = field.arr(body, 'messages');
  if (!raw) throw badRequest("'messages' is required", 'messages');
  const out: ChatMessage[] = [];
  raw.forEach((m, i) => {
    const path = `messages[${i}]`;
    if (!isObject(m)) throw badRequest(`'${path}' must be an object`, path);
    const content = field.str(m, 'content', `${path}.content`) ?? '';
    const text: ContentPart[] = content ? [{ type: 'text', text: content }] : [];
    switch (m.role) {
      case 'system':
        out.push({ role: 'system', content: text });
        break;
      case 'user':
        out.push({ role: 'user', content: [...images(m.images, `${path}.images`, ctx), ...text] });
        break;
      case 'assistant': {
        const calls = (field.arr(m, 'tool_calls', `${path}.tool_calls`) ?? []).map((c, j) => {
          const f = isObject(c) && isObject(c.function) ? c.function : null;
          if (!f || typeof f.name !== 'string')
            throw badRequest(`'${path}.tool_calls[${j}]' must be {function: {name, arguments}}`, `${path}.tool_calls`);
          return {
            id: `call_${i}_${j}`,
            name: f.name,
            arguments: typeof f.arguments === 'string' ? f.arguments : JSON.stringify(f.arguments ?? {}),
          };
        });
        out.push({ role: 'assistant', content: text, ...(calls.length ? { toolCalls: calls } : {}) });
        break;
      }
      case 'tool': {
        const name = field.str(m, 'tool_name', `${path}.tool_name`) ?? field.str(m, 'name', `${path}.name`);
        const call = [...out]
          .reverse()
          .flatMap((x) => x.toolCalls ?? [])
          .find((c) => name === undefined || c.name === name);
        out.push({
          role: 'tool',
          content: text,
          toolCallId: call?.id ?? '',
          ...((name ?? call?.name) ? { name: (name ?? call?.name)! } : {}),
        });
        break;
      }
      default:
        throw badRequest(`'${path}.role' must be one of system, user, assistant, tool`, `${path}.role`);
    }
  });
  return out;
}

/** NDJSON streaming: one JSON object per line; an exception ends the stream with an `{"error"}` line. */
function ndjsonResponse(run: (send: (o: Json) => void) => Promise<void>): Response {
  return streamingResponse(
    (put) => {
      const send = (o: Json) => put(JSON.stringify(o) + '\n');
      return run(send).catch((e: unknown) => send({ error: e instanceof Error ? e.message : String(e) }));
    },
    () => undefined,
    { 'content-type': 'application/x-ndjson', 'cache-control': 'no-cache' },
  );
}

const doneReason = (c: ChoiceOutput) => {
  if (c.error) throw new ApiError(500, 'server', `generation failed: ${c.error.message}`);
  return c.finishReason === 'length' ? 'length' : 'stop';
};

const stats = (r: RunResult, t0: number) => {
  const total = performance.now() - t0;
  const ttft = (r.ttftS ?? 0) * 1000;
  return {
    total_duration: ns(total),
    load_duration: 0,
    prompt_eval_count: r.promptTokens,
    prompt_eval_duration: ns(ttft),
    eval_count: r.choices[0]?.completionTokens ?? 0,
    eval_duration: ns(Math.max(0, total - ttft)),
  };
};

const toolCallsJson = (c: ChoiceOutput) =>
  c.toolCalls.map((t, index) => {
    let args: unknown = {};
    try {
      args = JSON.parse(t.arguments);
    } catch {
      args = {};
    }
    return { function: { index, name: t.name, arguments: args } };
  });

/** Runs a generation and answers in Ollama's shape: `frame(text)` builds one streamed object, `final` the last. */
async function answer(
  ctx: RequestContext,
  body: Json,
  params: RunParams,
  frame: (text: string) => Json,
  final: (c: ChoiceOutput, r: RunResult) => Json,
): Promise<Response> {
  const t0 = performance.now();
  const stream = field.bool(body, 'stream') ?? true;
  if (!stream) {
    const r = await runGeneration(ctx.engine, params);
    ctx.done(r);
    const c = r.choices[0]!;
    return Response.json({ ...final(c, r), done: true, done_reason: doneReason(c), ...stats(r, t0) });
  }
  let send: ((o: Json) => void) | null = null;
  const early: string[] = [];
  const pending = runGeneration(ctx.engine, params, (_i, t) => {
    if (!t) return;
    if (send) send(frame(t));
    else early.push(t);
  });
  return ndjsonResponse(async (s) => {
    send = s;
    for (const t of early) s(frame(t));
    const r = await pending;
    ctx.done(r);
    const c = r.choices[0]!;
    if (c.error) {
      s({ error: `generation failed: ${c.error.message}` });
      return;
    }
    const last = final(c, r);
    // What was streamed already is not repeated: the last object carries tool calls (and buffered text) only.
    if (!r.buffered) {
      if (isObject(last.message)) last.message = { ...last.message, content: '' };
      if (typeof last.response === 'string') last.response = '';
    }
    s({ ...last, done: true, done_reason: doneReason(c), ...stats(r, t0) });
  });
}

function modelName(body: Json): string {
  const m = field.str(body, 'model');
  if (m === undefined || m === '') throw badRequest("'model' is required", 'model');
  return m;
}

async function chat(body: Json, ctx: RequestContext): Promise<Response> {
  const { engine } = ctx;
  const model = modelName(body);
  const messages = readChatMessages(body, ctx);
  // Ollama answers an empty conversation by loading the model; it is loaded already.
  if (messages.length === 0)
    return Response.json({ model, created_at: nowIso(), message: { role: 'assistant', content: '' }, done: true, done_reason: 'load' });
  const { tools } = readTools(body);
  const json = readFormat(body);
  const ctxLen = engine.scheduler.contextLength;
  const opt = readOptions(body, ctxLen);
  const prompt = await encodeChatWithin(
    engine,
    messages,
    tools,
    opt.numCtx,
    'messages',
    (n) => `the prompt has ${n} tokens; the context holds ${opt.numCtx}`,
  );
  const params: RunParams = {
    tokens: prompt.tokens,
    ...(prompt.patchEmbeddings ? { patchEmbeddings: prompt.patchEmbeddings } : {}),
    maxTokens: Math.max(1, Math.min(opt.numPredict ?? opt.numCtx, opt.numCtx - prompt.tokens.length)),
    n: 1,
    sampling: opt.sampling,
    stop: opt.stop,
    json,
    tools,
    ...(json === null ? toolParams(tools, false, undefined) : {}),
    signal: ctx.signal,
  };
  ctx.note({ model, prompt_tokens: prompt.tokens.length, tools: tools?.length ?? 0, json: json !== null });
  const msg = (content: string) => ({ model, created_at: nowIso(), message: { role: 'assistant', content }, done: false });
  return answer(ctx, body, params, msg, (c) => ({
    model,
    created_at: nowIso(),
    message: {
      role: 'assistant',
      content: c.toolCalls.length ? (c.content ?? '') : c.text,
      ...(c.toolCalls.length ? { tool_calls: toolCallsJson(c) } : {}),
    },
  }));
}

async function generate(body: Json, ctx: RequestContext): Promise<Response> {
  const { engine } = ctx;
  const model = modelName(body);
  const prompt = field.str(body, 'prompt') ?? '';
  const system = field.str(body, 'system');
  const raw = field.bool(body, 'raw') ?? false;
  if (field.str(body, 'suffix')) throw badRequest("'suffix' (fill-in-the-middle) is not supported by this model", 'suffix');
  if (field.str(body, 'template'))
    throw badRequest("'template' overrides are not supported; the model's chat template is used (or raw: true)", 'template');
  const imgs = images(body.images, 'images', ctx);
  if (prompt === '' && imgs.length === 0) {
    // Ollama answers an empty prompt by loading the model; it is loaded already.
    return Response.json({ model, created_at: nowIso(), response: '', done: true, done_reason: 'load' });
  }
  const json = readFormat(body);
  const ctxLen = engine.scheduler.contextLength;
  const opt = readOptions(body, ctxLen);
  checkTextSize(prompt.length + (system?.length ?? 0), opt.numCtx, 'prompt');
  let tokens: number[];
  let patchEmbeddings: Float32Array | undefined;
  if (raw) {
    if (imgs.length) throw badRequest("'images' need the chat template: drop raw: true", 'images');
    tokens = engine.encodeText(prompt);
    await screenRawPrompt(engine, prompt, tokens, 'prompt');
  } else {
    const msgs: ChatMessage[] = [
      ...(system ? [{ role: 'system' as const, content: [{ type: 'text' as const, text: system }] }] : []),
      { role: 'user', content: [...imgs, { type: 'text', text: prompt }] },
    ];
    const enc = await engine.encodeChat(msgs, null);
    tokens = enc.tokens;
    patchEmbeddings = enc.patchEmbeddings;
  }
  if (tokens.length >= opt.numCtx) throw badRequest(`the prompt has ${tokens.length} tokens; the context holds ${opt.numCtx}`, 'prompt');
  const params: RunParams = {
    tokens,
    ...(patchEmbeddings ? { patchEmbeddings } : {}),
    maxTokens: Math.max(1, Math.min(opt.numPredict ?? opt.numCtx, opt.numCtx - tokens.length)),
    n: 1,
    sampling: opt.sampling,
    stop: opt.stop,
    json,
    tools: null,
    signal: ctx.signal,
  };
  ctx.note({ model, prompt_tokens: tokens.length, raw, json: json !== null });
  return answer(
    ctx,
    body,
    params,
    (t) => ({ model, created_at: nowIso(), response: t, done: false }),
    (c) => ({ model, created_at: nowIso(), response: c.text }),
  );
}

async function embed(body: Json, ctx: RequestContext): Promise<Response> {
  const t0 = performance.now();
  const model = modelName(body);
  const H = ctx.engine.scheduler.model.info.hiddenSize;
  const dims = field.int(body, 'dimensions', 1, 1e9);
  if (dims !== undefined && dims !== H)
    throw badRequest(`'dimensions' ${dims} is not supported: this model's embeddings have ${H} dimensions`, 'dimensions');
  const inputs = readEmbeddingInputs(body.input, ctx.engine, 'input', field.bool(body, 'truncate') ?? true);
  const vectors = await embedAll(ctx.engine, inputs, ctx.signal);
  const count = inputs.reduce((s, l) => s + l.length, 0);
  return Response.json({
    model,
    embeddings: vectors.map((v) => Array.from(v)),
    total_duration: ns(performance.now() - t0),
    load_duration: 0,
    prompt_eval_count: count,
  });
}

async function embeddingsLegacy(body: Json, ctx: RequestContext): Promise<Response> {
  modelName(body);
  const prompt = field.str(body, 'prompt');
  if (prompt === undefined) throw badRequest("'prompt' is required", 'prompt');
  const [v] = await embedAll(ctx.engine, readEmbeddingInputs(prompt, ctx.engine, 'prompt'), ctx.signal);
  return Response.json({ embedding: Array.from(v!) });
}

async function show(body: Json, ctx: RequestContext): Promise<Response> {
  const { engine } = ctx;
  const name = field.str(body, 'model') ?? field.str(body, 'name');
  if (name === undefined) throw badRequest("'model' is required", 'model');
  const f = modelFacts(engine);
  const a = f.architecture;
  return Response.json({
    license: '',
    modelfile: `# served by llama4-ts\nFROM ${engine.modelId}\n`,
    parameters: '',
    template: engine.chatTemplate ?? '',
    details: details(engine),
    model_info: {
      'general.architecture': a,
      [`${a}.context_length`]: f.trainedContext,
      [`${a}.embedding_length`]: f.hiddenSize,
      [`${a}.vocab_size`]: f.vocabSize,
      'llama4-ts.server_context_length': f.contextLength,
    },
    capabilities: capabilities(engine),
    modified_at: new Date(engine.created * 1000).toISOString(),
  });
}

/** Registers the Ollama routes on the app (`route` adds logging, metrics and `{"error"}` bodies). */
export function registerOllama(app: Hono, route: RouteMaker, engine: ServerEngine, listedName: string): void {
  app.post('/api/chat', route('ollama', chat));
  app.post('/api/generate', route('ollama', generate));
  app.post('/api/embed', route('ollama', embed));
  app.post('/api/embeddings', route('ollama', embeddingsLegacy));
  app.post('/api/show', route('ollama', show));
  app.get('/api/version', (c) => c.json({ version: PACKAGE_VERSION }));
  app.get('/api/tags', (c) => c.json({ models: [modelEntry(engine, listedName)] }));
  app.get('/api/ps', (c) => {
    const e = modelEntry(engine, listedName);
    return c.json({
      models: [
        {
          ...e,
          expires_at: new Date(Date.now() + 365 * 86400_000).toISOString(),
          size_vram: 0,
          context_length: engine.scheduler.contextLength,
        },
      ],
    });
  });
  // Requests the server cannot honour answer in Ollama's format too.
  for (const p of ['/api/pull', '/api/push', '/api/create', '/api/copy', '/api/delete']) {
    app.all(p, (c) => c.json({ error: `${p} is not supported: this server serves one model, loaded at startup (${engine.modelId})` }, 501));
  }
}
