/**
 * `llama4-ts/gguf`: model files — GGUF reading and writing (llama.cpp's block codecs and quantization mix),
 * safetensors, Hugging Face → GGUF conversion, synthetic test models, and header-only model facts.
 */
export {
  readGguf,
  readGgufHeader,
  readTensorBytes,
  isGgufFile,
  GgufWriter,
  GgufType,
  FILE_TYPES,
  LLAMA_FTYPE,
  parseFileType,
  tensorTypeFor,
  QuantizePool,
} from '../io/gguf/index.ts';
export type { GgufFile, GgufHeader, GgufTensorInfo, GgufValue, FileType } from '../io/gguf/index.ts';
export { openSafetensors, readSafetensors, readSafetensorsHeader, writeSafetensors } from '../io/safetensors.ts';
export type { TensorSource, SafetensorsHeader } from '../io/safetensors.ts';
export * from '../model-files/index.ts';
