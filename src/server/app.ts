/**
 * The HTTP server: routes, API keys, body limits, error mapping (each API's own error format), structured request
 * logs and metrics. Handlers only translate JSON (openai.ts, anthropic.ts); generation runs in the scheduler.
 */
import type { AddressInfo } from 'node:net';
import { timingSafeEqual } from 'node:crypto';
import { Hono, type Context } from 'hono';
import { bodyLimit } from 'hono/body-limit';
import { serve } from '@hono/node-server';
import { QueueFullError } from '../engine/scheduler.ts';
import { Llama4Error } from '../util/index.ts';
import { anthropicError, messages } from './anthropic.ts';
import type { ServerEngine } from './engine.ts';
import type { RunResult } from './generation.ts';
import { checkBodyDepth, checkJsonContentType } from './body-limits.ts';
import { hostPolicy, isLoopbackHost } from './host-check.ts';
import { Metrics, routeLabeler } from './metrics.ts';
import { mountChatPage } from './page.ts';
import { GuardMetrics, mountModerations, screenedEngine, type GuardServerOptions } from './moderations.ts';
import { chatCompletions, completions, openaiError, type RequestContext } from './openai.ts';
import { corsMiddleware, DEFAULT_CORS_ORIGINS } from './cors.ts';
import { openaiEmbeddings } from './embeddings.ts';
import { registerOllama } from './ollama.ts';
import { createResponse, deleteResponse, getResponse, ResponseStore, type ResponseStoreOptions } from './responses.ts';
import { applyTemplateRoute, countTokens, detokenizeRoute, modelsList, props, tokenizeRoute } from './utility.ts';
import { ApiError, generationError, isObject, randomId, type ImageFetchOptions, type Json } from './util.ts';
import { prepareMaskVocabulary } from '../engine/json-schema-mask.ts';

export interface ServerOptions {
  /** Require `Authorization: Bearer KEY` or `x-api-key: KEY` on the API routes (API_PATHS) and /metrics. */
  apiKey?: string;
  /** Largest request body in bytes (default 32 MiB: base64 images). */
  maxBodyBytes?: number;
  /** Remote image URLs (off by default), image size and fetch time limits. */
  images?: Partial<ImageFetchOptions>;
  /** One structured record per request (default: a JSON line on stderr). */
  log?: (record: Record<string, unknown>) => void;
  /** The model name /v1/models, /api/tags and /props list (default: the model file's name); any name is accepted. */
  alias?: string;
  /** Origins browsers may call from (see cors.ts; default DEFAULT_CORS_ORIGINS, loopback only). */
  corsOrigins?: readonly string[];
  /** Stored Responses API responses (previous_response_id): count and age bounds. */
  responses?: Partial<ResponseStoreOptions>;
  /** A Llama Guard beside the model: POST /v1/moderations, and screening of chat input/output (moderations.ts). */
  guard?: GuardServerOptions;
  /** The address the server listens on: without an API key, only loopback Host headers (and this host) are answered. */
  host?: string;
}

export type Api = 'openai' | 'anthropic' | 'ollama';
export type Handler = (body: Json, ctx: RequestContext) => Promise<Response>;
/** Wraps a handler with body parsing, logging, metrics and error mapping in `api`'s format. */
export type RouteMaker = (api: Api, handler: Handler) => (c: Context) => Promise<Response>;

/** Paths that require the API key when one is set. */
const API_PATHS = /^\/(?:v1\/|api\/|metrics$|tokenize$|detokenize$|apply-template$|props$)/;

function toApiError(e: unknown): ApiError {
  if (e instanceof ApiError) return e;
  if (e instanceof QueueFullError) return new ApiError(429, 'rate_limit', e.message, null, e.retryAfterS);
  if (e instanceof Llama4Error) return new ApiError(400, 'invalid_request', e.message);
  if (e instanceof Error && (e as { unavailable?: boolean }).unavailable === true) return generationError(e);
  return new ApiError(500, 'server', `internal error: ${e instanceof Error ? e.message : String(e)}`);
}

