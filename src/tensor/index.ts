export * from './dtype.ts';
export * from './half.ts';
export * from './kv.ts';
export type * from './backend.ts';
export * from './quant/index.ts';
