/**
 * Per-request token constraints beside JSON modes: `logit_bias` (OpenAI's {"id": bias} map and llama-server's
 * [[id or text, bias or false], …] list), and the lazy tool-call constraint of `tool_choice: "auto"` — free text,
 * but an output that opens with `{` must be one JSON call to a declared tool (llama.cpp's lazy grammars work the
 * same way: the grammar applies from the trigger on).
 */
import type { TokenConstraint } from '../engine/scheduler.ts';
import type { TokenVocabulary } from '../engine/json-schema-mask.ts';
import type { ServerEngine } from './engine.ts';
import { badRequest, isObject } from './util.ts';

/** Token id → additive logit bias; -Infinity bans the token (OpenAI's -100 means a ban). */
export type LogitBias = ReadonlyMap<number, number>;

const MAX_BIAS_ENTRIES = 1024;

/**
 * Reads `logit_bias`: {"123": -100, …} (OpenAI: token id keys, values in [-100, 100]) or [[123, -1.5], [" hello",
 * false], …] (llama-server: ids or text — every token of the text — and a number or false to ban). null when absent.
 */
export function readLogitBias(v: unknown, engine: ServerEngine, path = 'logit_bias'): LogitBias | null {
  if (v === undefined || v === null) return null;
  const out = new Map<number, number>();
  const vocab = engine.vocabulary.size;
  const put = (id: number, bias: unknown, at: string) => {
    if (!Number.isInteger(id) || id < 0 || id >= vocab) throw badRequest(`'${at}': token id ${id} is outside the vocabulary (0..${vocab - 1})`, path);
    let b: number;
    if (bias === false) b = -Infinity;
    else if (typeof bias === 'number' && Number.isFinite(bias) && bias >= -100 && bias <= 100) b = bias <= -100 ? -Infinity : bias;
    else throw badRequest(`'${at}' must be a number between -100 and 100${Array.isArray(v) ? ' or false' : ''}`, path);
    out.set(id, b);
    if (out.size > MAX_BIAS_ENTRIES) throw badRequest(`'${path}' has more than ${MAX_BIAS_ENTRIES} entries`, path);
  };
  if (isObject(v)) {
    for (const [k, b] of Object.entries(v)) {
      if (!/^\d+$/.test(k)) throw badRequest(`'${path}' keys must be token ids, got ${JSON.stringify(k.slice(0, 40))}`, path);
      put(Number(k), b, `${path}.${k}`);
    }
  } else if (Array.isArray(v)) {
    v.forEach((e, i) => {
      const at = `${path}[${i}]`;
      if (!Array.isArray(e) || e.length !== 2) throw badRequest(`'${at}' must be a [token id or text, bias] pair`, path);
      const [t, b] = e as [unknown, unknown];
      if (typeof t === 'number') put(t, b, at);
      else if (typeof t === 'string' && t.length > 0 && t.length <= 256) for (const id of engine.tokenize(t)) put(id, b, at);
      else throw badRequest(`'${at}[0]' must be a token id or a non-empty text of at most 256 characters`, path);
    });
  } else throw badRequest(`'${path}' must be an object of token id → bias (or llama-server's list of pairs)`, path);
  return out.size ? out : null;
}

/** Adds the bias to the row, then lets `inner` (JSON mode, tool calls) mask what may not come next. */
export function biasedConstraint(bias: LogitBias, inner: TokenConstraint | null): TokenConstraint {
  return {
    mask(logits) {
      for (const [id, b] of bias) logits[id] = b === -Infinity ? -Infinity : logits[id]! + b;
      inner?.mask(logits);
    },
    accept: (t) => inner?.accept(t),
    get done() {
      return inner?.done ?? false;
    },
  };
}

/** Tokens whose text opens a JSON object after optional whitespace (the trigger of a tool call), per vocabulary. */
const braceTokens = new WeakMap<TokenVocabulary, Int32Array>();
function openingBrace(vocab: TokenVocabulary): Int32Array {
  let ids = braceTokens.get(vocab);
  if (!ids) {
    const out: number[] = [];
    for (let id = 0; id < vocab.size; id++) if (vocab.text(id)?.trimStart().startsWith('{')) out.push(id);
    braceTokens.set(vocab, (ids = Int32Array.from(out)));
  }
  return ids;
}

/**
 * tool_choice "auto": the output is prose, or (when its first visible character is `{`) one tool call that `call`
 * — the JSON constraint of toolCallSchema(tools) — accepts, so only declared tool names and their argument schemas
 * can come out. Whitespace and special tokens before the decision keep it open; any other text makes it prose.
 */
export function lazyToolCallConstraint(vocab: TokenVocabulary, call: TokenConstraint): TokenConstraint {
  let mode: 'start' | 'call' | 'prose' = 'start';
  return {
    mask(logits) {
      if (mode === 'prose') return;
      if (mode === 'call') return call.mask(logits);
      // Undecided: a brace-opening token is allowed only where the call constraint allows it.
      const allowed = new Float32Array(logits);
      call.mask(allowed);
      for (const id of openingBrace(vocab)) if (allowed[id] === -Infinity) logits[id] = -Infinity;
    },
    accept(token) {
      if (mode === 'prose') return;
      if (mode === 'call') return call.accept(token);
      const t = vocab.text(token);
      if (t === null || t.trim() === '') return;
      if (t.startsWith('{')) {
        mode = 'call';
        call.accept(token);
      } else mode = 'prose';
    },
    get done() {
      return mode === 'call' && call.done;
    },
  };
}
