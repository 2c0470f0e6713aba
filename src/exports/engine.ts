/** `llama4-ts/engine`: the chat engine, continuous-batching scheduler, sampler and JSON-schema constrained decoding. */
export * from '../engine/index.ts';
export { compileSchema } from '../engine/json-schema.ts';
export { jsonConstraint, allowedTokens, type TokenVocabulary } from '../engine/json-schema-mask.ts';
export { seededRandom, tokenLogprobs } from '../engine/scheduler-sampling.ts';