export function createApp(model: ServerEngine, o: ServerOptions = {}): { app: Hono; metrics: Metrics } {
  const app = new Hono();
  const guardMetrics = new GuardMetrics();
  const engine = o.guard ? screenedEngine(model, o.guard, guardMetrics) : model;
  const log = o.log ?? ((r) => process.stderr.write(JSON.stringify(r) + '\n'));
  const images: ImageFetchOptions = { allowRemote: false, maxBytes: 20 * 1024 * 1024, timeoutMs: 10_000, ...o.images };
  const sched = engine.scheduler;
  const metrics = new Metrics(() => {
    const s = sched.stats();
    return {
      llama4_queue_depth: { help: 'Requests waiting for a slot.', value: s.queued },
      llama4_active_sequences: { help: 'Sequences in the running batch.', value: s.active },
      llama4_batch_steps_total: { help: 'Batched forward passes run.', value: s.steps },
      llama4_prompt_tokens_reused_total: { help: 'Prompt tokens served from a reused prefix.', value: s.promptTokensReused },
      llama4_kv_cache_bytes: { help: 'Bytes held by active and kept KV caches.', value: s.cacheBytes },
    };
  });
  const errorBody = (api: Api, e: ApiError) =>
    api === 'anthropic' ? anthropicError(e) : api === 'ollama' ? { error: e.message } : openaiError(e);
  const errorResponse = (api: Api, e: ApiError) =>
    Response.json(errorBody(api, e), {
      status: e.status,
      headers: e.retryAfterS !== undefined ? { 'retry-after': String(e.retryAfterS) } : {},
    });
  const apiOf = (path: string): Api => (path.startsWith('/v1/messages') ? 'anthropic' : path.startsWith('/api/') ? 'ollama' : 'openai');
  const routeOf = routeLabeler(() => app.routes.map((r) => r.path));
  const hostAllowed = hostPolicy(o.host ?? '127.0.0.1', o.apiKey);
  const listedName = o.alias ?? engine.modelId;
  const store = new ResponseStore(o.responses);

  app.use(
    '*',
    corsMiddleware(o.corsOrigins ?? DEFAULT_CORS_ORIGINS, (origin) => {
      log({ ts: new Date().toISOString(), level: 'warn', msg: 'request', path: '(cors)', origin: origin.slice(0, 200), status: 403 });
      return Response.json(
        {
          error: {
            message: `origin ${origin.slice(0, 200)} is not allowed (start the server with --cors ORIGINS)`,
            type: 'invalid_request_error',
            param: null,
            code: 'cors',
          },
        },
        { status: 403 },
      );
    }),
  );

  const keyBuf = o.apiKey !== undefined ? Buffer.from(o.apiKey) : null;
  const authorized = (c: Context): boolean => {
    if (!keyBuf) return true;
    const auth = c.req.header('authorization');
    const given = auth?.startsWith('Bearer ') ? auth.slice(7) : c.req.header('x-api-key');
    if (given === undefined) return false;
    const g = Buffer.from(given);
    return g.length === keyBuf.length && timingSafeEqual(g, keyBuf);
  };
  app.use('*', async (c, next) => {
    const p = c.req.path;
    if (hostAllowed && !hostAllowed(c.req.header('host'))) {
      const e = new ApiError(
        403,
        'authentication',
        'this server answers only requests addressed to localhost (start it with --host NAME or --api-key KEY to serve other names)',
      );
      log({
        ts: new Date().toISOString(),
        level: 'warn',
        msg: 'request',
        method: c.req.method,
        path: p,
        status: 403,
        host: c.req.header('host'),
      });
      metrics.request(routeOf(p), 403, 0);
      return errorResponse(apiOf(p), e);
    }
    // The API routes need the key (the Ollama and utility routes use the model too); the page and /health do not.
    if (API_PATHS.test(p) && !authorized(c)) {
      const e = new ApiError(401, 'authentication', 'Missing or invalid API key (send Authorization: Bearer KEY or x-api-key: KEY)');
      log({ ts: new Date().toISOString(), level: 'warn', msg: 'request', method: c.req.method, path: p, status: 401 });
      metrics.request(routeOf(p), 401, 0);
      return errorResponse(apiOf(p), e);
    }
    await next();
  });
  const maxBody = o.maxBodyBytes ?? 32 * 1024 * 1024;
  app.use(
    '*',
    bodyLimit({
      maxSize: maxBody,
      onError: (c) => {
        // The rest of the body is never read, so this connection must not be reused by the client.
        const r = errorResponse(apiOf(c.req.path), new ApiError(413, 'too_large', `request body larger than ${maxBody} bytes`));
        r.headers.set('connection', 'close');
        metrics.request(routeOf(c.req.path), 413, 0);
        log({ ts: new Date().toISOString(), level: 'warn', msg: 'request', method: c.req.method, path: c.req.path, status: 413 });
        return r;
      },
    }),
  );

  const route = (api: Api, handler: Handler) => async (c: Context) => {
    const t0 = performance.now();
    const rec: Record<string, unknown> = {
      ts: new Date().toISOString(),
      level: 'info',
      msg: 'request',
      id: randomId(12),
      method: c.req.method,
      path: c.req.path,
    };
    const abort = new AbortController();
    const clientSignal = c.req.raw.signal;
    const onClientAbort = () => abort.abort();
    clientSignal.addEventListener('abort', onClientAbort, { once: true });
    let logged = false;
    const finish = (status: number, r?: RunResult) => {
      if (logged) return;
      logged = true;
      clientSignal.removeEventListener('abort', onClientAbort);
      const s = (performance.now() - t0) / 1000;
      rec.status = status;
      rec.ms = Math.round(s * 1000);
      if (r) {
        rec.cached_tokens = r.cachedTokens;
        rec.completion_tokens = r.choices.reduce((a, x) => a + x.completionTokens, 0);
        rec.finish = r.choices.map((x) => x.finishReason);
        if (abort.signal.aborted) rec.cancelled = true;
        metrics.promptTokens.inc('', r.promptTokens - r.cachedTokens);
        metrics.generatedTokens.inc('', rec.completion_tokens as number);
        if (r.ttftS !== null) metrics.ttft.observe('', r.ttftS);
      }
      metrics.request(routeOf(c.req.path), status, s); // the route pattern: ids and made-up paths must not add series
      log(rec);
    };
    let result: RunResult | undefined;
    const ctx: RequestContext = {
      engine,
      params: c.req.param(),
      images,
      signal: abort.signal,
      note: (f) => Object.assign(rec, f),
      done: (r) => {
        result = r;
        if (rec.stream) finish(200, r);
      },
    };
    try {
      let body: unknown = {};
      const hasBody = c.req.method !== 'GET' && c.req.method !== 'DELETE';
      const text = hasBody ? await c.req.text() : '';
      // GET/DELETE routes (a stored response) read no body; Ollama's clients may POST an empty one.
      if (hasBody && (text !== '' || api !== 'ollama')) {
        checkJsonContentType(c.req.header('content-type'), c.req.header('origin'));
        try {
          body = JSON.parse(text);
        } catch {
          throw new ApiError(400, 'invalid_request', 'the request body is not valid JSON');
        }
      }
      if (!isObject(body)) throw new ApiError(400, 'invalid_request', 'the request body must be a JSON object');
      checkBodyDepth(body);
      const res = await handler(body, ctx);
      if (!rec.stream) finish(res.status, result);
      return res;
    } catch (e) {
      const err = toApiError(e);
      rec.error = err.message;
      if (err.status >= 500) {
        rec.level = 'error';
        rec.stack = e instanceof Error ? e.stack : undefined;
      }
      finish(err.status, result);
      return errorResponse(api, err);
    }
  };

  app.get('/health', (c) => {
    const s = sched.stats();
    const failure = engine.failure?.() ?? null;
    if (failure !== null)
      return c.json({ status: 'error', error: failure, model: engine.modelId, active: s.active, queued: s.queued }, 503);
    return c.json({ status: 'ok', model: engine.modelId, active: s.active, queued: s.queued });
  });
  app.get('/metrics', (c) =>
    c.text(metrics.render() + (o.guard ? guardMetrics.text() : ''), 200, { 'content-type': 'text/plain; version=0.0.4' }),
  );
  app.get('/v1/models', (c) => c.json(modelsList(engine, listedName)));
  app.get('/v1/models/:id', (c) => c.json({ ...((modelsList(engine, listedName).data as Json[])[0] ?? {}), id: c.req.param('id') }));
  app.post('/v1/chat/completions', route('openai', chatCompletions));
  app.post('/v1/completions', route('openai', completions));
  app.post('/v1/messages', route('anthropic', messages));
  app.post('/v1/messages/count_tokens', route('anthropic', countTokens));
  app.post('/v1/embeddings', route('openai', openaiEmbeddings));
  app.post(
    '/v1/responses',
    route('openai', (b, ctx) => createResponse(b, ctx, store)),
  );
  app.get(
    '/v1/responses/:id',
    route('openai', (_b, ctx) => getResponse(ctx, store)),
  );
  app.delete(
    '/v1/responses/:id',
    route('openai', (_b, ctx) => deleteResponse(ctx, store)),
  );
  app.post('/tokenize', route('openai', tokenizeRoute));
  app.post('/detokenize', route('openai', detokenizeRoute));
  app.post('/apply-template', route('openai', applyTemplateRoute));
  app.get('/props', (c) => c.json(props(engine, listedName)));
  registerOllama(app, route, engine, listedName);
  if (o.guard) mountModerations(app, o.guard, guardMetrics, (h) => route('openai', h));
  mountChatPage(app, engine);
  app.notFound((c) => errorResponse(apiOf(c.req.path), new ApiError(404, 'not_found', `no route for ${c.req.method} ${c.req.path}`)));
  app.onError((e, c) => errorResponse(apiOf(c.req.path), toApiError(e)));
  return { app, metrics };
}

