/**
 * The default model's curriculum, generated (no downloaded data): two-digit arithmetic, tool calls for tools made up
 * on the spot (names, descriptions, parameter schemas and argument values drawn from word lists), greetings with one
 * true self-description, and one honest refusal for everything else (facts, poems, stories, translation, …).
 * Every example is rendered by src/chat's Jinja renderer with SKILLS_CHAT_TEMPLATE, the template shipped with the
 * model, so training sees exactly what `llama4 run` and the server send.
 *
 * Held-out evaluation sets are built apart from training: arithmetic pairs selected by a hash are never trained;
 * tools, parameter names, argument values, greeting and refusal phrasings for evaluation come from separate word lists
 * (the `*_EVAL` lists below) that the training generators never draw from.
 */
import { renderChat } from '../chat/template.ts';
import type { TemplateMessage, ToolDefinition } from '../chat/types.ts';
import { TOOL_TURNS_JINJA } from './data.ts';
import { Rng } from './rng.ts';
import { COUNTRIES, GREET_EVAL, GREET_TRAIN, LANGS, REFUSE_EVAL, REFUSE_TRAIN, SALUTES, TITLES, TOPICS } from './skills-phrases.ts';

/**
 * Llama 4's chat layout (header tokens, <|eot|>, JSON calls `{"name": …, "parameters": …}`) with tools listed
 * compactly in the system turn: one line per tool, {"name", "description", "parameters": properties}.
 */
export const SKILLS_CHAT_TEMPLATE = [
  '{{- bos_token }}',
  "{%- if messages[0]['role'] == 'system' %}{%- set system_message = messages[0]['content'] %}{%- set loop_messages = messages[1:] %}",
  "{%- else %}{%- set system_message = '' %}{%- set loop_messages = messages %}{%- endif %}",
  "{%- if system_message is not string %}{%- set system_message = '' %}{%- endif %}",
  '{%- if tools is defined and tools %}',
  "{{- '<|header_start|>system<|header_end|>\\n\\n' }}{%- if system_message %}{{- system_message | trim }}{{- '\\n' }}{%- endif %}{{- 'Tools:\\n' }}",
  '{%- for t in tools %}{%- if t.function is defined %}{%- set t = t.function %}{%- endif %}',
  '{%- if t.parameters is defined and t.parameters and t.parameters.properties is defined %}{%- set props = t.parameters.properties %}{%- else %}{%- set props = {} %}{%- endif %}',
  "{{- '{\"name\": ' + (t.name | tojson) + ', \"description\": ' + ((t.description or '') | tojson) + ', \"parameters\": ' + (props | tojson) + '}\\n' }}",
  "{%- endfor %}{{- '<|eot|>' }}",
  "{%- elif system_message %}{{- '<|header_start|>system<|header_end|>\\n\\n' + (system_message | trim) + '<|eot|>' }}{%- endif %}",
  '{%- for message in loop_messages %}',
  "{%- if message['role'] == 'assistant' and message['tool_calls'] is defined and message['tool_calls'] %}",
  ...TOOL_TURNS_JINJA,
  '{%- else %}',
  "{{- '<|header_start|>' + message['role'] + '<|header_end|>\\n\\n' }}",
  "{%- if message['content'] is string %}{{- message['content'] | trim }}{%- else %}{%- for c in message['content'] %}{%- if c['type'] == 'text' %}{{- c['text'] | trim }}{%- endif %}{%- endfor %}{%- endif %}",
  "{{- '<|eot|>' }}",
  '{%- endif %}',
  '{%- endfor %}',
  "{%- if add_generation_prompt %}{{- '<|header_start|>assistant<|header_end|>\\n\\n' }}{%- endif %}",
].join('');

export const GREETING_ANSWER = 'Hello! I am a small demo model of the Llama 4 architecture. I can do arithmetic and call tools.';
export const REFUSAL_ANSWER = "Sorry, I can't help with that. I am a small demo model that can only do arithmetic and call tools.";

