/**
 * NativeBackend: the Backend interface (src/tensor/backend.ts) on the native core. Weights are adopted without a
 * copy — the backend keeps the RawTensor's Uint8Array (often a view of a memory-mapped file) and passes it to the
 * kernels on every call, which also keeps its buffer alive. Shapes are checked here so every misuse is one clear
 * RangeError, as in TsBackend; the addon checks lengths again before touching memory.
 */
import * as rowOps from '../../tensor/row-ops.ts';
import { availableParallelism, totalmem } from 'node:os';
import type {
  AttentionJob,
  AttentionShape,
  Backend,
  DType,
  KvData,
  KvType,
  MatmulJob,
  RawTensor,
  Weight,
  WeightOptions,
} from '../../tensor/index.ts';
import { DTYPES, byteSize, checkKvArray, encodeKv } from '../../tensor/index.ts';
import type { NativeIsa, RawEngine } from './addon.ts';
import { loadAddon } from './addon.ts';

export interface NativeBackendOptions {
  /** Worker threads including the caller's (default: the number of cores). */
  readonly threads?: number;
  /** Kernel set; default the best the CPU supports (LLAMA4_NATIVE_ISA overrides the default). */
  readonly isa?: NativeIsa;
  /**
   * Repack matrices at load into the layouts the fastest kernels read (default true; LLAMA4_REPACK=0 turns it off):
   * q4_0/q8_0 into 8-row groups, q4_K, q5_K and IQ4_XS into 16-row groups, and on AVX-512 also q4_0 and q6_K into
   * 16-row groups. A repacked weight is a native copy instead of a view of the mapped file, so it is
   * done only while the copies total at most half the machine's RAM: bigger models keep reading in place.
   */
  readonly repack?: boolean;
}

/** A weight as the native backend keeps it: [E, N, K] facts plus the stored bytes. */
class NativeWeight implements Weight {
  readonly rows: number; // N
  readonly cols: number; // K
  readonly experts: number; // E (1 for a plain matrix)
  type: number; // GGML type id, or the native core's id of a repacked layout
  /** bf16 products: the packed copy the BF16 kernel reads (bytes keep the file layout for getRows/toF32). */
  packed: Uint8Array | null = null;
  /** products 'bf16' without the BF16 kernel (f16 weights, or no AVX-512 BF16): the exact GEMM's packed copy. */
  packedHalf: Uint8Array | null = null;
  constructor(
    readonly dtype: DType,
    readonly shape: readonly number[],
    public bytes: Uint8Array,
  ) {
    if (shape.length < 1 || shape.length > 3) throw new RangeError(`weights have 1 to 3 dimensions, got [${shape.join(', ')}]`);
    if (!shape.every((d) => Number.isSafeInteger(d) && d > 0)) throw new RangeError(`bad weight shape [${shape.join(', ')}]`);
    const s = shape.length === 1 ? [1, shape[0]!] : shape;
    this.cols = s[s.length - 1]!;
    this.rows = s[s.length - 2]!;
    this.experts = s.length === 3 ? s[0]! : 1;
    this.type = DTYPES[dtype].ggmlType;
    const want = byteSize(dtype, this.cols) * this.rows * this.experts;
    if (bytes.length !== want) throw new RangeError(`weight [${shape.join(', ')}] ${dtype} needs ${want} bytes, got ${bytes.length}`);
  }
}

const HUGE_MIN = 4 << 20;

function own(w: Weight): NativeWeight {
  if (!(w instanceof NativeWeight)) throw new TypeError('weight was not created by the native backend');
  return w;
}

function need(a: ArrayLike<number>, n: number, what: string): void {
  if (a.length < n) throw new RangeError(`${what} has ${a.length} elements, needs ${n}`);
}

export class NativeBackend implements Backend {
  readonly name: string;
  private idBuf = new Int32Array(64);
  private repackBudget: number;
  /** Bytes of weights repacked so far (see NativeBackendOptions.repack). */
  repackedBytes = 0;
  /** The natively allocated copies, released by dispose(). */
  private repacked: ArrayBuffer[] = [];

