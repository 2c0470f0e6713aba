export * from './errors.ts';
export * from './json-fields.ts';