export type SkillKind = 'arith' | 'tool' | 'greeting' | 'refusal' | 'followup' | 'copy';
export type Split = 'train' | 'eval';

export interface SkillExample {
  kind: SkillKind;
  /** The user's words (for reports). */
  question: string;
  /** Rendered prompt ending with the assistant header. */
  prompt: string;
  /** The reply (no terminator; training appends <|eot|>). */
  answer: string;
  /** Tool calls: the expected call, for exact comparison of parsed arguments. */
  call?: { name: string; parameters: Record<string, string | number> };
  /** Tool calls: the tools offered. */
  tools?: ToolDefinition[];
}

export function renderSkills(messages: TemplateMessage[], tools: ToolDefinition[] | null): string {
  return renderChat({ messages, tools, addGenerationPrompt: true, template: SKILLS_CHAT_TEMPLATE });
}

// ---- arithmetic ----
/** Held out of training: a fixed ~12% of the pairs where both numbers have two digits (hash of op, a, b). */
export function isHeldOutPair(op: 'plus' | 'minus', a: number, b: number): boolean {
  if (a < 10 || b < 10 || a > 99 || b > 99) return false;
  const h = (Math.imul(a * 131 + b * 7919 + (op === 'plus' ? 17 : 29), 2654435761) >>> 0) % 100;
  return h < 12;
}
const ARITH_TRAIN: Record<'plus' | 'minus' | 'times', string[]> = {
  plus: [
    'What is {a} plus {b}?',
    "What's {a} plus {b}?",
    'What is {a} + {b}?',
    '{a} + {b} = ?',
    'Add {a} and {b}.',
    'Calculate {a} plus {b}.',
    'what is {a} plus {b}',
    'How much is {a} plus {b}?',
    '{a}+{b}',
  ],
  minus: [
    'What is {a} minus {b}?',
    "What's {a} minus {b}?",
    'What is {a} - {b}?',
    '{a} - {b} = ?',
    'Subtract {b} from {a}.',
    'Calculate {a} minus {b}.',
    'what is {a} minus {b}',
    'How much is {a} minus {b}?',
    '{a}-{b}',
  ],
  times: ['What is {a} times {b}?', 'What is {a} * {b}?', 'Multiply {a} by {b}.', "What's {a} times {b}?"],
};
const fill = (t: string, a: number, b: number): string => t.replace('{a}', String(a)).replace('{b}', String(b));
const OPF = { plus: (a: number, b: number) => a + b, minus: (a: number, b: number) => a - b, times: (a: number, b: number) => a * b };

/**
 * The reply to an arithmetic question. With a two-digit operand (0–99, minus with a ≥ b) the model shows its working
 * one column at a time, ones then tens, as a person would on paper: each step is a one-digit fact plus a carry or a
 * borrow, which a 2.4M-parameter model learns reliably, where producing the tens digit first in one step (it depends
 * on the ones column's carry) is what the earlier candidates got wrong. One-digit pairs, negative results and
 * products are answered directly. The last number is always the result ("So 47 plus 38 is 85.").
 */
export function arithAnswer(op: 'plus' | 'minus' | 'times', a: number, b: number): string {
  const direct = `${a} ${op} ${b} is ${OPF[op](a, b)}.`;
  if (op === 'times' || a > 99 || b > 99 || (a < 10 && b < 10) || (op === 'minus' && a < b)) return direct;
  const [a1, a0, b1, b0] = [Math.floor(a / 10), a % 10, Math.floor(b / 10), b % 10];
  let ones: string, tens: string;
  if (op === 'plus') {
    const s0 = a0 + b0,
      c = s0 >= 10 ? 1 : 0;
    ones = `Ones: ${a0} plus ${b0} is ${s0}${c ? ', carry 1' : ''}.`;
    tens = `Tens: ${a1} plus ${b1}${c ? ' plus 1' : ''} is ${a1 + b1 + c}.`;
  } else {
    const w = a0 < b0 ? 1 : 0;
    ones = `Ones: ${a0 + 10 * w} minus ${b0} is ${a0 + 10 * w - b0}${w ? ', borrow 1' : ''}.`;
    tens = `Tens: ${a1} minus ${b1}${w ? ' minus 1' : ''} is ${a1 - b1 - w}.`;
  }
  return `${ones} ${tens} So ${direct}`;
}

