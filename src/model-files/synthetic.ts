/**
 * Synthetic models for tests and benchmarks: HF-style configs of the presets (tiny, bench-2b), deterministic random
 * weights, and a GPT-2-style byte-level BPE tokenizer with Llama 4's special tokens that llama.cpp loads.
 */
import { gpt2ByteChars } from '../tokenizer/index.ts';
import type { Llama4Config } from '../model/llama4/config.ts';
import { parseHfConfig } from '../model/llama4/config.ts';
import { extname } from 'node:path';
import { fileURLToPath } from 'node:url';
import { UsageError, startWorker } from '../util/index.ts';
import type { GgufTokenizer, TensorProducer } from './gguf-writer.ts';

/** Llama 4's first special tokens (spec §4), in id order from the first special id. */
const LLAMA4_SPECIALS = [
  '<|begin_of_text|>',
  '<|end_of_text|>',
  '<|fim_prefix|>',
  '<|fim_middle|>',
  '<|fim_suffix|>',
  '<|header_start|>',
  '<|header_end|>',
  '<|eom|>',
  '<|eot|>',
  '<|step|>',
];

export const SIMPLE_CHAT_TEMPLATE =
  "{{- bos_token }}{%- for message in messages %}{{- '<|header_start|>' + message['role'] + '<|header_end|>\\n\\n' + (message['content'] | trim) + '<|eot|>' }}{%- endfor %}{%- if add_generation_prompt %}{{- '<|header_start|>assistant<|header_end|>\\n\\n' }}{%- endif %}";

/**
 * A byte-level BPE vocabulary of `vocabSize` ids: 256 byte tokens, then two-character merges (most frequent
 * English-ish pairs first), then 32 control tokens (Llama 4's specials, then reserved ones).
 */
export function syntheticTokenizer(vocabSize: number): GgufTokenizer {
  const nSpecial = 32;
  if (vocabSize < 256 + nSpecial)
    throw new UsageError(`vocabulary ${vocabSize} is too small for a byte-level tokenizer (>= ${256 + nSpecial})`);
  const bytes = gpt2ByteChars();
  const tokens = [...bytes];
  const merges: string[] = [];
  // Pairs ordered so common text pieces ("Ġt", "he", …) come first: a space marker, then letters, then the rest.
  const order = [' ', ...'etaoinshrdlucmfwypvbgkjqxz', ...'ETAOINSHRDLUCMFWYPVBGKJQXZ', ...'0123456789.,!?;:\'"-()'];
  const seen = new Set(tokens);
  const alphabet = [...order.map((c) => bytes[c.charCodeAt(0)]!), ...bytes.filter((c) => !order.some((o) => bytes[o.charCodeAt(0)] === c))];
  outer: for (const a of alphabet) {
    for (const b of alphabet) {
      if (tokens.length >= vocabSize - nSpecial) break outer;
      const t = a + b;
      if (seen.has(t)) continue;
      seen.add(t);
      tokens.push(t);
      merges.push(`${a} ${b}`);
    }
  }
  const first = tokens.length;
  for (let i = 0; i < nSpecial; i++) tokens.push(LLAMA4_SPECIALS[i] ?? `<|reserved_special_token_${i - LLAMA4_SPECIALS.length}|>`);
  const types = new Int32Array(vocabSize).fill(1);
  types.fill(3, first);
  return {
    tokens,
    types,
    merges,
    bos: first,
    eos: first + 8,
    eot: first + 8,
    eom: first + 7,
    pad: first + 9,
    chatTemplate: SIMPLE_CHAT_TEMPLATE,
  };
}

