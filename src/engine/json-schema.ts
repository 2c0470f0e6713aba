/**
 * JSON Schema → a character-level JSON automaton, used to constrain decoding (response_format json_object /
 * json_schema). The automaton is persistent: a state is a set of immutable stacks, `advance(state, ch)` returns a
 * new state (empty = the character is not allowed), so a token-level mask can explore many token strings from one
 * state without copying (see json-schema-mask.ts).
 *
 * Supported keywords: type (one or a list), properties, required, additionalProperties, items, minItems, maxItems,
 * minLength, maxLength, enum, const, anyOf/oneOf, allOf with one member, $ref to #/$defs or #/definitions (recursion
 * allowed). Annotations (title, description, default, examples, format, pattern, …) are accepted and not enforced.
 * An object schema with `properties` and no `additionalProperties` admits only the listed keys (as OpenAI's strict
 * mode does) so that the model cannot wander off into invented keys.
 */
import { UsageError } from '../util/index.ts';
import { MAX_PARSE_STACKS, checkSchemaLimits } from './json-schema-limits.ts';

export type Schema =
  | { readonly k: 'any' }
  | { readonly k: 'object'; props: Map<string, Schema>; required: Set<string>; additional: Schema | null }
  | { readonly k: 'array'; items: Schema; min: number; max: number }
  /** options: the allowed values, sorted ascending (prefix tests binary-search them). */
  | { readonly k: 'string'; min: number; max: number; options: string[] | null }
  | { readonly k: 'number'; integer: boolean }
  /** JSON texts that are not strings: true, false, null, enum/const numbers, objects, arrays. */
  | { readonly k: 'literal'; options: string[] }
  | { readonly k: 'anyOf'; options: Schema[] }
  /** A $ref, resolved on first use (allows recursive schemas). */
  | { readonly k: 'ref'; target: () => Schema };

const ANY: Schema = { k: 'any' };
/** json_object: any object. */
export const ANY_OBJECT: Schema = { k: 'object', props: new Map(), required: new Set(), additional: ANY };

const KNOWN = new Set([
  'type',
  'properties',
  'required',
  'additionalProperties',
  'items',
  'minItems',
  'maxItems',
  'minLength',
  'maxLength',
  'enum',
  'const',
  'anyOf',
  'oneOf',
  'allOf',
  '$ref',
  '$defs',
  'definitions',
  '$schema',
  '$id',
  'title',
  'description',
  'default',
  'examples',
  'format',
  'pattern',
  'strict',
  'nullable',
  'minimum',
  'maximum',
  'exclusiveMinimum',
  'exclusiveMaximum',
  'multipleOf',
  'propertyNames',
  'uniqueItems',
  'deprecated',
  'readOnly',
  'writeOnly',
  '$comment',
]);

