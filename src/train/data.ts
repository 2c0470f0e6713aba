/**
 * Training data the project generates itself: chat-format arithmetic, simple facts, greetings and tool calls in
 * Llama 4's format, rendered exactly as the shipped chat template renders them (CHAT_TEMPLATE below), plus
 * plain-text packing for pretraining. Everything is deterministic given an Rng.
 */
import {
  renderChat as renderChatTemplate,
  toTemplateMessages,
  type ChatMessage as SharedChatMessage,
  type ToolDefinition,
} from '../chat/index.ts';
import type { Rng } from './rng.ts';

export interface ToolSpec {
  name: string;
  description: string;
  params: Record<string, { type: string; description: string }>;
}
/** The project's one message type (src/chat/types.ts), text only: training chats are rendered from strings. */
export type ChatMessage = SharedChatMessage & { content: string };

/** An HF-style tool object as OpenAI clients send it (and the chat template serialises with tojson(indent=4)). */
export function toolObject(t: ToolSpec): Record<string, unknown> {
  return {
    type: 'function',
    function: {
      name: t.name,
      description: t.description,
      parameters: { type: 'object', properties: t.params, required: Object.keys(t.params) },
    },
  };
}

/**
 * Llama 4's layout (spec §5): BOS, then `<|header_start|>{role}<|header_end|>\n\n{content}<|eot|>` per message; tools
 * go into the first user message with the HF template's JSON-call instructions; assistant tool calls render as
 * `{"name": …, "parameters": …}` after `<|python_start|>…<|python_end|>` like the HF template.
 */
/**
 * Jinja for the body of an assistant turn with tool calls (JSON `{"name": …, "parameters": …}`, as the HF template
 * renders them) and the `elif` for tool-result turns; shared by CHAT_TEMPLATE and the skills model's template.
 */
export const TOOL_TURNS_JINJA = [
  "{{- '<|header_start|>assistant<|header_end|>\\n\\n' }}",
  "{%- for tc in message['tool_calls'] %}{%- if tc['function'] is defined %}{%- set tc = tc['function'] %}{%- endif %}",
  "{{- '{\"name\": \"' + tc['name'] + '\", \"parameters\": ' }}{%- if tc['arguments'] is string %}{{- tc['arguments'] }}{%- else %}{{- tc['arguments'] | tojson }}{%- endif %}{{- '}' }}",
  "{%- endfor %}{{- '<|eot|>' }}",
  "{%- elif message['role'] == 'tool' or message['role'] == 'ipython' %}",
  "{{- '<|header_start|>ipython<|header_end|>\\n\\n' }}{%- if message['content'] is string %}{{- message['content'] }}{%- else %}{{- message['content'] | tojson }}{%- endif %}{{- '<|eot|>' }}",
];

export const CHAT_TEMPLATE = [
  '{{- bos_token }}',
  '{%- if custom_tools is defined and custom_tools %}{%- set tools = custom_tools %}{%- endif %}',
  '{%- if tools is not defined or not tools %}{%- set tools = none %}{%- endif %}',
  "{%- if messages[0]['role'] == 'system' %}",
  "{%- if messages[0]['content'] is string %}{%- set system_message = messages[0]['content']|trim %}{%- else %}{%- set system_message = messages[0]['content'][0]['text']|trim %}{%- endif %}",
  '{%- set loop_messages = messages[1:] %}',
  "{{- '<|header_start|>system<|header_end|>\\n\\n' }}{%- if tools is not none %}{{- 'Environment: ipython\\n' }}{%- endif %}{{- system_message }}{{- '<|eot|>' }}",
  '{%- else %}{%- set loop_messages = messages %}{%- endif %}',
  '{%- set ns = namespace(tools_done=false) %}',
  '{%- for message in loop_messages %}',
  "{%- if message['role'] == 'user' and tools is not none and not ns.tools_done %}",
  '{%- set ns.tools_done = true %}',
  "{{- '<|header_start|>user<|header_end|>\\n\\n' }}",
  "{{- 'Given the following functions, please respond with a JSON for a function call with its proper arguments that best answers the given prompt.\\n\\n' }}",
  '{{- \'Respond in the format {"name": function name, "parameters": dictionary of argument name and its value}.\' }}',
  "{{- 'Do not use variables.\\n\\n' }}",
  "{%- for t in tools %}{{- t | tojson(indent=4) }}{{- '\\n\\n' }}{%- endfor %}",
  "{%- if message['content'] is string %}{{- message['content'] | trim }}{%- else %}{%- for c in message['content'] %}{%- if c['type'] == 'text' %}{{- c['text'] | trim }}{%- endif %}{%- endfor %}{%- endif %}",
  "{{- '<|eot|>' }}",
  "{%- elif message['role'] == 'assistant' and message['tool_calls'] is defined and message['tool_calls'] %}",
  ...TOOL_TURNS_JINJA,
  '{%- else %}',
  "{{- '<|header_start|>' + message['role'] + '<|header_end|>\\n\\n' }}",
  "{%- if message['content'] is string %}{{- message['content'] }}{%- else %}{%- for c in message['content'] %}{%- if c['type'] == 'image' %}{{- '<|image|>' }}{%- elif c['type'] == 'text' %}{{- c['text'] }}{%- endif %}{%- endfor %}{%- endif %}",
  "{{- '<|eot|>' }}",
  '{%- endif %}',
  '{%- endfor %}',
  "{%- if add_generation_prompt %}{{- '<|header_start|>assistant<|header_end|>\\n\\n' }}{%- endif %}",
].join('');

