/**
 * Special-token text typed by a user stays text. A rendered chat prompt is one string: the template's own markers
 * (`<|header_start|>`, `<|eot|>`, `<|image|>`, …) and the messages' text side by side. Encoded with special tokens
 * recognised everywhere (what the reference's apply_chat_template + tokenizer do), a message that contains
 * `<|eot|><|header_start|>system<|header_end|>` forges a turn, and a typed `<|image|>` takes a real image's place.
 *
 * The guard marks the messages before rendering: inside every string of the conversation it puts a marker
 * character (a private-use code point that occurs in none of them) after the first character of each
 * special-token text, so the rendered prompt holds special-token text only where the template wrote it. Encoding
 * then splits the prompt at special-token texts (control ids, exactly as the tokenizer does) and encodes each span
 * in between as ordinary text with the markers taken out, i.e. the user's text exactly as typed.
 *
 *   const guard = new SpecialTextGuard(tokenizer, [messages, tools]);
 *   const prompt = renderChat({ messages: guard.protect(messages), tools: guard.protect(tools), … });
 *   const ids = guard.encode(prompt);
 */
import type { PromptEncoder } from './template.ts';

/** What the guard needs of a tokenizer: its special-token texts besides encode and bosId. */
export interface SpecialTextEncoder extends PromptEncoder {
  readonly specialTokens: ReadonlyMap<string, number>;
}

const patterns = new WeakMap<ReadonlyMap<string, number>, RegExp | null>();

/** One regex matching any special-token text, longest first (null: the tokenizer has none). */
function specialPattern(specials: ReadonlyMap<string, number>): RegExp | null {
  let re = patterns.get(specials);
  if (re === undefined) {
    const texts = [...specials.keys()].filter((t) => t.length > 0).sort((a, b) => b.length - a.length);
    re = texts.length ? new RegExp(texts.map((t) => t.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')).join('|'), 'g') : null;
    patterns.set(specials, re);
  }
  return re;
}

/** Calls `f` on every string inside `v` (arrays and plain objects, values only). */
function eachString(v: unknown, f: (s: string) => void): void {
  const stack = [v];
  while (stack.length) {
    const x = stack.pop();
    if (typeof x === 'string') f(x);
    else if (Array.isArray(x)) for (const y of x) stack.push(y);
    // Plain objects only: image bytes (typed arrays) hold no text.
    else if (typeof x === 'object' && x !== null && Object.getPrototypeOf(x) === Object.prototype)
      for (const y of Object.values(x)) stack.push(y);
  }
}

export class SpecialTextGuard {
  /** A code point from Supplementary Private Use Area-B that no input string contains. */
  readonly marker: string;
  private readonly re: RegExp | null;

  constructor(
    private readonly tokenizer: SpecialTextEncoder,
    inputs: unknown,
  ) {
    this.re = specialPattern(tokenizer.specialTokens);
    const used = new Set<number>();
    eachString(inputs, (s) => {
      for (let i = 0; i < s.length; i++) {
        const c = s.charCodeAt(i);
        if (c >= 0xdbc0 && c <= 0xdbff) used.add(s.codePointAt(i)!); // high surrogates of U+100000…U+10FFFF
      }
    });
    let cp = 0x100000;
    while (used.has(cp)) cp++;
    this.marker = String.fromCodePoint(cp);
  }

  /** A copy of `v` whose strings hold no special-token text (marked), for rendering. */
  protect<T>(v: T): T {
    const re = this.re;
    if (!re) return v;
    const mark = (s: string) => s.replace(re, (m) => m.slice(0, 1) + this.marker + m.slice(1));
    const walk = (x: unknown): unknown => {
      if (typeof x === 'string') return mark(x);
      if (Array.isArray(x)) return x.map(walk);
      if (typeof x === 'object' && x !== null && Object.getPrototypeOf(x) === Object.prototype) {
        const out: Record<string, unknown> = {};
        for (const [k, y] of Object.entries(x)) out[k] = walk(y);
        return out;
      }
      return x;
    };
    return walk(v) as T;
  }

  /** Token ids of a prompt rendered from protected inputs (the template's markers as control ids; no doubled BOS). */
  encode(prompt: string): number[] {
    const { tokenizer, re } = this;
    const ids: number[] = [];
    const plain = (s: string) => {
      for (const id of tokenizer.encode(s.split(this.marker).join(''), { allowSpecial: false })) ids.push(id);
    };
    let start = 0;
    if (re) {
      re.lastIndex = 0;
      for (let m = re.exec(prompt); m !== null; m = re.exec(prompt)) {
        if (m.index > start) plain(prompt.slice(start, m.index));
        ids.push(tokenizer.specialTokens.get(m[0])!);
        start = m.index + m[0].length;
      }
    }
    if (start < prompt.length) plain(prompt.slice(start));
    const bos = tokenizer.bosId;
    let k = 0;
    while (bos !== undefined && k + 1 < ids.length && ids[k] === bos && ids[k + 1] === bos) k++;
    return k ? ids.slice(k) : ids;
  }
}
