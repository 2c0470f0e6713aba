/**
 * Builds tiny random Llama 4 checkpoints in the Hugging Face layout (config.json + safetensors, optionally BF16 or
 * sharded) for tests, with a seeded generator so every run writes the same bytes.
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { RawTensor } from '../../src/tensor/index.ts';
import { f32ToBf16 } from '../../src/tensor/index.ts';
import { writeSafetensors } from '../../src/io/safetensors.ts';
import { rng as refRng } from '../../src/kernels/backend-refs.case.test.ts';

export interface TinySpec {
  hidden?: number;
  heads?: number;
  kvHeads?: number;
  headDim?: number;
  layers?: number;
  experts?: number;
  inter?: number;
  interMlp?: number;
  vocab?: number;
  chunk?: number | null;
  floorScale?: number;
  attnScale?: number;
  moeLayers?: number[];
  noRopeLayers?: number[];
  step?: number;
  qkNorm?: boolean;
  tempTuning?: boolean;
  ropeTheta?: number;
  ropeScaling?: Record<string, unknown> | null;
  dtype?: 'f32' | 'bf16';
  shards?: number;
  std?: number;
  seed?: number;
  layout?: 'text' | 'full';
  eos?: number | number[];
}

/** Uniform [0, 1) from the conformance suites' seeded xorshift32 (the same sequence for the same seed). */
export function rng(seed: number): () => number {
  return refRng(seed).u;
}

/** Returns the HF config object and HF-named float32 tensors. */
export function tinyModel(spec: TinySpec = {}) {
  const H = spec.hidden ?? 32,
    nh = spec.heads ?? 4,
    nkv = spec.kvHeads ?? 2,
    d = spec.headDim ?? 8,
    L = spec.layers ?? 4;
  const E = spec.experts ?? 3,
    I = spec.inter ?? 24,
    Imlp = spec.interMlp ?? 40,
    V = spec.vocab ?? 64;
  const step = spec.step ?? 1;
  const moeLayers =
    spec.moeLayers ?? (step === 0 || E === 0 ? [] : Array.from({ length: L }, (_, l) => l).filter((l) => l % step === step - 1));
  const config: Record<string, unknown> = {
    architectures: ['Llama4ForCausalLM'],
    model_type: 'llama4_text',
    hidden_size: H,
    num_attention_heads: nh,
    num_key_value_heads: nkv,
    head_dim: d,
    num_hidden_layers: L,
    num_local_experts: E,
    num_experts_per_tok: 1,
    intermediate_size: I,
    intermediate_size_mlp: Imlp,
    vocab_size: V,
    attention_chunk_size: spec.chunk === undefined ? 8 : spec.chunk,
    floor_scale: spec.floorScale ?? 4,
    attn_scale: spec.attnScale ?? 0.1,
    interleave_moe_layer_step: step,
    moe_layers: moeLayers,
    use_qk_norm: spec.qkNorm ?? true,
    attn_temperature_tuning: spec.tempTuning ?? true,
    rope_theta: spec.ropeTheta ?? 10000,
    rope_scaling: spec.ropeScaling ?? null,
    rms_norm_eps: 1e-5,
    max_position_embeddings: 4096,
    bos_token_id: 1,
    eos_token_id: spec.eos ?? 2,
    tie_word_embeddings: false,
    hidden_act: 'silu',
  };
  if (spec.noRopeLayers) config['no_rope_layers'] = spec.noRopeLayers;
  const rand = rng(spec.seed ?? 7);
  const std = spec.std ?? 0.2;
  const normal = () => {
    const u = Math.max(rand(), 1e-12),
      v = rand();
    return Math.sqrt(-2 * Math.log(u)) * Math.cos(2 * Math.PI * v);
  };
  const t = (shape: number[], kind: 'w' | 'norm' = 'w') => {
    const n = shape.reduce((a, b) => a * b, 1);
    const a = new Float32Array(n);
    for (let i = 0; i < n; i++) a[i] = kind === 'norm' ? 1 + 0.1 * normal() : std * normal();
    return { shape, data: a };
  };
  const tensors = new Map<string, { shape: number[]; data: Float32Array }>();
  tensors.set('model.embed_tokens.weight', t([V, H]));
  tensors.set('model.norm.weight', t([H], 'norm'));
  tensors.set('lm_head.weight', t([V, H]));
  for (let l = 0; l < L; l++) {
    const p = `model.layers.${l}.`;
    tensors.set(p + 'input_layernorm.weight', t([H], 'norm'));
    tensors.set(p + 'post_attention_layernorm.weight', t([H], 'norm'));
    tensors.set(p + 'self_attn.q_proj.weight', t([nh * d, H]));
    tensors.set(p + 'self_attn.k_proj.weight', t([nkv * d, H]));
    tensors.set(p + 'self_attn.v_proj.weight', t([nkv * d, H]));
    tensors.set(p + 'self_attn.o_proj.weight', t([H, nh * d]));
    if (moeLayers.includes(l)) {
      tensors.set(p + 'feed_forward.router.weight', t([E, H]));
      tensors.set(p + 'feed_forward.experts.gate_up_proj', t([E, H, 2 * I]));
      tensors.set(p + 'feed_forward.experts.down_proj', t([E, I, H]));
      tensors.set(p + 'feed_forward.shared_expert.gate_proj.weight', t([I, H]));
      tensors.set(p + 'feed_forward.shared_expert.up_proj.weight', t([I, H]));
      tensors.set(p + 'feed_forward.shared_expert.down_proj.weight', t([H, I]));
    } else {
      tensors.set(p + 'feed_forward.gate_proj.weight', t([Imlp, H]));
      tensors.set(p + 'feed_forward.up_proj.weight', t([Imlp, H]));
      tensors.set(p + 'feed_forward.down_proj.weight', t([H, Imlp]));
    }
  }
  if (spec.dtype === 'bf16') {
    // Round the float32 values to bf16 so the reference (which reads these arrays) sees exactly the stored weights.
    for (const v of tensors.values())
      for (let i = 0; i < v.data.length; i++) {
        const b = f32ToBf16(v.data[i]!);
        v.data[i] = new Float32Array(new Uint32Array([b << 16]).buffer)[0]!;
      }
  }
  return { config, tensors };
}

