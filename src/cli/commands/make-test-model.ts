/**
 * `llama4 make-test-model --preset tiny|bench-2b --type TYPE OUT.gguf`: random-weight llama4 GGUFs that llama.cpp
 * loads, with a synthetic GPT-2-style byte-level tokenizer. Also home of the GGUF model writer shared with
 * `convert`: config -> llama4 metadata, per-tensor types from the file type, tensors written one at a time.
 */
import { parseArgs } from 'node:util';
import type { Command } from '../command.ts';
import type { DType } from '../../tensor/index.ts';
import { GgufType, GgufWriter, QuantizePool } from '../../io/gguf/index.ts';
import type { FileType } from '../../io/gguf/quant-policy.ts';
import { LLAMA_FTYPE, parseFileType, tensorTypeFor } from '../../io/gguf/quant-policy.ts';
import type { Llama4Config } from '../../model/llama4/config.ts';
import { parseHfConfig } from '../../model/llama4/config.ts';
import { expectedShapes } from '../../model/llama4/weights.ts';
import { ggufMetadataFromConfig, ropeFreqFactorsFor } from '../../model/llama4/gguf-config.ts';
import { UsageError } from '../../util/index.ts';

/** Tokenizer metadata (tokenizer.ggml.*) for a GGUF. */
export interface GgufTokenizer {
  readonly tokens: string[];
  /** 1 normal, 3 control, 5 unused (llama.cpp token types). */
  readonly types: Int32Array;
  readonly merges: string[];
  readonly bos: number | null;
  readonly eos: number | null;
  readonly eot: number | null;
  readonly eom: number | null;
  readonly pad: number | null;
  readonly chatTemplate: string | null;
}

/** GPT-2's bytes_to_unicode: the printable character standing for each byte in byte-level BPE vocabularies. */
export function gpt2ByteChars(): string[] {
  const out: string[] = new Array(256);
  let extra = 0;
  for (let b = 0; b < 256; b++) {
    const printable = (b >= 33 && b <= 126) || (b >= 161 && b <= 172) || (b >= 174 && b <= 255);
    out[b] = String.fromCodePoint(printable ? b : 256 + extra++);
  }
  return out;
}

/** Llama 4's first special tokens (spec §4), in id order from the first special id. */
const LLAMA4_SPECIALS = [
  '<|begin_of_text|>', '<|end_of_text|>', '<|fim_prefix|>', '<|fim_middle|>', '<|fim_suffix|>', '<|header_start|>',
  '<|header_end|>', '<|eom|>', '<|eot|>', '<|step|>',
];

export const SIMPLE_CHAT_TEMPLATE =
  "{{- bos_token }}{%- for message in messages %}{{- '<|header_start|>' + message['role'] + '<|header_end|>\\n\\n' + (message['content'] | trim) + '<|eot|>' }}{%- endfor %}{%- if add_generation_prompt %}{{- '<|header_start|>assistant<|header_end|>\\n\\n' }}{%- endif %}";

/**
 * A byte-level BPE vocabulary of `vocabSize` ids: 256 byte tokens, then two-character merges (most frequent
 * English-ish pairs first), then 32 control tokens (Llama 4's specials, then reserved ones).
 */
export function syntheticTokenizer(vocabSize: number): GgufTokenizer {
  const nSpecial = 32;
  if (vocabSize < 256 + nSpecial) throw new UsageError(`vocabulary ${vocabSize} is too small for a byte-level tokenizer (>= ${256 + nSpecial})`);
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
    tokens, types, merges, bos: first, eos: first + 8, eot: first + 8, eom: first + 7, pad: first + 9,
    chatTemplate: SIMPLE_CHAT_TEMPLATE,
  };
}

/** Supplies one tensor's float32 values (internal name, torch-order shape). */
export type TensorProducer = (name: string, shape: readonly number[]) => Float32Array;

export interface WriteSummary {
  readonly bytes: number;
  readonly types: Map<DType, number>;
}

/**
 * Writes a llama4 GGUF: metadata from the config, tokenizer keys, then every tensor the config needs (plus
 * rope_freqs for llama3 scaling), each produced, converted to its type and written before the next is made.
 */
export interface WriteOptions {
  /** Progress callback before each tensor. */
  onTensor?: (name: string, i: number, n: number) => void;
  /** Worker threads for k-quants (default: all cores). */
  threads?: number;
  /** Every quantizable tensor in the file type (llama-quantize --pure), no per-tensor mix. */
  pure?: boolean;
}

