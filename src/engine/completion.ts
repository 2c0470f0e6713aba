/**
 * A chat turn or completion on a ChatEngine, API-neutral: submits to the scheduler, detokenizes each choice as it
 * streams, applies stop strings (holding back text that may be the start of one), extracts tool calls at the end, and
 * collects logprobs. The server's OpenAI and Anthropic handlers format its events and result; ChatSession (and so
 * `llama4 run` / `chat`) streams its text.
 */
import { randomBytes } from 'node:crypto';
import type { ToolCall, ToolSpec } from '../chat/index.ts';
import { jsonConstraint } from './json-schema-mask.ts';
import type { FinishReason, GenerationResult, SamplingOptions, TokenConstraint, TokenInfo, TopLogprob } from './scheduler.ts';
import { biasedConstraint, lazyToolCallConstraint, type LogitBias } from './token-constraints.ts';
import type { ChatEngine, ParsedToolCalls, StreamDecoder, ToolCallStream } from './chat-engine.ts';

const ALNUM = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789';

/** A random id of `len` letters and digits (tool-call ids). */
export function randomId(len: number): string {
  const b = randomBytes(len);
  let s = '';
  for (let i = 0; i < len; i++) s += ALNUM[b[i]! % ALNUM.length];
  return s;
}

export interface RunParams {
  tokens: number[];
  patchEmbeddings?: Float32Array;
  maxTokens: number;
  n: number;
  sampling: SamplingOptions;
  stop: string[];
  /** undefined: no logprobs. */
  topLogprobs?: number;
  /** null: free text; {} : any JSON object; {schema}: that JSON schema. */
  json: { schema?: unknown } | null;
  /** Tools offered: outputs are parsed for tool calls (and buffered instead of streamed). */
  tools: ToolSpec[] | null;
  /** Penalties count the prompt's tokens too (HF's repetition_penalty; `llama4 run`), not only the generated ones. */
  penalizePrompt?: boolean;
  /**
   * tool_choice "auto": the JSON schema of one call to a declared tool (toolCallSchema). An output that opens with
   * `{` must match it (lazyToolCallConstraint); prose stays free.
   */
  toolTrigger?: unknown;
  /** parallel_tool_calls: false → 1 (the first call is kept). */
  maxToolCalls?: number;
  /** Token id → logit bias (-Infinity bans). */
  logitBias?: LogitBias | null;
  signal?: AbortSignal;
}

/** The per-choice constraint of a request: JSON mode or the lazy tool-call trigger, with the logit bias on top. */
function constraintFactory(engine: ChatEngine, p: RunParams): (() => TokenConstraint) | undefined {
  const json = p.json ? jsonConstraint(engine.vocabulary, engine.endTokens, p.json.schema) : undefined;
  const trigger = !json && p.toolTrigger !== undefined ? jsonConstraint(engine.vocabulary, engine.endTokens, p.toolTrigger) : undefined;
  if (!json && !trigger && !p.logitBias) return undefined;
  return () => {
    const inner = json ? json() : trigger ? lazyToolCallConstraint(engine.vocabulary, trigger()) : null;
    return p.logitBias ? biasedConstraint(p.logitBias, inner) : inner!;
  };
}

export interface LogprobEntry {
  token: string;
  logprob: number;
  top: { token: string; logprob: number }[];
}

export interface ChoiceOutput {
  text: string;
  finishReason: FinishReason | 'tool_calls';
  /** The stop string that ended the choice, if any. */
  stopSequence: string | null;
  /** With tools: the prose part (null when the output is only tool calls). */
  content: string | null;
  toolCalls: ToolCall[];
  logprobs: LogprobEntry[];
  completionTokens: number;
  error?: Error;
}

export interface RunResult {
  promptTokens: number;
  cachedTokens: number;
  choices: ChoiceOutput[];
  /** Seconds from submit to the first generated token (any choice). */
  ttftS: number | null;
  /** True when nothing was streamed through the listener (tools without a streaming parser): send it all at the end. */
  buffered: boolean;
}

/** Streaming callback: new visible text of one choice (may be '') with the logprobs of the tokens behind it. */
export type DeltaListener = (choice: number, text: string, logprobs: LogprobEntry[]) => void;

/** Holds back the tail of the text that could still become a stop string. */
export class StopMatcher {
  private held = '';
  stopped: string | null = null;
  constructor(private readonly stops: readonly string[]) {}
  /** Returns the text that is safe to show. */
  push(text: string): string {
    if (this.stopped !== null) return '';
    if (this.stops.length === 0) return text;
    const buf = this.held + text;
    let cut = -1;
    let which: string | null = null;
    for (const s of this.stops) {
      const i = buf.indexOf(s);
      if (i >= 0 && (cut < 0 || i < cut)) {
        cut = i;
        which = s;
      }
    }
    if (which !== null) {
      this.stopped = which;
      this.held = '';
      return buf.slice(0, cut);
    }
    // Longest suffix of buf that is a proper prefix of some stop string.
    let keep = 0;
    for (const s of this.stops) for (let k = Math.min(s.length - 1, buf.length); k > keep; k--) if (buf.endsWith(s.slice(0, k))) keep = k;
    this.held = buf.slice(buf.length - keep);
    return buf.slice(0, buf.length - keep);
  }
  flush(): string {
    const h = this.stopped === null ? this.held : '';
    this.held = '';
    return h;
  }
}

/**
 * Starts a request. Throws synchronously (before anything is sent) when it is refused: UsageError for bad schemas or
 * prompts, QueueFullError when the queue is full; the promise then resolves when every choice has finished.
 */
