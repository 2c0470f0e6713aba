/**
 * Llama Guard in the server: POST /v1/moderations in OpenAI's shape, and screening of chat requests
 * (`serve --guard-input` / `--guard-output`).
 *
 * /v1/moderations: `input` is a string, a list of strings (one result each), or a list of content parts
 * ({type:'text'} / {type:'image_url'}; one result for the whole list). Each result has `flagged`, `categories` and
 * `category_scores` keyed by the 14 Llama Guard 4 category names ("Violent Crimes" …; scores as in
 * src/guard/verdict.ts), and `category_applied_input_types`.
 *
 * Screening wraps the ServerEngine: input screening runs in encodeChat, and for raw prompts (/v1/completions,
 * Ollama's raw generate) in screenRawPrompt, before anything streams, so a refused
 * request gets one error body in its API's format (OpenAI or Anthropic) and never reaches the model; output screening
 * holds each answer's tokens until generation ends, checks the conversation plus the answer (agent turn), and only
 * then hands the tokens to the route (a streamed answer arrives in one burst at the end, or as an error event).
 * Refusals are counted in llama4_guard_refusals_total{stage="input"|"output"}.
 */
import type { Context, Hono } from 'hono';
import type { GenerationRequest, GenerationResult, TokenInfo } from '../engine/scheduler.ts';
import { LLAMA_GUARD_4_CATEGORIES, TEXT_ONLY_CATEGORIES, type Guard, type GuardContentPart, type GuardMessage } from '../guard/index.ts';
import type { ChatMessage, ServerEngine } from './engine.ts';
import type { RequestContext } from './openai.ts';
import { ApiError, badRequest, isObject, loadImageUrl, randomId, type Json } from './util.ts';

export interface GuardServerOptions {
  readonly guard: Guard;
  /** The name /v1/moderations answers to (requests may omit `model`). */
  readonly modelId: string;
  /** Check each chat request's conversation before running the model. */
  readonly screenInput?: boolean;
  /** Check each answer (with its conversation) before returning it. */
  readonly screenOutput?: boolean;
  /** Unsafe when P(unsafe) exceeds this (default 0.5). */
  readonly threshold?: number;
}

/** Counts refusals and guard checks for /metrics. */
export class GuardMetrics {
  private readonly refusals = { input: 0, output: 0 };
  private checks = 0;
  private seconds = 0;
  refused(stage: 'input' | 'output'): void {
    this.refusals[stage]++;
  }
  checked(s: number): void {
    this.checks++;
    this.seconds += s;
  }
  /** Prometheus text of these counters (appended to /metrics). */
  text(): string {
    const out: string[] = [];
    this.render(out);
    return out.join('\n') + '\n';
  }
  render(out: string[]): void {
    out.push(
      '# HELP llama4_guard_refusals_total Chat requests refused by the safety guard, by stage.',
      '# TYPE llama4_guard_refusals_total counter',
    );
    out.push(
      `llama4_guard_refusals_total{stage="input"} ${this.refusals.input}`,
      `llama4_guard_refusals_total{stage="output"} ${this.refusals.output}`,
    );
    out.push(
      '# HELP llama4_guard_checks_total Guard classifications run (moderations and screening).',
      '# TYPE llama4_guard_checks_total counter',
      `llama4_guard_checks_total ${this.checks}`,
    );
    out.push(
      '# HELP llama4_guard_seconds_total Time spent in guard classifications.',
      '# TYPE llama4_guard_seconds_total counter',
      `llama4_guard_seconds_total ${this.seconds}`,
    );
  }
}

async function timedCheck(o: GuardServerOptions, m: GuardMetrics, conv: GuardMessage[]) {
  const t0 = performance.now();
  try {
    return await o.guard.check(conv, o.threshold !== undefined ? { threshold: o.threshold } : {});
  } finally {
    m.checked((performance.now() - t0) / 1000);
  }
}

const NAME_OF = new Map(LLAMA_GUARD_4_CATEGORIES.map((c) => [c.code, c.name]));

function refusal(stage: 'input' | 'output', codes: string[], param: string | null): ApiError {
  const what = codes.length ? codes.map((c) => `${c} (${NAME_OF.get(c)})`).join(', ') : 'unsafe content';
  const msg =
    stage === 'input'
      ? `Request refused by the safety guard: the last user message was classified unsafe: ${what}. The model was not run.`
      : `Response withheld by the safety guard: the model's answer was classified unsafe: ${what}.`;
  return new ApiError(400, 'invalid_request', msg, param);
}

