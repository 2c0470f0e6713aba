/**
 * parseToolCalls and its streaming form: every case of ../shared/chat/toolcall-cases.json, more cases of the same
 * kinds, streaming with several chunkings (same calls as the one-shot parse), and random junk that must never
 * throw or lose text.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { createToolCallStreamParser, parseToolCalls, type ToolCallParse } from '../src/chat/index.ts';
import { parseToolCalls as rootParseToolCalls } from '../src/index.ts';

const FILE = resolve(process.cwd(), '../shared/chat/toolcall-cases.json');
const HAVE = existsSync(FILE);
const SKIP = HAVE ? false : `SKIPPED: ${FILE} is absent`;
if (!HAVE) console.warn(`\n*** ${SKIP} ***\n`);

interface Case {
  id: string;
  desc: string;
  raw: string;
  expected: { content: string | null; tool_calls: { name: string; arguments: Record<string, unknown> }[] };
}
const cases: Case[] = HAVE ? (JSON.parse(readFileSync(FILE, 'utf8')) as Case[]) : [];

/** Feeds `text` in chunks of the given sizes (cycled); returns the concatenated content and the calls. */
function stream(text: string, sizes: number[]): { content: string; calls: unknown[] } {
  const p = createToolCallStreamParser();
  let content = '';
  let calls: unknown[] = [];
  const chars = [...text];
  let k = 0;
  for (let i = 0; i < chars.length; k++) {
    const n = sizes[k % sizes.length]!;
    for (const e of p.push(chars.slice(i, i + n).join(''))) {
      if (e.type === 'content') content += e.text;
      else calls = e.calls;
    }
    i += n;
  }
  for (const e of p.end()) {
    if (e.type === 'content') content += e.text;
    else calls = e.calls;
  }
  return { content, calls };
}

const CHUNKINGS = [[1], [2, 3], [5], [7, 1, 13], [1 << 20]];

function check(raw: string, expected: { content: string | null; tool_calls: unknown[] }, label: string): void {
  const r: ToolCallParse = parseToolCalls(raw);
  assert.deepEqual({ content: r.content, tool_calls: r.toolCalls }, expected, label);
  for (const sizes of CHUNKINGS) {
    const s = stream(raw, sizes);
    assert.deepEqual(s.calls, expected.tool_calls, `${label} streamed in chunks ${sizes}`);
    if (expected.tool_calls.length === 0) {
      // No calls: the streamed content is the whole text (markers removed), nothing lost.
      assert.equal(s.content, expected.content ?? '', `${label} streamed content`);
    } else {
      assert.equal(s.content.trim(), expected.content ?? '', `${label} streamed prose`);
    }
  }
}

test('every case of toolcall-cases.json, one-shot and streamed', { skip: SKIP }, () => {
  assert.equal(cases.length, 31);
  for (const c of cases) check(c.raw, c.expected, `${c.id} ${c.desc}`);
  assert.equal(rootParseToolCalls, parseToolCalls, 'parseToolCalls is exported from the package root');
});

const call = (name: string, args: Record<string, unknown> = {}): { name: string; arguments: Record<string, unknown> } => ({
  name,
  arguments: args,
});