/** Compiles a JSON Schema (parsed JSON) into the automaton's schema tree. Throws UsageError on what it can't honour. */
export function compileSchema(root: unknown): Schema {
  checkSchemaLimits(root, 'response_format json_schema');
  const refs = new Map<string, Schema>();
  const isObj = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);
  const bad = (path: string, msg: string) => new UsageError(`response_format json_schema ${path}: ${msg}`);

  // undefined, NaN, ±Infinity, functions, bigints (at any depth): only a library caller can pass them, and they have
  // no JSON text of their own (JSON.stringify drops them, writes null or throws).
  const isJson = (v: unknown): boolean =>
    v === null ||
    typeof v === 'string' ||
    typeof v === 'boolean' ||
    (typeof v === 'number' && Number.isFinite(v)) ||
    (Array.isArray(v) && v.every(isJson)) ||
    (isObj(v) && Object.values(v).every(isJson));
  const literalOf = (v: unknown, path: string): Schema => {
    if (typeof v === 'string') return { k: 'string', min: 0, max: Infinity, options: [v] };
    if (!isJson(v)) throw bad(path, 'const must be a JSON value');
    return { k: 'literal', options: [JSON.stringify(v)] };
  };

  function compile(s: unknown, path: string): Schema {
    if (s === true || (isObj(s) && Object.keys(s).length === 0)) return ANY;
    if (!isObj(s)) throw bad(path, 'a schema must be an object or true');
    for (const key of Object.keys(s)) if (!KNOWN.has(key)) throw bad(path, `unsupported keyword '${key}'`);
    if (typeof s.$ref === 'string') {
      const m = /^#\/(\$defs|definitions)\/(.+)$/.exec(s.$ref);
      if (!m) throw bad(path, `only local $ref '#/$defs/…' is supported, got '${s.$ref}'`);
      const ref = s.$ref;
      const defs = isObj(root) ? root[m[1]!] : undefined;
      const target = isObj(defs) ? defs[m[2]!] : undefined;
      if (target === undefined) throw bad(path, `$ref '${ref}' points nowhere`);
      return {
        k: 'ref',
        target: () => {
          let r = refs.get(ref);
          if (!r) {
            r = { k: 'any' };
            refs.set(ref, r); // placeholder while compiling (recursion)
            const c = compile(target, ref);
            refs.set(ref, c);
            r = c;
          }
          return r;
        },
      };
    }
    if ('const' in s) return literalOf(s.const, path);
    if (s.enum !== undefined) {
      if (!Array.isArray(s.enum) || s.enum.length === 0) throw bad(path, 'enum must be a non-empty array');
      const strs = s.enum.filter((v): v is string => typeof v === 'string');
      const others = s.enum
        .filter((v) => typeof v !== 'string')
        .map((v, i) => (literalOf(v, `${path}/enum/${i}`) as { options: string[] }).options[0]!);
      const opts: Schema[] = [];
      if (strs.length) opts.push({ k: 'string', min: 0, max: Infinity, options: [...new Set(strs)].sort() });
      if (others.length) opts.push({ k: 'literal', options: others });
      return opts.length === 1 ? opts[0]! : { k: 'anyOf', options: opts };
    }
    const alts = s.anyOf ?? s.oneOf;
    if (alts !== undefined) {
      if (!Array.isArray(alts) || alts.length === 0) throw bad(path, 'anyOf/oneOf must be a non-empty array');
      return { k: 'anyOf', options: alts.map((a, i) => compile(a, `${path}/anyOf/${i}`)) };
    }
    if (s.allOf !== undefined) {
      if (!Array.isArray(s.allOf) || s.allOf.length !== 1) throw bad(path, 'allOf is supported with exactly one member');
      return compile(s.allOf[0], `${path}/allOf/0`);
    }
    let types: unknown[] = Array.isArray(s.type) ? s.type : s.type === undefined ? [] : [s.type];
    if (types.length === 0) {
      if (s.properties !== undefined) types = ['object'];
      else if (s.items !== undefined) types = ['array'];
      else return ANY;
    }
    if (s.nullable === true && !types.includes('null')) types = [...types, 'null'];
    const out = types.map((t): Schema => {
      switch (t) {
        case 'object': {
          if (s.properties !== undefined && !isObj(s.properties)) throw bad(path, 'properties must be an object');
          const props = new Map<string, Schema>();
          for (const [k, v] of Object.entries(s.properties ?? {})) props.set(k, compile(v, `${path}/properties/${k}`));
          const req = s.required ?? [];
          if (!Array.isArray(req) || !req.every((r) => typeof r === 'string')) throw bad(path, 'required must be an array of strings');
          const required = new Set(req as string[]);
          const ap = s.additionalProperties;
          let additional: Schema | null;
          if (ap === false) additional = null;
          else if (ap === undefined || ap === true) additional = s.properties === undefined ? ANY : null;
          else additional = compile(ap, `${path}/additionalProperties`);
          if (additional === null)
            for (const r of required) if (!props.has(r)) throw bad(path, `required property '${r}' is not in properties`);
          return { k: 'object', props, required, additional };
        }
        case 'array': {
          const min = num(s.minItems, 0, path, 'minItems');
          const max = num(s.maxItems, Infinity, path, 'maxItems');
          if (max < min) throw bad(path, 'maxItems < minItems');
          return { k: 'array', items: s.items === undefined ? ANY : compile(s.items, `${path}/items`), min, max };
        }
        case 'string': {
          const min = num(s.minLength, 0, path, 'minLength');
          const max = num(s.maxLength, Infinity, path, 'maxLength');
          if (max < min) throw bad(path, 'maxLength < minLength');
          return { k: 'string', min, max, options: null };
        }
        case 'number':
        case 'integer':
          return { k: 'number', integer: t === 'integer' };
        case 'boolean':
          return { k: 'literal', options: ['true', 'false'] };
        case 'null':
          return { k: 'literal', options: ['null'] };
        default:
          throw bad(path, `unknown type ${JSON.stringify(t)}`);
      }
    });
    return out.length === 1 ? out[0]! : { k: 'anyOf', options: out };
  }
  function num(v: unknown, dflt: number, path: string, name: string): number {
    if (v === undefined) return dflt;
    if (typeof v !== 'number' || !Number.isInteger(v) || v < 0) throw bad(path, `${name} must be a non-negative integer`);
    return v;
  }
  return compile(root, '#');
}

