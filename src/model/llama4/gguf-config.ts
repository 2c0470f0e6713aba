/**
 * llama.cpp's GGUF layout of Llama 4 (spec §6.4) -> the same Llama4Config and internal tensors as the safetensors
 * path, and back (config -> GGUF metadata, for the writer).
 *
 * Quirks of the GGUF side, each mirrored here because llama.cpp hard-codes rather than stores them:
 * - The converter swaps the FFN names: `feed_forward_length` is the dense-MLP width (HF intermediate_size_mlp) and
 *   `expert_feed_forward_length` the routed/shared expert width (HF intermediate_size).
 * - Chunked attention is always 8192 with every 4th layer (l+1 ≡ 0 mod 4) global and NoPE; temperature tuning on the
 *   NoPE layers uses floor 8192, scale 0.1, offset 1. `attention.sliding_window = 0` marks all-global, all-RoPE
 *   variants (no chunking, no NoPE, no tuning).
 * - Dense models (no experts; Llama Guard 4) have interleave_moe_layer_step 0 and only the dense
 *   ffn_gate/ffn_up/ffn_down tensors. llama.cpp refuses expert_count 0 for llama4, so we write expert_count 1 /
 *   expert_used_count 1 (unused: step 0 means no MoE layer) and read step 0 or expert_count 0 as dense. A checkpoint without chunking (`attention_chunk_size: null`) but with
 *   NoPE layers has no GGUF spelling: llama.cpp reads it as chunked at 8192, which agrees up to 8192 tokens.
 * - QK-norm is on unless the model has 128 experts (Maverick), as llama.cpp decides by model type.
 * - Llama-3 RoPE scaling is not stored as parameters: `rope_freqs.weight` [d/2] holds per-pair divisors of the
 *   inverse frequency (θ = pos·inv_j / ff_j), returned here as ropeFreqFactors.
 * - Tensors are named `<internal>.weight`; shapes are already torch order after the reader reverses ggml `ne`.
 */
import type { RawTensor } from '../../tensor/index.ts';
import { dequantize } from '../../tensor/index.ts';
import { ConfigError, ModelFileError, fieldReader } from '../../util/index.ts';
import type { LayerFacts, Llama4Config } from './config.ts';
import { validateTensors } from './weights.ts';

/** GGUF metadata values as the reader returns them (numbers, strings, booleans, arrays). */
export type GgufMetadata = ReadonlyMap<string, unknown>;

/** llama.cpp's hard-coded Llama 4 constants (llama-model.cpp, LLM_ARCH_LLAMA4). */
export const LLAMA4_GGUF_CONSTANTS = Object.freeze({
  chunkSize: 8192,
  noRopeStep: 4,
  floorScale: 8192,
  attnScale: 0.1,
  /** Experts of the model type that runs without qk-norm. */
  noQkNormExperts: 128,
});

export interface GgufLlama4 {
  readonly config: Llama4Config;
  /** Internal names (token_embd, blk.N.attn_q, …), torch-order shapes, validated against the config. */
  readonly tensors: Map<string, RawTensor>;
  /** Per-pair RoPE frequency divisors from `rope_freqs.weight` (Scout's llama3 scaling), or null. */
  readonly ropeFreqFactors: Float32Array | null;
}

function getNum(md: GgufMetadata, key: string, file: string, def?: number): number {
  const v = md.get(key);
  if (v === undefined) {
    if (def === undefined) throw new ModelFileError(file, `GGUF metadata key '${key}' is missing`);
    return def;
  }
  if (typeof v === 'number' && Number.isFinite(v)) return v;
  if (typeof v === 'bigint') return Number(v);
  // Per-layer arrays (head_count_kv in some models): accept them when every layer agrees.
  if (ArrayBuffer.isView(v) && !(v instanceof DataView)) {
    const arr = Array.from(v as unknown as ArrayLike<number>, Number);
    if (arr.length > 0 && arr.every((x) => x === arr[0])) return arr[0]!;
    throw new ConfigError(`${file}: '${key}' varies per layer (${arr.slice(0, 8).join(', ')}…), which Llama 4 does not do`);
  }
  throw new ModelFileError(file, `GGUF metadata key '${key}' should be a number, got ${typeof v}`);
}

