/**
 * Tool calls out of Llama 4's raw assistant text. Accepted forms (spec §5.3–5.5, and what users reported against
 * other engines: vLLM issues 16214, 22917, 30722, 46863):
 * - pythonic lists `[f(a=1), g(b="x")]`: keyword arguments with literal values only (as vLLM's ast check);
 * - JSON `{"name": …, "parameters": …}`, `{"type": "function", "name": …, "parameters": …}`, with `arguments`
 *   for `parameters` or an OpenAI-style `{"function": {…}}` wrapper; several separated by nothing, whitespace,
 *   `;` or `,`; or a JSON array of them;
 * - `<function=name>{json}</function>` tags;
 * with or without `<|python_start|>`/`<|python_end|>` (removed wherever they are, as Meta's decoder drops them),
 * a trailing `<|eot|>`/`<|eom|>`, and prose before the calls (it becomes `content`, trimmed).
 * The calls must end the message: a call-like thing followed by more prose is prose. Anything that does not parse
 * stays content with only the markers removed. Never throws.
 */
import { Cursor, FAIL, Fail, INCOMPLETE, Incomplete, parseIdent, parseValue, type Mode } from './literal-parser.ts';

export interface ParsedToolCall {
  name: string;
  arguments: Record<string, unknown>;
}

export interface ToolCallParse {
  /** Text that is not a tool call; null when the output is only tool calls. */
  content: string | null;
  toolCalls: ParsedToolCall[];
}