  constructor(
    private readonly engine: RawEngine,
    repack = process.env.LLAMA4_REPACK !== '0',
    /** Honour products 'bf16' (LLAMA4_BF16_PRODUCTS=0 computes every product exactly). */
    private readonly bf16Allowed = process.env.LLAMA4_BF16_PRODUCTS !== '0',
  ) {
    this.name = `native-${engine.isa}`;
    this.repackBudget = repack ? totalmem() / 2 : 0;
  }

  /** Kernel set in use ("avx512-amx", "avx512", "avx2-vnni", "avx2", "scalar"; "avx512-amx-emulated" only for tests). */
  get isa(): NativeIsa {
    return this.engine.isa;
  }
  /** Threads in the pool, the caller's included. */
  get threads(): number {
    return this.engine.threads;
  }
  /**
   * Stops the pool's threads and frees the repacked weight copies now instead of at garbage collection; the backend
   * and its weights are unusable afterwards.
   */
  dispose(): void {
    const detach = loadAddon().addon?.detach;
    if (detach) for (const b of this.repacked) detach(b);
    this.repacked = [];
    this.engine.dispose();
  }
  /** Reads every byte of `bytes` on all pool threads and returns a checksum: the benchmarks' bandwidth probe. */
  streamRead(bytes: Uint8Array): number {
    return this.engine.streamRead(bytes);
  }

  /** The kernel behind products 'bf16' ("amx-bf16", "avx512-bf16"), or null: such weights then compute exactly. */
  get bf16Products(): string | null {
    return this.bf16Allowed && this.engine.bf16Gemm ? this.engine.bf16Gemm : null;
  }

  weight(t: RawTensor, opts: WeightOptions = {}): Weight {
    if (!DTYPES[t.dtype]) throw new RangeError(`unknown dtype ${t.dtype}`);
    if (!(t.bytes instanceof Uint8Array)) throw new TypeError(`${t.name}: bytes must be a Uint8Array`);
    const w = new NativeWeight(t.dtype, t.shape, t.bytes);
    if (opts.products === 'bf16' && t.dtype === 'bf16' && t.shape.length >= 2 && this.bf16Products) {
      const copy = this.engine.packBf16(t.bytes, w.experts, w.rows, w.cols);
      this.repacked.push(copy);
      w.packed = new Uint8Array(copy);
      return w;
    }
    // f16 weights, or bf16 ones where no BF16 kernel runs: the exact f32 GEMM on widened weights where the kernel set
    // has one (AVX-512; a tile of 577 tokens otherwise runs the row kernels token by token).
    if (opts.products === 'bf16' && (t.dtype === 'f16' || t.dtype === 'bf16') && t.shape.length >= 2 && this.engine.halfGemm) {
      const copy = this.engine.packHalf(t.bytes, w.experts, w.rows, w.cols);
      this.repacked.push(copy);
      w.packedHalf = new Uint8Array(copy);
      return w;
    }
    const r8 = this.engine.canRepack(w.type, w.rows); // R8, or R16 (rows % 16 == 0) on kernel sets with 16-row kernels
    if (r8 >= 0 && w.rows % 8 === 0 && this.repackedBytes + t.bytes.length <= this.repackBudget) {
      const copy = this.engine.repackR8(t.bytes, w.type, w.rows * w.experts, w.cols, r8);
      this.repacked.push(copy);
      w.bytes = new Uint8Array(copy);
      w.type = r8;
      this.repackedBytes += t.bytes.length;
      return w; // the copy is already huge-page backed
    }
    // Big weights are streamed once per token: back them with huge pages where the OS agrees (fewer TLB misses,
    // prefetchers not stopped at 4 KiB boundaries). LLAMA4_HUGEPAGES=0 turns this off.
    if (t.bytes.length >= HUGE_MIN && process.env.LLAMA4_HUGEPAGES !== '0') this.engine.hugePages(t.bytes);
    return w;
  }

