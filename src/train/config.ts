/**
 * The model configuration the trainer uses: the fields of a Hugging Face `llama4_text` config.json, with every
 * derived per-layer fact resolved (spec §1.1). The trainer keeps its own small parser so it depends only on util;
 * `toHfConfig` writes back a config.json the engine (and transformers) load.
 */
import { ConfigError } from '../util/errors.ts';
import { jsonFields } from '../util/json-fields.ts';

export interface RopeScaling {
  readonly factor: number;
  readonly lowFreqFactor: number;
  readonly highFreqFactor: number;
  readonly originalMax: number;
}

export interface TrainModelConfig {
  readonly vocabSize: number;
  readonly hiddenSize: number;
  readonly nLayers: number;
  readonly nHeads: number;
  readonly nKvHeads: number;
  readonly headDim: number;
  /** Routed and shared expert width I. */
  readonly intermediateSize: number;
  /** Dense-layer MLP width Imlp. */
  readonly intermediateSizeMlp: number;
  readonly nExperts: number;
  readonly eps: number;
  readonly ropeTheta: number;
  readonly ropeScaling: RopeScaling | null;
  /** Per layer: true = RoPE + chunked mask, false = NoPE + global causal mask. */
  readonly ropeLayers: readonly boolean[];
  /** Per layer: true = MoE block, false = dense SwiGLU of width Imlp. */
  readonly moeLayers: readonly boolean[];
  readonly useQkNorm: boolean;
  readonly attnTemperatureTuning: boolean;
  readonly floorScale: number;
  readonly attnScale: number;
  readonly chunkSize: number;
  readonly maxPositions: number;
  readonly bosTokenId: number | null;
  readonly eosTokenIds: readonly number[];
  readonly padTokenId: number | null;
  readonly routerAuxLossCoef: number;
}

const fields = (o: Record<string, unknown>) => jsonFields(o, { where: 'config.json', booleansAsNumbers: true, maxInt: 1 << 26 });
const num = (o: Record<string, unknown>, key: string, dflt?: number): number => fields(o).num(key, dflt);
const posInt = (o: Record<string, unknown>, key: string, dflt?: number): number => fields(o).posInt(key, dflt);

/** Parses an HF llama4_text config (or the text_config of a llama4 config) and resolves the derived layer lists. */
export function parseTrainConfig(raw: unknown): TrainModelConfig {
  if (typeof raw !== 'object' || raw === null) throw new ConfigError('config.json: expected a JSON object');
  let o = raw as Record<string, unknown>;
  if (o.model_type === 'llama4' && typeof o.text_config === 'object' && o.text_config !== null) o = o.text_config as Record<string, unknown>;
  const H = posInt(o, 'hidden_size');
  const nHeads = posInt(o, 'num_attention_heads');
  const nKvHeads = posInt(o, 'num_key_value_heads', nHeads);
  const headDim = posInt(o, 'head_dim', Math.floor(H / nHeads));
  if (nHeads % nKvHeads !== 0) throw new ConfigError(`config.json: num_attention_heads ${nHeads} is not a multiple of num_key_value_heads ${nKvHeads}`);
  if (headDim % 2 !== 0) throw new ConfigError(`config.json: head_dim ${headDim} must be even (RoPE pairs)`);
  const L = posInt(o, 'num_hidden_layers');
  if (num(o, 'num_experts_per_tok', 1) !== 1) throw new ConfigError('config.json: only num_experts_per_tok = 1 (Llama 4 top-1 routing) is supported');
  // Derived lists (spec §1.1): an explicit list wins; no_rope_layers uses 1 = RoPE (inverted name).
  const interval = posInt(o, 'no_rope_layer_interval', 4);
  let ropeLayers: boolean[];
  if (Array.isArray(o.no_rope_layers) && o.no_rope_layers.length > 0) {
    if (o.no_rope_layers.length !== L) throw new ConfigError(`config.json: no_rope_layers has ${o.no_rope_layers.length} entries, expected ${L}`);
    ropeLayers = o.no_rope_layers.map((x) => Boolean(x));
  } else ropeLayers = Array.from({ length: L }, (_, l) => (l + 1) % interval !== 0);
  const step = posInt(o, 'interleave_moe_layer_step', 1);
  let moeList: number[];
  if (Array.isArray(o.moe_layers)) moeList = o.moe_layers.map((x) => Number(x));
  else { moeList = []; for (let l = step - 1; l < L; l += step) moeList.push(l); }
  for (const l of moeList) if (!Number.isInteger(l) || l < 0 || l >= L) throw new ConfigError(`config.json: moe_layers entry ${l} out of range 0..${L - 1}`);
  const moeLayers = Array.from({ length: L }, (_, l) => moeList.includes(l));
  const rs = (o.rope_scaling ?? (o.rope_parameters as Record<string, unknown> | undefined)) as Record<string, unknown> | null | undefined;
  let ropeScaling: RopeScaling | null = null;
  let ropeTheta = num(o, 'rope_theta', 500000);
  if (rs && typeof rs === 'object') {
    if (typeof rs.rope_theta === 'number') ropeTheta = rs.rope_theta;
    const type = rs.rope_type ?? rs.type;
    if (type === 'llama3') {
      ropeScaling = {
        factor: num(rs, 'factor'), lowFreqFactor: num(rs, 'low_freq_factor'), highFreqFactor: num(rs, 'high_freq_factor'),
        originalMax: num(rs, 'original_max_position_embeddings'),
      };
    } else if (type !== undefined && type !== 'default') throw new ConfigError(`config.json: unsupported rope type ${JSON.stringify(type)}`);
  }
  const eos = o.eos_token_id;
  const eosTokenIds = Array.isArray(eos) ? eos.map(Number) : typeof eos === 'number' ? [eos] : [];
  const cfg: TrainModelConfig = {
    vocabSize: posInt(o, 'vocab_size'), hiddenSize: H, nLayers: L, nHeads, nKvHeads, headDim,
    intermediateSize: posInt(o, 'intermediate_size'), intermediateSizeMlp: posInt(o, 'intermediate_size_mlp', posInt(o, 'intermediate_size')),
    nExperts: posInt(o, 'num_local_experts', 1), eps: num(o, 'rms_norm_eps', 1e-5), ropeTheta, ropeScaling, ropeLayers, moeLayers,
    useQkNorm: Boolean(o.use_qk_norm ?? true), attnTemperatureTuning: Boolean(o.attn_temperature_tuning ?? true),
    floorScale: num(o, 'floor_scale', 8192), attnScale: num(o, 'attn_scale', 0.1), chunkSize: posInt(o, 'attention_chunk_size', 8192),
    maxPositions: posInt(o, 'max_position_embeddings', 4096),
    bosTokenId: typeof o.bos_token_id === 'number' ? o.bos_token_id : null, eosTokenIds,
    padTokenId: typeof o.pad_token_id === 'number' ? o.pad_token_id : null,
    routerAuxLossCoef: num(o, 'router_aux_loss_coef', 0.001),
  };
  if (o.tie_word_embeddings === true) throw new ConfigError('config.json: tied embeddings are not Llama 4 (tie_word_embeddings must be false)');
  return cfg;
}