/**
 * A server conversation as Llama Guard sees it: user and assistant turns only (system and tool messages are not
 * judged), consecutive turns of one side merged, starting with a user turn.
 */
export function guardConversation(messages: readonly ChatMessage[]): GuardMessage[] {
  const out: GuardMessage[] = [];
  for (const m of messages) {
    if (m.role !== 'user' && m.role !== 'assistant') continue;
    const content = typeof m.content === 'string' ? [{ type: 'text' as const, text: m.content }] : m.content;
    const parts: GuardContentPart[] = content.map((p) =>
      p.type === 'text' ? { type: 'text', text: p.text } : { type: 'image', image: p.data },
    );
    const last = out[out.length - 1];
    if (last && last.role === m.role) (last.content as GuardContentPart[]).push(...parts);
    else if (out.length > 0 || m.role === 'user') out.push({ role: m.role, content: parts });
  }
  // One text part per turn: parts of a merged turn are joined with blank lines.
  for (const m of out) {
    const parts = m.content as GuardContentPart[];
    const text = parts.flatMap((p) => (p.type === 'text' ? [p.text] : [])).join('\n\n');
    m.content = [...parts.filter((p) => p.type === 'image'), { type: 'text', text }];
  }
  return out;
}

/** Raw-prompt screening of each screened engine (see screenRawPrompt). */
const rawScreens = new WeakMap<ServerEngine, (text: string, tokens: readonly number[], param: string) => Promise<void>>();

/**
 * For routes that take a raw prompt instead of messages (/v1/completions, Ollama's `raw` generate): with input
 * screening the prompt text is judged as one user message (refused like a chat request, with `param` named); with
 * output screening it is the conversation the answer is judged with. Does nothing on an engine without a guard.
 */
export async function screenRawPrompt(engine: ServerEngine, text: string, tokens: readonly number[], param: string): Promise<void> {
  await rawScreens.get(engine)?.(text, tokens, param);
}

/** The engine with the guard in front of (input) and/or behind (output) the model. */
export function screenedEngine(engine: ServerEngine, o: GuardServerOptions, metrics: GuardMetrics): ServerEngine {
  if (!o.screenInput && !o.screenOutput) return engine;
  const conversations = new WeakMap<readonly number[], ChatMessage[]>();
  const screenInput = async (conv: GuardMessage[], param: string) => {
    while (conv.length && conv[conv.length - 1]!.role !== 'user') conv.pop();
    if (!conv.length) return;
    const v = await timedCheck(o, metrics, conv);
    if (!v.safe) {
      metrics.refused('input');
      throw refusal('input', v.categories, param);
    }
  };
  const encodeChat: ServerEngine['encodeChat'] = async (messages, tools) => {
    if (o.screenInput) await screenInput(guardConversation(messages), 'messages');
    const p = await engine.encodeChat(messages, tools);
    conversations.set(p.tokens, messages);
    return p;
  };
  const screenRaw = async (text: string, tokens: readonly number[], param: string) => {
    const messages: ChatMessage[] = [{ role: 'user', content: [{ type: 'text', text }] }];
    if (o.screenInput) await screenInput(guardConversation(messages), param);
    conversations.set(tokens, messages);
  };
  const sched = engine.scheduler;
  const submit = (req: GenerationRequest): Promise<GenerationResult> => {
    if (!o.screenOutput) return sched.submit(req);
    const messages = conversations.get(req.prompt) ?? [];
    const n = req.n ?? 1;
    const held: TokenInfo[][] = Array.from({ length: n }, () => []);
    const inner: GenerationRequest = {
      ...req,
      onToken: (choice, info) => {
        held[choice]!.push(info);
      },
    };
    return sched.submit(inner).then(async (res) => {
      for (let c = 0; c < n; c++) {
        const dec = engine.newDecoder();
        const answer = held[c]!.map((t) => dec.push(t.token)).join('') + dec.flush();
        const conv = guardConversation([...messages, { role: 'assistant', content: [{ type: 'text', text: answer }] }]);
        if (conv.length === 0 || conv[0]!.role !== 'user') conv.unshift({ role: 'user', content: '' });
        const v = await timedCheck(o, metrics, conv);
        if (!v.safe) {
          metrics.refused('output');
          throw refusal('output', v.categories, null);
        }
      }
      // Approved: hand the tokens to the route as if they had just been generated (stop strings still apply).
      for (let c = 0; c < n; c++) for (const info of held[c]!) if (req.onToken?.(c, info) === true) break;
      return res;
    });
  };
  const scheduler = new Proxy(sched, {
    get(t, k) {
      if (k === 'submit') return submit;
      const v = Reflect.get(t, k, t);
      return typeof v === 'function' ? v.bind(t) : v;
    },
  });
  const screened = new Proxy(engine, {
    get(t, k) {
      if (k === 'encodeChat') return encodeChat;
      if (k === 'scheduler') return scheduler;
      const v = Reflect.get(t, k, t);
      return typeof v === 'function' ? v.bind(t) : v;
    },
  });
  rawScreens.set(screened, screenRaw);
  return screened;
}