export async function writeLlama4Gguf(
  out: string, cfg: Llama4Config, ftype: FileType, produce: TensorProducer, tok: GgufTokenizer | null, name: string,
  opts: WriteOptions = {},
): Promise<WriteSummary> {
  const { onTensor, threads } = opts;
  const w = new GgufWriter(out);
  for (const [key, value, t] of ggufMetadataFromConfig(cfg, name)) {
    w.set(key, value, t === 'u32' ? GgufType.UINT32 : t === 'f32' ? GgufType.FLOAT32 : t === 'bool' ? GgufType.BOOL : GgufType.STRING);
  }
  w.set('general.file_type', LLAMA_FTYPE[ftype], GgufType.UINT32);
  w.set('general.quantization_version', 2, GgufType.UINT32);
  if (tok) {
    w.set('tokenizer.ggml.model', 'gpt2').set('tokenizer.ggml.pre', 'llama4');
    w.set('tokenizer.ggml.tokens', tok.tokens).set('tokenizer.ggml.token_type', tok.types).set('tokenizer.ggml.merges', tok.merges);
    const ids: [string, number | null][] = [['bos', tok.bos], ['eos', tok.eos], ['eot', tok.eot], ['eom', tok.eom], ['padding', tok.pad]];
    for (const [k, v] of ids) if (v !== null) w.set(`tokenizer.ggml.${k}_token_id`, v, GgufType.UINT32);
    w.set('tokenizer.ggml.add_bos_token', true);
    if (tok.chatTemplate) w.set('tokenizer.chat_template', tok.chatTemplate);
  }
  const plan: { name: string; shape: readonly number[]; dtype: DType }[] = [];
  for (const [n, shape] of expectedShapes(cfg)) plan.push({ name: n, shape, dtype: tensorTypeFor(ftype, n, shape, cfg.numLayers, { pure: opts.pure ?? false, nGqa: cfg.numHeads / cfg.numKvHeads }) });
  const ff = ropeFreqFactorsFor(cfg);
  if (ff) plan.push({ name: 'rope_freqs', shape: [ff.length], dtype: 'f32' });
  for (const t of plan) w.addTensor(`${t.name}.weight`, t.dtype, t.shape);
  const types = new Map<DType, number>();
  let bytes = 0;
  // k-quant scale searches are slow: spread big tensors' rows over worker threads (same bytes as one thread).
  const pool = new QuantizePool(threads);
  try {
    w.writeHeader();
    for (const [i, t] of plan.entries()) {
      onTensor?.(t.name, i, plan.length);
      const x = t.name === 'rope_freqs' ? ff! : produce(t.name, t.shape);
      const q = await pool.quantize(t.dtype, x, t.shape[t.shape.length - 1]!);
      w.writeTensor(`${t.name}.weight`, q);
      types.set(t.dtype, (types.get(t.dtype) ?? 0) + 1);
      bytes += q.length;
    }
    w.close();
  } catch (e) {
    w.abort();
    throw e;
  } finally {
    await pool.close();
  }
  return { bytes, types };
}

export function parseThreads(s: string | undefined): number | undefined {
  if (s === undefined) return undefined;
  const n = Number(s);
  if (!Number.isInteger(n) || n < 1) throw new UsageError(`--threads must be a positive integer, got '${s}'`);
  return n;
}