function getPosInt(md: GgufMetadata, key: string, file: string, def?: number): number {
  const v = getNum(md, key, file, def);
  if (!Number.isInteger(v) || v <= 0) throw new ModelFileError(file, `GGUF metadata key '${key}' must be a positive integer, got ${v}`);
  return v;
}

const optId = (md: GgufMetadata, key: string): number | null => fieldReader((k) => md.get(k), { where: '' }).optId(key);

/**
 * Builds the Llama4Config that llama.cpp would run for this GGUF metadata. `tensorShapes` (internal names)
 * supplies what the metadata may omit: the vocabulary size and whether the output head is tied.
 */
export function configFromGguf(
  md: GgufMetadata,
  tensorShapes: ReadonlyMap<string, { shape: readonly number[] }>,
  file = 'model.gguf',
): Llama4Config {
  const arch = md.get('general.architecture');
  if (arch !== 'llama4') {
    throw new ConfigError(`${file}: GGUF architecture ${JSON.stringify(arch)} is not supported (expected "llama4")`);
  }
  const k = (s: string): string => `llama4.${s}`;
  const hiddenSize = getPosInt(md, k('embedding_length'), file);
  const numLayers = getPosInt(md, k('block_count'), file);
  // Every layer has tensors: a block count beyond the tensor count is corrupt (and must not size any allocation).
  if (numLayers > Math.max(tensorShapes.size, 1))
    throw new ModelFileError(file, `block_count ${numLayers} exceeds the ${tensorShapes.size} tensors in the file`);
  const numHeads = getPosInt(md, k('attention.head_count'), file);
  const numKvHeads = getPosInt(md, k('attention.head_count_kv'), file, numHeads);
  const headDim = getPosInt(md, k('attention.key_length'), file, getNum(md, k('rope.dimension_count'), file, hiddenSize / numHeads));
  const valueLength = getPosInt(md, k('attention.value_length'), file, headDim);
  if (valueLength !== headDim)
    throw new ConfigError(`${file}: key_length ${headDim} != value_length ${valueLength} is not a Llama 4 layout`);
  if (headDim % 2 !== 0) throw new ConfigError(`${file}: head dimension ${headDim} must be even`);
  if (numHeads % numKvHeads !== 0)
    throw new ConfigError(`${file}: head_count ${numHeads} is not a multiple of head_count_kv ${numKvHeads}`);
  const numExperts = getNum(md, k('expert_count'), file, 0);
  const numExpertsPerTok = getNum(md, k('expert_used_count'), file, numExperts > 0 ? 1 : 0);
  if (numExperts > 0 && numExpertsPerTok !== 1) {
    throw new ConfigError(`${file}: expert_used_count ${numExpertsPerTok} is not supported (Llama 4 routes each token to 1 expert)`);
  }
  // 0 (what a dense model such as Llama Guard 4 carries) means no MoE layers, as in llama.cpp.
  const step = getNum(md, k('interleave_moe_layer_step'), file, 1);
  if (!Number.isInteger(step) || step < 0)
    throw new ModelFileError(file, `GGUF metadata key '${k('interleave_moe_layer_step')}' must be a non-negative integer, got ${step}`);
  // Swapped names (see header): feed_forward_length is the dense width, expert_feed_forward_length the expert width.
  const intermediateSizeMlp = getNum(md, k('feed_forward_length'), file, 0);
  const intermediateSize = getNum(md, k('expert_feed_forward_length'), file, 0);
  const swa = md.get(k('attention.sliding_window'));
  const allGlobal = swa !== undefined && Number(swa) === 0;
  const C = LLAMA4_GGUF_CONSTANTS;
  const useQkNorm = numExperts !== C.noQkNormExperts;
  const layers: LayerFacts[] = Array.from({ length: numLayers }, (_, l) => {
    const usesRope = allGlobal || (l + 1) % C.noRopeStep !== 0;
    return Object.freeze({
      usesRope,
      chunkSize: usesRope && !allGlobal ? C.chunkSize : 0,
      qkNorm: useQkNorm && usesRope,
      temperatureTuning: !allGlobal && !usesRope,
      // llama.cpp: MoE iff (l+1) % n_moe_layer_step == 0, and only when the model has experts.
      isMoe: numExperts > 0 && step > 0 && (l + 1) % step === 0,
    });
  });
  if (layers.some((f) => f.isMoe) && intermediateSize <= 0)
    throw new ModelFileError(file, `GGUF metadata key '${k('expert_feed_forward_length')}' is missing`);
  if (layers.some((f) => !f.isMoe) && intermediateSizeMlp <= 0)
    throw new ModelFileError(file, `GGUF metadata key '${k('feed_forward_length')}' is missing`);
  const tokens = md.get('tokenizer.ggml.tokens');
  const embd = tensorShapes.get('token_embd');
  const vocabSize = getPosInt(md, k('vocab_size'), file, embd?.shape[0] ?? (Array.isArray(tokens) ? tokens.length : undefined));
  const rmsNormEps = getNum(md, k('attention.layer_norm_rms_epsilon'), file);
  const ropeTheta = getNum(md, k('rope.freq_base'), file, 10000);
  if (!(rmsNormEps > 0) || !(ropeTheta > 1))
    throw new ModelFileError(file, `implausible rms epsilon ${rmsNormEps} or rope.freq_base ${ropeTheta}`);
  const eos: number[] = [];
  for (const key of ['tokenizer.ggml.eos_token_id', 'tokenizer.ggml.eom_token_id', 'tokenizer.ggml.eot_token_id']) {
    const id = optId(md, key);
    if (id !== null && !eos.includes(id)) eos.push(id);
  }
  return Object.freeze({
    modelType: 'llama4_text' as const,
    vocabSize,
    hiddenSize,
    intermediateSize: intermediateSize > 0 ? intermediateSize : intermediateSizeMlp,
    intermediateSizeMlp: intermediateSizeMlp > 0 ? intermediateSizeMlp : intermediateSize,
    numLayers,
    numHeads,
    numKvHeads,
    headDim,
    numExperts: layers.some((f) => f.isMoe) ? numExperts : 0,
    numExpertsPerTok: layers.some((f) => f.isMoe) ? 1 : 0,
    rmsNormEps,
    ropeTheta,
    ropeScaling: null,
    attentionChunkSize: C.chunkSize,
    attnTemperatureTuning: !allGlobal,
    attnScale: C.attnScale,
    floorScale: C.floorScale,
    useQkNorm,
    maxPositionEmbeddings: getPosInt(md, k('context_length'), file, 131072),
    bosTokenId: optId(md, 'tokenizer.ggml.bos_token_id'),
    eosTokenIds: Object.freeze(eos),
    padTokenId: optId(md, 'tokenizer.ggml.padding_token_id'),
    tieWordEmbeddings: !tensorShapes.has('output'),
    imageTokenId: null,
    layers: Object.freeze(layers),
  });
}

