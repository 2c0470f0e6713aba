/**
 * A fake model and engine for the server tests (house rule 10): a character tokenizer, a CausalLM whose greedy
 * output is a script derived from the prompt (so answers are checkable), and a ServerEngine around both.
 * Not a test file itself (no .test.ts suffix).
 */
import type { CausalLM, ForwardItem, ModelInfo, SequenceState } from '../src/model/types.ts';
import { Scheduler, type SchedulerOptions } from '../src/engine/scheduler.ts';
import type { ChatMessage, ImagePart, ServerEngine, StreamDecoder, ToolSpec } from '../src/server/engine.ts';
import { UsageError } from '../src/util/index.ts';
import { chatLayerToolCalls } from '../src/engine/chat-engine.ts';
import { computeHiddenStates } from '../src/engine/hidden-states.ts';

export const SPECIALS = ['<|begin_of_text|>', '<|eot|>', '<|image|>', '<|header|>'] as const;
export const BOS = 0;
export const EOT = 1;
export const IMAGE = 2;
export const HEADER = 3;
const MULTI = ['{"', '":', '", "', '"}', 'true', 'false', 'null', 'Hello', ' the', 'é', ' is', 'ather'];
/** Token texts: 4 specials, ASCII 32..126 and \n, then a few multi-character tokens. */
export const VOCAB: string[] = [...SPECIALS];
for (let c = 32; c < 127; c++) VOCAB.push(String.fromCharCode(c));
VOCAB.push('\n', ...MULTI);
const HIDDEN = 8;
const STORY = tokenize('Once upon a time there was a tiny model. ');
const PATCHES_PER_IMAGE = 4;

/** Greedy longest-match tokenizer over VOCAB (specials only when written literally in `allowSpecial` mode). */
export function tokenize(text: string, allowSpecial = false): number[] {
  const out: number[] = [];
  let i = 0;
  while (i < text.length) {
    let best = -1;
    let bestLen = 0;
    for (let id = allowSpecial ? 0 : SPECIALS.length; id < VOCAB.length; id++) {
      const t = VOCAB[id]!;
      if (t.length > bestLen && text.startsWith(t, i)) {
        best = id;
        bestLen = t.length;
      }
    }
    if (best < 0) {
      // Unknown characters become '?' (the fake vocabulary is tiny).
      best = VOCAB.indexOf('?');
      bestLen = 1;
    }
    out.push(best);
    i += bestLen;
  }
  return out;
}
export const detok = (ids: readonly number[]) => ids.map((t) => VOCAB[t] ?? '').join('');

class FakeSeq implements SequenceState {
  tokens: number[] = [];
  /** Image "features" by the position of their first image token (truncate drops those past the new length). */
  images: { pos: number; value: number }[] = [];
  get brightness(): number[] {
    return this.images.map((i) => i.value);
  }
  constructor(private readonly chunk: number) {}
  get length() {
    return this.tokens.length;
  }
  truncate(len: number): boolean {
    if (len > this.tokens.length) return false;
    // A chunked layer keeps only the current chunk: it cannot go back before that chunk's start.
    if (this.chunk > 0 && this.tokens.length > 0 && len < Math.floor((this.tokens.length - 1) / this.chunk) * this.chunk) return false;
    this.tokens.length = len;
    this.images = this.images.filter((i) => i.pos < len);
    return true;
  }
  clone(): SequenceState {
    const c = new FakeSeq(this.chunk);
    c.tokens = [...this.tokens];
    c.images = [...this.images];
    return c;
  }
  cacheBytes(): number {
    return this.tokens.length * 4096;
  }
}

function hash(a: number, b: number): number {
  let h = Math.imul(a ^ 0x9e3779b9, 0x85ebca6b) ^ Math.imul(b + 0x632be5ab, 0xc2b2ae35);
  h ^= h >>> 13;
  h = Math.imul(h, 0x27d4eb2f);
  return ((h ^ (h >>> 16)) >>> 0) / 4294967296;
}