/** HF-style config.json of each preset (parsed by the same parser as real checkpoints). */
export const PRESETS: Readonly<Record<string, Record<string, unknown>>> = {
  tiny: {
    model_type: 'llama4_text',
    hidden_size: 256,
    num_hidden_layers: 4,
    num_attention_heads: 4,
    num_key_value_heads: 2,
    head_dim: 64,
    num_local_experts: 4,
    num_experts_per_tok: 1,
    intermediate_size: 256,
    intermediate_size_mlp: 512,
    vocab_size: 512,
    rope_theta: 500000,
    rms_norm_eps: 1e-5,
    interleave_moe_layer_step: 1,
    max_position_embeddings: 131072,
  },
  'bench-2b': {
    model_type: 'llama4_text',
    hidden_size: 2048,
    num_hidden_layers: 16,
    num_attention_heads: 16,
    num_key_value_heads: 8,
    head_dim: 128,
    num_local_experts: 16,
    num_experts_per_tok: 1,
    intermediate_size: 1024,
    intermediate_size_mlp: 4096,
    vocab_size: 32000,
    rope_theta: 500000,
    rms_norm_eps: 1e-5,
    interleave_moe_layer_step: 1,
    max_position_embeddings: 131072,
  },
  // Llama Guard 4's shape (dense: no experts, FFN width intermediate_size_mlp; attention_chunk_size null; NoPE every
  // 4th layer with temperature tuning). GGUF cannot say "no chunking": llama.cpp reads chunk 8192, so the context is
  // capped at 8192 where the two agree exactly. Written without a chat template (the built-in guard prompt applies).
  'guard-tiny': {
    model_type: 'llama4_text',
    hidden_size: 256,
    num_hidden_layers: 4,
    num_attention_heads: 4,
    num_key_value_heads: 2,
    head_dim: 64,
    num_local_experts: 0,
    num_experts_per_tok: 0,
    interleave_moe_layer_step: 0,
    moe_layers: [],
    intermediate_size: 512,
    intermediate_size_mlp: 512,
    vocab_size: 512,
    rope_theta: 500000,
    rms_norm_eps: 1e-5,
    attention_chunk_size: null,
    max_position_embeddings: 8192,
  },
  // The same shape at benchmark size (about 0.19 B parameters) for `llama4 bench --guard`.
  'guard-bench': {
    model_type: 'llama4_text',
    hidden_size: 1024,
    num_hidden_layers: 8,
    num_attention_heads: 16,
    num_key_value_heads: 4,
    head_dim: 64,
    num_local_experts: 0,
    num_experts_per_tok: 0,
    interleave_moe_layer_step: 0,
    moe_layers: [],
    intermediate_size: 4096,
    intermediate_size_mlp: 4096,
    vocab_size: 32000,
    rope_theta: 500000,
    rms_norm_eps: 1e-5,
    attention_chunk_size: null,
    max_position_embeddings: 8192,
  },
};

// ---- deterministic random weights ------------------------------------------------------------------------------
// One mulberry32 stream per model: draw k (1, 2, …) uses state seed + k·0x6d2b79f5 (mod 2³²), so any draw can be
// computed directly and a tensor's values can be generated in pieces on several threads with the same result.
// Matrices take N(0,1) values from Box-Muller pairs (pair p of a run uses draws k+2p+1, k+2p+2: r·cos, then r·sin);
// an odd-length run leaves its last sine as a spare that starts the next matrix. Norms take 1 ± 0.1 uniforms.

const STEP = 0x6d2b79f5;

/** mulberry32's output for the k-th draw of the stream seeded s0. */
function draw(s0: number, k: number): number {
  const s = (s0 + Math.imul(k, STEP)) >>> 0;
  let t = Math.imul(s ^ (s >>> 15), 1 | s);
  t ^= t + Math.imul(t ^ (t >>> 7), 61 | t);
  return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
}

/** Box-Muller pair p of a run starting after draw k: [r·cos a, r·sin a]. */
function pair(s0: number, k: number, p: number): [number, number] {
  const r = Math.sqrt(-2 * Math.log(draw(s0, k + 2 * p + 1) + 1e-12)),
    a = 2 * Math.PI * draw(s0, k + 2 * p + 2);
  return [r * Math.cos(a), r * Math.sin(a)];
}

/** One piece of a gaussian run (after draw k): out[o + j - j0] = value j · scale for j in [j0, j1). */
export interface GaussPiece {
  readonly s0: number;
  readonly k: number;
  readonly j0: number;
  readonly j1: number;
  readonly scale: number;
}

export function fillGauss(out: Float32Array, o: number, { s0, k, j0, j1, scale }: GaussPiece): void {
  for (let j = j0; j < j1; ) {
    const [c, sn] = pair(s0, k, Math.floor(j / 2));
    if (j % 2 === 0) {
      out[o++] = c * scale;
      if (j + 1 < j1) out[o++] = sn * scale;
      j += 2;
    } else {
      out[o++] = sn * scale;
      j++;
    }
  }
}

/** Where a model's stream stands: draws taken, and the spare sine (NaN when none). */
interface StreamState {
  k: number;
  spare: number;
}

/** A tensor's gain/√fan_in scale (embeddings N(0,1), the output and the router hotter). */
function matrixScale(name: string, shape: readonly number[]): number {
  const fanIn = shape[shape.length - 1]!;
  const gain = name === 'token_embd' ? Math.sqrt(fanIn) : name === 'output' ? 3 : name.endsWith('ffn_gate_inp') ? 2 : 1;
  return gain / Math.sqrt(fanIn);
}

