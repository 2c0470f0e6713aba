/**
 * Tool-call extraction from a finished Llama 4 assistant output, for engines whose chat layer offers no parser.
 * Llama 4 writes calls as JSON ({"name": …, "parameters": …}, a list of them, optionally inside
 * <|python_start|>…<|python_end|>) or pythonic ([get_weather(city="Paris"), …]). Lenient where the intent is
 * unambiguous; anything else stays plain content. Never throws, never drops text.
 */
import type { ParsedToolCalls } from './engine.ts';

type Call = { name: string; arguments: unknown };

function asCall(v: unknown, names: ReadonlySet<string>): Call | null {
  if (typeof v !== 'object' || v === null || Array.isArray(v)) return null;
  const o = v as Record<string, unknown>;
  const fn = typeof o.function === 'object' && o.function !== null ? (o.function as Record<string, unknown>) : o;
  const name = fn.name;
  if (typeof name !== 'string' || (names.size > 0 && !names.has(name))) return null;
  let args = fn.parameters ?? fn.arguments ?? {};
  if (typeof args === 'string') {
    try {
      args = JSON.parse(args);
    } catch {
      /* keep the string */
    }
  }
  return { name, arguments: args };
}

function jsonCalls(s: string, names: ReadonlySet<string>): Call[] | null {
  let v: unknown;
  try {
    v = JSON.parse(s);
  } catch {
    return null;
  }
  const list = Array.isArray(v) ? v : [v];
  const calls = list.map((x) => asCall(x, names));
  return calls.length > 0 && calls.every((c) => c !== null) ? (calls as Call[]) : null;
}

/** [f(a=1, b="x"), g()] with JSON-ish literal values (Python True/False/None accepted). */
function pythonicCalls(s: string, names: ReadonlySet<string>): Call[] | null {
  const m = /^\[([\s\S]*)\]$/.exec(s);
  if (!m) return null;
  const calls: Call[] = [];
  const re = /\s*([A-Za-z_][\w.-]*)\(([^()]*)\)\s*(,|$)/y;
  let pos = 0;
  const body = m[1]!;
  while (pos < body.length) {
    re.lastIndex = pos;
    const c = re.exec(body);
    if (!c) return null;
    const name = c[1]!;
    if (names.size > 0 && !names.has(name)) return null;
    const args: Record<string, unknown> = {};
    const argText = c[2]!.trim();
    if (argText) {
      for (const part of argText.split(/,(?=\s*[A-Za-z_]\w*\s*=)/)) {
        const kv = /^\s*([A-Za-z_]\w*)\s*=\s*([\s\S]*?)\s*$/.exec(part);
        if (!kv) return null;
        const raw = kv[2]!.replace(/^'(.*)'$/s, (_, x: string) => JSON.stringify(x)).replace(/^True$/, 'true').replace(/^False$/, 'false').replace(/^None$/, 'null');
        try {
          args[kv[1]!] = JSON.parse(raw);
        } catch {
          return null;
        }
      }
    }
    calls.push({ name, arguments: args });
    pos = re.lastIndex;
  }
  return calls.length ? calls : null;
}

export function parseLlama4ToolCalls(text: string, toolNames: readonly string[]): ParsedToolCalls {
  const names = new Set(toolNames);
  const stripped = text.replace(/<\|python_start\|>|<\|python_end\|>|<\|eom\|>/g, '').trim();
  const whole = jsonCalls(stripped, names) ?? pythonicCalls(stripped, names);
  if (whole) return { content: null, toolCalls: whole };
  // Prose, then a JSON call at the end.
  for (let i = stripped.indexOf('{'); i > 0; i = stripped.indexOf('{', i + 1)) {
    const calls = jsonCalls(stripped.slice(i), names);
    if (calls) return { content: stripped.slice(0, i).trim() || null, toolCalls: calls };
  }
  return { content: text, toolCalls: [] };
}
