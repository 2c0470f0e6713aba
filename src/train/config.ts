/**
 * The model configuration the trainer uses: the fields of a Hugging Face `llama4_text` config.json, with every
 * derived per-layer fact resolved (spec §1.1) by model/llama4's parser; `toHfConfig` writes back a config.json the
 * engine (and transformers) load.
 */
import { ConfigError } from '../util/errors.ts';
import { parseHfConfig, type LayerFacts, type Llama4Config } from '../model/llama4/config.ts';

export interface RopeScaling {
  readonly factor: number;
  readonly lowFreqFactor: number;
  readonly highFreqFactor: number;
  readonly originalMax: number;
}

export interface TrainModelConfig {
  /** The inference model's view of the same config (model/llama4): the source of every derived fact below. */
  readonly llama: Llama4Config;
  readonly layers: readonly LayerFacts[];
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
  /** attention_chunk_size; null = no chunking (every layer global). Per-layer spans are in `layers`. */
  readonly chunkSize: number | null;
  readonly maxPositions: number;
  readonly bosTokenId: number | null;
  readonly eosTokenIds: readonly number[];
  readonly padTokenId: number | null;
  readonly routerAuxLossCoef: number;
}

/**
 * Parses an HF llama4_text config (or the text_config of a llama4 config) with model/llama4's parser — the same
 * LayerFacts (RoPE/chunk, NoPE/temperature tuning, qk-norm, MoE) and RoPE frequencies the inference model uses —
 * after filling the trainer's defaults for small models (a config.json written for a toy run often omits them).
 */
export function parseTrainConfig(raw: unknown): TrainModelConfig {
  if (typeof raw !== 'object' || raw === null) throw new ConfigError('config.json: expected a JSON object');
  let o = raw as Record<string, unknown>;
  if (o.model_type === 'llama4' && typeof o.text_config === 'object' && o.text_config !== null)
    o = o.text_config as Record<string, unknown>;
  const filled: Record<string, unknown> = { ...o, model_type: 'llama4_text' };
  for (const k of ['hidden_size', 'num_attention_heads', 'num_hidden_layers', 'vocab_size', 'intermediate_size'])
    if (o[k] === undefined || o[k] === null) throw new ConfigError(`config.json: missing "${k}"`);
  const defaults: Record<string, unknown> = {
    num_local_experts: 1,
    intermediate_size_mlp: o.intermediate_size,
    max_position_embeddings: 4096,
    rope_theta: 500000,
  };
  for (const [k, v] of Object.entries(defaults)) if (filled[k] === undefined || filled[k] === null) filled[k] = v;
  for (const k of ['use_qk_norm', 'attn_temperature_tuning']) if (typeof filled[k] === 'number') filled[k] = filled[k] !== 0;
  const llama = parseHfConfig(filled);
  if (llama.tieWordEmbeddings) throw new ConfigError('config.json: tied embeddings are not Llama 4 (tie_word_embeddings must be false)');
  const aux = o.router_aux_loss_coef;
  return {
    llama,
    layers: llama.layers,
    vocabSize: llama.vocabSize,
    hiddenSize: llama.hiddenSize,
    nLayers: llama.numLayers,
    nHeads: llama.numHeads,
    nKvHeads: llama.numKvHeads,
    headDim: llama.headDim,
    intermediateSize: llama.intermediateSize,
    intermediateSizeMlp: llama.intermediateSizeMlp,
    nExperts: llama.numExperts,
    eps: llama.rmsNormEps,
    ropeTheta: llama.ropeTheta,
    ropeScaling: llama.ropeScaling
      ? {
          factor: llama.ropeScaling.factor,
          lowFreqFactor: llama.ropeScaling.lowFreqFactor,
          highFreqFactor: llama.ropeScaling.highFreqFactor,
          originalMax: llama.ropeScaling.originalMaxPositionEmbeddings,
        }
      : null,
    ropeLayers: llama.layers.map((f) => f.usesRope),
    moeLayers: llama.layers.map((f) => f.isMoe),
    useQkNorm: llama.useQkNorm,
    attnTemperatureTuning: llama.attnTemperatureTuning,
    floorScale: llama.floorScale,
    attnScale: llama.attnScale,
    chunkSize: llama.attentionChunkSize,
    maxPositions: llama.maxPositionEmbeddings,
    bosTokenId: llama.bosTokenId,
    eosTokenIds: llama.eosTokenIds,
    padTokenId: llama.padTokenId,
    routerAuxLossCoef: typeof aux === 'number' && Number.isFinite(aux) ? aux : 0.001,
  };
}

/** Writes the config back in HF llama4_text form (explicit layer lists, legacy rope keys like the golden files). */
export function toHfConfig(c: TrainModelConfig): Record<string, unknown> {
  return {
    architectures: ['Llama4ForCausalLM'],
    model_type: 'llama4_text',
    attention_bias: false,
    attention_chunk_size: c.chunkSize,
    attention_dropout: 0,
    attn_scale: c.attnScale,
    attn_temperature_tuning: c.attnTemperatureTuning,
    bos_token_id: c.bosTokenId,
    eos_token_id: c.eosTokenIds.length === 1 ? c.eosTokenIds[0] : [...c.eosTokenIds],
    pad_token_id: c.padTokenId,
    floor_scale: c.floorScale,
    head_dim: c.headDim,
    hidden_act: 'silu',
    hidden_size: c.hiddenSize,
    initializer_range: 0.02,
    interleave_moe_layer_step: 1,
    intermediate_size: c.intermediateSize,
    intermediate_size_mlp: c.intermediateSizeMlp,
    max_position_embeddings: c.maxPositions,
    moe_layers: c.moeLayers.flatMap((m, l) => (m ? [l] : [])),
    no_rope_layers: c.ropeLayers.map((r) => (r ? 1 : 0)),
    num_attention_heads: c.nHeads,
    num_experts_per_tok: 1,
    num_hidden_layers: c.nLayers,
    num_key_value_heads: c.nKvHeads,
    num_local_experts: c.nExperts,
    output_router_logits: false,
    rms_norm_eps: c.eps,
    rope_scaling: c.ropeScaling
      ? {
          rope_type: 'llama3',
          factor: c.ropeScaling.factor,
          low_freq_factor: c.ropeScaling.lowFreqFactor,
          high_freq_factor: c.ropeScaling.highFreqFactor,
          original_max_position_embeddings: c.ropeScaling.originalMax,
        }
      : null,
    rope_theta: c.ropeTheta,
    router_aux_loss_coef: c.routerAuxLossCoef,
    router_jitter_noise: 0,
    tie_word_embeddings: false,
    use_cache: true,
    use_qk_norm: c.useQkNorm,
    vocab_size: c.vocabSize,
    torch_dtype: 'float32',
  };
}
