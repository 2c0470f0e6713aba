/** The public API of llama4-ts: named re-exports only. */
export * from './util/index.ts';
export * from './tensor/index.ts';
export type * from './model/types.ts';
export * from './tokenizer/index.ts';