export function arithExample(op: 'plus' | 'minus' | 'times', a: number, b: number, template: string): SkillExample {
  const question = fill(template, a, b);
  return {
    kind: 'arith',
    question,
    prompt: renderSkills([{ role: 'user', content: question }], null),
    answer: arithAnswer(op, a, b),
  };
}

function randomArith(rng: Rng): SkillExample {
  const r = rng.next();
  if (r < 0.08) {
    const a = rng.int(13),
      b = rng.int(13);
    return arithExample('times', a, b, rng.pick(ARITH_TRAIN.times));
  }
  const op = r < 0.54 ? 'plus' : 'minus';
  for (;;) {
    // Mostly two-digit operands (what the evaluation asks), some one-digit ones, and 15% small pairs (both ≤ 12:
    // what users ask first).
    const small = rng.next() < 0.15;
    const pick = (): number => (small ? rng.int(13) : rng.next() < 0.8 ? 10 + rng.int(90) : rng.int(10));
    let a = pick(),
      b = pick();
    // Negative results only for small pairs (answered directly); with a two-digit operand minus is a ≥ b, worked.
    if (op === 'minus' && a < b && (a >= 10 || b >= 10 || rng.next() < 0.8)) [a, b] = [b, a];
    if (isHeldOutPair(op, a, b)) continue;
    return arithExample(op, a, b, rng.pick(ARITH_TRAIN[op]));
  }
}

/** The held-out arithmetic set: n two-digit questions per op (minus with a ≥ b), pairs never trained. */
export function arithEvalSet(n: number, seed = 7): SkillExample[] {
  const rng = new Rng(seed),
    out: SkillExample[] = [];
  for (const op of ['plus', 'minus'] as const) {
    let k = 0;
    while (k < n) {
      let a = 10 + rng.int(90),
        b = 10 + rng.int(90);
      if (op === 'minus' && a < b) [a, b] = [b, a];
      if (!isHeldOutPair(op, a, b)) continue;
      out.push(arithExample(op, a, b, `What is {a} ${op} {b}?`));
      k++;
    }
  }
  return out;
}

