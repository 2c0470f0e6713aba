/**
 * Synthetic models for tests and benchmarks: HF-style configs of the presets (tiny, bench-2b), deterministic random
 * weights, and a GPT-2-style byte-level BPE tokenizer with Llama 4's special tokens that llama.cpp loads.
 */
import { gpt2ByteChars } from '../tokenizer/index.ts';
import type { Llama4Config } from '../model/llama4/config.ts';
import { parseHfConfig } from '../model/llama4/config.ts';
import { UsageError } from '../util/index.ts';
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

/** Deterministic random weights: N(0,1)·gain/√fan_in for matrices, 1 ± 0.1 for norms, N(0,1) embeddings. */
export function randomProducer(seed: number, hidden: number): TensorProducer {
  let s = seed >>> 0 || 1;
  const next = (): number => {
    // mulberry32
    s = (s + 0x6d2b79f5) >>> 0;
    let t = Math.imul(s ^ (s >>> 15), 1 | s);
    t ^= t + Math.imul(t ^ (t >>> 7), 61 | t);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
  // Box-Muller, using both values of each pair (the generator is the slow part of writing bench-2b).
  let spare = NaN;
  const gauss = (): number => {
    if (!Number.isNaN(spare)) {
      const v = spare;
      spare = NaN;
      return v;
    }
    const r = Math.sqrt(-2 * Math.log(next() + 1e-12)),
      a = 2 * Math.PI * next();
    spare = r * Math.sin(a);
    return r * Math.cos(a);
  };
  return (name, shape) => {
    const n = shape.reduce((a, b) => a * b, 1);
    const x = new Float32Array(n);
    if (shape.length === 1) {
      for (let i = 0; i < n; i++) x[i] = 1 + (next() - 0.5) * 0.2;
      return x;
    }
    const fanIn = shape[shape.length - 1]!;
    const gain = name === 'token_embd' ? Math.sqrt(fanIn) : name === 'output' ? 3 : name.endsWith('ffn_gate_inp') ? 2 : 1;
    const scale = gain / Math.sqrt(fanIn);
    for (let i = 0; i < n; i++) x[i] = gauss() * scale;
    void hidden;
    return x;
  };
}

/** The parsed config of a preset; UsageError naming the presets for an unknown name. */
export function presetConfig(name: string): Llama4Config {
  const preset = PRESETS[name];
  if (!preset) throw new UsageError(`unknown --preset '${name}' (one of: ${Object.keys(PRESETS).join(', ')})`);
  return parseHfConfig(preset);
}