  matmul(out: Float32Array, x: Float32Array, wAny: Weight, T: number, expert = 0): void {
    const w = own(wAny);
    if (!(Number.isInteger(expert) && expert >= 0 && expert < w.experts))
      throw new RangeError(`expert ${expert} out of range ${w.experts}`);
    need(x, T * w.cols, 'x');
    need(out, T * w.rows, 'out');
    if (w.packed) this.engine.matmulBf16(out, x, w.packed, w.rows, w.cols, T, expert);
    else if (w.packedHalf) this.engine.matmulHalf(out, x, w.packedHalf, w.rows, w.cols, T, expert, w.dtype === 'bf16');
    else this.engine.matmul(out, x, w.bytes, w.type, w.rows, w.cols, T, expert);
  }

  matmulMany(jobs: readonly MatmulJob[]): void {
    const args: Array<Float32Array | Uint8Array | number> = [];
    for (const { out, x, w: wAny, T, expert = 0 } of jobs) {
      const w = own(wAny);
      if (!(Number.isInteger(expert) && expert >= 0 && expert < w.experts))
        throw new RangeError(`expert ${expert} out of range ${w.experts}`);
      need(x, T * w.cols, 'x');
      need(out, T * w.rows, 'out');
      if (w.packed)
        this.engine.matmulBf16(out, x, w.packed, w.rows, w.cols, T, expert); // its own pool run
      else if (w.packedHalf) this.engine.matmulHalf(out, x, w.packedHalf, w.rows, w.cols, T, expert, w.dtype === 'bf16');
      else args.push(out, x, w.bytes, w.type, w.rows, w.cols, T, expert);
    }
    if (args.length) this.engine.matmulMany(...args);
  }

  getRows(out: Float32Array, wAny: Weight, ids: ArrayLike<number>): void {
    const w = own(wAny);
    let idv: Int32Array;
    if (ids instanceof Int32Array) idv = ids;
    else {
      if (this.idBuf.length < ids.length) this.idBuf = new Int32Array(ids.length);
      idv = this.idBuf.subarray(0, ids.length);
      const limit = w.rows * w.experts;
      for (let i = 0; i < ids.length; i++) {
        const id = ids[i]!;
        if (!(Number.isInteger(id) && id >= 0 && id < limit)) throw new RangeError(`row ${id} out of range ${w.rows}`);
        idv[i] = id;
      }
    }
    need(out, ids.length * w.cols, 'out');
    this.engine.getRows(out, w.bytes, w.type, w.rows * w.experts, w.cols, idv);
  }

  toF32(wAny: Weight): Float32Array {
    const w = own(wAny);
    const out = new Float32Array(w.rows * w.cols * w.experts);
    this.engine.dequant(out, w.bytes, w.type, w.rows * w.experts, w.cols);
    return out;
  }

  rmsNorm(out: Float32Array, x: Float32Array, weight: Float32Array | null, rows: number, dim: number, eps: number): void {
    this.engine.rmsNorm(out, x, weight, rows, dim, eps);
  }

  layerNorm(out: Float32Array, x: Float32Array, weight: Float32Array, bias: Float32Array, rows: number, dim: number, eps: number): void {
    this.engine.layerNorm(out, x, weight, bias, rows, dim, eps);
  }

  rope(x: Float32Array, T: number, nHeads: number, headDim: number, cos: Float32Array, sin: Float32Array): void {
    this.engine.rope(x, T, nHeads, headDim, cos, sin);
  }

  attention(out: Float32Array, q: Float32Array, k: KvData, v: KvData, p: AttentionShape): void {
    if ((p.kvType ?? 'f32') === 'f32') {
      this.engine.attention(
        out,
        q,
        k,
        v,
        p.nHeads,
        p.nKvHeads,
        p.headDim,
        p.T,
        p.S,
        p.qPos0,
        p.kPos0,
        p.scale,
        p.mask.causal,
        p.mask.chunkSize,
      );
      return;
    }
    this.engine.attention(out, q, k, v, ...attentionArgs(p, k, v));
  }

  attentionMany(jobs: readonly AttentionJob[]): void {
    const args: Array<Float32Array | Uint16Array | Uint8Array | number | boolean> = [];
    for (const { out, q, k, v, shape } of jobs) args.push(out, q, k, v, ...attentionArgs(shape, k, v));
    if (args.length) this.engine.attentionMany(...args);
  }

  siluMul(out: Float32Array, gate: Float32Array, up: Float32Array, n: number): void {
    this.engine.siluMul(out, gate, up, n);
  }