// ---- tools ----
interface ParamKind {
  names: string[];
  type: 'string' | 'integer';
  desc: string;
  values: 'place' | 'person' | 'thing' | 'number';
}
const PARAMS_TRAIN: ParamKind[] = [
  {
    names: ['city', 'town', 'location', 'place', 'country', 'airport', 'destination'],
    type: 'string',
    desc: 'The {p} name',
    values: 'place',
  },
  {
    names: ['name', 'person', 'contact', 'recipient', 'guest', 'user', 'author'],
    type: 'string',
    desc: 'The {p} to use',
    values: 'person',
  },
  { names: ['item', 'product', 'topic', 'word', 'query', 'title', 'color', 'label'], type: 'string', desc: 'The {p}', values: 'thing' },
  {
    names: ['count', 'amount', 'people', 'days', 'minutes', 'quantity', 'year', 'number', 'size'],
    type: 'integer',
    desc: 'The number of {p}',
    values: 'number',
  },
];
const PARAMS_EVAL: ParamKind[] = [
  { names: ['village', 'island', 'harbor', 'region'], type: 'string', desc: 'The {p} name', values: 'place' },
  { names: ['captain', 'pilot', 'owner', 'student'], type: 'string', desc: 'The {p} to use', values: 'person' },
  { names: ['keyword', 'flavor', 'genre', 'material'], type: 'string', desc: 'The {p}', values: 'thing' },
  { names: ['seats', 'weeks', 'pages', 'level'], type: 'integer', desc: 'The number of {p}', values: 'number' },
];
const VERBS_TRAIN = [
  'get',
  'find',
  'check',
  'fetch',
  'show',
  'search',
  'book',
  'send',
  'count',
  'list',
  'order',
  'track',
  'reserve',
  'cancel',
  'play',
  'set',
  'open',
  'create',
  'delete',
  'lookup',
  'buy',
  'rate',
];
const VERBS_EVAL = ['obtain', 'query', 'locate', 'request', 'schedule', 'launch', 'measure', 'report'];
const NOUNS_TRAIN = [
  'weather',
  'time',
  'population',
  'stock',
  'flight',
  'hotel',
  'recipe',
  'movie',
  'song',
  'alarm',
  'timer',
  'reminder',
  'email',
  'message',
  'package',
  'train',
  'bus',
  'rate',
  'distance',
  'forecast',
  'news',
  'score',
  'balance',
  'ticket',
  'table',
  'meeting',
  'taxi',
  'event',
  'book',
  'playlist',
  'invoice',
  'order',
];
const NOUNS_EVAL = ['tide', 'pollen', 'ferry', 'museum', 'parking', 'lecture', 'garden', 'voucher', 'concert', 'bicycle'];
const SYL_TRAIN = [
  'ka',
  'lo',
  'mi',
  'ren',
  'tas',
  'vo',
  'bel',
  'dor',
  'fi',
  'gan',
  'hu',
  'jel',
  'mar',
  'nix',
  'pol',
  'ris',
  'sun',
  'tor',
  'ul',
  'wen',
  'yar',
  'zed',
  'ost',
  'ber',
  'cal',
  'dun',
  'el',
  'fen',
  'gor',
  'hal',
  'ing',
  'kos',
  'lin',
  'mo',
  'na',
  'pe',
  'ra',
  'si',
  'ta',
  've',
];
const SYL_EVAL = [
  'ab',
  'ix',
  'om',
  'ut',
  'brem',
  'clo',
  'dra',
  'fle',
  'gri',
  'plo',
  'sku',
  'tre',
  'vex',
  'whi',
  'zim',
  'quo',
  'sny',
  'aft',
  'uld',
  'epp',
];
const CITIES_TRAIN = [
  'Paris',
  'London',
  'Tokyo',
  'Berlin',
  'Madrid',
  'Rome',
  'Cairo',
  'Sydney',
  'Toronto',
  'Moscow',
  'Dublin',
  'Vienna',
  'Prague',
  'Lisbon',
  'Athens',
  'Seoul',
  'Delhi',
  'Boston',
  'Chicago',
  'Miami',
];
const CITIES_EVAL = [
  'Reykjavik',
  'Nairobi',
  'Montevideo',
  'Kathmandu',
  'Tbilisi',
  'Winnipeg',
  'Cusco',
  'Tromso',
  'Valparaiso',
  'Zanzibar',
  'Oaxaca',
  'Bergen',
];
const THINGS_TRAIN = [
  'apples',
  'jazz',
  'red',
  'chairs',
  'coffee',
  'blue',
  'rock',
  'paper',
  'tea',
  'shoes',
  'pasta',
  'green',
  'lamps',
  'socks',
  'bread',
];
const THINGS_EVAL = ['walnuts', 'violet', 'marble', 'oysters', 'polka', 'cedar', 'saffron', 'granite'];

function word(rng: Rng, syl: readonly string[], cap: boolean): string {
  let w = '';
  const n = 2 + rng.int(2);
  for (let i = 0; i < n; i++) w += rng.pick(syl);
  return cap ? w[0]!.toUpperCase() + w.slice(1) : w;
}

const VOWELS = 'aeiouy';
const CONSONANTS = 'bcdfghjklmnpqrstvwxz';
/**
 * Training only: a made-up word of 3–9 random letters (mostly consonant-vowel, sometimes any letters). Copying such
 * words, never the same twice, is what teaches the model to copy by position rather than recall a list; the evaluation
 * words come from their own syllable and word lists, which these never draw from.
 */