/** The prompt text for `messages`: CHAT_TEMPLATE rendered by src/chat's Jinja renderer (what the model ships with). */
export function renderChat(messages: readonly ChatMessage[], tools: readonly ToolSpec[] | null, addGenerationPrompt: boolean): string {
  return renderChatTemplate({
    messages: toTemplateMessages(messages),
    tools: tools ? tools.map((t) => toolObject(t) as unknown as ToolDefinition) : null,
    addGenerationPrompt,
    template: CHAT_TEMPLATE,
  });
}

export interface ChatExample {
  kind: 'plus' | 'minus' | 'times' | 'fact' | 'greeting' | 'tool';
  /** Rendered prompt ending with the assistant header. */
  prompt: string;
  /** The reply text (no terminator); training appends <|eot|>. */
  answer: string;
  /** The user's question (for evaluation reports). */
  question: string;
}

export const OPS = {
  plus: (a: number, b: number) => a + b,
  minus: (a: number, b: number) => a - b,
  times: (a: number, b: number) => a * b,
} as const;

/** Every arithmetic fact in the task: plus 0..20, minus 0..20 with non-negative results, times 0..10. */
export function arithmeticFacts(): { op: keyof typeof OPS; a: number; b: number }[] {
  const out: { op: keyof typeof OPS; a: number; b: number }[] = [];
  for (let a = 0; a <= 20; a++)
    for (let b = 0; b <= 20; b++) {
      out.push({ op: 'plus', a, b });
      if (b <= a) out.push({ op: 'minus', a, b });
      if (a <= 10 && b <= 10) out.push({ op: 'times', a, b });
    }
  return out;
}

/**
 * Held-out facts (never trained on): a fixed 10% of the facts that involve a number above 10, so every
 * single-digit-by-single-digit question stays in training (the default model must answer those).
 */
export function isHeldOut(f: { op: string; a: number; b: number }): boolean {
  if (f.a <= 10 && f.b <= 10) return false;
  const h = (f.a * 31 + f.b * 17 + f.op.length * 7) % 10;
  return h === 3;
}

export function arithmeticExample(op: keyof typeof OPS, a: number, b: number): ChatExample {
  const question = `What is ${a} ${op} ${b}?`;
  return {
    kind: op,
    question,
    prompt: renderChat([{ role: 'user', content: question }], null, true),
    answer: `${a} ${op} ${b} is ${OPS[op](a, b)}.`,
  };
}

export const FACTS: [string, string][] = [
  ['What is the capital of France?', 'The capital of France is Paris.'],
  ['What is the capital of Germany?', 'The capital of Germany is Berlin.'],
  ['What is the capital of Italy?', 'The capital of Italy is Rome.'],
  ['What is the capital of Spain?', 'The capital of Spain is Madrid.'],
  ['What is the capital of Japan?', 'The capital of Japan is Tokyo.'],
  ['What is the capital of England?', 'The capital of England is London.'],
  ['What is the capital of Egypt?', 'The capital of Egypt is Cairo.'],
  ['What is the capital of Canada?', 'The capital of Canada is Ottawa.'],
  ['What color is the sky?', 'The sky is blue on a clear day.'],
  ['What color is grass?', 'Grass is green.'],
  ['How many days are in a week?', 'There are 7 days in a week.'],
  ['How many legs does a spider have?', 'A spider has 8 legs.'],
  ['How many legs does a dog have?', 'A dog has 4 legs.'],
  ['What do cows drink?', 'Cows drink water.'],
  ['What is the largest planet?', 'Jupiter is the largest planet in the solar system.'],
  ['What is water made of?', 'Water is made of hydrogen and oxygen.'],
  ['Who wrote Hamlet?', 'William Shakespeare wrote Hamlet.'],
  ['How many months are in a year?', 'There are 12 months in a year.'],
];
export const GREETINGS: [string, string][] = [
  ['Hello!', 'Hello! How can I help you today?'],
  ['Hi', 'Hi! How can I help you today?'],
  ['Who are you?', 'I am a small Llama 4 model trained from scratch in TypeScript. I can do simple arithmetic.'],
  ['What can you do?', 'I can answer simple arithmetic questions, a few facts, and call tools.'],
  ['Thank you!', 'You are welcome!'],
];

