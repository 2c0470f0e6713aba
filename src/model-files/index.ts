/**
 * Model files beyond loading: writing llama4 GGUFs, converting Hugging Face checkpoints, synthetic test models, and
 * header-only facts (parameters, memory). Composes io and model/llama4 as src/load.ts does, one level beside it.
 */
export { writeLlama4Gguf, type GgufTokenizer, type TensorProducer, type WriteOptions, type WriteSummary } from './gguf-writer.ts';
export { PRESETS, SIMPLE_CHAT_TEMPLATE, parallelRandomProducer, presetConfig, randomProducer, syntheticTokenizer } from './synthetic.ts';
export { parseFileType, type FileType } from '../io/gguf/quant-policy.ts';
export { hfProducer, mergesFromRanks, openHfCheckpoint, tokenizerFromFolder, type HfCheckpoint } from './hf-convert.ts';
export { kvCacheBytes, modelFacts, paramsOfConfig, type ModelFacts } from './facts.ts';
