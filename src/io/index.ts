export * from './safetensors.ts';
