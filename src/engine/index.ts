export * from './sampler.ts';
export * from './generate.ts';