/**
 * GGUF tensors (`<name>.weight`) -> internal names, plus the config and rope frequency factors.
 * Tensors outside the text model (e.g. a vision tower in the same file) are ignored.
 */
export function llama4FromGguf(md: GgufMetadata, ggufTensors: ReadonlyMap<string, RawTensor>, file = 'model.gguf'): GgufLlama4 {
  const tensors = new Map<string, RawTensor>();
  let ropeFreqs: RawTensor | null = null;
  for (const [name, t] of ggufTensors) {
    if (name === 'rope_freqs.weight') {
      ropeFreqs = t;
      continue;
    }
    if (!name.endsWith('.weight')) continue;
    const internal = name.slice(0, -'.weight'.length);
    if (internal !== 'token_embd' && internal !== 'output_norm' && internal !== 'output' && !internal.startsWith('blk.')) continue;
    tensors.set(internal, { name: internal, dtype: t.dtype, shape: t.shape, bytes: t.bytes });
  }
  const config = configFromGguf(md, tensors, file);
  validateTensors(config, tensors, file);
  let ropeFreqFactors: Float32Array | null = null;
  if (ropeFreqs) {
    const n = ropeFreqs.shape.reduce((a, b) => a * b, 1);
    if (n !== config.headDim / 2)
      throw new ModelFileError(file, `rope_freqs.weight has ${n} entries, expected head_dim/2 = ${config.headDim / 2}`);
    ropeFreqFactors = dequantize(ropeFreqs.dtype, ropeFreqs.bytes, n);
    if (!ropeFreqFactors.every((v) => Number.isFinite(v) && v > 0))
      throw new ModelFileError(file, 'rope_freqs.weight holds non-positive or non-finite divisors');
  }
  return { config: ropeFreqFactors ? Object.freeze({ ...config, ropeFreqFactors }) : config, tensors, ropeFreqFactors };
}