function toRaw(name: string, shape: number[], data: Float32Array, dtype: 'f32' | 'bf16'): RawTensor {
  if (dtype === 'f32') return { name, dtype, shape, bytes: new Uint8Array(data.buffer.slice(0)) };
  const out = new Uint8Array(data.length * 2);
  for (let i = 0; i < data.length; i++) {
    const b = f32ToBf16(data[i]!);
    out[2 * i] = b & 0xff;
    out[2 * i + 1] = b >> 8;
  }
  return { name, dtype, shape, bytes: out };
}

/**
 * Writes the model as an HF folder; returns the in-memory text config and float32 tensors too (HF text names).
 * layout 'full' writes what Llama4ForConditionalGeneration saves (Llama Guard 4's layout): model_type "llama4" with
 * the text config under text_config and tensors under language_model.* (no vision tower).
 */
export function writeTinyCheckpoint(dir: string, spec: TinySpec = {}) {
  const m = tinyModel(spec);
  mkdirSync(dir, { recursive: true });
  const full = spec.layout === 'full';
  const fileConfig = full
    ? {
        architectures: ['Llama4ForConditionalGeneration'],
        model_type: 'llama4',
        image_token_index: 200092,
        text_config: m.config,
        tie_word_embeddings: false,
      }
    : m.config;
  writeFileSync(join(dir, 'config.json'), JSON.stringify(fileConfig, null, 2));
  const dtype = spec.dtype ?? 'f32';
  const fileName = (n: string) => (full ? `language_model.${n}` : n);
  const raws = [...m.tensors].map(([n, v]) => toRaw(fileName(n), v.shape, v.data, dtype));
  const shards = spec.shards ?? 1;
  if (shards === 1) {
    writeSafetensors(join(dir, 'model.safetensors'), raws);
  } else {
    const weightMap: Record<string, string> = {};
    for (let s = 0; s < shards; s++) {
      const file = `model-${String(s + 1).padStart(5, '0')}-of-${String(shards).padStart(5, '0')}.safetensors`;
      const part = raws.filter((_, i) => i % shards === s);
      part.forEach((r) => (weightMap[r.name] = file));
      writeSafetensors(join(dir, file), part);
    }
    writeFileSync(join(dir, 'model.safetensors.index.json'), JSON.stringify({ metadata: {}, weight_map: weightMap }));
  }
  return m;
}