type ModerationInput = { messages: GuardMessage[]; types: ('text' | 'image')[] };

async function readInputs(body: Json, ctx: RequestContext): Promise<ModerationInput[]> {
  const input = body.input;
  if (typeof input === 'string') return [{ messages: [{ role: 'user', content: input }], types: ['text'] }];
  if (!Array.isArray(input) || input.length === 0)
    throw badRequest("'input' must be a string, a non-empty list of strings, or a non-empty list of content parts", 'input');
  if (input.every((x) => typeof x === 'string'))
    return (input as string[]).map((s) => ({ messages: [{ role: 'user', content: s }], types: ['text'] }));
  const parts: GuardContentPart[] = [];
  const types = new Set<'text' | 'image'>();
  for (const [i, p] of input.entries()) {
    const where = `input[${i}]`;
    if (!isObject(p)) throw badRequest(`'${where}' must be a content part object`, where);
    if (p.type === 'text') {
      if (typeof p.text !== 'string') throw badRequest(`'${where}.text' must be a string`, `${where}.text`);
      parts.push({ type: 'text', text: p.text });
      types.add('text');
    } else if (p.type === 'image_url') {
      const iu = p.image_url;
      const url = typeof iu === 'string' ? iu : isObject(iu) && typeof iu.url === 'string' ? iu.url : undefined;
      if (url === undefined) throw badRequest(`'${where}.image_url.url' must be a string`, `${where}.image_url.url`);
      const img = await loadImageUrl(url, `${where}.image_url.url`, ctx.images);
      parts.push({ type: 'image', image: img.data });
      types.add('image');
    } else {
      throw badRequest(`'${where}.type' must be 'text' or 'image_url'`, `${where}.type`);
    }
  }
  // One turn: its images, then its text parts joined (the order of the docs' worked example: images, then text).
  const ordered = [
    ...parts.filter((p) => p.type === 'image'),
    { type: 'text' as const, text: parts.flatMap((p) => (p.type === 'text' ? [p.text] : [])).join('\n\n') },
  ];
  return [{ messages: [{ role: 'user', content: ordered }], types: [...types] }];
}

/** Adds POST /v1/moderations (through the app's `route` wrapper: logs, metrics, OpenAI error bodies). */
export function mountModerations(
  app: Hono,
  o: GuardServerOptions,
  metrics: GuardMetrics,
  route: (handler: (body: Json, ctx: RequestContext) => Promise<Response>) => (c: Context) => Promise<Response>,
): void {
  app.post(
    '/v1/moderations',
    route(async (body, ctx) => {
      const model = body.model;
      if (model !== undefined && model !== o.modelId)
        throw new ApiError(
          404,
          'not_found',
          `The model '${String(model)}' does not exist; this server's moderation model is '${o.modelId}'`,
          'model',
        );
      const inputs = await readInputs(body, ctx);
      const results: Json[] = [];
      for (const inp of inputs) {
        const v = await timedCheck(o, metrics, inp.messages);
        const categories: Record<string, boolean> = {},
          scores: Record<string, number> = {},
          applied: Record<string, string[]> = {};
        for (const c of LLAMA_GUARD_4_CATEGORIES) {
          categories[c.name] = v.categories.includes(c.code);
          scores[c.name] = v.scores[c.code] ?? 0;
          applied[c.name] = inp.types.filter((t) => t === 'text' || !TEXT_ONLY_CATEGORIES.has(c.code));
        }
        results.push({ flagged: !v.safe, categories, category_scores: scores, category_applied_input_types: applied });
      }
      ctx.note({ model: o.modelId, inputs: inputs.length, flagged: results.filter((r) => r.flagged).length });
      return Response.json({ id: `modr-${randomId(24)}`, model: o.modelId, results });
    }),
  );
}