/**
 * The llama4 GGUF metadata llama.cpp needs for a config (architecture and hyperparameters; tokenizer keys are
 * added separately). Values are [key, value, gguf type name] so a writer can store exact types.
 */
export function ggufMetadataFromConfig(
  cfg: Llama4Config,
  name: string,
): [string, number | string | boolean, 'u32' | 'f32' | 'str' | 'bool'][] {
  const k = (s: string): string => `llama4.${s}`;
  const moeLayers = cfg.layers.map((f, l) => (f.isMoe ? l : -1)).filter((l) => l >= 0);
  // Dense models get step 0: llama.cpp builds MoE tensors iff step > 0 && (l+1) % step == 0, so step 1 with
  // expert_count 0 would make it look for 0-expert router tensors.
  const step = moeLayers.length ? moeLayers[0]! + 1 : 0;
  const allGlobal = cfg.layers.every((g) => g.usesRope && g.chunkSize === 0);
  return [
    ['general.architecture', 'llama4', 'str'],
    ['general.name', name, 'str'],
    [k('block_count'), cfg.numLayers, 'u32'],
    [k('context_length'), cfg.maxPositionEmbeddings, 'u32'],
    [k('embedding_length'), cfg.hiddenSize, 'u32'],
    [k('feed_forward_length'), cfg.intermediateSizeMlp, 'u32'],
    [k('attention.head_count'), cfg.numHeads, 'u32'],
    [k('attention.head_count_kv'), cfg.numKvHeads, 'u32'],
    [k('rope.freq_base'), cfg.ropeTheta, 'f32'],
    [k('attention.layer_norm_rms_epsilon'), cfg.rmsNormEps, 'f32'],
    // Dense models: llama.cpp refuses a llama4 with expert_count 0 ("llama4 model cannot have zero experts", seen
    // with node-llama-cpp 3.22.1's build), but builds no expert tensors when the step is 0, so they say 1 / 1 / step 0.
    [k('expert_count'), moeLayers.length ? cfg.numExperts : 1, 'u32'],
    [k('expert_used_count'), 1, 'u32'],
    [k('attention.key_length'), cfg.headDim, 'u32'],
    [k('attention.value_length'), cfg.headDim, 'u32'],
    [k('vocab_size'), cfg.vocabSize, 'u32'],
    [k('rope.dimension_count'), cfg.headDim, 'u32'],
    [k('interleave_moe_layer_step'), step, 'u32'],
    [k('expert_feed_forward_length'), cfg.intermediateSize, 'u32'],
    ...(allGlobal ? [[k('attention.sliding_window'), 0, 'u32'] as [string, number, 'u32']] : []),
  ];
}