/** The reply the fake model gives to a prompt (text between specials decoded). */
export function scriptFor(prompt: readonly number[], brightness: readonly number[]): string {
  const text = detok(prompt);
  if (text.includes('<|header|>tool\n')) {
    const m = /<\|header\|>tool\n([^<]*)<\|eot\|>(?![\s\S]*<\|header\|>tool)/.exec(text);
    return `The weather is ${m ? m[1] : '?'}.`;
  }
  if (text.includes('TOOLS:') && text.includes('twice'))
    return '[{"name": "get_weather", "parameters": {"city": "Paris"}}, {"name": "get_weather", "parameters": {"city": "Rome"}}]';
  if (text.includes('TOOLS:')) return '{"name": "get_weather", "parameters": {"city": "Paris"}}';
  if (brightness.length) return `I see ${brightness.length} image(s), brightness ${brightness.map((b) => Math.round(b)).join(',')}.`;
  const users = [...text.matchAll(/<\|header\|>user\n([^<]*)<\|eot\|>/g)];
  const last = users.length ? users[users.length - 1]![1]! : '';
  if (last.startsWith('long')) return 'x'.repeat(100000);
  return `Hello! You said: ${last.slice(0, 40)}`;
}

export interface FakeModelOptions {
  contextLength?: number;
  /** Busy-waits this long per forward call (a slow model). */
  delayMs?: number;
  /** Chunked-attention emulation for truncate(); 0 = unlimited. */
  chunk?: number;
}

export class FakeModel implements CausalLM {
  readonly info: ModelInfo;
  /** Number of items of every forward call (to observe batching). */
  readonly batchSizes: number[] = [];
  delayMs: number;
  private readonly chunk: number;
  constructor(o: FakeModelOptions = {}) {
    this.info = {
      architecture: 'fake',
      vocabSize: VOCAB.length,
      hiddenSize: HIDDEN,
      contextLength: o.contextLength ?? 4096,
      bosTokenId: BOS,
      eosTokenIds: [EOT],
      imageTokenId: IMAGE,
    };
    this.delayMs = o.delayMs ?? 0;
    this.chunk = o.chunk ?? 0;
  }
  newSequence(): SequenceState {
    return new FakeSeq(this.chunk);
  }
  forward(items: readonly ForwardItem[]): Float32Array[] {
    this.batchSizes.push(items.length);
    if (this.delayMs > 0) {
      const end = performance.now() + this.delayMs;
      while (performance.now() < end) {
        /* busy: model compute */
      }
    }
    return items.map((it) => {
      const seq = it.seq as FakeSeq;
      const toks = Array.from(it.tokens);
      const nImg = toks.filter((t) => t === IMAGE).length;
      const rows = it.patchEmbeddings ? it.patchEmbeddings.length / HIDDEN : 0;
      if (rows !== nImg) throw new UsageError(`patch rows ${rows} != image tokens ${nImg}`);
      const start = seq.tokens.length;
      for (let r = 0; r < rows; r += PATCHES_PER_IMAGE)
        seq.images.push({ pos: start + toks.indexOf(IMAGE), value: it.patchEmbeddings![r * HIDDEN]! * 255 });
      seq.tokens.push(...toks);
      if (it.logits === 'hidden') {
        // "Hidden states": a fixed pseudo-random vector per (token, previous token), so texts differ and repeat.
        const out = new Float32Array(toks.length * HIDDEN);
        toks.forEach((t, k) => {
          const prev = seq.tokens[start + k - 1] ?? -1;
          for (let j = 0; j < HIDDEN; j++) out[k * HIDDEN + j] = hash(t * 1009 + prev, j) - 0.5;
        });
        return out;
      }
      const want = it.logits === 'none' ? [] : it.logits === 'last' ? [seq.tokens.length - 1] : toks.map((_, k) => start + k);
      const out = new Float32Array(want.length * VOCAB.length);
      want.forEach((pos, r) => this.fillRow(seq, pos, out.subarray(r * VOCAB.length, (r + 1) * VOCAB.length)));
      return out;
    });
  }
  private fillRow(seq: FakeSeq, pos: number, row: Float32Array): void {
    const prefix = seq.tokens.slice(0, pos + 1);
    const h = prefix.lastIndexOf(HEADER);
    let next: number;
    if (h < 0) {
      // Plain completion: an endless story, indexed by absolute position.
      next = STORY[(pos + 1) % STORY.length]!;
    } else {
      // The generation prompt ends with "<|header|>assistant\n"; the reply starts right after it.
      const promptEnd = h + 1 + tokenize('assistant\n').length;
      const script = tokenize(scriptFor(prefix.slice(0, promptEnd), seq.brightness));
      const k = pos + 1 - promptEnd;
      next = k >= 0 && k < script.length ? script[k]! : EOT;
    }
    const salt = prefix.length * 31 + (prefix[prefix.length - 1] ?? 0);
    for (let i = 0; i < row.length; i++) row[i] = 3 * hash(salt, i);
    row[next] = row[next]! + 10;
  }
}

