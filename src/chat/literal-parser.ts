/**
 * A small recursive-descent parser for the values inside Llama 4 tool calls: Python literals (what
 * `ast.literal_eval` accepts: strings with Python escapes, numbers, True/False/None, lists, tuples, dicts) and
 * JSON. It runs on partial text too: reaching the end of the input raises `Incomplete` (the text may still grow
 * into a valid call, which the streaming parser needs to know) while a character that can never fit raises `Fail`.
 */

/** The input ended before the construct did. (Not an Error: thrown often, so no stack is captured.) */
export class Incomplete {}
/** The input cannot be this construct. */
export class Fail {}
export const INCOMPLETE = new Incomplete();
export const FAIL = new Fail();

/** Deeper than any real tool argument; bounds the work a false start can cost. */
const MAX_DEPTH = 20;

export type Mode = 'python' | 'json';

export class Cursor {
  depth = 0;
  /** Set when JSON parsing failed on syntax Python accepts ('quotes', trailing commas, tuples): worth a retry. */
  pythonish = false;
  constructor(
    readonly s: string,
    public i = 0,
  ) {}

  get end(): boolean {
    return this.i >= this.s.length;
  }
  peek(): string {
    if (this.i >= this.s.length) throw INCOMPLETE;
    return this.s[this.i]!;
  }
  skipWs(): void {
    while (this.i < this.s.length && /\s/.test(this.s[this.i]!)) this.i++;
  }
  /** Consumes `lit` or fails; a proper prefix of it at the end of the input is Incomplete. */
  expect(lit: string): void {
    for (let k = 0; k < lit.length; k++) {
      if (this.i + k >= this.s.length) throw INCOMPLETE;
      if (this.s[this.i + k] !== lit[k]) throw FAIL;
    }
    this.i += lit.length;
  }
  /** Whether the input continues with `lit` (Incomplete if it could but has not arrived yet). */
  startsWith(lit: string): boolean {
    for (let k = 0; k < lit.length; k++) {
      if (this.i + k >= this.s.length) throw INCOMPLETE;
      if (this.s[this.i + k] !== lit[k]) return false;
    }
    return true;
  }
}

function pythonOnly(c: Cursor): Fail {
  c.pythonish = true;
  return FAIL;
}

/** Python identifiers (PEP 3131): letters and letter numbers start one; marks, digits and connectors continue it. */
const IDENT_START = /[\p{L}\p{Nl}_]/u;
const IDENT = /[\p{L}\p{Nl}\p{Mn}\p{Mc}\p{Nd}\p{Pc}]/u;

/** An identifier; at the end of the input it may still grow, so the caller decides with `atEnd`. */
export function parseIdent(c: Cursor): string {
  const start = c.i;
  c.peek();
  if (!IDENT_START.test(codePointAt(c.s, c.i))) throw FAIL;
  while (c.i < c.s.length) {
    const ch = codePointAt(c.s, c.i);
    if (!IDENT.test(ch)) break;
    c.i += ch.length;
  }
  if (c.i >= c.s.length) throw INCOMPLETE;
  return c.s.slice(start, c.i);
}

function codePointAt(s: string, i: number): string {
  return String.fromCodePoint(s.codePointAt(i)!);
}

const KEYWORDS: Record<string, unknown> = { True: true, False: false, None: null, true: true, false: false, null: null };

/**
 * One literal value. Depth is counted without try/finally (unwinding through many finally frames is slow): after a
 * throw the caller discards the cursor or resets `depth`.
 */
export function parseValue(c: Cursor, mode: Mode): unknown {
  c.skipWs();
  if (++c.depth > MAX_DEPTH) throw FAIL;
  const v = parseValueAt(c, mode);
  c.depth--;
  return v;
}