test('more cases of the same kinds', () => {
  const more: [string, string | null, ReturnType<typeof call>[]][] = [
    // prose before the call
    ['Let me check the weather.\n\n[get_weather(city="Paris")]', 'Let me check the weather.', [call('get_weather', { city: 'Paris' })]],
    [
      'Let me check the weather: [get_weather(location="New York")]<|eot|>',
      'Let me check the weather:',
      [call('get_weather', { location: 'New York' })],
    ],
    [
      'I\'ll search. <|python_start|>{"name": "search", "parameters": {"q": "x"}}<|python_end|>',
      "I'll search.",
      [call('search', { q: 'x' })],
    ],
    ['Sure! {"type": "function", "name": "f", "parameters": {"a": [1, {"b": null}]}}', 'Sure!', [call('f', { a: [1, { b: null }] })]],
    ['Options [a] or {b}: [f(x=1)]', 'Options [a] or {b}:', [call('f', { x: 1 })]],
    // function tags
    ['<function=trending_songs>{"n": 10}</function><|eot|>', null, [call('trending_songs', { n: 10 })]],
    ['<function=a>{}</function>\n<function=b>{"x": "</function>"}</function>', null, [call('a'), call('b', { x: '</function>' })]],
    ['Here: <function=now></function>', 'Here:', [call('now')]],
    // strings full of brackets, quotes and escapes
    [
      '[f(s="say \\"hi\\" [now] (ok), {x}", t=\'it\\\'s\', u="tab\\there", v="\\u00e9\\N")]',
      null,
      [call('f', { s: 'say "hi" [now] (ok), {x}', t: "it's", u: 'tab\there', v: 'é\\N' })],
    ],
    ['[f(p=r"C:\\dir\\n", q="""tri"ple""", e="")]', null, [call('f', { p: 'C:\\dir\\n', q: 'tri"ple', e: '' })]],
    ['{"name": "exec", "parameters": {"code": "a[\\"}\\"] = \'{\'; // ]"}}', null, [call('exec', { code: 'a["}"] = \'{\'; // ]' })]],
    // literals
    [
      "[f(a={'k': [1, (2, 3)], 'n': None}, b=True, c=-0.5, d=1e3, e=[])]",
      null,
      [call('f', { a: { k: [1, [2, 3]], n: null }, b: true, c: -0.5, d: 1000, e: [] })],
    ],
    ['{"name": "f", "parameters": {"a": True, "b": None}}', null, [call('f', { a: true, b: null })]],
    ["{'name': 'f', 'parameters': {'a': 'x'}}", null, [call('f', { a: 'x' })]],
    // several calls, separators, wrappers
    ['[a(), b(x=1), c(y=[1, 2], z={"k": "v"})]', null, [call('a'), call('b', { x: 1 }), call('c', { y: [1, 2], z: { k: 'v' } })]],
    ['{"name": "a", "parameters": {}};\n{"name": "b", "arguments": "{\\"q\\": 2}"}', null, [call('a'), call('b', { q: 2 })]],
    ['{"type": "function", "function": {"name": "f", "arguments": {"a": 1}}}', null, [call('f', { a: 1 })]],
    [
      '<|python_start|>[f(a=1)]<|python_end|><|python_start|>[g(b=2)]<|python_end|><|eom|>',
      null,
      [call('f', { a: 1 }), call('g', { b: 2 })],
    ],
    ['```json\n{"name": "f", "parameters": {"a": 1}}\n```', null, [call('f', { a: 1 })]],
    ['  \n[get_weather(city = "Paris" , unit = \'c\',)]\n<|eot|>', null, [call('get_weather', { city: 'Paris', unit: 'c' })]],
    ['[brave_search.call(query="x")]', null, [call('brave_search.call', { query: 'x' })]],
    // malformed: stays content, markers removed, text kept
    ['[f(a=g(1))]', '[f(a=g(1))]', []],
    ['[f(a=1), f(a=1, a=2)]', '[f(a=1), f(a=1, a=2)]', []],
    ['[f(a=1)] and then some prose', '[f(a=1)] and then some prose', []],
    ['[f(a == 1)]', '[f(a == 1)]', []],
    ['[f(a=1)', '[f(a=1)', []],
    ['[1, 2, 3]', '[1, 2, 3]', []],
    ['{"name": "f", "parameters": [1]}', '{"name": "f", "parameters": [1]}', []],
    ['{"name": "f", "parameters": {}, "extra": 1}', '{"name": "f", "parameters": {}, "extra": 1}', []],
    ['{"name": "Alice"}', '{"name": "Alice"}', []],
    ['<function=f>{"a": 1}', '<function=f>{"a": 1}', []],
    ['<|python_start|>print("hello")<|python_end|>', 'print("hello")', []],
    ['Hello world<|eot|>', 'Hello world', []],
    ['', '', []],
  ];
  for (const [raw, content, calls] of more) check(raw, { content, tool_calls: calls }, JSON.stringify(raw));
});

test('never throws, never loses text, bounded work on junk', () => {
  let seed = 7;
  const rnd = (): number => (seed = (Math.imul(seed, 1103515245) + 12345) >>> 0) / 4294967296;
  const alphabet = [
    '[',
    ']',
    '(',
    ')',
    '{',
    '}',
    '"',
    "'",
    '\\',
    ',',
    '=',
    ':',
    ';',
    ' ',
    '\n',
    'f',
    'x',
    '1',
    'True',
    '<|python_start|>',
    '<|python_end|>',
    '<function=',
    '</function>',
    '```',
    'é',
    '🚀',
  ];
  for (let n = 0; n < 400; n++) {
    let s = '';
    const len = Math.floor(rnd() * 40);
    for (let i = 0; i < len; i++) s += alphabet[Math.floor(rnd() * alphabet.length)]!;
    const r = parseToolCalls(s);
    assert.ok(r.content === null || typeof r.content === 'string');
    if (r.toolCalls.length === 0) assert.equal(r.content, s.replace(/<\|python_(start|end)\|>/g, ''), JSON.stringify(s));
    const st = stream(s, [1 + (n % 4)]);
    assert.deepEqual(st.calls, r.toolCalls, `stream: ${JSON.stringify(s)}`);
  }
  const t0 = performance.now();
  for (const s of [
    '{'.repeat(100000),
    '['.repeat(100000),
    '[f(a='.repeat(30000),
    '"'.repeat(100000),
    '[f(a=' + '['.repeat(100000),
    '{"a": '.repeat(3000),
    '[{'.repeat(50000),
  ]) {
    const r = parseToolCalls(s);
    assert.equal(r.content, s);
  }
  // Prose with 3,000 brackets before the call still finds it.
  const prose = Array.from({ length: 1500 }, (_, i) => `See [link ${i}](http://x/${i}) and {note ${i}}.`).join(' ');
  assert.deepEqual(parseToolCalls(prose + '\n[get_weather(city="Paris")]').toolCalls, [call('get_weather', { city: 'Paris' })]);
  assert.ok(performance.now() - t0 < 10000, 'pathological inputs parse quickly');
  assert.deepEqual(parseToolCalls(undefined as unknown as string), { content: null, toolCalls: [] });
});