/**
 * Produces one tensor from the stream: norms on this thread; a matrix's run via `fill` (pieces of [0, m) written
 * at x[i0 + j]), then the stream advances past it. `fill` may run the pieces elsewhere (parallelRandomProducer).
 */
function produceFrom<T>(
  st: StreamState,
  s0: number,
  name: string,
  shape: readonly number[],
  fill: (x: Float32Array, i0: number, run: Omit<GaussPiece, 'j0' | 'j1'>, m: number) => T,
  shared = false,
): { x: Float32Array; done: T | null } {
  const n = shape.reduce((a, b) => a * b, 1);
  const x = new Float32Array(shared ? new SharedArrayBuffer(n * 4) : new ArrayBuffer(n * 4));
  if (shape.length === 1) {
    for (let i = 0; i < n; i++) x[i] = 1 + (draw(s0, st.k + i + 1) - 0.5) * 0.2;
    st.k += n;
    return { x, done: null };
  }
  const scale = matrixScale(name, shape);
  let i0 = 0;
  if (!Number.isNaN(st.spare) && n > 0) {
    x[0] = st.spare * scale;
    st.spare = NaN;
    i0 = 1;
  }
  const m = n - i0;
  const done = fill(x, i0, { s0, k: st.k, scale }, m);
  if (m % 2 === 1) st.spare = pair(s0, st.k, (m - 1) / 2)[1];
  st.k += 2 * Math.ceil(m / 2);
  return { x, done };
}

/** Deterministic random weights: N(0,1)·gain/√fan_in for matrices, 1 ± 0.1 for norms, N(0,1) embeddings. */
export function randomProducer(seed: number, hidden: number): TensorProducer {
  void hidden;
  const s0 = seed >>> 0 || 1;
  const st: StreamState = { k: 0, spare: NaN };
  return (name, shape) => produceFrom(st, s0, name, shape, (x, i0, run, m) => fillGauss(x, i0, { ...run, j0: 0, j1: m })).x;
}

/**
 * randomProducer's values made on `threads` worker threads (the generator, not the quantizer, is the slow part of
 * writing bench-2b): each matrix is split into pieces filled in a SharedArrayBuffer. Call close() when done.
 */
export function parallelRandomProducer(
  seed: number,
  threads: number,
): { produce: (name: string, shape: readonly number[]) => Promise<Float32Array>; close: () => Promise<void> } {
  const s0 = seed >>> 0 || 1;
  const st: StreamState = { k: 0, spare: NaN };
  const ext = extname(fileURLToPath(import.meta.url));
  const workers = Array.from({ length: Math.max(1, threads) }, () => startWorker(new URL(`./synthetic-worker${ext}`, import.meta.url)));
  let nextId = 0;
  const waiting = new Map<number, { resolve: () => void; reject: (e: Error) => void }>();
  for (const w of workers) {
    w.on('message', (m: { id: number; error?: string }) => {
      const p = waiting.get(m.id);
      waiting.delete(m.id);
      if (m.error) p?.reject(new Error(m.error));
      else p?.resolve();
    });
    w.on('error', (e) => {
      for (const p of waiting.values()) p.reject(e);
      waiting.clear();
    });
  }
  const fill = (x: Float32Array, i0: number, run: Omit<GaussPiece, 'j0' | 'j1'>, m: number): Promise<void> => {
    const per = Math.max(1 << 16, Math.ceil(m / (workers.length * 4) / 2) * 2); // even: pieces start on a pair
    const jobs: Promise<void>[] = [];
    for (let j0 = 0, t = 0; j0 < m; j0 += per, t++) {
      const piece: GaussPiece = { ...run, j0, j1: Math.min(m, j0 + per) };
      const id = nextId++;
      jobs.push(new Promise<void>((resolve, reject) => waiting.set(id, { resolve, reject })));
      workers[t % workers.length]!.postMessage({ id, buffer: x.buffer, offset: i0 + j0, piece });
    }
    return Promise.all(jobs).then(() => undefined);
  };
  return {
    async produce(name, shape) {
      const { x, done } = produceFrom(st, s0, name, shape, fill, true);
      await done;
      return x;
    },
    close: async () => {
      await Promise.all(workers.map((w) => w.terminate()));
    },
  };
}

/** The parsed config of a preset; UsageError naming the presets for an unknown name. */
export function presetConfig(name: string): Llama4Config {
  const preset = PRESETS[name];
  if (!preset) throw new UsageError(`unknown --preset '${name}' (one of: ${Object.keys(PRESETS).join(', ')})`);
  return parseHfConfig(preset);
}
