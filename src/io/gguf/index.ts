export * from './types.ts';
export * from './reader.ts';
export * from './writer.ts';
export * from './quant-policy.ts';
export * from './quantize-pool.ts';