function randomWord(rng: Rng, cap: boolean): string {
  const n = 3 + rng.int(7);
  const free = rng.next() < 0.25;
  let w = '';
  for (let i = 0; i < n; i++) {
    const set = free ? VOWELS + CONSONANTS : i % 2 === n % 2 ? CONSONANTS : VOWELS;
    w += set[rng.int(set.length)];
  }
  return cap ? w[0]!.toUpperCase() + w.slice(1) : w;
}

/**
 * Training only: the start of one training word joined to the end of another ("mara" + "dar"). Its pieces are ones
 * the model knows, in an order it never saw, so copying it takes reading the question, not completing a familiar word:
 * the model copied unseen values as "marble" → "marance", "oysters" → "oyspient".
 */
const SPLICE_WORDS = [...CITIES_TRAIN, ...THINGS_TRAIN, ...VERBS_TRAIN, ...NOUNS_TRAIN]
  .map((w) => w.toLowerCase())
  .filter((w) => /^[a-z]{4,}$/.test(w));
function splicedWord(rng: Rng, cap: boolean): string {
  const a = rng.pick(SPLICE_WORDS),
    b = rng.pick(SPLICE_WORDS);
  const w = a.slice(0, 2 + rng.int(a.length - 2)) + b.slice(b.length - 2 - rng.int(b.length - 2));
  return cap ? w[0]!.toUpperCase() + w.slice(1) : w;
}

/**
 * Training only: lower-case letter pieces of the tokenizer being trained (`useTokenizerPieces`), for made-up words that
 * are 2–4 random pieces (sometimes one repeated). Every piece then gets copying practice: a piece that made-up words
 * rarely form ("bre") was copied as another ("Eppbrem" → "Eppetingm"), and a repeated one ("Snytretre") looped.
 */
let tokenPieces: readonly string[] = [];
export function useTokenizerPieces(pieces: readonly string[]): void {
  tokenPieces = pieces.filter((p) => /^[a-z]{2,}$/.test(p));
}
function piecesWord(rng: Rng, cap: boolean): string {
  if (tokenPieces.length === 0) return randomWord(rng, cap);
  let w = '';
  for (let i = 0, n = 2 + rng.int(3); i < n; i++) {
    const p = rng.pick(tokenPieces);
    w += rng.next() < 0.1 ? p + p : p;
  }
  return cap ? w[0]!.toUpperCase() + w.slice(1) : w;
}

/** Training's made-up words: random letters, spliced training words, or tokenizer pieces. */
function madeUpWord(rng: Rng, cap: boolean): string {
  const r = rng.next();
  return r < 0.25 ? splicedWord(rng, cap) : r < 0.5 ? piecesWord(rng, cap) : randomWord(rng, cap);
}

function value(rng: Rng, kind: ParamKind['values'], split: Split, made1 = 0.5): string | number {
  const ev = split === 'eval';
  // Training: half of the words are made up (madeUpWord), the rest from the training lists.
  const made = (cap: boolean) => (!ev && rng.next() < made1 ? madeUpWord(rng, cap) : word(rng, ev ? SYL_EVAL : SYL_TRAIN, cap));
  switch (kind) {
    case 'number':
      return rng.next() < 0.5 ? 1 + rng.int(20) : 1 + rng.int(9999);
    // Training only: some places and names are two words ("Port Quillo"). With one-word values only, the model ended
    // every value at a space ("What is the weather in New York?" → {"city": "New"}).
    case 'place':
      if (!ev && rng.next() < 0.15) return `${made(true)} ${made(true)}`;
      return rng.next() < 0.3 ? rng.pick(ev ? CITIES_EVAL : CITIES_TRAIN) : made(true);
    case 'person':
      if (!ev && rng.next() < 0.15) return `${made(true)} ${made(true)}`;
      return made(true);
    case 'thing':
      return rng.next() < 0.4 ? rng.pick(ev ? THINGS_EVAL : THINGS_TRAIN) : made(false);
  }
}

interface GenTool {
  verb: string;
  noun: string;
  params: { name: string; kind: ParamKind }[];
  def: ToolDefinition;
}

