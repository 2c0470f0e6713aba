/**
 * Loads the compiled Node-API addon and describes its raw surface. Candidates, in the order node-gyp-build uses:
 * a local source build (native/build/Release/llama4_native.node, made by scripts/build-native.mjs), then the
 * prebuilt binary shipped in the package (prebuilds/<platform>-<arch>/llama4_native.node, made at `npm pack`).
 * A source build only exists when one was asked for (a development checkout, or an install where no prebuilt binary
 * loaded), so installs use the prebuilt one; a developer's fresh build wins over a prebuilt left by an earlier pack.
 * The first candidate that loads is used. Loading never throws: when none loads, the reasons are kept as one line so
 * the composition root can say why it uses the TypeScript backend instead.
 */
import { createRequire } from 'node:module';
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

/**
 * Kernel sets, best first; the best one the CPU supports is the default. 'avx512-amx' is the AVX-512 set with AMX-INT8
 * q4_0 prefill tiles (native/src/kern-amx-int8.cc); 'avx2-vnni' is AVX2 with VPDPBUSD for the q4_0/q8_0 family
 * (native/src/kern-avx2-vnni.cc); 'avx512-amx-emulated' (the AMX tiles with emulated tile operations) is listed only
 * when LLAMA4_AMX_EMULATION=1, for the conformance suite on CPUs without AMX.
 */
export type NativeIsa = 'avx512-amx' | 'avx512' | 'avx2-vnni' | 'avx2' | 'scalar' | 'avx512-amx-emulated';

/** The addon's Engine: kernels plus a persistent thread pool. Argument order mirrors native/src/addon.cc. */
export interface RawEngine {
  readonly threads: number;
  readonly isa: NativeIsa;
  matmul(out: Float32Array, x: Float32Array, w: Uint8Array, type: number, N: number, K: number, T: number, expert: number): void;
  /** Groups of matmul's 8 arguments (out, x, w, type, N, K, T, expert), run in one pool hand-off. */
  matmulMany(...args: Array<Float32Array | Uint8Array | number>): void;
  getRows(out: Float32Array, w: Uint8Array, type: number, rows: number, K: number, ids: Int32Array): void;
  dequant(out: Float32Array, w: Uint8Array, type: number, rows: number, K: number): void;
  rmsNorm(out: Float32Array, x: Float32Array, weight: Float32Array | null, rows: number, dim: number, eps: number): void;
  layerNorm(out: Float32Array, x: Float32Array, weight: Float32Array, bias: Float32Array, rows: number, dim: number, eps: number): void;
  rope(x: Float32Array, T: number, nHeads: number, headDim: number, cos: Float32Array, sin: Float32Array): void;
  /** k/v: Float32Array (kvType 0 = f32), Uint16Array of halves (1 = f16) or Uint8Array of block_q8_0 (8 = q8_0). */
  attention(
    out: Float32Array,
    q: Float32Array,
    k: Float32Array | Uint16Array | Uint8Array,
    v: Float32Array | Uint16Array | Uint8Array,
    nHeads: number,
    nKvHeads: number,
    headDim: number,
    T: number,
    S: number,
    qPos0: number,
    kPos0: number,
    scale: number,
    causal: boolean,
    chunkSize: number,
    kvType?: number,
  ): void;
  /** Groups of attention's 15 arguments (kvType included), run in one pool hand-off. */
  attentionMany(...args: Array<Float32Array | Uint16Array | Uint8Array | number | boolean>): void;
  siluMul(out: Float32Array, gate: Float32Array, up: Float32Array, n: number): void;
  gelu(x: Float32Array, n: number): void;
  add(x: Float32Array, y: Float32Array, n: number): void;
  addBias(x: Float32Array, bias: Float32Array, rows: number, dim: number): void;
  gatherRows(out: Float32Array, src: Float32Array, idx: Int32Array, scale: Float32Array | null, rows: number, dim: number): void;
  scatterAddRows(out: Float32Array, src: Float32Array, idx: Int32Array, rows: number, dim: number): void;
  /** f32 -> f16 bits (round to nearest even), src[so ..] to dst[o ..], n values: encodeKv's f16 bits. */
  encodeF16(src: Float32Array, so: number, n: number, dst: Uint16Array, o: number): void;
  /** Reads every byte on all threads; returns a checksum (memory-bandwidth probe). */
  streamRead(bytes: Uint8Array): number;
  /** Advises huge pages for the 2 MiB-aligned interior of a buffer (and collapses present pages); true if taken. */
  hugePages(bytes: Uint8Array): boolean;
  /**
   * The internal id of the repacked layout of a GGML type this kernel set reads best (R16 when `rows`, per expert, is
   * a multiple of 16 and the set has 16-row kernels; else R8), or -1 when it has no repacked kernels for the type.
   */
  canRepack(type: number, rows?: number): number;
  /** The BF16-products kernel ("amx-bf16", "avx512-bf16"), or "" when this engine has none (native/src/gemm-bf16.h). */
  readonly bf16Gemm: string;
  /** bf16 [experts, N, K] -> the packed layout the BF16-products kernel reads (a native copy). */
  packBf16(src: Uint8Array, experts: number, N: number, K: number): ArrayBuffer;
  /** out[T, N] = bf16(x) · W[expert]ᵀ for a packBf16 weight. */
  matmulBf16(out: Float32Array, x: Float32Array, w: Uint8Array, N: number, K: number, T: number, expert: number): void;
  /** Whether this kernel set has the exact f16/bf16 GEMM (packHalf / matmulHalf; the AVX-512 set). */
  readonly halfGemm: boolean;
  /** f16 or bf16 [experts, N, K] -> the packed H16 layout of the exact f32 GEMM (native/src/kern-half-gemm.h). */
  packHalf(src: Uint8Array, experts: number, N: number, K: number): ArrayBuffer;
  /** out[T, N] = x · W[expert]ᵀ for a packHalf weight, exact f32 products (one fixed order per output). */
  matmulHalf(out: Float32Array, x: Float32Array, w: Uint8Array, N: number, K: number, T: number, expert: number, bf16: boolean): void;
  /**
   * q4_0/q8_0 rows [rows, K] (rows % 8 == 0) copied into the R8 layout, or any repackable type's rows into the
   * layout `to` that canRepack gave (R16: rows % 16 == 0; native/src/common.h), natively allocated.
   */
  repackR8(src: Uint8Array, type: number, rows: number, K: number, to?: number): ArrayBuffer;
  /** Whether quantize/quantizeAsync can write this GGML type. Older builds lack all three. */
  canQuantize?(type: number): boolean;
  /** x[rows, K] quantized into out (rows of `type`, the bytes of src/tensor/quant's quantizers), on the pool. */
  quantize?(out: Uint8Array, x: Float32Array, type: number, rows: number, K: number): void;
  /** quantize off the JavaScript thread; the engine refuses other calls until the promise settles. */
  quantizeAsync?(out: Uint8Array, x: Float32Array, type: number, rows: number, K: number): Promise<void>;
  dispose(): void;
}