// ---- the automaton ----------------------------------------------------------------------------------------------

type NumState = 'sign' | 'zero' | 'int' | 'dot' | 'frac' | 'e' | 'esign' | 'exp';
type ObjSchema = Extract<Schema, { k: 'object' }>;
type Frame =
  | { t: 'root'; done: boolean }
  /** Expecting a value of schema s. */
  | { t: 'val'; s: Schema }
  /** ph 0: after '{' (key or '}'); 1: after ',' (key); 2: after key (':'); 3: after value (',' or '}'); 4: in value. */
  | { t: 'obj'; s: ObjSchema; seen: readonly string[]; key: string; ph: 0 | 1 | 2 | 3 | 4 }
  /** ph 0: after '[' (item or ']'); 1: after item (',' or ']'); 2: in item. */
  | { t: 'arr'; s: Extract<Schema, { k: 'array' }>; count: number; ph: 0 | 1 | 2 }
  /** esc: null outside an escape, '' right after '\', 'u', 'u1', … inside \uXXXX. buf is kept only when options exist. */
  | { t: 'str'; opts: readonly string[] | null; buf: string; len: number; esc: string | null; min: number; max: number; key: boolean }
  | { t: 'num'; integer: boolean; st: NumState; digits: number }
  | { t: 'lit'; opts: readonly string[]; buf: string };

/**
 * Immutable stack node; `ws` counts consecutive whitespace. As llama.cpp's JSON grammar, at most one whitespace
 * character between tokens and none before the value: runs of spaces and newlines would eat a small max_tokens.
 */
export interface Stack {
  readonly f: Frame;
  readonly up: Stack | null;
  readonly ws: number;
}
/** A state of the automaton: the stacks still alive (nondeterminism from anyOf and literals). */
export type JsonState = readonly Stack[];

const MAX_WS = 1;
const MAX_DIGITS = 24;
// An "integer" has at most 16 digits: beyond 2^53 (9007199254740991) JSON.parse and every float64 client round it, so
// longer ones are never what a schema asked for — and a small model's runaway digit string stops in time to close
// the object within a tight max_tokens.
const MAX_INT_DIGITS = 16;
// '\r' is valid JSON whitespace but only ever a way to stall; the model gets space, newline and tab.
const WS = new Set([' ', '\n', '\t']);
const ESC: Record<string, string> = { '"': '"', '\\': '\\', '/': '/', b: '\b', f: '\f', n: '\n', r: '\r', t: '\t' };
const ESCAPED = new Set(Object.values(ESC));

export function initialState(schema: Schema): JsonState {
  return [{ f: { t: 'val', s: schema }, up: { f: { t: 'root', done: false }, up: null, ws: 0 }, ws: 0 }];
}

const push = (f: Frame, up: Stack | null): Stack => ({ f, up, ws: 0 });

/** The parent `up` receives a completed value (or key). */
function completed(up: Stack | null, key?: string): Stack[] {
  if (!up) return [];
  const f = up.f;
  switch (f.t) {
    case 'root':
      return [push({ t: 'root', done: true }, null)];
    case 'obj':
      if (key !== undefined) return [push({ ...f, key, seen: [...f.seen, key], ph: 2 }, up.up)];
      return [push({ ...f, ph: 3 }, up.up)];
    case 'arr':
      return [push({ ...f, count: f.count + 1, ph: 1 }, up.up)];
    default:
      return [];
  }
}

function resolve(s: Schema): Schema {
  while (s.k === 'ref') s = s.target();
  return s;
}

