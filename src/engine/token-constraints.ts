/**
 * Per-request token constraints beside JSON modes: a logit bias (the APIs' `logit_bias`), and the lazy tool-call
 * constraint of `tool_choice: "auto"` — free text, but an output that opens with `{` must be one JSON call to a
 * declared tool (llama.cpp's lazy grammars work the same way: the grammar applies from the trigger on).
 */
import type { TokenConstraint } from './scheduler.ts';
import type { TokenVocabulary } from './json-schema-mask.ts';

/** Token id → additive logit bias; -Infinity bans the token (OpenAI's -100 means a ban). */
export type LogitBias = ReadonlyMap<number, number>;

/** Adds the bias to the row, then lets `inner` (JSON mode, tool calls) mask what may not come next. */
export function biasedConstraint(bias: LogitBias, inner: TokenConstraint | null): TokenConstraint {
  return {
    prepare: () => inner?.prepare?.(),
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
    prepare: () => (mode === 'prose' ? undefined : call.prepare?.()),
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
