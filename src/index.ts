/** The public API of llama4-ts: named re-exports only. */
export * from './util/index.ts';
export * from './tensor/index.ts';
export type * from './model/types.ts';
export * from './tokenizer/index.ts';
export * from './image/index.ts';
export * from './model/llama4/vision-config.ts';
export { Llama4VisionEncoder, loadVisionEncoder, hasVisionTensors } from './model/llama4/vision.ts';
export type { VisionTensorSource, VisionEncoderOptions } from './model/llama4/vision.ts';
export * from './model/llama4/vision-prompt.ts';
export { mmprojEncoder, mmprojToHfTensors, mmprojConfig } from './model/llama4/vision-gguf.ts';
export * from './chat/index.ts';
export { readGguf, readGgufHeader, readTensorBytes, isGgufFile, GgufWriter, GgufType, FILE_TYPES, LLAMA_FTYPE, parseFileType, tensorTypeFor } from './io/gguf/index.ts';
export type { GgufFile, GgufHeader, GgufTensorInfo, GgufValue, FileType } from './io/gguf/index.ts';
export { configFromGguf, llama4FromGguf, ggufMetadataFromConfig, ggufIncompatibilities, ropeFreqFactorsFor, LLAMA4_GGUF_CONSTANTS } from './model/llama4/gguf-config.ts';
