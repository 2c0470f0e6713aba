/**
 * Python's str()/repr() and %-formatting of Jinja runtime values, so templates render as Python Jinja2 does.
 * Chat templates written for transformers use them: vLLM's pythonic Llama 4 template writes tool-call arguments
 * with `"%s" | format(value)`, so a dict argument comes out as `{'year_min': 1850, 'languages': ['en', 'fr']}`.
 */

/** The shape shared by @huggingface/jinja's runtime values (its classes are not exported). */
export interface RuntimeLike {
  type: string;
  value: unknown;
}

/** Python repr of a str: single quotes unless the text has ' and no ", escapes for non-printables. */
export function pyStrRepr(s: string): string {
  const quote = s.includes("'") && !s.includes('"') ? '"' : "'";
  let out = quote;
  for (const ch of s) {
    const cp = ch.codePointAt(0)!;
    if (ch === quote || ch === '\\') out += '\\' + ch;
    else if (ch === '\n') out += '\\n';
    else if (ch === '\r') out += '\\r';
    else if (ch === '\t') out += '\\t';
    else if (ch !== ' ' && /[\p{Cc}\p{Cf}\p{Co}\p{Cn}\p{Zl}\p{Zp}\p{Zs}\p{Cs}]/u.test(ch)) {
      out += cp < 0x100 ? `\\x${hex(cp, 2)}` : cp < 0x10000 ? `\\u${hex(cp, 4)}` : `\\U${hex(cp, 8)}`;
    } else out += ch;
  }
  return out + quote;
}

function hex(n: number, width: number): string {
  return n.toString(16).padStart(width, '0');
}

/** Python repr of a float: shortest round-trip digits, exponent form outside 1e-4 ≤ |x| < 1e16. */
export function pyFloatRepr(x: number): string {
  if (Number.isNaN(x)) return 'nan';
  if (!Number.isFinite(x)) return x > 0 ? 'inf' : '-inf';
  if (x === 0) return Object.is(x, -0) ? '-0.0' : '0.0';
  const [mant, expText] = x.toExponential().split('e') as [string, string];
  const e = Number(expText);
  const neg = mant.startsWith('-');
  const digits = mant.replace('-', '').replace('.', '');
  let body: string;
  if (e >= -4 && e < 16) {
    if (e >= 0) {
      const intPart = digits.slice(0, e + 1).padEnd(e + 1, '0');
      const frac = digits.slice(e + 1);
      body = `${intPart}.${frac || '0'}`;
    } else {
      body = `0.${'0'.repeat(-e - 1)}${digits}`;
    }
  } else {
    const m = digits.length > 1 ? `${digits[0]}.${digits.slice(1)}` : digits;
    body = `${m}e${e < 0 ? '-' : '+'}${String(Math.abs(e)).padStart(2, '0')}`;
  }
  return (neg ? '-' : '') + body;
}

/** Python repr() of a runtime value. */
export function pyRepr(v: RuntimeLike): string {
  switch (v.type) {
    case 'StringValue':
      return pyStrRepr(v.value as string);
    case 'IntegerValue':
      return String(v.value);
    case 'FloatValue':
      return pyFloatRepr(v.value as number);
    case 'BooleanValue':
      return v.value ? 'True' : 'False';
    case 'NullValue':
      return 'None';
    case 'UndefinedValue':
      return '';
    case 'TupleValue': {
      const items = (v.value as RuntimeLike[]).map(pyRepr);
      return items.length === 1 ? `(${items[0]},)` : `(${items.join(', ')})`;
    }
    case 'ArrayValue':
      return `[${(v.value as RuntimeLike[]).map(pyRepr).join(', ')}]`;
    case 'ObjectValue':
    case 'KeywordArgumentsValue':
      return `{${[...(v.value as Map<string, RuntimeLike>)].map(([k, x]) => `${pyStrRepr(k)}: ${pyRepr(x)}`).join(', ')}}`;
    case 'NamespaceValue':
      return '<Namespace>';
    case 'FunctionValue':
      return '<function>';
    default:
      return String(v.value);
  }
}

/** Python str() of a runtime value (what `{{ x }}`, `~` and `%s` produce). */
export function pyStr(v: RuntimeLike): string {
  if (v.type === 'StringValue') return v.value as string;
  return pyRepr(v);
}