export function runGeneration(engine: ChatEngine, p: RunParams, onDelta?: DeltaListener): Promise<RunResult> {
  const t0 = performance.now();
  let ttft: number | null = null;
  const decoders = Array.from({ length: p.n }, () => engine.newDecoder());
  const stops = Array.from({ length: p.n }, () => new StopMatcher(p.stop));
  const texts = Array.from({ length: p.n }, () => '');
  const lps: LogprobEntry[][] = Array.from({ length: p.n }, () => []);
  // With tools, raw tool-call text must never stream as content: a streaming parser holds it back, or (engines
  // without one) the whole output is buffered and parsed at the end.
  const toolStreams = p.tools && engine.newToolCallStream ? Array.from({ length: p.n }, () => engine.newToolCallStream!(p.tools!)) : null;
  const buffered = p.tools !== null && toolStreams === null;
  const factory = constraintFactory(engine, p);
  const shown = Array.from({ length: p.n }, () => '');
  const toEntry = (info: TokenInfo): LogprobEntry => ({
    token: engine.tokenText(info.token),
    logprob: info.logprob ?? 0,
    top: (info.top ?? []).map((t: TopLogprob) => ({ token: engine.tokenText(t.token), logprob: t.logprob })),
  });
  const pending = engine.scheduler.submit({
    prompt: p.tokens,
    ...(p.patchEmbeddings ? { patchEmbeddings: p.patchEmbeddings } : {}),
    maxTokens: p.maxTokens,
    n: p.n,
    sampling: p.sampling,
    stopTokens: engine.endTokens,
    ...(p.topLogprobs !== undefined ? { topLogprobs: p.topLogprobs } : {}),
    ...(factory ? { constraint: factory } : {}),
    ...(p.signal ? { signal: p.signal } : {}),
    ...(p.penalizePrompt ? { penalizePrompt: true } : {}),
    onToken(choice, info) {
      ttft ??= (performance.now() - t0) / 1000;
      const piece = stops[choice]!.push(decoders[choice]!.push(info.token));
      texts[choice] += piece;
      const lp = p.topLogprobs !== undefined ? [toEntry(info)] : [];
      for (const e of lp) lps[choice]!.push(e);
      // (computed before the call: `onDelta?.(…)` would skip evaluating its arguments when there is no listener)
      const visible = toolStreams ? toolStreams[choice]!.push(piece) : piece;
      shown[choice] += visible;
      if (!buffered) onDelta?.(choice, visible, lp);
      return stops[choice]!.stopped !== null;
    },
  });
  return pending.then((res) =>
    finishRun(engine, p, res, { decoders, stops, texts, lps, buffered, toolStreams, shown, ttft: () => ttft }, onDelta),
  );
}

interface RunState {
  decoders: StreamDecoder[];
  stops: StopMatcher[];
  texts: string[];
  lps: LogprobEntry[][];
  buffered: boolean;
  toolStreams: ToolCallStream[] | null;
  /** Text streamed so far per choice. */
  shown: string[];
  ttft(): number | null;
}

/** Whether every call names a tool of the request. */
const declaredOnly = (calls: ParsedToolCalls['toolCalls'], tools: ToolSpec[]) => calls.every((c) => tools.some((t) => t.name === c.name));

function finishRun(engine: ChatEngine, p: RunParams, res: GenerationResult, st: RunState, onDelta?: DeltaListener): RunResult {
  const { decoders, stops, texts, lps, buffered, toolStreams } = st;
  const choices = res.choices.map((c, i): ChoiceOutput => {
    // Text held back (partial UTF-8, possible stop-string start) is shown at the end unless a stop string matched.
    const tail = stops[i]!.stopped === null ? stops[i]!.push(decoders[i]!.flush()) + stops[i]!.flush() : '';
    texts[i] += tail;
    let calls: ParsedToolCalls['toolCalls'] = [];
    let content: string | null = texts[i]!;
    if (toolStreams) {
      const ts = toolStreams[i]!;
      const more = ts.push(tail);
      const end = ts.end();
      if (more + end.content) onDelta?.(i, more + end.content, []);
      st.shown[i] += more + end.content;
      calls = end.toolCalls;
      if (calls.length && !declaredOnly(calls, p.tools!)) {
        // A call to a tool the request did not declare is not a call: the held-back text goes out as prose.
        calls = [];
        const text = texts[i]!;
        if (text.startsWith(st.shown[i]!) && text.length > st.shown[i]!.length) onDelta?.(i, text.slice(st.shown[i]!.length), []);
      }
      if (calls.length) content = engine.parseToolCalls(texts[i]!, p.tools!).content;
    } else {
      if (tail && !buffered) onDelta?.(i, tail, []);
      if (p.tools && p.tools.length > 0) {
        const parsed = engine.parseToolCalls(texts[i]!, p.tools);
        calls = declaredOnly(parsed.toolCalls, p.tools) ? parsed.toolCalls : [];
        if (calls.length) content = parsed.content;
      }
    }
    const out: ChoiceOutput = {
      text: texts[i]!,
      finishReason: c.finishReason,
      stopSequence: stops[i]!.stopped,
      content,
      toolCalls: [],
      logprobs: lps[i]!,
      completionTokens: c.completionTokens,
      ...(c.error ? { error: c.error } : {}),
    };
    if (calls.length > 0 && c.finishReason !== 'cancelled' && c.finishReason !== 'error') {
      out.toolCalls = calls.slice(0, p.maxToolCalls ?? calls.length).map((tc) => ({
        id: `call_${randomId(24)}`,
        name: tc.name,
        arguments: typeof tc.arguments === 'string' ? tc.arguments : JSON.stringify(tc.arguments ?? {}),
      }));
      out.finishReason = 'tool_calls';
    }
    return out;
  });
  return { promptTokens: res.promptTokens, cachedTokens: res.cachedTokens, choices, ttftS: st.ttft(), buffered };
}
