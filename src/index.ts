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