export interface RawMappedFile {
  readonly size: number;
  view(offset: number, length: number): ArrayBuffer;
  /** Drops this object's hold on the mapping (unmapped once its views are detached or collected). Older builds lack it. */
  close?(): void;
}

export interface NativeAddon {
  Engine: new (threads: number, isa?: string) => RawEngine;
  MappedFile: new (path: string) => RawMappedFile;
  isas(): NativeIsa[];
  hardwareThreads(): number;
  /** Detaches an external ArrayBuffer the addon made (mapped view, repacked weight), releasing it now. Older builds lack it. */
  detach?(buffer: ArrayBuffer): boolean;
}

let cached: { addon: NativeAddon | null; reason: string; file: string | null } | null = null;

/** Where the addon may be, best first (paths relative to the package root, for messages). */
export function addonCandidates(): { file: string; rel: string }[] {
  const root = new URL('../../../', import.meta.url);
  const rels = ['native/build/Release/llama4_native.node', `prebuilds/${process.platform}-${process.arch}/llama4_native.node`];
  return rels.map((rel) => ({ file: fileURLToPath(new URL(rel, root)), rel }));
}

/**
 * The addon, or null plus a one-line reason; `file` is the package-relative path of the binary that loaded.
 * LLAMA4_NATIVE=0 disables it (forces the TypeScript backend).
 */
export function loadAddon(): { addon: NativeAddon | null; reason: string; file: string | null } {
  if (cached) return cached;
  if (process.env.LLAMA4_NATIVE === '0') return (cached = { addon: null, reason: 'native core disabled by LLAMA4_NATIVE=0', file: null });
  const failures: string[] = [];
  for (const { file, rel } of addonCandidates()) {
    if (!existsSync(file)) continue;
    try {
      return (cached = { addon: createRequire(import.meta.url)(file) as NativeAddon, reason: '', file: rel });
    } catch (e) {
      failures.push(`${rel} failed to load: ${String((e as Error).message).split('\n')[0]}`);
    }
  }
  const reason = failures.length
    ? `native core failed to load (${failures.join('; ')})`
    : `native core not built: no prebuilt binary for ${process.platform}-${process.arch} and no source build (\`npm run build:native\` in the package folder makes one)`;
  return (cached = { addon: null, reason, file: null });
}