  gelu(x: Float32Array, n: number): void {
    this.engine.gelu(x, n);
  }

  addInPlace(x: Float32Array, y: Float32Array, n: number): void {
    this.engine.add(x, y, n);
  }

  addBias(x: Float32Array, bias: Float32Array, rows: number, dim: number): void {
    this.engine.addBias(x, bias, rows, dim);
  }
  scaleRows(x: Float32Array, scale: Float32Array, rows: number, dim: number): void {
    rowOps.scaleRows(x, scale, rows, dim);
  }

  gatherRows(out: Float32Array, src: Float32Array, idx: Int32Array, scale: Float32Array | null, rows: number, dim: number): void {
    this.engine.gatherRows(out, src, idx, scale, rows, dim);
  }

  scatterAddRows(out: Float32Array, src: Float32Array, idx: Int32Array, rows: number, dim: number): void {
    this.engine.scatterAddRows(out, src, idx, rows, dim);
  }

  encodeKv(type: KvType, src: Float32Array, so: number, values: number, dst: KvData, o: number): void {
    if (type === 'f16') this.engine.encodeF16(src, so, values, dst as Uint16Array, o);
    else encodeKv(type, src, so, values, dst, o);
  }

  routeTop1(logits: Float32Array, rows: number, E: number, choice: Int32Array, score: Float32Array): void {
    rowOps.routeTop1(logits, rows, E, choice, score);
  }
}

/** attention's arguments after out, q, k, v (the K/V arrays checked against kvType). */
function attentionArgs(
  p: AttentionShape,
  k: KvData,
  v: KvData,
): [number, number, number, number, number, number, number, number, boolean, number, number] {
  const kvType = p.kvType ?? 'f32';
  checkKvArray(kvType, k, 'k');
  checkKvArray(kvType, v, 'v');
  if (!DTYPES[kvType]) throw new RangeError(`unknown kvType ${kvType}`);
  return [p.nHeads, p.nKvHeads, p.headDim, p.T, p.S, p.qPos0, p.kPos0, p.scale, p.mask.causal, p.mask.chunkSize, DTYPES[kvType].ggmlType];
}

/**
 * A native backend, or null plus the one-line reason it is unavailable (addon not built or not loadable, or the
 * requested kernel set unusable on this CPU). load.ts falls back to TsBackend on null.
 */
export function tryCreateNativeBackend(opts: NativeBackendOptions = {}): { backend: NativeBackend | null; reason: string } {
  const { addon, reason } = loadAddon();
  if (!addon) return { backend: null, reason };
  const threads = opts.threads ?? availableParallelism();
  if (!(Number.isInteger(threads) && threads >= 1 && threads <= 1024)) return { backend: null, reason: `bad thread count ${threads}` };
  const isa = opts.isa ?? (process.env.LLAMA4_NATIVE_ISA as NativeIsa | undefined);
  try {
    return { backend: new NativeBackend(new addon.Engine(threads, isa), opts.repack ?? process.env.LLAMA4_REPACK !== '0'), reason: '' };
  } catch (e) {
    return { backend: null, reason: String((e as Error).message) };
  }
}

/** Kernel sets this CPU can run (best first); empty when the addon is unavailable. */
export function nativeIsas(): NativeIsa[] {
  return loadAddon().addon?.isas() ?? [];
}

/**
 * What the native core would run on this machine, without starting threads: the kernel set `tryCreateNativeBackend`
 * picks (LLAMA4_NATIVE_ISA honoured when usable), the binary it came from, or null plus the reason it is unavailable.
 */
export function nativeCoreInfo(): { isa: NativeIsa | null; isas: NativeIsa[]; file: string | null; reason: string } {
  const { addon, reason, file } = loadAddon();
  if (!addon) return { isa: null, isas: [], file: null, reason };
  const isas = addon.isas();
  const forced = process.env.LLAMA4_NATIVE_ISA as NativeIsa | undefined;
  if (forced && !isas.includes(forced)) return { isa: null, isas, file, reason: `LLAMA4_NATIVE_ISA=${forced} is not usable on this CPU` };
  return { isa: forced ?? isas[0] ?? null, isas, file, reason: '' };
}