/** First character of a value of schema s; `up` is the parent stack. */
function startValue(s0: Schema, up: Stack, c: string): Stack[] {
  const s = resolve(s0);
  switch (s.k) {
    case 'any':
      return [
        ...startValue(ANY_OBJECT, up, c),
        ...startValue({ k: 'array', items: ANY, min: 0, max: Infinity }, up, c),
        ...startValue({ k: 'string', min: 0, max: Infinity, options: null }, up, c),
        ...startValue({ k: 'number', integer: false }, up, c),
        ...startValue({ k: 'literal', options: ['true', 'false', 'null'] }, up, c),
      ];
    case 'anyOf':
      return s.options.flatMap((o) => startValue(o, up, c));
    case 'object':
      return c === '{' ? [push({ t: 'obj', s, seen: [], key: '', ph: 0 }, up)] : [];
    case 'array':
      return c === '[' ? [push({ t: 'arr', s, count: 0, ph: 0 }, up)] : [];
    case 'string':
      return c === '"' ? [push({ t: 'str', opts: s.options, buf: '', len: 0, esc: null, min: s.min, max: s.max, key: false }, up)] : [];
    case 'number':
      if (c === '-') return [push({ t: 'num', integer: s.integer, st: 'sign', digits: 0 }, up)];
      if (c >= '0' && c <= '9') return [push({ t: 'num', integer: s.integer, st: c === '0' ? 'zero' : 'int', digits: 1 }, up)];
      return [];
    case 'literal':
      return litStep({ t: 'lit', opts: s.options, buf: '' }, up, c);
    case 'ref':
      return startValue(s.target(), up, c);
  }
}

function litStep(f: Extract<Frame, { t: 'lit' }>, up: Stack | null, c: string): Stack[] {
  const buf = f.buf + c;
  const opts = f.opts.filter((o) => o.startsWith(buf));
  if (opts.length === 0) return [];
  const out: Stack[] = [];
  if (opts.some((o) => o.length > buf.length)) out.push(push({ t: 'lit', opts, buf }, up));
  if (opts.includes(buf)) out.push(...completed(up));
  return out;
}

function keyFrame(s: ObjSchema, seen: readonly string[]): Frame {
  const opts = s.additional ? null : [...s.props.keys()].filter((k) => !seen.includes(k)).sort();
  return { t: 'str', opts, buf: '', len: 0, esc: null, min: 0, max: Infinity, key: true };
}

function canCloseObj(s: ObjSchema, seen: readonly string[]): boolean {
  for (const r of s.required) if (!seen.includes(r)) return false;
  return true;
}

function moreKeys(s: ObjSchema, seen: readonly string[]): boolean {
  return s.additional !== null || [...s.props.keys()].some((k) => !seen.includes(k));
}

