/**
 * A conversation with a model: `ChatSession` keeps the history (system message, turns, tool calls and results) and
 * runs each turn through the chat engine (chat-engine.ts + completion.ts), the same path the server's routes take.
 * The engine's scheduler keeps the finished sequence, so the next turn, whose prompt starts with this one's,
 * reuses its KV cache and computes only the new tokens. Answers stream (`stream()` is an async iterator of text
 * pieces; `send()` takes `onText`), tool calls come back parsed, images go in as paths or bytes, and an AbortSignal
 * stops a turn (the partial answer stays in the history, as a chat app shows it).
 */
import type { ChatMessage, ContentPart, ImagePart, ToolCall, ToolDefinition, ToolSpec } from '../chat/index.ts';
import { UsageError } from '../util/index.ts';
import type { ChatEngine } from './chat-engine.ts';
import type { FinishReason } from './common.ts';
import { runGeneration } from './completion.ts';
import { toolCallSchema } from './tool-schema.ts';
import type { SamplingOptions } from './scheduler-sampling.ts';

export interface ChatSessionOptions {
  /** A system message that opens the conversation. */
  system?: string;
  /**
   * Tools the model may call; replies then carry `toolCalls` (answer them with `send({ role: 'tool', … })`). Either
   * `{ name, description, parameters }` or the OpenAI SDK's `{ type: 'function', function: { … } }`.
   */
  tools?: (ToolSpec | ToolDefinition)[];
  /** Answer length limit per turn (default 512 tokens). */
  maxTokens?: number;
  /** Sampling for every turn (default: the model's generation_config.json; `{ temperature: 0 }` is greedy). */
  sampling?: SamplingOptions;
}

export interface SendOptions {
  /** Images for this user message (file paths, data URLs or bytes); each comes before the text, in order. */
  images?: ImagePart['data'][];
  maxTokens?: number;
  sampling?: SamplingOptions;
  /** Stops the turn; the reply then has finishReason 'cancelled' and the text so far. */
  signal?: AbortSignal;
  /** Called with each new piece of the answer's text as it is generated. */
  onText?(piece: string): void;
}

export interface ChatReply {
  /** The answer's text (with tool calls: the prose beside them, often ''). */
  readonly text: string;
  /** Tool calls the model made (arguments as JSON text), in order. */
  readonly toolCalls: readonly ToolCall[];
  readonly finishReason: FinishReason | 'tool_calls';
  readonly usage: { readonly promptTokens: number; readonly cachedTokens: number; readonly completionTokens: number };
  /** The assistant message this turn appended to the history. */
  readonly message: ChatMessage;
  /** The text, so that `console.log(await chat.send('…'))` prints the answer. */
  toString(): string;
}

/** A declared tool as ToolSpec; OpenAI-shaped definitions are unwrapped, and a tool without a name is refused. */
function toolSpec(t: ToolSpec | ToolDefinition, i: number): ToolSpec {
  const spec: unknown = typeof t === 'object' && t !== null && 'function' in t ? t.function : t;
  const name = typeof spec === 'object' && spec !== null ? (spec as { name?: unknown }).name : undefined;
  if (typeof name !== 'string' || name === '')
    throw new UsageError(`tools[${i}] needs a name: { name, description?, parameters? } or { type: 'function', function: { name, … } }`);
  return spec as ToolSpec;
}

/** A conversation on a ChatEngine. Create one with `loadedModel.createChat()`; it ends when the model is disposed. */
export class ChatSession {
  /** The conversation so far: the system message (if any), then user, assistant and tool messages. */
  readonly history: ChatMessage[] = [];
  private readonly tools: ToolSpec[] | null;
  private disposed = false;
  private readonly running = new Set<AbortController>();

  constructor(
    private readonly engine: ChatEngine,
    private readonly opts: ChatSessionOptions & {
      /** Sampling under `sampling` (the model's generation_config.json). */
      defaults?: SamplingOptions;
      /** False once the model is gone (LoadedModel.dispose): turns are refused. */
      alive?: () => boolean;
    } = {},
  ) {
    if (opts.system !== undefined) this.history.push({ role: 'system', content: opts.system });
    this.tools = opts.tools?.length ? opts.tools.map(toolSpec) : null;
  }