const PY_MARKERS = /<\|python_start\|>|<\|python_end\|>/g;
const STOP_SUFFIX = /(?:<\|eot\|>|<\|eom\|>|<\|end_of_text\|>)+\s*$/;
const STOP_ANYWHERE = /<\|eot\|>|<\|eom\|>|<\|end_of_text\|>/g;
/** Where a tool call may begin. */
const STARTS = /[[{]|<function=|```/g;
/**
 * Work bound per parse, in characters examined over all candidate starts: prose with thousands of brackets before
 * a call is fine (each false start fails within a few characters), pathological nesting gives up as content.
 */
const WORK_BUDGET = 1_000_000;
/** And at most this many candidate starts (a false start deep in nested brackets costs a long unwind). */
const MAX_CANDIDATES = 4000;

/** Removes python markers and trailing stop tokens: the text a parse works on and no-call content. */
export function stripMarkers(text: string): string {
  return text.replace(PY_MARKERS, '').replace(STOP_SUFFIX, '');
}

type Attempt = { calls: ParsedToolCall[] } | 'incomplete' | 'fail';

/** Parses `text` as tool calls from `start` to the end; `work` is how far the parser got (its cost). */
function attemptAt(text: string, start: number): { result: Attempt; work: number } {
  const c = new Cursor(text, start);
  const calls: ParsedToolCall[] = [];
  const done = (result: Attempt): { result: Attempt; work: number } => ({ result, work: c.i - start + 1 });
  try {
    for (;;) {
      c.skipWs();
      if (calls.length > 0) {
        if (c.end) return done({ calls });
        while (!c.end && /[;,]/.test(c.s[c.i]!)) {
          c.i++;
          c.skipWs();
        }
        if (c.end) return done({ calls });
      }
      calls.push(...parseItem(c));
    }
  } catch (e) {
    if (e instanceof Incomplete) return done('incomplete');
    return done('fail'); // Fail, or anything else (e.g. a stack overflow on absurd nesting): never throw
  }
}

/** One item: a pythonic list, a JSON array of calls, a JSON call object, a function tag, or a fence of those. */
function parseItem(c: Cursor, inFence = false): ParsedToolCall[] {
  const ch = c.peek();
  if (ch === '`' && !inFence) return parseFence(c);
  if (ch === '<') return [parseFunctionTag(c)];
  if (ch === '{') return [parseJsonCall(c)];
  if (ch !== '[') throw FAIL;
  // '[' then either '{' (JSON array of calls) or an identifier (pythonic list).
  const save = c.i;
  c.i++;
  c.skipWs();
  if (c.peek() === '{') {
    c.i = save;
    const arr = parseValueEither(c);
    if (!Array.isArray(arr) || arr.length === 0) throw FAIL;
    return arr.map(toCall);
  }
  return parsePythonList(c);
}

/**
 * Calls in a markdown fence (```json … ```), closing the message: unambiguous, though not Llama 4's trained format.
 */
function parseFence(c: Cursor): ParsedToolCall[] {
  c.expect('```');
  while (!c.end && /[A-Za-z_]/.test(c.s[c.i]!)) c.i++;
  while (!c.end && /[ \t]/.test(c.s[c.i]!)) c.i++;
  c.expect('\n');
  const calls: ParsedToolCall[] = [];
  for (;;) {
    c.skipWs();
    if (calls.length > 0) {
      while (!c.end && /[;,]/.test(c.s[c.i]!)) {
        c.i++;
        c.skipWs();
      }
      if (c.startsWith('```')) {
        c.i += 3;
        return calls;
      }
    }
    calls.push(...parseItem(c, true));
  }
}

function parsePythonList(c: Cursor): ParsedToolCall[] {
  const calls: ParsedToolCall[] = [];
  for (;;) {
    c.skipWs();
    calls.push(parsePythonCall(c));
    c.skipWs();
    const ch = c.peek();
    if (ch === ']') {
      c.i++;
      return calls;
    }
    if (ch !== ',') throw FAIL;
    c.i++;
    c.skipWs();
    if (c.peek() === ']') {
      c.i++;
      return calls;
    }
  }
}

/** `name(k=v, …)`; a dotted name (`brave_search.call`) is allowed. */
function parsePythonCall(c: Cursor): ParsedToolCall {
  let name = parseIdent(c);
  while (c.peek() === '.') {
    c.i++;
    name += '.' + parseIdent(c);
  }
  c.skipWs();
  c.expect('(');
  const args: Record<string, unknown> = {};
  const seen = new Set<string>();
  c.skipWs();
  if (c.peek() === ')') {
    c.i++;
    return { name, arguments: args };
  }
  for (;;) {
    c.skipWs();
    const key = parseIdent(c); // a positional argument fails here (or at the missing '=')
    c.skipWs();
    c.expect('=');
    if (c.peek() === '=') throw FAIL; // `a == b` is an expression
    if (seen.has(key)) throw FAIL; // Python: keyword argument repeated
    seen.add(key);
    setKey(args, key, parseValue(c, 'python'));
    c.skipWs();
    const ch = c.peek();
    if (ch === ')') {
      c.i++;
      return { name, arguments: args };
    }
    if (ch !== ',') throw FAIL;
    c.i++;
    c.skipWs();
    if (c.peek() === ')') {
      c.i++;
      return { name, arguments: args };
    }
  }
}

/** JSON first; Python-literal syntax ('single quotes', True) if JSON fails. */
function parseValueEither(c: Cursor): unknown {
  const save = c.i;
  try {
    return parseValue(c, 'json');
  } catch (e) {
    if (!(e instanceof Fail) || !c.pythonish) throw e;
    c.i = save;
    c.depth = 0;
    c.pythonish = false;
    return parseValue(c, 'python' as Mode);
  }
}

function parseJsonCall(c: Cursor): ParsedToolCall {
  return toCall(parseValueEither(c));
}

const CALL_KEYS = new Set(['type', 'name', 'parameters', 'arguments', 'id', 'function']);

/** A parsed object → a call, or Fail if it is not unambiguously one. */
function toCall(v: unknown): ParsedToolCall {
  if (typeof v !== 'object' || v === null || Array.isArray(v)) throw FAIL;
  const o = v as Record<string, unknown>;
  if (Object.keys(o).some((k) => !CALL_KEYS.has(k))) throw FAIL;
  if (o.type !== undefined && o.type !== 'function') throw FAIL;
  if (o.function !== undefined) {
    // OpenAI style {"type": "function", "function": {"name": …, "arguments": …}}
    if (o.name !== undefined || o.parameters !== undefined || o.arguments !== undefined) throw FAIL;
    return toCall(o.function);
  }
  // Any one-line name: with "parameters" beside it the object is unambiguously a call.
  if (typeof o.name !== 'string' || !/^[^\s"'<>]+$/u.test(o.name)) throw FAIL;
  if (o.parameters !== undefined && o.arguments !== undefined) throw FAIL;
  let args = o.parameters ?? o.arguments;
  // {"name": "x"} alone may be any object with a name; with "type": "function" it is clearly a call.
  if (args === undefined) {
    if (o.type !== 'function') throw FAIL;
    args = {};
  }
  if (typeof args === 'string') {
    // arguments as a JSON string (OpenAI's wire form)
    try {
      args = JSON.parse(args);
    } catch {
      throw FAIL;
    }
  }
  if (args === null || typeof args !== 'object' || Array.isArray(args)) throw FAIL;
  return { name: o.name, arguments: args as Record<string, unknown> };
}

/** `<function=name>{json}</function>` (the body may be empty: no arguments). */
function parseFunctionTag(c: Cursor): ParsedToolCall {
  c.expect('<function=');
  const start = c.i;
  while (!c.end && c.s[c.i] !== '>') c.i++;
  if (c.end) throw INCOMPLETE;
  const name = c.s.slice(start, c.i).trim();
  if (!/^[^\s"'<>]+$/u.test(name)) throw FAIL;
  c.i++;
  c.skipWs();
  let args: unknown = {};
  if (!c.startsWith('</function>')) {
    args = parseValueEither(c);
    c.skipWs();
  }
  c.expect('</function>');
  if (args === null || typeof args !== 'object' || Array.isArray(args)) throw FAIL;
  return { name, arguments: args as Record<string, unknown> };
}

function setKey(o: Record<string, unknown>, k: string, v: unknown): void {
  Object.defineProperty(o, k, { value: v, enumerable: true, writable: true, configurable: true });
}

/**
 * The first position from which the rest of `text` is tool calls. `final`: the text is complete, so a candidate
 * that runs into the end is not a call. Otherwise (streaming) the first candidate that may still complete is
 * returned, since text from there on must be held back.
 */
function scan(text: string, final: boolean): { start: number; result: Attempt } | undefined {
  STARTS.lastIndex = 0;
  let m: RegExpExecArray | null;
  let work = 0;
  let tries = 0;
  while ((m = STARTS.exec(text)) !== null && work < WORK_BUDGET && tries++ < MAX_CANDIDATES) {
    const { result, work: w } = attemptAt(text, m.index);
    work += w;
    if (result === 'fail' || (final && result === 'incomplete')) continue;
    return { start: m.index, result };
  }
  return undefined;
}

/** Splits a finished assistant message into content and tool calls. Never throws. */
export function parseToolCalls(text: string): ToolCallParse {
  try {
    if (typeof text !== 'string') return { content: text == null ? null : String(text), toolCalls: [] };
    const clean = stripMarkers(text);
    const found = scan(clean, true);
    if (found && typeof found.result !== 'string') {
      const prose = clean.slice(0, found.start).trim();
      return { content: prose.length ? prose : null, toolCalls: found.result.calls };
    }
    return { content: clean, toolCalls: [] };
  } catch {
    return { content: typeof text === 'string' ? text : null, toolCalls: [] };
  }
}

export type ToolCallStreamEvent = { type: 'content'; text: string } | { type: 'tool_calls'; calls: ParsedToolCall[] };

export interface ToolCallStreamParser {
  /** Feed a text delta; returns content that is certainly not part of a tool call. */
  push(delta: string): ToolCallStreamEvent[];
  /** The stream ended: the held-back text as tool calls (or content if it never became calls). */
  end(): ToolCallStreamEvent[];
}

/**
 * Incremental form for streaming servers. Content streams out as it arrives until something that could begin a
 * tool call (`[`, `{`, `<function=`, `<|python_start|>`) appears; from there text is held back while it can still
 * become tool calls, and released as content as soon as it cannot. At the end, held text that parses is emitted as
 * one `tool_calls` event. Content deltas are the text as generated (prose is not trimmed, markers are removed); the
 * calls equal what `parseToolCalls` returns for the whole text.
 */
export function createToolCallStreamParser(): ToolCallStreamParser {
  let pending = ''; // raw text not yet emitted
  let scannedLength = 0; // pending.length after the last scan
  let done = false;

  const MARKER_PREFIXES = ['<|python_start|>', '<|python_end|>', '<|eot|>', '<|eom|>', '<|end_of_text|>', '<function=', '```'];

  /** Length of a suffix of s that could be the start of a marker still arriving. */
  function partialMarker(s: string): number {
    for (let k = Math.min(s.length, 16); k > 0; k--) {
      const tail = s.slice(s.length - k);
      if (MARKER_PREFIXES.includes(tail)) return 0; // a whole marker (``` or <function=) has arrived
      if (MARKER_PREFIXES.some((m) => m.startsWith(tail))) return k;
    }
    return 0;
  }

  function release(final: boolean): ToolCallStreamEvent[] {
    // Markers are never content; stop tokens end the message wherever the engine cut it.
    const text = pending.replace(PY_MARKERS, '').replace(STOP_ANYWHERE, '');
    // A marker may be arriving in pieces ("<|python_"): never emit those characters yet.
    const hold = final ? 0 : partialMarker(text);
    const found = scan(text.slice(0, text.length - hold), final);
    const out: ToolCallStreamEvent[] = [];
    const emitUpTo = found ? Math.min(found.start, text.length - hold) : text.length - hold;
    if (emitUpTo > 0) out.push({ type: 'content', text: text.slice(0, emitUpTo) });
    if (found && final && typeof found.result !== 'string') {
      out.push({ type: 'tool_calls', calls: found.result.calls });
      pending = '';
    } else {
      pending = text.slice(emitUpTo);
    }
    return out;
  }

  return {
    push(delta: string): ToolCallStreamEvent[] {
      try {
        if (done || typeof delta !== 'string' || delta === '') return [];
        pending += delta;
        // Held text is re-parsed from its start on each push; past 1 KiB only after 1/8 growth, so a long call
        // streamed in small deltas costs O(n log n) instead of O(n²) (prose is released a little later at worst).
        if (pending.length > 1024 && pending.length < scannedLength * 1.125) return [];
        const out = release(false);
        scannedLength = pending.length;
        return out;
      } catch {
        return [];
      }
    },
    end(): ToolCallStreamEvent[] {
      try {
        if (done) return [];
        done = true;
        return release(true);
      } catch {
        const t = pending;
        pending = '';
        return t ? [{ type: 'content', text: t }] : [];
      }
    },
  };
}