/**
 * What llama.cpp would run differently from this config if it were written as GGUF (it hard-codes chunking,
 * NoPE pattern, temperature tuning and qk-norm; see the header). Empty when the GGUF is faithful.
 */
export function ggufIncompatibilities(cfg: Llama4Config): string[] {
  const C = LLAMA4_GGUF_CONSTANTS;
  const out: string[] = [];
  const moeLayers = cfg.layers.map((f, l) => (f.isMoe ? l : -1)).filter((l) => l >= 0);
  const step = moeLayers.length ? moeLayers[0]! + 1 : 1;
  const allGlobal = cfg.layers.every((g) => g.usesRope && g.chunkSize === 0);
  cfg.layers.forEach((f, l) => {
    if (f.isMoe !== (moeLayers.length > 0 && (l + 1) % step === 0))
      out.push(`MoE layers [${moeLayers.join(', ')}] are not every ${step}-th layer`);
    if (!allGlobal && f.usesRope !== ((l + 1) % C.noRopeStep !== 0))
      out.push(`layer ${l} RoPE/NoPE differs from the fixed every-4th-layer NoPE pattern`);
  });
  if (!allGlobal) {
    if (cfg.attentionChunkSize === null)
      out.push(
        `attention_chunk_size null (no chunking; llama.cpp chunks RoPE layers at ${C.chunkSize} unless all layers are RoPE, so results agree only up to ${C.chunkSize} tokens)`,
      );
    else if (cfg.attentionChunkSize !== C.chunkSize)
      out.push(`attention_chunk_size ${cfg.attentionChunkSize} (llama.cpp uses ${C.chunkSize})`);
    if (cfg.layers.some((f) => !f.usesRope)) {
      if (!cfg.attnTemperatureTuning) out.push('attn_temperature_tuning off (llama.cpp always tunes NoPE layers)');
      else if (cfg.floorScale !== C.floorScale || Math.fround(cfg.attnScale) !== Math.fround(C.attnScale))
        out.push(`temperature tuning floor ${cfg.floorScale} / scale ${cfg.attnScale} (llama.cpp uses ${C.floorScale} / ${C.attnScale})`);
    }
  }
  if (cfg.useQkNorm !== (cfg.numExperts !== C.noQkNormExperts))
    out.push(`use_qk_norm=${cfg.useQkNorm} with ${cfg.numExperts} experts (llama.cpp decides qk-norm by expert count)`);
  return [...new Set(out)];
}

/**
 * Per-pair divisors llama.cpp's converter stores as rope_freqs.weight for llama3 scaling (1 for kept pairs,
 * factor for low frequencies, 1/((1-s)/factor + s) in the smooth band), or null without scaling.
 */
export function ropeFreqFactorsFor(cfg: Llama4Config): Float32Array | null {
  const s = cfg.ropeScaling;
  if (!s) return null;
  const half = cfg.headDim / 2;
  const out = new Float32Array(half);
  const lowWavelen = s.originalMaxPositionEmbeddings / s.lowFreqFactor;
  const highWavelen = s.originalMaxPositionEmbeddings / s.highFreqFactor;
  for (let j = 0; j < half; j++) {
    const inv = 1 / Math.pow(cfg.ropeTheta, (2 * j) / cfg.headDim);
    const wavelen = (2 * Math.PI) / inv;
    if (wavelen < highWavelen) out[j] = 1;
    else if (wavelen > lowWavelen) out[j] = s.factor;
    else {
      const smooth = (s.originalMaxPositionEmbeddings / wavelen - s.lowFreqFactor) / (s.highFreqFactor - s.lowFreqFactor);
      out[j] = 1 / ((1 - smooth) / s.factor + smooth);
    }
  }
  return out;
}
