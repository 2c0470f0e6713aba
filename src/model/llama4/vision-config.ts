/**
 * The vision side of a Llama 4 config.json (`vision_config` plus the top-level image token ids), spec §1.2, §1.4.
 * Only what the encoder and prompt expansion need; every derived size is checked here so the encoder can trust it.
 */
import { ConfigError, jsonFields } from '../../util/index.ts';

export interface Llama4VisionConfig {
  /** ViT width (1408 in Scout/Maverick). */
  readonly hiddenSize: number;
  readonly numLayers: number;
  readonly numHeads: number;
  readonly headDim: number;
  /** ViT MLP width; also the adapter's input width (= hiddenSize / ratio², see spec gotcha 10). */
  readonly intermediateSize: number;
  readonly numChannels: number;
  /** Tile side in pixels (336). */
  readonly imageSize: number;
  readonly patchSize: number;
  /** Patches per tile side (24). */
  readonly patchesPerSide: number;
  readonly pixelShuffleRatio: number;
  /** Tokens per tile after pixel shuffle (144): (patchesPerSide · ratio)². */
  readonly tokensPerTile: number;
  readonly projectorInputDim: number;
  readonly projectorOutputDim: number;
  readonly visionOutputDim: number;
  readonly ropeTheta: number;
  /** LayerNorm eps. HF does not pass norm_eps to its LayerNorms; torch's default 1e-5 applies. */
  readonly normEps: number;
  /** Text model width: the projector's output. */
  readonly textHiddenSize: number;
  /** `<|patch|>` id (HF `image_token_index`, 200092 in Scout — not `<|image|>`). */
  readonly imageTokenId: number;
  readonly boiTokenId: number | null;
  readonly eoiTokenId: number | null;
}

type Json = Record<string, unknown>;

const visionFields = (obj: Json, file: string) => jsonFields(obj, { where: file, label: (k) => `vision_config.${k}` });
const num = (obj: Json, key: string, file: string, dflt?: number): number => visionFields(obj, file).num(key, dflt);
const posInt = (obj: Json, key: string, file: string, dflt?: number): number => visionFields(obj, file).posInt(key, dflt);
const optId = (top: Json, keys: string[]): number | null => jsonFields(top, { where: '' }).optId(...keys);

/** True when a parsed config.json describes a multimodal Llama 4 (has a vision_config). */
export function hasVisionConfig(config: unknown): boolean {
  return (
    typeof config === 'object' &&
    config !== null &&
    typeof (config as Json).vision_config === 'object' &&
    (config as Json).vision_config !== null
  );
}

/**
 * Parses the vision part of a full `Llama4Config` (model_type `llama4`). `file` names the source in errors.
 * Defaults are the HF class defaults only where the hub checkpoints omit nothing; sizes are required.
 */
export function parseVisionConfig(config: unknown, file = 'config.json'): Llama4VisionConfig {
  if (!hasVisionConfig(config)) throw new ConfigError(`${file}: no vision_config (not a multimodal Llama 4 checkpoint)`);
  const top = config as Json;
  const v = top.vision_config as Json;
  const text = (typeof top.text_config === 'object' && top.text_config !== null ? top.text_config : {}) as Json;
  const hiddenSize = posInt(v, 'hidden_size', file);
  const numHeads = posInt(v, 'num_attention_heads', file);
  const imageSize = posInt(v, 'image_size', file);
  const patchSize = posInt(v, 'patch_size', file);
  const ratio = num(v, 'pixel_shuffle_ratio', file, 0.5);
  const intermediateSize = posInt(v, 'intermediate_size', file);
  if (hiddenSize % numHeads !== 0) throw new ConfigError(`${file}: vision hidden_size ${hiddenSize} is not divisible by ${numHeads} heads`);
  const headDim = hiddenSize / numHeads;
  // 2-D RoPE: half the rotary pairs carry x, half y, so head_dim must be a multiple of 4.
  if (headDim % 4 !== 0) throw new ConfigError(`${file}: vision head_dim ${headDim} must be a multiple of 4 for 2-D RoPE`);
  if (imageSize % patchSize !== 0)
    throw new ConfigError(`${file}: vision image_size ${imageSize} is not a multiple of patch_size ${patchSize}`);
  const side = imageSize / patchSize;
  const outSide = side * ratio;
  if (!(ratio > 0 && ratio <= 1) || !Number.isInteger(outSide) || !Number.isInteger(1 / ratio) || outSide < 1) {
    throw new ConfigError(`${file}: pixel_shuffle_ratio ${ratio} does not divide ${side} patches per side`);
  }
  const shuffled = hiddenSize / (ratio * ratio);
  // HF builds the adapter fc1 with vision intermediate_size inputs; it only works when the two agree (gotcha 10).
  if (shuffled !== intermediateSize) {
    throw new ConfigError(
      `${file}: vision intermediate_size ${intermediateSize} must equal hidden_size / pixel_shuffle_ratio² = ${shuffled} (the adapter's input width)`,
    );
  }
  const projectorOutputDim = posInt(v, 'projector_output_dim', file);
  const visionOutputDim = posInt(v, 'vision_output_dim', file);
  // The adapter's fc2 emits projector_output_dim features; the projector reads vision_output_dim.
  if (projectorOutputDim !== visionOutputDim) {
    throw new ConfigError(`${file}: vision_output_dim ${visionOutputDim} must equal projector_output_dim ${projectorOutputDim}`);
  }
  const textHidden = text.hidden_size;
  if (typeof textHidden !== 'number' || !Number.isInteger(textHidden) || textHidden < 1)
    throw new ConfigError(`${file}: text_config.hidden_size is missing`);
  const imageTokenId = optId(top, ['image_token_index', 'image_token_id']);
  if (imageTokenId === null) throw new ConfigError(`${file}: image_token_index (the <|patch|> id) is missing`);
  return {
    hiddenSize,
    numLayers: posInt(v, 'num_hidden_layers', file),
    numHeads,
    headDim,
    intermediateSize,
    numChannels: posInt(v, 'num_channels', file, 3),
    imageSize,
    patchSize,
    patchesPerSide: side,
    pixelShuffleRatio: ratio,
    tokensPerTile: outSide * outSide,
    projectorInputDim: posInt(v, 'projector_input_dim', file),
    projectorOutputDim,
    visionOutputDim,
    ropeTheta: num(v, 'rope_theta', file, 10000),
    normEps: 1e-5,
    textHiddenSize: textHidden,
    imageTokenId,
    boiTokenId: optId(top, ['boi_token_index', 'boi_token_id']),
    eoiTokenId: optId(top, ['eoi_token_index', 'eoi_token_id']),
  };
}
