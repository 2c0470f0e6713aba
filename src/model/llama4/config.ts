/**
 * Llama 4 text configuration, parsed once from a Hugging Face config.json (text-only `llama4_text` or the full
 * `llama4` layout with `text_config`) into a frozen object with every per-layer fact precomputed.
 * Defaults are Hugging Face's Llama4TextConfig defaults (spec §1.1); where the class default is wrong for real
 * checkpoints (bos/eos ids) we still follow the file, as the reference does.
 */
import { ConfigError, jsonFields } from '../../util/index.ts';

export interface RopeScaling {
  readonly factor: number;
  readonly lowFreqFactor: number;
  readonly highFreqFactor: number;
  readonly originalMaxPositionEmbeddings: number;
}

/** What one decoder layer does — computed once so the forward pass reads facts, not intervals. */
export interface LayerFacts {
  /** RoPE + chunked attention ("chunked_attention") vs NoPE + global causal attention ("full_attention"). */
  readonly usesRope: boolean;
  /** Chunk size for this layer's mask, 0 on global layers. */
  readonly chunkSize: number;
  /** Weightless RMSNorm on q and k after RoPE (RoPE layers of qk-norm models only). */
  readonly qkNorm: boolean;
  /** Query scaled by 1 + attnScale·ln(1 + floor((p+1)/floorScale)) (NoPE layers when tuning is on). */
  readonly temperatureTuning: boolean;
  /** Routed experts + shared expert vs a dense SwiGLU MLP of width intermediateSizeMlp. */
  readonly isMoe: boolean;
}

export interface Llama4Config {
  readonly modelType: 'llama4_text' | 'llama4';
  readonly vocabSize: number;
  readonly hiddenSize: number; // H
  readonly intermediateSize: number; // I: routed and shared expert width
  readonly intermediateSizeMlp: number; // Imlp: dense layer width
  readonly numLayers: number; // L
  readonly numHeads: number; // nh
  readonly numKvHeads: number; // nkv
  readonly headDim: number; // d
  readonly numExperts: number; // E
  readonly numExpertsPerTok: number; // always 1 for Llama 4
  readonly rmsNormEps: number;
  readonly ropeTheta: number;
  readonly ropeScaling: RopeScaling | null;
  /** Per-pair divisors of the inverse frequency (GGUF `rope_freqs.weight`, llama.cpp freq_factors), else absent/null. */
  readonly ropeFreqFactors?: Float32Array | null;
  /**
   * Chunk of the RoPE layers' local attention; null when the checkpoint sets `attention_chunk_size: null` (Llama Guard
   * 4): then every layer attends over the whole causal sequence (HF uses the plain causal mask for RoPE layers when
   * no chunk size is set), while NoPE layers and their temperature tuning stay exactly as configured.
   */
  readonly attentionChunkSize: number | null;
  readonly attnTemperatureTuning: boolean;
  readonly attnScale: number;
  readonly floorScale: number;
  readonly useQkNorm: boolean;
  readonly maxPositionEmbeddings: number;
  readonly bosTokenId: number | null;
  readonly eosTokenIds: readonly number[];
  readonly padTokenId: number | null;
  readonly tieWordEmbeddings: boolean;
  /** `<|patch|>` id in multimodal configs (image_token_index), else null. */
  readonly imageTokenId: number | null;
  readonly layers: readonly LayerFacts[];
}

type Json = Record<string, unknown>;

const fields = (o: Json) => jsonFields(o, { where: 'config.json' });
const num = (o: Json, key: string, def?: number): number => fields(o).num(key, def);
const posInt = (o: Json, key: string, def?: number): number => fields(o).posInt(key, def);

/** Largest chunk / floor size accepted: positions are int32 in both backends' attention. */
export const MAX_ATTENTION_SPAN = 2 ** 31 - 1;