/** Feeds one character to one stack. */
function step(st: Stack, c: string): Stack[] {
  const f = st.f;
  const ws = WS.has(c);
  const skipWs = (): Stack[] => (st.ws < MAX_WS ? [{ f, up: st.up, ws: st.ws + 1 }] : []);
  switch (f.t) {
    case 'root':
      return [];
    case 'val':
      if (ws) return st.up?.f.t === 'root' ? [] : skipWs();
      return startValue(f.s, st.up!, c);
    case 'obj':
      if (ws && f.ph !== 4) return skipWs();
      if (f.ph === 0 || f.ph === 1) {
        if (c === '"' && moreKeys(f.s, f.seen)) return [push(keyFrame(f.s, f.seen), { f: { ...f }, up: st.up, ws: 0 })];
        if (c === '}' && f.ph === 0 && canCloseObj(f.s, f.seen)) return completed(st.up);
        return [];
      }
      if (f.ph === 2) {
        if (c !== ':') return [];
        const vs = f.s.props.get(f.key) ?? f.s.additional;
        if (!vs) return [];
        return [push({ t: 'val', s: vs }, push({ ...f, ph: 4 }, st.up))];
      }
      if (f.ph === 3) {
        if (c === ',' && moreKeys(f.s, f.seen)) return [push({ ...f, ph: 1 }, st.up)];
        if (c === '}' && canCloseObj(f.s, f.seen)) return completed(st.up);
        return [];
      }
      return [];
    case 'arr':
      if (ws && f.ph !== 2) return skipWs();
      if (f.ph === 0 || f.ph === 1) {
        if (c === ']' && f.count >= f.s.min) return completed(st.up);
        if (f.ph === 1) return c === ',' && f.count < f.s.max ? [push({ t: 'val', s: f.s.items }, push({ ...f, ph: 2 }, st.up))] : [];
        if (f.count >= f.s.max) return [];
        return startValue(f.s.items, push({ ...f, ph: 2 }, st.up), c);
      }
      return [];
    case 'str':
      return strStep(f, st, c);
    case 'num': {
      const d = c >= '0' && c <= '9';
      const next = (ns: NumState): Stack[] =>
        f.digits + (d ? 1 : 0) > (f.integer ? MAX_INT_DIGITS : MAX_DIGITS)
          ? []
          : [push({ ...f, st: ns, digits: f.digits + (d ? 1 : 0) }, st.up)];
      switch (f.st) {
        case 'sign':
          if (d) return next(c === '0' ? 'zero' : 'int');
          return [];
        case 'zero':
        case 'int':
          if (d && f.st === 'int') return next('int');
          if (d) return [];
          if (c === '.' && !f.integer) return next('dot');
          if ((c === 'e' || c === 'E') && !f.integer) return next('e');
          return completed(st.up).flatMap((p) => step(p, c));
        case 'dot':
          return d ? next('frac') : [];
        case 'frac':
          if (d) return next('frac');
          if (c === 'e' || c === 'E') return next('e');
          return completed(st.up).flatMap((p) => step(p, c));
        case 'e':
          if (c === '+' || c === '-') return next('esign');
          return d ? next('exp') : [];
        case 'esign':
          return d ? next('exp') : [];
        case 'exp':
          if (d) return next('exp');
          return completed(st.up).flatMap((p) => step(p, c));
      }
      return [];
    }
    case 'lit':
      return litStep(f, st.up, c);
  }
}

function strStep(f: Extract<Frame, { t: 'str' }>, st: Stack, c: string): Stack[] {
  let ch: string;
  if (f.esc !== null) {
    if (f.esc === '') {
      // Enumerated strings take only the short escapes (a \uXXXX escape could strand the automaton mid-escape).
      if (c === 'u') return f.opts ? [] : [push({ ...f, esc: 'u' }, st.up)];
      const e = ESC[c];
      if (e === undefined) return [];
      ch = e;
    } else {
      if (!/^[0-9a-fA-F]$/.test(c)) return [];
      const esc = f.esc + c;
      if (esc.length < 5) return [push({ ...f, esc }, st.up)];
      ch = String.fromCharCode(parseInt(esc.slice(1), 16));
    }
  } else if (c === '"') {
    if (f.len < f.min) return [];
    if (f.opts && !f.opts.includes(f.buf)) return [];
    return completed(st.up, f.key ? f.buf : undefined);
  } else if (c === '\\') {
    if (f.len + 1 > f.max) return [];
    if (f.opts && !f.opts.some((o) => o.startsWith(f.buf) && o.length > f.buf.length && ESCAPED.has(o[f.buf.length]!))) return [];
    return [push({ ...f, esc: '' }, st.up)];
  } else if (c.charCodeAt(0) < 0x20) {
    return [];
  } else ch = c;
  if (f.len + 1 > f.max) return [];
  // Keys of free-form objects are remembered too (duplicate keys are not checked there).
  const buf = f.opts || f.key ? f.buf + ch : '';
  if (f.opts && !hasPrefix(f.opts, buf)) return [];
  return [push({ ...f, buf, len: f.len + 1, esc: null }, st.up)];
}

/** Whether some string of `sorted` (ascending) starts with `p`: those form a run that begins where `p` would go. */
function hasPrefix(sorted: readonly string[], p: string): boolean {
  let lo = 0;
  let hi = sorted.length;
  while (lo < hi) {
    const mid = (lo + hi) >> 1;
    if (sorted[mid]! < p) lo = mid + 1;
    else hi = mid;
  }
  return lo < sorted.length && sorted[lo]!.startsWith(p);
}

