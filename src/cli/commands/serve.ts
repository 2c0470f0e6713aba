import { createServer } from 'node:net';
import { parseArgs } from '../args.ts';
import { createProgress } from '../progress.ts';
import { UsageError } from '../../util/index.ts';
import type { Command } from '../command.ts';
import { DEFAULT_MODEL_DIR } from '../../load.ts';
import { loadServerEngine } from '../../server/load-engine.ts';
import { startServer } from '../../server/app.ts';
import { loadServeGuard } from '../../server/load-guard.ts';
import { MODEL_OPTIONS, MODEL_USAGE, loadOptions, parseNumber } from '../options.ts';

export const serveCommand: Command = {
  name: 'serve',
  summary: 'OpenAI- and Anthropic-compatible HTTP server with a chat page',
  usage: `usage: llama4 serve [-m MODEL] [--host 127.0.0.1] [--port 8080] [--api-key KEY] [--parallel N] [-c N]
Serves the OpenAI API (/v1/chat/completions, /v1/completions, /v1/responses, /v1/embeddings, /v1/models), the
Anthropic API (/v1/messages, /v1/messages/count_tokens), the Ollama API (/api/chat, /api/generate, /api/embed,
/api/tags, /api/show, /api/ps, /api/version), llama-server's /tokenize, /detokenize, /apply-template, /props, and
/health, /metrics and a chat page at /. Requests that arrive while others generate join the same batch.
  --host ADDR            address to bind (default 127.0.0.1: this machine only)
  --port N               TCP port (default 8080; 0 = any free port); bound before the model loads, so a port
                         in use is reported at once
  --api-key KEY          require Authorization: Bearer KEY (or x-api-key: KEY) on the API routes and /metrics
                         (default: the LLAMA4_API_KEY environment variable, else no key)
  --parallel N           sequences decoded together (default 4)
  -c, --ctx N            context length per sequence (default: the model's; --ctx-size is an alias)
  --queue N              requests that may wait for a slot before 429 (default 64)
  --step-tokens N        tokens per batched step (default 128; smaller = snappier /health and streams, slower prefill)
  --tokenizer PATH       tokenizer folder/file when it is not beside the weights
  --allow-remote-images  fetch http(s) image URLs from public addresses (off: only data URLs)
  --special-tokens-in-messages
                         treat special-token text typed in messages (<|eot|>, <|header_start|>, …) as control
                         tokens, as the reference does (off: it is text; on, a user can forge system turns)
  --alias NAME           the model name /v1/models and /api/tags list (default: the file name; any name is accepted)
  --cors ORIGINS         comma-separated origins browsers may call from, '*' as a wildcard (default: loopback:
                         http(s)://localhost:*, 127.0.0.1:*, [::1]:*); '*' alone allows every origin
  --no-worker            compute on the main thread (default: a worker thread runs the model, so HTTP and
                         /health answer during a step)
  --guard GUARD          a Llama Guard checkpoint beside the model: POST /v1/moderations (OpenAI's shape);
                         without -m the guard is served alone (its own model answers /v1/chat/completions too)
  --guard-input          refuse chat requests whose last user message the guard finds unsafe (400, the API's
                         own error body; counted in llama4_guard_refusals_total{stage="input"})
  --guard-output         withhold answers the guard finds unsafe (streamed answers arrive at the end)
  --guard-threshold X    unsafe when P(unsafe)/(P(safe)+P(unsafe)) > X (default 0.5)
${MODEL_USAGE}`,
  async run(argv) {
    const { values } = parseArgs({
      args: argv,
      options: {
        ...MODEL_OPTIONS,
        host: { type: 'string' },
        port: { type: 'string' },
        'api-key': { type: 'string' },
        parallel: { type: 'string' },
        ctx: { type: 'string' },
        queue: { type: 'string' },
        'step-tokens': { type: 'string' },
        tokenizer: { type: 'string' },
        'allow-remote-images': { type: 'boolean' },
        'special-tokens-in-messages': { type: 'boolean' },
        alias: { type: 'string' },
        cors: { type: 'string' },
        'no-worker': { type: 'boolean' },
        guard: { type: 'string' },
        'guard-input': { type: 'boolean' },
        'guard-output': { type: 'boolean' },
        'guard-threshold': { type: 'string' },
      },
      strict: true,
    });
    const port = parseNumber('port', values.port, { int: true, min: 0 }) ?? 8080;
    const parallel = parseNumber('parallel', values.parallel, { int: true, min: 1 }) ?? 4;
    const ctx = parseNumber('ctx', values.ctx, { int: true, min: 2 });
    const maxQueue = parseNumber('queue', values.queue, { int: true, min: 0 }) ?? 64;
    const stepTokens = parseNumber('step-tokens', values['step-tokens'], { int: true, min: 1 });
    const host = values.host ?? '127.0.0.1';
    const apiKey = values['api-key'] ?? process.env.LLAMA4_API_KEY;
    if ((values['guard-input'] || values['guard-output'] || values['guard-threshold'] !== undefined) && !values.guard)
      throw new UsageError('--guard-input, --guard-output and --guard-threshold need --guard GUARD');
    const guardThreshold = parseNumber('guard-threshold', values['guard-threshold'], { min: 0 });
    const alone = values.guard !== undefined && values.model === undefined;
    // The guard computes in its own model worker, off the event loop; served alone (it answers chat too) or with
    // --no-worker it computes on this thread, and with --no-worker the model shares its backend (one thread pool).
    const served = values.guard
      ? await loadServeGuard(values.guard, {
          ...loadOptions(values),
          ...(values.tokenizer ? { tokenizerPath: values.tokenizer } : {}),
          worker: !alone && values['no-worker'] !== true,
        })
      : null;
    const guard = served?.guard ?? null;
    const guardId = values.guard
      ? values.guard
          .replace(/\/+$/, '')
          .split('/')
          .pop()!
          .replace(/\.gguf$/, '')
      : '';
    const path = values.model ?? DEFAULT_MODEL_DIR;
    // Bind first: a taken port is one line now, not a stack trace after a long load. The probe is released just
    // before the server listens (port 0 needs no probe: any free port will do).
    const probe = port === 0 ? null : await reservePort(host, port);
    const t0 = performance.now();
    const progress = createProgress(`loading ${path}`);
    let engine: Awaited<ReturnType<typeof loadServerEngine>>;
    try {
      engine = alone
        ? guard!.loaded!.createChatEngine({
            modelId: guardId,
            parallel,
            maxQueue,
            ...(values.tokenizer ? { tokenizerPath: values.tokenizer } : {}),
            ...(stepTokens !== undefined ? { stepTokens } : {}),
            ...(ctx !== undefined ? { contextLength: ctx } : {}),
          })
        : await loadServerEngine(path, {
            ...(guard?.loaded ? { sharedBackend: guard.loaded.backend } : {}),
            ...loadOptions(values),
            parallel,
            maxQueue,
            ...(stepTokens !== undefined ? { stepTokens } : {}),
            ...(ctx !== undefined ? { contextLength: ctx } : {}),
            ...(values.tokenizer ? { tokenizerPath: values.tokenizer } : {}),
            worker: values['no-worker'] !== true,
            specialTokensInMessages: values['special-tokens-in-messages'] === true,
            onProgress: (f, what) => progress.update(f, what),
          });
    } finally {
      await new Promise<void>((resolve) => (probe ? probe.close(() => resolve()) : resolve()));
    }
    const name = values.alias || engine.modelId;
    progress.done(`loaded ${name} in ${((performance.now() - t0) / 1000).toFixed(1)} s`);
    let srv: Awaited<ReturnType<typeof startServer>>;
    try {
      srv = await startServer(engine, {
        host,
        port,
        ...(apiKey ? { apiKey } : {}),
        images: { allowRemote: values['allow-remote-images'] === true },
        ...(guard
          ? {
              guard: {
                guard,
                modelId: guardId,
                screenInput: values['guard-input'] === true,
                screenOutput: values['guard-output'] === true,
                ...(guardThreshold !== undefined ? { threshold: guardThreshold } : {}),
              },
            }
          : {}),
        ...(values.alias ? { alias: values.alias } : {}),
        ...(values.cors !== undefined
          ? {
              corsOrigins: values.cors
                .split(',')
                .map((x) => x.trim())
                .filter((x) => x !== ''),
            }
          : {}),
      });
    } catch (e) {
      await engine.close?.();
      throw bindError(e, host, port);
    }
    process.stderr.write(
      `listening on ${srv.url}  (model '${name}', parallel ${parallel}, context ${engine.scheduler.contextLength}, ${values['no-worker'] || alone ? 'computing in-thread' : 'computing in a worker thread'}${apiKey ? ', API key required' : ''}${guard ? `; guard '${guardId}' on /v1/moderations (${served!.where})${values['guard-input'] ? ', screening input' : ''}${values['guard-output'] ? ', screening output' : ''}` : ''})\n`,
    );
    await new Promise<void>((resolve) => {
      const stop = () => resolve();
      process.once('SIGINT', stop);
      process.once('SIGTERM', stop);
    });
    process.stderr.write('shutting down\n');
    await srv.close();
    await served?.close();
    return 0;
  },
};

/** One-line UsageError for a port that cannot be bound, or the error itself. */
function bindError(e: unknown, host: string, port: number): unknown {
  const code = (e as NodeJS.ErrnoException).code;
  if (code === 'EADDRINUSE')
    return new UsageError(`port ${port} on ${host} is already in use (another server?); choose another with --port`);
  if (code === 'EACCES') return new UsageError(`no permission to bind port ${port} on ${host}; choose a port above 1023 with --port`);
  if (code === 'EADDRNOTAVAIL' || code === 'ENOTFOUND')
    return new UsageError(`cannot bind ${host}: not an address of this machine (--host)`);
  return e;
}

/** Listens on host:port (holding it while the model loads), or throws the one-line bind error. */
function reservePort(host: string, port: number): Promise<ReturnType<typeof createServer>> {
  return new Promise((resolve, reject) => {
    const probe = createServer();
    probe.once('error', (e) => reject(bindError(e, host, port)));
    probe.listen({ host, port, exclusive: true }, () => resolve(probe));
  });
}