/** A positive integer no larger than MAX_ATTENTION_SPAN (chunk and floor sizes divide positions). */
function attentionSpan(o: Json, key: string, def: number): number {
  const v = o[key];
  if (v !== undefined && v !== null && (typeof v !== 'number' || !Number.isInteger(v) || v <= 0 || v > MAX_ATTENTION_SPAN)) {
    throw new ConfigError(
      `config.json: "${key}" must be an integer from 1 to ${MAX_ATTENTION_SPAN}, got ${typeof v === 'number' ? String(v) : JSON.stringify(v)}`,
    );
  }
  return v === undefined || v === null ? def : (v as number);
}

function nonNegInt(o: Json, key: string, def: number): number {
  const v = num(o, key, def);
  if (!Number.isInteger(v) || v < 0) throw new ConfigError(`config.json: "${key}" must be a non-negative integer, got ${v}`);
  return v;
}

function intList(o: Json, key: string): number[] | null {
  const v = o[key];
  if (v === undefined || v === null) return null;
  if (!Array.isArray(v) || !v.every((x) => Number.isInteger(x))) throw new ConfigError(`config.json: "${key}" must be a list of integers`);
  return v as number[];
}

function idList(v: unknown): number[] {
  if (v === undefined || v === null) return [];
  if (typeof v === 'number') return [v];
  if (Array.isArray(v) && v.every((x) => Number.isInteger(x))) return v as number[];
  throw new ConfigError(`config.json: eos_token_id must be an integer or a list of integers, got ${JSON.stringify(v)}`);
}

function parseRope(o: Json): { theta: number; scaling: RopeScaling | null } {
  // Newer transformers: rope_parameters {rope_type, rope_theta, factor, ...}; older: rope_theta + rope_scaling.
  const params = (o['rope_parameters'] ?? null) as Json | null;
  const theta = params && typeof params['rope_theta'] === 'number' ? (params['rope_theta'] as number) : num(o, 'rope_theta', 500000);
  const s = (params && params['rope_type'] !== undefined ? params : (o['rope_scaling'] ?? null)) as Json | null;
  if (!s) return { theta, scaling: null };
  const type = s['rope_type'] ?? s['type'];
  if (type === 'default' || type === undefined) return { theta, scaling: null };
  if (type !== 'llama3')
    throw new ConfigError(`config.json: unsupported rope scaling type ${JSON.stringify(type)} (Llama 4 uses "llama3" or none)`);
  const scaling: RopeScaling = {
    factor: num(s, 'factor'),
    lowFreqFactor: num(s, 'low_freq_factor', 1),
    highFreqFactor: num(s, 'high_freq_factor', 4),
    originalMaxPositionEmbeddings: num(s, 'original_max_position_embeddings', 8192),
  };
  if (scaling.factor <= 0 || scaling.lowFreqFactor <= 0 || scaling.highFreqFactor < scaling.lowFreqFactor) {
    throw new ConfigError(`config.json: inconsistent llama3 rope scaling ${JSON.stringify(s)}`);
  }
  return { theta, scaling };
}

/**
 * Parses a Hugging Face config.json object. `generation` is generation_config.json when present (its eos list wins).
 */