/** Advances a state by a string; an empty result means the string is not allowed here. */
export function advance(state: JsonState, text: string): JsonState {
  let cur = state;
  for (let i = 0; i < text.length && cur.length > 0; i++) {
    const c = text[i]!;
    const next: Stack[] = [];
    for (const s of cur) for (const n of step(s, c)) next.push(n);
    // Nested anyOf alternatives multiply: the number of live readings could grow exponentially with depth.
    if (next.length > MAX_PARSE_STACKS)
      throw new UsageError(`the JSON schema is too ambiguous: more than ${MAX_PARSE_STACKS} ways to read the output so far`);
    cur = next;
  }
  return cur;
}

/**
 * True when every stack is inside a free-form string (no enum, no maxLength, not mid-escape): then any text without
 * '"', '\\' and control characters is accepted and leaves the state as it was (the mask's fast path).
 */
export function inFreeString(state: JsonState): boolean {
  return state.length > 0 && state.every((s) => s.f.t === 'str' && s.f.opts === null && s.f.max === Infinity && s.f.esc === null);
}

/**
 * When every stack is inside a string without enum options and not mid-escape: how many more characters the
 * tightest one takes (Infinity without maxLength). Any plain text (isPlainStringText) that short is accepted and
 * leaves each stack in its string. Otherwise -1.
 */
export function freeStringRoom(state: JsonState): number {
  if (state.length === 0) return -1;
  let room = Infinity;
  for (const s of state) {
    if (s.f.t !== 'str' || s.f.opts !== null || s.f.esc !== null) return -1;
    room = Math.min(room, s.f.max - s.f.len);
  }
  return room;
}

/** Text a free-form string takes as is: no quote, backslash or control character. */
export function isPlainStringText(t: string): boolean {
  for (let i = 0; i < t.length; i++) {
    const c = t.charCodeAt(i);
    if (c < 0x20 || c === 0x22 || c === 0x5c) return false;
  }
  return true;
}

/** True when the text so far is a complete value (generation may end here). */
export function canEnd(state: JsonState): boolean {
  return state.some(
    (s) => (s.f.t === 'root' && s.f.done) || (s.f.t === 'num' && s.up?.f.t === 'root' && ['zero', 'int', 'frac', 'exp'].includes(s.f.st)),
  );
}

/** True when nothing but the end may follow. */
export function mustEnd(state: JsonState): boolean {
  return state.length > 0 && state.every((s) => s.f.t === 'root' && s.f.done);
}

// Stable ids for schema objects, so that state signatures can name them.
const schemaIds = new WeakMap<object, number>();
let nextSchemaId = 1;
function sid(s: object): number {
  let id = schemaIds.get(s);
  if (id === undefined) schemaIds.set(s, (id = nextSchemaId++));
  return id;
}

/** A string that is equal for two states exactly when they allow the same continuations (cache key for masks). */
export function signature(state: JsonState): string {
  const parts: string[] = [];
  for (const s0 of state) {
    let out = '';
    for (let s: Stack | null = s0; s; s = s.up) {
      const f = s.f;
      out += `${s.ws}`;
      switch (f.t) {
        case 'root':
          out += `R${f.done ? 1 : 0}`;
          break;
        case 'val':
          out += `V${sid(f.s)}`;
          break;
        case 'obj': {
          const free = f.s.props.size === 0 && f.s.required.size === 0;
          out += `O${sid(f.s)}.${f.ph}.${(f.ph === 2 || f.ph === 4) && !free ? f.key : ''}.${free ? '' : f.seen.join('\u0001')}`;
          break;
        }
        case 'arr':
          out += `A${sid(f.s)}.${f.ph}.${Math.min(f.count, Math.max(f.s.min, f.s.max === Infinity ? 0 : f.s.max))}`;
          break;
        case 'str':
          out += `S${f.opts || (f.key && s.up?.f.t === 'obj' && s.up.f.s.props.size > 0) ? f.buf + '\u0001' + (f.opts ?? []).join('\u0001') : ''}.${f.max === Infinity ? Math.min(f.len, f.min) : f.len}.${f.esc ?? '-'}.${f.key ? 1 : 0}`;
          break;
        case 'num':
          out += `N${f.integer ? 1 : 0}${f.st}${f.digits}`;
          break;
        case 'lit':
          out += `L${f.buf}\u0001${f.opts.join('\u0001')}`;
          break;
      }
      out += '|';
    }
    parts.push(out);
  }
  return parts.sort().join('\n');
}