  /** Sends a user message (text, or any ChatMessage such as a tool result) and resolves with the answer. */
  async send(input: string | ChatMessage, o: SendOptions = {}): Promise<ChatReply> {
    if (this.disposed || this.opts.alive?.() === false) throw new UsageError('this chat session was disposed (its model was disposed)');
    // One turn at a time: a second message before the answer would interleave the history.
    if (this.running.size > 0)
      throw new UsageError('this chat session is already answering; await the turn (or abort it) before sending the next message');
    const message = this.userMessage(input, o.images);
    const ac = new AbortController();
    const onAbort = () => ac.abort(o.signal?.reason);
    if (o.signal?.aborted) ac.abort(o.signal.reason);
    o.signal?.addEventListener('abort', onAbort, { once: true });
    this.running.add(ac);
    this.history.push(message);
    try {
      const tools = this.tools;
      const prompt = await this.engine.encodeChat(this.history, tools);
      const res = await runGeneration(
        this.engine,
        {
          tokens: prompt.tokens,
          ...(prompt.patchEmbeddings ? { patchEmbeddings: prompt.patchEmbeddings } : {}),
          maxTokens: o.maxTokens ?? this.opts.maxTokens ?? 512,
          n: 1,
          sampling: { ...this.opts.defaults, ...this.opts.sampling, ...o.sampling },
          stop: [],
          json: null,
          tools,
          // Calls only to the declared tools (as the server's tool_choice "auto"): an output opening a JSON object must be one.
          ...(tools ? { toolTrigger: toolCallSchema(tools) } : {}),
          penalizePrompt: true,
          signal: ac.signal,
        },
        o.onText
          ? (_choice, text) => {
              if (text) o.onText!(text);
            }
          : undefined,
      );
      const c = res.choices[0]!;
      if (c.error) throw c.error;
      const text = c.toolCalls.length ? (c.content ?? '') : c.text;
      const answer: ChatMessage = { role: 'assistant', content: text, ...(c.toolCalls.length ? { toolCalls: c.toolCalls } : {}) };
      this.history.push(answer);
      return {
        text,
        toolCalls: c.toolCalls,
        finishReason: c.finishReason,
        usage: { promptTokens: res.promptTokens, cachedTokens: res.cachedTokens, completionTokens: c.completionTokens },
        message: answer,
        toString: () => text,
      };
    } catch (e) {
      // The turn did not happen: the conversation stays as it was.
      if (this.history[this.history.length - 1] === message) this.history.pop();
      throw e;
    } finally {
      o.signal?.removeEventListener('abort', onAbort);
      this.running.delete(ac);
    }
  }

  /**
   * Sends a user message and yields the answer's text as it is generated; the iterator's return value is the reply.
   * Leaving the loop early stops the turn.
   */
  async *stream(input: string | ChatMessage, o: Omit<SendOptions, 'onText'> = {}): AsyncGenerator<string, ChatReply> {
    const pieces: string[] = [];
    let wake: (() => void) | null = null;
    const ac = new AbortController();
    const onAbort = () => ac.abort(o.signal?.reason);
    if (o.signal?.aborted) ac.abort(o.signal.reason);
    o.signal?.addEventListener('abort', onAbort, { once: true });
    let done = false;
    const turn = this.send(input, {
      ...o,
      signal: ac.signal,
      onText: (p) => {
        pieces.push(p);
        wake?.();
      },
    }).finally(() => {
      done = true;
      wake?.();
    });
    turn.catch(() => {}); // rethrown below; not an unhandled rejection while pieces are being read
    try {
      for (;;) {
        while (pieces.length) yield pieces.shift()!;
        if (done) return await turn;
        await new Promise<void>((r) => (wake = r));
        wake = null;
      }
    } finally {
      o.signal?.removeEventListener('abort', onAbort);
      if (!done) {
        ac.abort();
        await turn.catch(() => {});
      }
    }
  }

  /** Forgets the conversation (the system message stays). */
  reset(): void {
    this.history.splice(this.opts.system !== undefined ? 1 : 0);
  }

  /** Stops a running turn and refuses new ones (the model's dispose() does the same for all its sessions). */
  dispose(): void {
    this.disposed = true;
    for (const ac of this.running) ac.abort();
  }

  private userMessage(input: string | ChatMessage, images: SendOptions['images']): ChatMessage {
    if (typeof input !== 'string') {
      if (images?.length) throw new UsageError('give images as content parts of the message, or send text with { images }');
      return input;
    }
    if (!images?.length) return { role: 'user', content: input };
    const content: ContentPart[] = [...images.map((data): ContentPart => ({ type: 'image', data })), { type: 'text', text: input }];
    return { role: 'user', content };
  }
}