/** Writes the config back in HF llama4_text form (explicit layer lists, legacy rope keys like the golden files). */
export function toHfConfig(c: TrainModelConfig): Record<string, unknown> {
  return {
    architectures: ['Llama4ForCausalLM'], model_type: 'llama4_text', attention_bias: false, attention_chunk_size: c.chunkSize,
    attention_dropout: 0, attn_scale: c.attnScale, attn_temperature_tuning: c.attnTemperatureTuning,
    bos_token_id: c.bosTokenId, eos_token_id: c.eosTokenIds.length === 1 ? c.eosTokenIds[0] : [...c.eosTokenIds],
    pad_token_id: c.padTokenId, floor_scale: c.floorScale, head_dim: c.headDim, hidden_act: 'silu', hidden_size: c.hiddenSize,
    initializer_range: 0.02, interleave_moe_layer_step: 1, intermediate_size: c.intermediateSize,
    intermediate_size_mlp: c.intermediateSizeMlp, max_position_embeddings: c.maxPositions,
    moe_layers: c.moeLayers.flatMap((m, l) => (m ? [l] : [])), no_rope_layers: c.ropeLayers.map((r) => (r ? 1 : 0)),
    num_attention_heads: c.nHeads, num_experts_per_tok: 1, num_hidden_layers: c.nLayers, num_key_value_heads: c.nKvHeads,
    num_local_experts: c.nExperts, output_router_logits: false, rms_norm_eps: c.eps,
    rope_scaling: c.ropeScaling
      ? { rope_type: 'llama3', factor: c.ropeScaling.factor, low_freq_factor: c.ropeScaling.lowFreqFactor,
        high_freq_factor: c.ropeScaling.highFreqFactor, original_max_position_embeddings: c.ropeScaling.originalMax }
      : null,
    rope_theta: c.ropeTheta, router_aux_loss_coef: c.routerAuxLossCoef, router_jitter_noise: 0, tie_word_embeddings: false,
    use_cache: true, use_qk_norm: c.useQkNorm, vocab_size: c.vocabSize, torch_dtype: 'float32',
  };
}

/** Inverse frequencies per RoPE pair after llama3 scaling (spec §1.3), computed in fp32 like torch. */
export function ropeInvFreq(c: TrainModelConfig): Float32Array {
  const half = c.headDim / 2;
  const inv = new Float32Array(half);
  for (let i = 0; i < half; i++) {
    const base = Math.fround(1 / Math.fround(Math.pow(c.ropeTheta, (2 * i) / c.headDim)));
    const s = c.ropeScaling;
    if (!s) { inv[i] = base; continue; }
    const wavelen = (2 * Math.PI) / base;
    const lowWl = s.originalMax / s.lowFreqFactor;
    const highWl = s.originalMax / s.highFreqFactor;
    // Branch-wise so the 16/1/1 case (zero denominator) never produces NaN.
    if (wavelen < highWl) inv[i] = base;
    else if (wavelen > lowWl) inv[i] = base / s.factor;
    else {
      const sm = (s.originalMax / wavelen - s.lowFreqFactor) / (s.highFreqFactor - s.lowFreqFactor);
      inv[i] = (1 - sm) * (base / s.factor) + sm * base;
    }
  }
  return inv;
}