export interface FakeEngineOptions extends FakeModelOptions, SchedulerOptions {
  /** Stream prose around tool calls with the chat layer's streaming parser (default true); false buffers outputs. */
  streamToolCalls?: boolean;
}

/** Renders a chat like Llama 4 does, with this fake vocabulary. */
function render(messages: ChatMessage[], tools: ToolSpec[] | null): { text: string; images: ImagePart['data'][] } {
  let text = '<|begin_of_text|>';
  const images: ImagePart['data'][] = [];
  if (tools) text += `<|header|>system\nTOOLS: ${tools.map((t) => t.name).join(', ')}<|eot|>`;
  for (const m of messages) {
    text += `<|header|>${m.role}\n`;
    for (const p of typeof m.content === 'string' ? [{ type: 'text' as const, text: m.content }] : m.content) {
      if (p.type === 'text') text += p.text;
      else {
        images.push(p.data);
        text += '<|image|>'.repeat(PATCHES_PER_IMAGE);
      }
    }
    for (const c of m.toolCalls ?? []) text += `{"name": "${c.name}", "parameters": ${c.arguments}}`;
    text += '<|eot|>';
  }
  return { text: text + '<|header|>assistant\n', images };
}

export function fakeEngine(o: FakeEngineOptions = {}): ServerEngine & { model: FakeModel } {
  const model = new FakeModel(o);
  const scheduler = new Scheduler(model, o);
  return {
    model,
    modelId: 'fake-llama4',
    created: 1_700_000_000,
    scheduler,
    vocabulary: { size: VOCAB.length, text: (id) => (id < SPECIALS.length ? null : (VOCAB[id] ?? null)) },
    endTokens: [EOT],
    supportsImages: true,
    async encodeChat(messages, tools) {
      const { text, images } = render(messages, tools);
      const tokens = tokenize(text, true);
      if (images.length === 0) return { tokens };
      const patches = new Float32Array(images.length * PATCHES_PER_IMAGE * HIDDEN);
      images.forEach((data, i) => {
        // The routes hand over the decoded request bytes.
        const img = data instanceof Uint8Array ? data : typeof data === 'string' ? new TextEncoder().encode(data) : data.bytes;
        // "Vision encoder": mean byte value of the file; a truncated file is rejected like a real decoder would.
        if (img.length < 16) throw new UsageError(`image ${i + 1} could not be decoded: truncated file`);
        const mean = img.reduce((s, b) => s + b, 0) / img.length / 255;
        patches.fill(mean, i * PATCHES_PER_IMAGE * HIDDEN, (i + 1) * PATCHES_PER_IMAGE * HIDDEN);
      });
      return { tokens, patchEmbeddings: patches };
    },
    encodeText: (text) => [BOS, ...tokenize(text)],
    tokenize: (text, special) => tokenize(text, special === true),
    detokenize: (ids) => detok(ids),
    renderChat: (messages, tools) => render(messages, tools).text,
    chatTemplate: null,
    hiddenStates: (tokens, signal) => computeHiddenStates(model, tokens, o.stepTokens ?? 128, signal),
    newDecoder(): StreamDecoder {
      return { push: (t) => (t < SPECIALS.length ? '' : (VOCAB[t] ?? '')), flush: () => '' };
    },
    tokenText: (t) => VOCAB[t] ?? '',
    ...(o.streamToolCalls === false ? {} : { newToolCallStream: () => chatLayerToolCalls.stream() }),
    parseToolCalls(text) {
      const s = text.trim();
      if (!s.startsWith('{')) return { content: text, toolCalls: [] };
      try {
        const j = JSON.parse(s) as { name?: unknown; parameters?: unknown };
        if (typeof j.name === 'string') return { content: null, toolCalls: [{ name: j.name, arguments: j.parameters ?? {} }] };
      } catch {
        /* not a tool call: plain content */
      }
      return { content: text, toolCalls: [] };
    },
  };
}
