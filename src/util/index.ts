export * from './errors.ts';
export * from './json-depth.ts';