export function parseHfConfig(json: unknown, generation?: unknown): Llama4Config {
  if (!json || typeof json !== 'object') throw new ConfigError('config.json: not a JSON object');
  const top = json as Json;
  const modelType = top['model_type'];
  let t: Json;
  let imageTokenId: number | null = null;
  if (modelType === 'llama4') {
    t = (top['text_config'] ?? null) as Json;
    if (!t || typeof t !== 'object') throw new ConfigError('config.json: model_type "llama4" needs a "text_config" object');
    const img = top['image_token_index'] ?? top['image_token_id'];
    imageTokenId = typeof img === 'number' ? img : 200092;
  } else if (modelType === 'llama4_text') {
    t = top;
  } else {
    throw new ConfigError(`config.json: unsupported model_type ${JSON.stringify(modelType)} (expected "llama4" or "llama4_text")`);
  }
  const hiddenSize = posInt(t, 'hidden_size', 5120);
  const numHeads = posInt(t, 'num_attention_heads', 40);
  const numKvHeads = posInt(t, 'num_key_value_heads', numHeads);
  const headDim = t['head_dim'] == null ? hiddenSize / numHeads : posInt(t, 'head_dim');
  const numLayers = posInt(t, 'num_hidden_layers', 48);
  // Dense checkpoints (Llama Guard 4) say num_local_experts 0, moe_layers [] and often num_experts_per_tok 0.
  const numExperts = nonNegInt(t, 'num_local_experts', 16);
  const numExpertsPerTok = nonNegInt(t, 'num_experts_per_tok', 1);
  if (!Number.isInteger(headDim) || headDim % 2 !== 0) throw new ConfigError(`config.json: head_dim ${headDim} must be an even integer`);
  if (numHeads % numKvHeads !== 0)
    throw new ConfigError(`config.json: num_attention_heads ${numHeads} is not a multiple of num_key_value_heads ${numKvHeads}`);
  const hiddenAct = t['hidden_act'] ?? 'silu';
  if (hiddenAct !== 'silu')
    throw new ConfigError(`config.json: hidden_act ${JSON.stringify(hiddenAct)} is not supported (Llama 4 uses silu)`);

  // no_rope_layers[l] = 1 means RoPE (HF's inverted name); an explicit non-empty list wins over the interval.
  const interval = posInt(t, 'no_rope_layer_interval', 4);
  let noRope = intList(t, 'no_rope_layers');
  if (!noRope || noRope.length === 0) noRope = Array.from({ length: numLayers }, (_, l) => ((l + 1) % interval !== 0 ? 1 : 0));
  if (noRope.length !== numLayers)
    throw new ConfigError(`config.json: no_rope_layers has ${noRope.length} entries for ${numLayers} layers`);
  // moe_layers: explicit list (even []) wins, else every `step`-th layer starting at step-1. Step 0 or no experts
  // means dense everywhere (HF would fail on range(-1, L, 0); llama.cpp: MoE iff step > 0 && (l+1) % step == 0).
  const step = nonNegInt(t, 'interleave_moe_layer_step', 1);
  let moe = intList(t, 'moe_layers');
  if (!moe) moe = step === 0 || numExperts === 0 ? [] : Array.from({ length: numLayers }, (_, l) => l).filter((l) => l % step === step - 1);
  for (const l of moe)
    if (l < 0 || l >= numLayers) throw new ConfigError(`config.json: moe_layers entry ${l} is outside 0..${numLayers - 1}`);
  if (moe.length && numExperts === 0) throw new ConfigError(`config.json: moe_layers lists layer ${moe[0]} but num_local_experts is 0`);
  if (moe.length && numExpertsPerTok !== 1)
    throw new ConfigError(`config.json: num_experts_per_tok ${numExpertsPerTok} is not supported (Llama 4 routes each token to 1 expert)`);
  const moeSet = new Set(moe);

  // Absent: HF's default 8192. Explicit null: no chunking (see Llama4Config.attentionChunkSize). Anything else must
  // be a usable span — 1e308 used to load and then fail inside attention.
  const attentionChunkSize = t['attention_chunk_size'] === null ? null : attentionSpan(t, 'attention_chunk_size', 8192);
  // Scout ships attn_temperature_tuning as the integer 4: any truthy value means on.
  const attnTemperatureTuning = Boolean(t['attn_temperature_tuning'] ?? true);
  const useQkNorm = Boolean(t['use_qk_norm'] ?? true);
  const layers: LayerFacts[] = noRope.map((r, l) => {
    const usesRope = r !== 0;
    return {
      usesRope,
      chunkSize: usesRope && attentionChunkSize !== null ? attentionChunkSize : 0,
      qkNorm: useQkNorm && usesRope,
      temperatureTuning: attnTemperatureTuning && !usesRope,
      isMoe: moeSet.has(l),
    };
  });
  const rope = parseRope(t);
  const gen = (generation && typeof generation === 'object' ? generation : {}) as Json;
  const eos = idList(gen['eos_token_id'] ?? t['eos_token_id'] ?? top['eos_token_id']);
  const bos = gen['bos_token_id'] ?? t['bos_token_id'] ?? top['bos_token_id'];
  const pad = t['pad_token_id'] ?? top['pad_token_id'];
  return Object.freeze({
    modelType,
    vocabSize: posInt(t, 'vocab_size', 202048),
    hiddenSize,
    intermediateSize: posInt(t, 'intermediate_size', 8192),
    intermediateSizeMlp: posInt(t, 'intermediate_size_mlp', 16384),
    numLayers,
    numHeads,
    numKvHeads,
    headDim,
    numExperts,
    numExpertsPerTok: moe.length ? 1 : numExpertsPerTok,
    rmsNormEps: num(t, 'rms_norm_eps', 1e-5),
    ropeTheta: rope.theta,
    ropeScaling: rope.scaling,
    attentionChunkSize,
    attnTemperatureTuning,
    attnScale: num(t, 'attn_scale', 0.1),
    floorScale: attentionSpan(t, 'floor_scale', 8192),
    useQkNorm,
    maxPositionEmbeddings: posInt(t, 'max_position_embeddings', 131072),
    bosTokenId: typeof bos === 'number' ? bos : null,
    eosTokenIds: eos,
    padTokenId: typeof pad === 'number' ? pad : null,
    tieWordEmbeddings: Boolean(t['tie_word_embeddings'] ?? top['tie_word_embeddings'] ?? false),
    imageTokenId,
    layers: Object.freeze(layers.map((f) => Object.freeze(f))),
  });
}

