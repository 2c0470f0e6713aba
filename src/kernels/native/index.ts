/**
 * The native CPU compute core: NativeBackend (the Backend seam on C++ kernels with run-time ISA dispatch and a
 * persistent thread pool) and memory-mapped model files. Everything degrades to "null plus a reason" when the addon
 * is not built, so the composition root can fall back to the TypeScript backend.
 */
export { NativeBackend, nativeCoreInfo, nativeIsas, tryCreateNativeBackend, type NativeBackendOptions } from './backend.ts';
export { MappedFile, canMmap, mmapFile } from './mmap.ts';
export { loadAddon, type NativeIsa } from './addon.ts';
export { tryCreateNativeQuantizer } from './quantizer.ts';