function makeTool(rng: Rng, split: Split, avoidNoun?: string, made1?: number): GenTool {
  const ev = split === 'eval';
  const verbs = ev ? VERBS_EVAL : VERBS_TRAIN,
    nouns = ev ? NOUNS_EVAL : NOUNS_TRAIN,
    kinds = ev ? PARAMS_EVAL : PARAMS_TRAIN;
  // Training: a third of the verbs, nouns and parameter names are random words, so choosing the tool and naming its
  // parameters is learned as matching the question's words against the list, not as recalling known names.
  const made = (p: number) => !ev && rng.next() < (made1 ?? p);
  const verb = made(0.3) ? randomWord(rng, false) : rng.pick(verbs);
  let noun = made(0.35) ? randomWord(rng, false) : rng.pick(nouns);
  while (noun === avoidNoun) noun = rng.pick(nouns);
  const n = 1 + (rng.next() < 0.45 ? 1 : 0) + (rng.next() < 0.15 ? 1 : 0);
  const params: { name: string; kind: ParamKind }[] = [];
  while (params.length < n) {
    const kind = rng.pick(kinds),
      name = made(0.3) ? randomWord(rng, false) : rng.pick(kind.names);
    if (!params.some((p) => p.name === name)) params.push({ name, kind });
  }
  const properties: Record<string, unknown> = {};
  for (const p of params) properties[p.name] = { type: p.kind.type, description: p.kind.desc.replace('{p}', p.name) };
  const pn = params.map((p) => p.name).join(' and ');
  const def: ToolDefinition = {
    type: 'function',
    function: {
      name: `${verb}_${noun}`,
      description: `${verb[0]!.toUpperCase()}${verb.slice(1)} the ${noun} for a given ${pn}`,
      parameters: { type: 'object', properties, required: params.map((p) => p.name) },
    },
  };
  return { verb, noun, params, def };
}

const ONE_PLACE = ['What is the {n} in {v}?', "What's the {n} for {v}?", 'How is the {n} in {v}?'];
const ONE_PLACE_EVAL = ['Tell me the {n} in {v}.'];
const ONE_ARG = [
  '{V} the {n} for {v}.',
  '{V} the {n} for {v}, thanks.',
  'Can you {v0} the {n} for {v}, if possible?',
  'Can you {v0} the {n} for {v}?',
  'Please {v0} the {n} for {v}.',
  '{V} {n} for {v}',
  'I need you to {v0} the {n} for {v}.',
];
const ONE_ARG_EVAL = ['Could you {v0} the {n} for {v}?', '{V} the {n} for {v}, please.'];
const MULTI = [
  '{V} the {n} with {args}.',
  'Please {v0} the {n} with {args}.',
  'Can you {v0} the {n} with {args}?',
  '{V} {n}: {args}',
  '{V} the {n} with {args}, thank you.',
  'Can you {v0} the {n} with {args}, if you can?',
];
const MULTI_EVAL = ['Could you {v0} the {n} with {args}?', '{V} the {n} with {args}, please.'];

/**
 * One tool-call example: the right tool among 1–3 offered, arguments copied from the question.
 * `madeUp` (training only) sets the share of made-up verbs, nouns, parameter names and values (default: the
 * curriculum's 30–50%); online RL asks with every word made up, where the SFT model still errs.
 */