/** NoPE-layer query scale at absolute position p (temperature tuning, spec §2.2), in float32 steps like torch. */
export function attnTemperatureScale(cfg: Pick<Llama4Config, 'attnScale' | 'floorScale'>, p: number): number {
  return Math.fround(Math.fround(Math.log(Math.floor((p + 1) / cfg.floorScale) + 1)) * cfg.attnScale + 1);
}

/**
 * RoPE inverse frequencies per pair j < d/2 after llama3 scaling (spec §1.3), as float32 like torch.
 * Computed branch-wise so the zero-denominator smooth factor of 16/1/1 scaling never leaks a NaN.
 */
export function ropeInvFreq(cfg: Pick<Llama4Config, 'headDim' | 'ropeTheta' | 'ropeScaling' | 'ropeFreqFactors'>): Float32Array {
  const half = cfg.headDim / 2;
  const inv = new Float32Array(half);
  for (let j = 0; j < half; j++) {
    // torch: 1 / theta ** (arange(0, d, 2).float() / d), all in float32
    const expo = Math.fround((2 * j) / cfg.headDim);
    inv[j] = Math.fround(1 / Math.fround(Math.pow(cfg.ropeTheta, expo)));
  }
  // GGUF files carry llama3 scaling as per-pair divisors instead (θ = pos·inv_j / ff_j, as ggml applies them).
  const ff = cfg.ropeFreqFactors;
  if (ff) for (let j = 0; j < half; j++) inv[j] = Math.fround(inv[j]! / ff[j]!);
  const s = cfg.ropeScaling;
  if (!s) return inv;
  const lowWavelen = s.originalMaxPositionEmbeddings / s.lowFreqFactor;
  const highWavelen = s.originalMaxPositionEmbeddings / s.highFreqFactor;
  for (let j = 0; j < half; j++) {
    const f = inv[j]!;
    const wavelen = (2 * Math.PI) / f;
    if (wavelen < highWavelen) continue; // high frequency: kept
    if (wavelen > lowWavelen) {
      inv[j] = f / s.factor;
      continue;
    } // low frequency: divided by factor
    const smooth = (s.originalMaxPositionEmbeddings / wavelen - s.lowFreqFactor) / (s.highFreqFactor - s.lowFreqFactor);
    inv[j] = (1 - smooth) * (f / s.factor) + smooth * f;
  }
  return inv;
}
