/** `llama4-ts/model`: the Llama 4 text model and vision tower, their configs, KV caches and early-fusion prompts. */
export type * from '../model/types.ts';
export { parseHfConfig, ropeInvFreq } from '../model/llama4/config.ts';
export type { Llama4Config, LayerFacts, RopeScaling } from '../model/llama4/config.ts';
export { Llama4TextModel, Llama4Sequence, type TextModelOptions, type LayerObserver } from '../model/llama4/text-model.ts';
export { FullKvCache, ChunkedKvCache } from '../model/kv-cache.ts';
export type { LayerCache, KvView } from '../model/kv-cache.ts';
export * from '../model/llama4/vision-config.ts';
export { Llama4VisionEncoder, loadVisionEncoder, hasVisionTensors } from '../model/llama4/vision.ts';
export type { VisionTensorSource, VisionEncoderOptions } from '../model/llama4/vision.ts';
export * from '../model/llama4/vision-prompt.ts';
export { mmprojEncoder, mmprojToHfTensors, mmprojConfig } from '../model/llama4/vision-gguf.ts';
export {
  configFromGguf,
  llama4FromGguf,
  ggufMetadataFromConfig,
  ggufIncompatibilities,
  ropeFreqFactorsFor,
  LLAMA4_GGUF_CONSTANTS,
} from '../model/llama4/gguf-config.ts';
export { loadHfTextTensors, expectedShapes, hfPrefixes } from '../model/llama4/weights.ts';