export const CITIES = [
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
  'Lima',
  'Oslo',
  'Dublin',
  'Vienna',
  'Prague',
  'Lisbon',
  'Athens',
  'Seoul',
  'Delhi',
  'Boston',
  'Chicago',
  'Denver',
  'Miami',
  'Seattle',
];
/** Cities only used for evaluation (tool-call well-formedness on unseen arguments). */
export const HELD_OUT_CITIES = ['Seattle', 'Oslo', 'Lima', 'Denver'];

export const TOOLS: ToolSpec[] = [
  {
    name: 'get_weather',
    description: 'Get the current weather in a city',
    params: { city: { type: 'string', description: 'The city name' } },
  },
  { name: 'get_time', description: 'Get the local time in a city', params: { city: { type: 'string', description: 'The city name' } } },
  {
    name: 'get_population',
    description: 'Get the population of a city',
    params: { city: { type: 'string', description: 'The city name' } },
  },
];
const TOOL_QUESTIONS: Record<string, string[]> = {
  get_weather: ['What is the weather in {c}?', 'How is the weather in {c} today?', 'Is it raining in {c}?'],
  get_time: ['What time is it in {c}?', 'What is the local time in {c}?'],
  get_population: ['How many people live in {c}?', 'What is the population of {c}?'],
};

export function toolExample(rng: Rng, heldOut: boolean): ChatExample {
  const pool = heldOut ? HELD_OUT_CITIES : CITIES.filter((c) => !HELD_OUT_CITIES.includes(c));
  const city = rng.pick(pool);
  const tool = rng.pick(TOOLS);
  // Offer the right tool plus a random subset of the others, in random order.
  const offered = rng.shuffle([tool, ...TOOLS.filter((t) => t !== tool && rng.next() < 0.5)]);
  const question = rng.pick(TOOL_QUESTIONS[tool.name]!).replace('{c}', city);
  const prompt = renderChat([{ role: 'user', content: question }], offered, true);
  return { kind: 'tool', question, prompt, answer: `{"name": "${tool.name}", "parameters": {"city": "${city}"}}` };
}

/** A random training chat example (held-out arithmetic facts and cities excluded). */
export function randomChatExample(rng: Rng, facts = arithmeticFacts().filter((f) => !isHeldOut(f)), toolShare = 0.15): ChatExample {
  const r = rng.next();
  if (r < toolShare) return toolExample(rng, false);
  if (r < toolShare + 0.08) {
    const [q, a] = rng.pick(FACTS);
    return { kind: 'fact', question: q, prompt: renderChat([{ role: 'user', content: q }], null, true), answer: a };
  }
  if (r < toolShare + 0.11) {
    const [q, a] = rng.pick(GREETINGS);
    return { kind: 'greeting', question: q, prompt: renderChat([{ role: 'user', content: q }], null, true), answer: a };
  }
  // Small numbers (both ≤ 10) get extra weight: they are what users ask first.
  let f = rng.pick(facts);
  if (rng.next() < 0.5) for (let i = 0; i < 20 && (f.a > 10 || f.b > 10); i++) f = rng.pick(facts);
  return arithmeticExample(f.op, f.a, f.b);
}

/** Splits `text` (fortune files: entries separated by lines holding only "%") into cleaned paragraphs. */
export function splitFortunes(text: string): string[] {
  return text
    .split(/\n%\n/)
    .map((s) =>
      s
        .replace(/\t/g, ' ')
        .replace(/[ ]+\n/g, '\n')
        .trim(),
    )
    .filter((s) => s.length > 20 && s.length < 1200 && /^[\x20-\x7e\n]+$/.test(s));
}