export interface RunningServer {
  url: string;
  port: number;
  metrics: Metrics;
  close(): Promise<void>;
}

/** Starts the server on host:port (port 0 = any free port). */
export function startServer(engine: ServerEngine, o: ServerOptions & { host?: string; port?: number } = {}): Promise<RunningServer> {
  const host = o.host ?? '127.0.0.1';
  const { app, metrics } = createApp(engine, { ...o, host });
  // JSON modes sort the vocabulary once (0.4 s for Llama 4's): done here, not in the first such request.
  prepareMaskVocabulary(engine.vocabulary);
  if (o.apiKey === undefined && !isLoopbackHost(host)) {
    (o.log ?? ((r) => process.stderr.write(JSON.stringify(r) + '\n')))({
      ts: new Date().toISOString(),
      level: 'warn',
      msg: `listening on ${host} without an API key: anyone who can reach this address can use the model (set --api-key)`,
    });
  }
  return new Promise((resolve, reject) => {
    const server = serve({ fetch: app.fetch, port: o.port ?? 8080, hostname: host }, (info: AddressInfo) => {
      const h = host.includes(':') ? `[${host}]` : host;
      resolve({
        url: `http://${h}:${info.port}`,
        port: info.port,
        metrics,
        close: () =>
          new Promise<void>((res) => {
            engine.scheduler.close();
            const s = server as unknown as { closeAllConnections?: () => void; close(cb: () => void): void };
            s.close(
              () =>
                void (engine.close?.() ?? Promise.resolve()).then(
                  () => res(),
                  () => res(),
                ),
            );
            s.closeAllConnections?.();
          }),
      });
    });
    // Model steps hold the event loop for up to a second or two; a short keep-alive timeout would then close idle
    // client connections just as they are reused ("other side closed"). 65 s is the usual load-balancer-safe value.
    const http = server as unknown as { keepAliveTimeout: number; headersTimeout: number };
    http.keepAliveTimeout = 65_000;
    http.headersTimeout = 66_000;
    server.once('error', reject);
  });
}