function parseValueAt(c: Cursor, mode: Mode): unknown {
  const ch = c.peek();
  if (ch === '"' || ch === "'") return parseString(c, mode, false);
  if (ch === '[') return parseSeq(c, mode, '[', ']');
  if (ch === '(') {
    if (mode === 'json') throw pythonOnly(c);
    return parseSeq(c, mode, '(', ')');
  }
  if (ch === '{') return parseDict(c, mode);
  if (/[-+0-9.]/.test(ch)) return parseNumber(c);
  if (mode === 'json' && /[rRbBuU]/.test(ch) && /^[rRbBuU]{1,2}["']/.test(c.s.slice(c.i, c.i + 3))) throw pythonOnly(c);
  if (mode === 'python' && /[rRbBuU]/.test(ch)) {
    // String prefixes: r"raw", b"bytes", u"text" (also rb/br).
    const head = c.s.slice(c.i, c.i + 3);
    const m = /^(?:[rR][bB]?|[bB][rR]?|[uU])(?=["'])/.exec(head);
    if (m) {
      c.i += m[0].length;
      return parseString(c, mode, /[rR]/.test(m[0]));
    }
    if (/^(?:[rR][bB]?|[bB][rR]?|[uU])$/.test(head)) throw INCOMPLETE; // the quote has not arrived yet
  }
  if (IDENT_START.test(codePointAt(c.s, c.i))) {
    const start = c.i;
    while (c.i < c.s.length && IDENT.test(codePointAt(c.s, c.i))) c.i += codePointAt(c.s, c.i).length;
    const word = c.s.slice(start, c.i);
    if (c.i >= c.s.length) {
      // "Tru" may become "True"; "my_city" never becomes a literal.
      if (Object.keys(KEYWORDS).some((k) => k.startsWith(word))) throw INCOMPLETE;
      throw FAIL;
    }
    if (word in KEYWORDS) return KEYWORDS[word];
    throw FAIL; // a variable or call: not a literal
  }
  throw FAIL;
}

function parseSeq(c: Cursor, mode: Mode, open: string, close: string): unknown[] {
  c.expect(open);
  const out: unknown[] = [];
  c.skipWs();
  if (c.peek() === close) {
    c.i++;
    return out;
  }
  for (;;) {
    out.push(parseValue(c, mode));
    c.skipWs();
    const ch = c.peek();
    if (ch === close) {
      c.i++;
      return out;
    }
    if (ch !== ',') throw FAIL;
    c.i++;
    c.skipWs();
    if (c.peek() === close) {
      if (mode === 'json') throw pythonOnly(c);
      c.i++;
      return out; // Python allows a trailing comma
    }
  }
}

function parseDict(c: Cursor, mode: Mode): Record<string, unknown> {
  c.expect('{');
  const out: Record<string, unknown> = {};
  c.skipWs();
  if (c.peek() === '}') {
    c.i++;
    return out;
  }
  for (;;) {
    c.skipWs();
    const k = parseValue(c, mode);
    if (typeof k !== 'string' && (mode === 'json' || (typeof k !== 'number' && typeof k !== 'boolean' && k !== null))) {
      throw mode === 'json' ? pythonOnly(c) : FAIL;
    }
    // json.dumps writes non-string keys as strings (True → "true", None → "null").
    const key = typeof k === 'string' ? k : k === null ? 'null' : String(k);
    c.skipWs();
    c.expect(':');
    Object.defineProperty(out, key, { value: parseValue(c, mode), enumerable: true, writable: true, configurable: true });
    c.skipWs();
    const ch = c.peek();
    if (ch === '}') {
      c.i++;
      return out;
    }
    if (ch !== ',') throw FAIL;
    c.i++;
    c.skipWs();
    if (c.peek() === '}') {
      if (mode === 'json') throw pythonOnly(c);
      c.i++;
      return out;
    }
  }
}

function parseNumber(c: Cursor): number {
  const rest = c.s.slice(c.i);
  const m = /^[-+]?(?:0[xX][0-9a-fA-F_]+|0[oO][0-7_]+|0[bB][01_]+|(?:\d[\d_]*(?:\.[\d_]*)?|\.\d[\d_]*)(?:[eE][-+]?\d[\d_]*)?)/.exec(rest);
  if (!m) {
    if (/^[-+]?\.?$/.test(rest)) throw INCOMPLETE;
    // Python also writes -inf style values only through float('inf'), which is not a literal.
    throw FAIL;
  }
  c.i += m[0].length;
  // More digits (or the x of 0x, the exponent) may follow.
  if (c.i >= c.s.length || /^(?:[eE][-+]?|[xXoObB])$/.test(c.s.slice(c.i))) throw INCOMPLETE;
  let text = m[0].replace(/_/g, '');
  let sign = 1;
  if (text[0] === '-' || text[0] === '+') {
    if (text[0] === '-') sign = -1;
    text = text.slice(1);
  }
  let v: number;
  if (/^0[xX]/.test(text)) v = parseInt(text.slice(2), 16);
  else if (/^0[oO]/.test(text)) v = parseInt(text.slice(2), 8);
  else if (/^0[bB]/.test(text)) v = parseInt(text.slice(2), 2);
  else v = Number(text);
  if (!Number.isFinite(v)) throw FAIL;
  return sign * v;
}

const SIMPLE_ESCAPES: Record<string, string> = { n: '\n', t: '\t', r: '\r', b: '\b', f: '\f', '\\': '\\', "'": "'", '"': '"' };

function parseString(c: Cursor, mode: Mode, raw: boolean): string {
  const q = c.peek();
  if (mode === 'json' && q !== '"') throw pythonOnly(c);
  let quote = q;
  if (mode === 'python' && c.s.startsWith(q.repeat(3), c.i)) quote = q.repeat(3);
  c.i += quote.length;
  let out = '';
  for (;;) {
    if (c.i >= c.s.length) throw INCOMPLETE;
    const ch = c.s[c.i]!;
    if (c.s.startsWith(quote, c.i)) {
      c.i += quote.length;
      return out;
    }
    if (ch === '\n' && quote.length === 1) throw FAIL; // unterminated single-line string
    if (ch !== '\\') {
      out += ch;
      c.i++;
      continue;
    }
    if (c.i + 1 >= c.s.length) throw INCOMPLETE;
    const e = c.s[c.i + 1]!;
    if (raw) {
      out += ch + e;
      c.i += 2;
      continue;
    }
    c.i += 2;
    if (e in SIMPLE_ESCAPES) out += SIMPLE_ESCAPES[e];
    else if (e === '/' && mode === 'json') out += '/';
    else if (e === 'u' || (mode === 'python' && (e === 'x' || e === 'U'))) {
      const n = e === 'u' ? 4 : e === 'x' ? 2 : 8;
      const hex = c.s.slice(c.i, c.i + n);
      if (hex.length < n && /^[0-9a-fA-F]*$/.test(hex)) throw INCOMPLETE;
      if (!/^[0-9a-fA-F]+$/.test(hex) || hex.length !== n) throw FAIL;
      const cp = parseInt(hex, 16);
      if (cp > 0x10ffff) throw FAIL;
      out += String.fromCodePoint(cp);
      c.i += n;
    } else if (mode === 'python' && e === '\n') {
      // line continuation: nothing
    } else if (mode === 'python' && e === 'a') out += '\x07';
    else if (mode === 'python' && e === 'v') out += '\v';
    else if (mode === 'python' && /[0-7]/.test(e)) {
      let oct = e;
      while (oct.length < 3 && c.i < c.s.length && /[0-7]/.test(c.s[c.i]!)) oct += c.s[c.i++];
      out += String.fromCharCode(parseInt(oct, 8));
    } else if (mode === 'python')
      out += '\\' + e; // Python keeps unknown escapes verbatim
    else throw pythonOnly(c);
  }
}