/** HF-style config.json of each preset (parsed by the same parser as real checkpoints). */
export const PRESETS: Readonly<Record<string, Record<string, unknown>>> = {
  tiny: {
    model_type: 'llama4_text', hidden_size: 256, num_hidden_layers: 4, num_attention_heads: 4, num_key_value_heads: 2,
    head_dim: 64, num_local_experts: 4, num_experts_per_tok: 1, intermediate_size: 256, intermediate_size_mlp: 512,
    vocab_size: 512, rope_theta: 500000, rms_norm_eps: 1e-5, interleave_moe_layer_step: 1, max_position_embeddings: 131072,
  },
  'bench-2b': {
    model_type: 'llama4_text', hidden_size: 2048, num_hidden_layers: 16, num_attention_heads: 16, num_key_value_heads: 8,
    head_dim: 128, num_local_experts: 16, num_experts_per_tok: 1, intermediate_size: 1024, intermediate_size_mlp: 4096,
    vocab_size: 32000, rope_theta: 500000, rms_norm_eps: 1e-5, interleave_moe_layer_step: 1, max_position_embeddings: 131072,
  },
  // Llama Guard 4's shape (dense: no experts, FFN width intermediate_size_mlp; attention_chunk_size null; NoPE every
  // 4th layer with temperature tuning). GGUF cannot say "no chunking": llama.cpp reads chunk 8192, so the context is
  // capped at 8192 where the two agree exactly.
  'guard-tiny': {
    model_type: 'llama4_text', hidden_size: 256, num_hidden_layers: 4, num_attention_heads: 4, num_key_value_heads: 2,
    head_dim: 64, num_local_experts: 0, num_experts_per_tok: 0, interleave_moe_layer_step: 0, moe_layers: [],
    intermediate_size: 512, intermediate_size_mlp: 512, vocab_size: 512, rope_theta: 500000, rms_norm_eps: 1e-5,
    attention_chunk_size: null, max_position_embeddings: 8192,
  },
  // The same shape at benchmark size (about 0.19 B parameters) for `llama4 bench --guard`.
  'guard-bench': {
    model_type: 'llama4_text', hidden_size: 1024, num_hidden_layers: 8, num_attention_heads: 16, num_key_value_heads: 4,
    head_dim: 64, num_local_experts: 0, num_experts_per_tok: 0, interleave_moe_layer_step: 0, moe_layers: [],
    intermediate_size: 4096, intermediate_size_mlp: 4096, vocab_size: 32000, rope_theta: 500000, rms_norm_eps: 1e-5,
    attention_chunk_size: null, max_position_embeddings: 8192,
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
    if (spare === spare) { const v = spare; spare = NaN; return v; }
    const r = Math.sqrt(-2 * Math.log(next() + 1e-12)), a = 2 * Math.PI * next();
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

export const makeTestModelCommand: Command = {
  name: 'make-test-model',
  summary: 'write a random-weight llama4 GGUF (tiny for tests, bench-2b for benchmarks)',
  usage: `usage: llama4 make-test-model --preset tiny|bench-2b|guard-tiny|guard-bench --type TYPE [--pure] [--seed N] OUT.gguf
Writes a llama4 GGUF with random weights and a synthetic byte-level BPE tokenizer that llama.cpp loads.
  --preset NAME   tiny: hidden 256, 4 layers, 4/2 heads of 64, 4 experts (FFN 256) + shared, vocab 512
                  bench-2b: hidden 2048, 16 layers, 16/8 heads of 128, 16 experts (FFN 1024) + shared, MoE on
                  every layer, vocab 32000 (about 2.0 B total / 0.47 B active parameters)
                  guard-tiny: Llama Guard 4's shape (dense FFN 512, no chunking, NoPE every 4th layer), hidden 256,
                  4 layers, vocab 512, Llama 4 special tokens, no chat template (the built-in guard prompt applies)
                  guard-bench: the guard shape at hidden 1024, 8 layers, FFN 4096, vocab 32000 (about 0.19 B)
  --type TYPE     ${['f32', 'f16', 'bf16', 'q8_0', 'q4_0', 'q4_1', 'q5_0', 'q5_1', 'q2_k', 'q3_k', 'q4_k', 'q5_k', 'q6_k', 'q4_k_m', 'q5_k_m', '…'].join(' | ')} (default f16)
  --pure          every weight matrix in TYPE (llama-quantize --pure); default: llama-quantize's per-tensor mix
                  (output Q6_K; _m types raise some attn_v/ffn_down to Q6_K; plain q4_k/q5_k mean q4_k_m/q5_k_m)
  --seed N        random seed (default 1)
  -t, --threads N worker threads for k-quant quantization (default: all cores; output is identical)
Tensors are generated, quantized and written one at a time (k-quants of bench-2b take a while in TypeScript).`,
  async run(argv) {
    const { values, positionals } = parseArgs({
      args: argv, allowPositionals: true, strict: true,
      options: { preset: { type: 'string' }, type: { type: 'string' }, seed: { type: 'string' }, threads: { type: 'string', short: 't' }, pure: { type: 'boolean' }, quiet: { type: 'boolean', short: 'q' } },
    });
    const out = positionals[0];
    if (!out || positionals.length > 1) throw new UsageError('give exactly one output path (OUT.gguf)');
    const presetName = values.preset ?? 'tiny';
    const preset = PRESETS[presetName];
    if (!preset) throw new UsageError(`unknown --preset '${presetName}' (one of: ${Object.keys(PRESETS).join(', ')})`);
    const ftype = parseFileType(values.type ?? 'f16');
    const seed = Number(values.seed ?? 1);
    if (!Number.isInteger(seed)) throw new UsageError(`--seed must be an integer, got '${values.seed}'`);
    const cfg = parseHfConfig(preset);
    const tok = presetName.startsWith('guard-') ? { ...syntheticTokenizer(cfg.vocabSize), chatTemplate: null } : syntheticTokenizer(cfg.vocabSize);
    const t0 = Date.now();
    const sum = await writeLlama4Gguf(out, cfg, ftype, randomProducer(seed, cfg.hiddenSize), tok, `llama4-${presetName}-random`, {
      onTensor: (n, i, total) => { if (!values.quiet && process.stderr.isTTY) process.stderr.write(`\r[${i + 1}/${total}] ${n.padEnd(28)}`); },
      threads: parseThreads(values.threads),
      pure: values.pure ?? false,
    });
    if (!values.quiet && process.stderr.isTTY) process.stderr.write("\n");
    const types = [...sum.types].map(([t, c]) => `${c} ${t}`).join(', ');
    process.stdout.write(`wrote ${out}: ${presetName}, ${ftype}, ${(sum.bytes / 2 ** 20).toFixed(1)} MiB of tensors (${types}) in ${((Date.now() - t0) / 1000).toFixed(1)} s\n`);
    return 0;
  },
};
