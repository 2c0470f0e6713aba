export * from './errors.ts';
export * from './json-depth.ts';
export * from './json-fields.ts';
export * from './worker.ts';
