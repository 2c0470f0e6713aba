/** `llama4-ts/kernels`: the compute backends (TypeScript reference, native core), tensor types and codecs, mapped files. */
export * from '../tensor/index.ts';
export { createBackend } from '../load.ts';
export { TsBackend } from '../kernels/ts/index.ts';
export {
  NativeBackend,
  tryCreateNativeBackend,
  nativeIsas,
  MappedFile,
  mmapFile,
  canMmap,
  type NativeBackendOptions,
  type NativeIsa,
} from '../kernels/native/index.ts';
