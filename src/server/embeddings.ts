/**
 * Embeddings: POST /v1/embeddings (OpenAI) and the pooling behind Ollama's /api/embed. A text's vector is the mean
 * over its tokens (BOS included, as llama.cpp's mean pooling) of the model's final-norm hidden states — the rows the
 * output projection reads — then L2-normalised (unit length, what OpenAI and Ollama clients expect: cosine = dot).
 * The states come from a fresh sequence prefilled in pieces, one input at a time (a small queue keeps concurrent
 * requests from piling up prefill memory).
 */
import type { ServerEngine } from './engine.ts';
import type { RequestContext } from './openai.ts';
import { ApiError, badRequest, checkTextSize, field, type Json } from './util.ts';

/** Inputs per request (OpenAI's limit) and the queue of embedding requests waiting for the model. */
const MAX_INPUTS = 2048;
const MAX_WAITING = 64;

/** Mean over rows of [rows, H], then L2-normalised. */
export function meanPoolNormalized(hidden: Float32Array, rows: number, H: number): Float32Array {
  const v = new Float64Array(H);
  for (let r = 0; r < rows; r++) for (let j = 0; j < H; j++) v[j]! += hidden[r * H + j]!;
  let norm = 0;
  for (let j = 0; j < H; j++) norm += (v[j]! / rows) ** 2;
  norm = Math.sqrt(norm);
  const out = new Float32Array(H);
  for (let j = 0; j < H; j++) out[j] = norm > 0 ? v[j]! / rows / norm : 0;
  return out;
}

/** One embedding request at a time per engine; later ones wait (at most MAX_WAITING, then 429). */
const queues = new WeakMap<ServerEngine, { chain: Promise<unknown>; waiting: number }>();
function serialized<T>(engine: ServerEngine, f: () => Promise<T>): Promise<T> {
  let q = queues.get(engine);
  if (!q) queues.set(engine, (q = { chain: Promise.resolve(), waiting: 0 }));
  if (q.waiting >= MAX_WAITING)
    throw new ApiError(429, 'rate_limit', 'the server is busy: too many embedding requests are waiting', null, 1);
  q.waiting++;
  const run = q.chain.then(f, f);
  q.chain = run.then(
    () => undefined,
    () => undefined,
  );
  const queue = q;
  return run.finally(() => queue.waiting--);
}

/**
 * An input list: a string, strings, token ids, or lists of token ids. Each becomes one token sequence. An input
 * longer than the context is refused (OpenAI), or cut to the context with `truncate` (Ollama's default).
 */
export function readEmbeddingInputs(v: unknown, engine: ServerEngine, path: string, truncate = false): number[][] {
  if (v === undefined || v === null) throw badRequest(`'${path}' is required`, path);
  const ctxLen = engine.scheduler.contextLength;
  const vocab = engine.vocabulary.size;
  const ofText = (s: string, at: string) => {
    checkTextSize(s.length, ctxLen, at);
    return engine.encodeText(s);
  };
  const ofIds = (a: unknown[], at: string) => {
    for (const t of a)
      if (!Number.isInteger(t) || (t as number) < 0 || (t as number) >= vocab)
        throw badRequest(`'${at}': token ${String(t)} is outside the vocabulary (0..${vocab - 1})`, path);
    return a as number[];
  };
  let lists: number[][];
  if (typeof v === 'string') lists = [ofText(v, path)];
  else if (Array.isArray(v) && v.length > 0 && v.every((x) => typeof x === 'number')) lists = [ofIds(v, path)];
  else if (Array.isArray(v) && v.length > 0) {
    if (v.length > MAX_INPUTS) throw badRequest(`'${path}' has ${v.length} inputs; at most ${MAX_INPUTS}`, path);
    lists = v.map((x, i) => {
      const at = `${path}[${i}]`;
      if (typeof x === 'string') return ofText(x, at);
      if (Array.isArray(x)) return ofIds(x, at);
      throw badRequest(`'${at}' must be a string or an array of token ids`, path);
    });
  } else throw badRequest(`'${path}' must be a non-empty string, array of strings, array of token ids or array of such arrays`, path);
  return lists.map((l, i) => {
    if (l.length === 0) throw badRequest(`'${path}' input ${i} is empty`, path);
    if (l.length <= ctxLen) return l;
    if (truncate) return l.slice(0, ctxLen);
    throw badRequest(`'${path}' input ${i} has ${l.length} tokens; this server's context holds ${ctxLen}`, path);
  });
}

/** Unit-length mean-pooled embeddings of token sequences, computed one after another. */
export function embedAll(engine: ServerEngine, inputs: number[][], signal?: AbortSignal): Promise<Float32Array[]> {
  const H = engine.scheduler.model.info.hiddenSize;
  return serialized(engine, async () => {
    const out: Float32Array[] = [];
    for (const tokens of inputs) out.push(meanPoolNormalized(await engine.hiddenStates(tokens, signal), tokens.length, H));
    return out;
  });
}

/** POST /v1/embeddings. */
export async function openaiEmbeddings(body: Json, ctx: RequestContext): Promise<Response> {
  const { engine } = ctx;
  const model = field.str(body, 'model');
  if (model === undefined) throw badRequest("'model' is required", 'model');
  const H = engine.scheduler.model.info.hiddenSize;
  const dims = field.int(body, 'dimensions', 1, 1e9);
  if (dims !== undefined && dims !== H)
    throw badRequest(
      `'dimensions' ${dims} is not supported: this model's embeddings have ${H} dimensions (it cannot shorten them)`,
      'dimensions',
    );
  const format = field.str(body, 'encoding_format') ?? 'float';
  if (format !== 'float' && format !== 'base64') throw badRequest("'encoding_format' must be 'float' or 'base64'", 'encoding_format');
  const inputs = readEmbeddingInputs(body.input, engine, 'input');
  const tokens = inputs.reduce((s, l) => s + l.length, 0);
  ctx.note({ model, inputs: inputs.length, prompt_tokens: tokens });
  const vectors = await embedAll(engine, inputs, ctx.signal);
  return Response.json({
    object: 'list',
    data: vectors.map((v, index) => ({
      object: 'embedding',
      index,
      embedding: format === 'base64' ? Buffer.from(v.buffer, v.byteOffset, v.byteLength).toString('base64') : Array.from(v),
    })),
    model,
    usage: { prompt_tokens: tokens, total_tokens: tokens },
  });
}