function toNumber(v: RuntimeLike, spec: string): number {
  if (v.type === 'IntegerValue' || v.type === 'FloatValue') return v.value as number;
  if (v.type === 'BooleanValue') return v.value ? 1 : 0;
  throw new Error(`%${spec} format: a real number is required, not ${v.type.replace('Value', '').toLowerCase()}`);
}

/**
 * Python's `fmt % args`: `args` is a tuple's items, or a mapping for `%(name)s`. Supports the conversions
 * s r a d i u f F e E g G x X o c and %%, with flags, width and precision.
 */
export function percentFormat(fmt: string, args: RuntimeLike[] | Map<string, RuntimeLike>): string {
  let i = 0;
  const re = /%(?:\(([^)]*)\))?([-+ 0#]*)(\d+)?(?:\.(\d+))?([sradiufFeEgGxXoc%])/g;
  let out = '';
  let last = 0;
  let m: RegExpExecArray | null;
  while ((m = re.exec(fmt)) !== null) {
    out += fmt.slice(last, m.index);
    last = m.index + m[0].length;
    const [, key, flags = '', widthText, precText, conv = 's'] = m;
    if (conv === '%') {
      out += '%';
      continue;
    }
    let v: RuntimeLike | undefined;
    if (key !== undefined) {
      if (!(args instanceof Map)) throw new Error('format requires a mapping');
      v = args.get(key);
      if (v === undefined) throw new Error(`KeyError: ${pyStrRepr(key)}`);
    } else {
      if (args instanceof Map) throw new Error('format requires a tuple, not a mapping');
      v = args[i++];
      if (v === undefined) throw new Error('not enough arguments for format string');
    }
    const prec = precText === undefined ? undefined : Number(precText);
    let s: string;
    switch (conv) {
      case 's':
        s = pyStr(v);
        if (prec !== undefined) s = s.slice(0, prec);
        break;
      case 'r':
      case 'a':
        s = pyRepr(v);
        break;
      case 'd':
      case 'i':
      case 'u':
        s = String(Math.trunc(toNumber(v, conv)));
        break;
      case 'f':
      case 'F':
        s = toNumber(v, conv).toFixed(prec ?? 6);
        break;
      case 'e':
      case 'E': {
        s = toNumber(v, conv)
          .toExponential(prec ?? 6)
          .replace(/e([+-])(\d)$/, 'e$10$2');
        if (conv === 'E') s = s.toUpperCase();
        break;
      }
      case 'g':
      case 'G':
        s = String(Number(toNumber(v, conv).toPrecision(prec || 6)));
        break;
      case 'x':
        s = Math.trunc(toNumber(v, conv)).toString(16);
        break;
      case 'X':
        s = Math.trunc(toNumber(v, conv)).toString(16).toUpperCase();
        break;
      case 'o':
        s = Math.trunc(toNumber(v, conv)).toString(8);
        break;
      case 'c':
        s = v.type === 'StringValue' ? (v.value as string) : String.fromCodePoint(toNumber(v, conv));
        break;
      default:
        s = pyStr(v);
    }
    if (flags.includes('+') && /^[0-9]/.test(s) && conv !== 's' && conv !== 'r') s = '+' + s;
    const width = widthText === undefined ? 0 : Number(widthText);
    if (s.length < width) {
      if (flags.includes('-')) s = s.padEnd(width);
      else if (flags.includes('0') && conv !== 's' && conv !== 'r') {
        const sign = /^[+-]/.test(s) ? s[0]! : '';
        s = sign + s.slice(sign.length).padStart(width - sign.length, '0');
      } else s = s.padStart(width);
    }
    out += s;
  }
  out += fmt.slice(last);
  if (!(args instanceof Map) && i < args.length) throw new Error('not all arguments converted during string formatting');
  return out;
}

const MONTHS = ['January', 'February', 'March', 'April', 'May', 'June', 'July', 'August', 'September', 'October', 'November', 'December'];
const DAYS = ['Sunday', 'Monday', 'Tuesday', 'Wednesday', 'Thursday', 'Friday', 'Saturday'];

/** Python's time.strftime for the common directives (local time). */
export function strftime(d: Date, fmt: string): string {
  const p2 = (n: number): string => String(n).padStart(2, '0');
  return fmt.replace(/%([YmdbBaAHIMSpyjeZz%])/g, (_, c: string) => {
    switch (c) {
      case 'Y':
        return String(d.getFullYear());
      case 'y':
        return p2(d.getFullYear() % 100);
      case 'm':
        return p2(d.getMonth() + 1);
      case 'd':
        return p2(d.getDate());
      case 'e':
        return String(d.getDate()).padStart(2, ' ');
      case 'b':
        return MONTHS[d.getMonth()]!.slice(0, 3);
      case 'B':
        return MONTHS[d.getMonth()]!;
      case 'a':
        return DAYS[d.getDay()]!.slice(0, 3);
      case 'A':
        return DAYS[d.getDay()]!;
      case 'H':
        return p2(d.getHours());
      case 'I':
        return p2(((d.getHours() + 11) % 12) + 1);
      case 'M':
        return p2(d.getMinutes());
      case 'S':
        return p2(d.getSeconds());
      case 'p':
        return d.getHours() < 12 ? 'AM' : 'PM';
      case 'j': {
        const start = new Date(d.getFullYear(), 0, 1);
        return String(Math.floor((d.getTime() - start.getTime()) / 86400000) + 1).padStart(3, '0');
      }
      case 'Z':
        return '';
      case 'z': {
        const off = -d.getTimezoneOffset();
        return (off >= 0 ? '+' : '-') + p2(Math.floor(Math.abs(off) / 60)) + p2(Math.abs(off) % 60);
      }
      default:
        return '%';
    }
  });
}

/**
 * Python's json.dumps(value, ensure_ascii=False, indent=indent) for plain JS values: separators ', ' and ': '
 * (',' between items when indenting), keys in insertion order, non-ASCII written as is.
 */
export function pyJsonDumps(value: unknown, indent?: number, depth = 0): string {
  if (value === null || value === undefined) return 'null';
  if (typeof value === 'string') return JSON.stringify(value);
  if (typeof value === 'number')
    return Number.isFinite(value) ? JSON.stringify(value) : Number.isNaN(value) ? 'NaN' : value > 0 ? 'Infinity' : '-Infinity';
  if (typeof value === 'boolean') return value ? 'true' : 'false';
  if (typeof value !== 'object') return JSON.stringify(String(value));
  const pad = indent ? '\n' + ' '.repeat(indent * (depth + 1)) : '';
  const end = indent ? '\n' + ' '.repeat(indent * depth) : '';
  const sep = indent ? ',' : ', ';
  if (Array.isArray(value)) {
    if (value.length === 0) return '[]';
    return `[${value.map((v) => pad + pyJsonDumps(v, indent, depth + 1)).join(sep)}${end}]`;
  }
  const entries = Object.entries(value as Record<string, unknown>);
  if (entries.length === 0) return '{}';
  return `{${entries.map(([k, v]) => `${pad}${JSON.stringify(k)}: ${pyJsonDumps(v, indent, depth + 1)}`).join(sep)}${end}}`;
}

/** Characters Python's str.isspace() accepts (str.strip() with no argument removes these). */
const PY_SPACE = '\\t\\n\\v\\f\\r\\x1c-\\x1f \\x85\\xa0\\u1680\\u2000-\\u200a\\u2028\\u2029\\u202f\\u205f\\u3000';
const PY_STRIP = new RegExp(`^[${PY_SPACE}]+|[${PY_SPACE}]+$`, 'g');

/** Python's str.strip(): unlike String.prototype.trim it keeps U+FEFF and removes U+0085 and U+001C–U+001F. */
export function pyStrip(s: string): string {
  return s.replace(PY_STRIP, '');
}

/** A plain JS value as the runtime-value shape, for pyRepr/pyStr of template inputs. */
export function toRuntimeLike(v: unknown): RuntimeLike {
  if (v === null) return { type: 'NullValue', value: null };
  if (v === undefined) return { type: 'UndefinedValue', value: undefined };
  if (typeof v === 'string') return { type: 'StringValue', value: v };
  if (typeof v === 'boolean') return { type: 'BooleanValue', value: v };
  if (typeof v === 'number') return { type: Number.isInteger(v) ? 'IntegerValue' : 'FloatValue', value: v };
  if (Array.isArray(v)) return { type: 'ArrayValue', value: v.map(toRuntimeLike) };
  if (typeof v === 'object') return { type: 'ObjectValue', value: new Map(Object.entries(v).map(([k, x]) => [k, toRuntimeLike(x)])) };
  return { type: 'StringValue', value: String(v) };
}