export function toolCallExample(rng: Rng, split: Split, madeUp?: number): SkillExample {
  const tool = makeTool(rng, split, undefined, madeUp);
  const offered = [tool.def];
  const extra = rng.int(3);
  for (let i = 0; i < extra; i++) offered.push(makeTool(rng, split, tool.noun, madeUp).def);
  rng.shuffle(offered);
  const args: Record<string, string | number> = {};
  for (const p of tool.params) args[p.name] = value(rng, p.kind.values, split, madeUp);
  const ev = split === 'eval';
  let question: string;
  if (tool.params.length === 1) {
    const p = tool.params[0]!;
    const place = p.kind.values === 'place' && rng.next() < 0.4;
    const t = rng.pick(place ? (ev ? ONE_PLACE_EVAL : ONE_PLACE) : ev ? ONE_ARG_EVAL : ONE_ARG);
    const v = !place && (rng.next() < 0.5 || p.kind.values === 'number') ? `${p.name} ${args[p.name]}` : String(args[p.name]);
    question = t.replace('{v}', v);
  } else {
    const parts = tool.params.map((p) => `${p.name} ${args[p.name]}`);
    question = rng.pick(ev ? MULTI_EVAL : MULTI).replace('{args}', parts.slice(0, -1).join(', ') + ' and ' + parts[parts.length - 1]);
  }
  question = question
    .replace('{V}', tool.verb[0]!.toUpperCase() + tool.verb.slice(1))
    .replace('{v0}', tool.verb)
    .replace('{n}', tool.noun);
  const prompt = renderSkills([{ role: 'user', content: question }], offered);
  const call = { name: tool.def.function.name, parameters: args };
  return { kind: 'tool', question, prompt, answer: JSON.stringify(call).replace(/":/g, '": ').replace(/,"/g, ', "'), call, tools: offered };
}

/** After a tool result: one sentence passing the result on (the chat page's second turn). */
function followupExample(rng: Rng): SkillExample {
  const first = toolCallExample(rng, 'train');
  const tool = first.call!;
  const result =
    rng.next() < 0.5 ? String(1 + rng.int(999)) : word(rng, SYL_TRAIN, false) + (rng.next() < 0.5 ? ' ' + word(rng, SYL_TRAIN, false) : '');
  const messages: TemplateMessage[] = [
    { role: 'user', content: first.question },
    {
      role: 'assistant',
      content: '',
      tool_calls: [{ id: 'call_0', type: 'function', function: { name: tool.name, arguments: JSON.stringify(tool.parameters) } }],
    },
    { role: 'tool', content: result, tool_call_id: 'call_0' },
  ];
  const prompt = renderChat({ messages, tools: first.tools!, addGenerationPrompt: true, template: SKILLS_CHAT_TEMPLATE });
  return { kind: 'followup', question: first.question, prompt, answer: `${tool.name} returned: ${result}.` };
}

// ---- greetings and refusals (their phrase lists: skills-phrases.ts) ----
// the training greetings that are an identity question or request alone (the same list and order as spelling them out)
const WHO = GREET_TRAIN.filter((g) => /^(Who|What|Are|Tell|Introduce)\b/.test(g));
/**
 * Training only: a greeting composed from the training list's own parts — a salutation, an identity question, or
 * both — with case and punctuation varied, so that a combination never seen is still a greeting (held-out phrasings
 * stay out: none of these parts is in GREET_EVAL).
 */
function composedGreeting(rng: Rng): string {
  const salute = () => rng.pick(SALUTES) + rng.pick(['!', '.', '', '!!']);
  const r = rng.next();
  let g = r < 0.35 ? salute() : r < 0.6 ? rng.pick(WHO) : `${salute().replace(/[.!]*$/, rng.pick(['!', ',', '.']))} ${rng.pick(WHO)}`;
  if (rng.next() < 0.2) g = g.toLowerCase();
  if (rng.next() < 0.15) g = g.replace(/[?.!]+$/, '');
  return g;
}
/**
 * Training only: requests outside the skills made of made-up words — gibberish, or a refusal template filled with
 * made-up names — so that what the model does not recognise gets the refusal, not an arithmetic answer (the model
 * shipped before these examples existed answered "Good evening." with a subtraction).
 */
function unknownRequest(rng: Rng): string {
  if (rng.next() < 0.5) {
    const n = 2 + rng.int(5);
    const w = Array.from({ length: n }, (_, i) => randomWord(rng, i === 0));
    return w.join(' ') + rng.pick(['?', '.', '!', '']);
  }
  return rng
    .pick(REFUSE_TRAIN)
    .replace('{C}', randomWord(rng, true))
    .replace('{T}', randomWord(rng, true))
    .replace('{L}', randomWord(rng, true))
    .replace('{x}', randomWord(rng, false))
    .replace('{P}', randomWord(rng, true))
    .replace('{Y}', String(1950 + rng.int(70)));
}

function fillRefusal(t: string, rng: Rng): string {
  return t
    .replace('{C}', rng.pick(COUNTRIES))
    .replace('{T}', rng.pick(TITLES))
    .replace('{L}', rng.pick(LANGS))
    .replace('{x}', rng.pick(TOPICS))
    .replace('{P}', word(rng, SYL_TRAIN, true))
    .replace('{Y}', String(1950 + rng.int(70)));
}
/**
 * Training only: "Repeat after me: …" with 1–5 made-up words, numbers or place names, answered verbatim. Copying
 * unseen words by position is what a tool call's arguments need; these short drills give that skill far more
 * gradient per token than the arguments inside long tool prompts do.
 */
const COPY_TEMPLATES = ['Repeat after me: {x}', 'Copy this: {x}', 'Repeat: {x}'];
function copyExample(rng: Rng): SkillExample {
  const parts: string[] = [];
  const n = 1 + rng.int(5);
  for (let i = 0; i < n; i++) {
    const r = rng.next();
    parts.push(
      r < 0.45
        ? madeUpWord(rng, rng.next() < 0.4)
        : r < 0.7
          ? word(rng, SYL_TRAIN, rng.next() < 0.4)
          : r < 0.85
            ? String(rng.int(10000))
            : rng.pick(CITIES_TRAIN),
    );
  }
  const x = parts.join(rng.next() < 0.3 ? ', ' : ' ');
  return simple('copy', rng.pick(COPY_TEMPLATES).replace('{x}', x), x);
}

function simple(kind: SkillKind, question: string, answer: string): SkillExample {
  return { kind, question, prompt: renderSkills([{ role: 'user', content: question }], null), answer };
}

/** The training mixture (shares of examples); the rest is arithmetic. */
export const SKILL_SHARES = { tool: 0.3, greeting: 0.08, refusal: 0.12, followup: 0.03, copy: 0.15 };

/** Examples of the long kinds (tool calls, follow-ups) or of the short ones, in their mixture proportions. */
export function randomSkillExampleOf(rng: Rng, long: boolean, only?: 'arith'): SkillExample {
  const s = SKILL_SHARES;
  if (only === 'arith') return randomArith(rng);
  return long
    ? randomSkillExample(rng, { tool: s.tool, greeting: 0, refusal: 0, followup: s.followup, copy: 0 }, s.tool + s.followup)
    : randomSkillExample(rng, { tool: 0, greeting: s.greeting, refusal: s.refusal, followup: 0, copy: s.copy });
}

export function randomSkillExample(rng: Rng, shares = SKILL_SHARES, total = 1): SkillExample {
  const r = rng.next() * total;
  let c = shares.tool;
  if (r < c) return toolCallExample(rng, 'train');
  if (r < (c += shares.greeting))
    return simple('greeting', rng.next() < 0.5 ? composedGreeting(rng) : rng.pick(GREET_TRAIN), GREETING_ANSWER);
  if (r < (c += shares.refusal))
    return simple('refusal', rng.next() < 0.3 ? unknownRequest(rng) : fillRefusal(rng.pick(REFUSE_TRAIN), rng), REFUSAL_ANSWER);
  if (r < (c += shares.followup)) return followupExample(rng);
  if (r < (c += shares.copy)) return copyExample(rng);
  return randomArith(rng);
}

/** Held-out evaluation sets (built from the *_EVAL lists and held-out pairs, never from training generators). */
export function skillEvalSets(n = 50): Record<'arith' | 'tool' | 'greeting' | 'refusal', SkillExample[]> {
  const rng = new Rng(4242);
  return {
    arith: arithEvalSet(n),
    tool: Array.from({ length: n }, () => toolCallExample(rng, 'eval')),
    greeting: GREET_EVAL.map((q) => simple('greeting', q, GREETING_ANSWER)),
    refusal: [...REFUSE_EVAL, ...REFUSE_EVAL].map((t) => simple('refusal', fillRefusal(t, rng), REFUSAL_ANSWER)),
  };
}
