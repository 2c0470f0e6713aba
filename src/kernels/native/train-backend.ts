/**
 * The native training backend: native/src/train-ops.cc (train-kern.h compiled per ISA, chosen by CPU features) on
 * its own thread pool. Same contract as the TypeScript reference (src/kernels/ts/train-ops.ts).
 */
import type { AdamWStep, AttnShape, MatmulLayout, TrainBackend } from '../../tensor/train-backend.ts';
import { loadAddon, type NativeIsa } from './addon.ts';

export interface RawTrainEngine {
  readonly threads: number;
  readonly isa: NativeIsa;
  matmul(layout: number, C: Float32Array, A: Float32Array, B: Float32Array, m: number, n: number, k: number, accumulate: boolean): void;
  /** The BF16-products kernel ("avx512-bf16", "amx-bf16"), or "" when this engine has none. */
  readonly bf16Gemm: string;
  /** matmul with both operands rounded to bf16 (nearest even), f32 sums; needs bf16Gemm. */
  matmulBf16(layout: number, C: Float32Array, A: Float32Array, B: Float32Array, m: number, n: number, k: number, accumulate: boolean): void;
  attnFwd(
    q: Float32Array,
    k: Float32Array,
    v: Float32Array,
    P: Float32Array,
    O: Float32Array,
    B: number,
    T: number,
    nh: number,
    nkv: number,
    d: number,
    scale: number,
    chunk: number,
  ): void;
  attnBwd(
    q: Float32Array,
    k: Float32Array,
    v: Float32Array,
    P: Float32Array,
    dO: Float32Array,
    dq: Float32Array,
    dk: Float32Array,
    dv: Float32Array,
    B: number,
    T: number,
    nh: number,
    nkv: number,
    d: number,
    scale: number,
    chunk: number,
  ): void;
  rmsNormFwd(y: Float32Array, r: Float32Array, x: Float32Array, w: Float32Array | null, rows: number, dim: number, eps: number): void;
  rmsNormBwd(
    dx: Float32Array,
    dw: Float32Array | null,
    dy: Float32Array,
    x: Float32Array,
    r: Float32Array,
    w: Float32Array | null,
    rows: number,
    dim: number,
    accumulate: boolean,
  ): void;
  swigluFwd(m: Float32Array, G: Float32Array, U: Float32Array, rows: number, I: number, stride: number, gOff: number, uOff: number): void;
  swigluBwd(
    dG: Float32Array,
    dU: Float32Array,
    dm: Float32Array,
    G: Float32Array,
    U: Float32Array,
    rows: number,
    I: number,
    stride: number,
    gOff: number,
    uOff: number,
  ): void;
  xent(dLogits: Float32Array, logits: Float32Array, targets: Int32Array, rows: number, V: number, scale: number): number;
  adamw(
    w: Float32Array,
    g: Float32Array,
    m: Float32Array,
    v: Float32Array,
    lr: number,
    beta1: number,
    beta2: number,
    eps: number,
    wd: number,
    bc1: number,
    bc2: number,
    gmul: number,
  ): void;
  sumSquares(g: Float32Array, div: number): number;
  gatherRows(out: Float32Array, src: Float32Array, idx: Int32Array, scale: Float32Array | null, rows: number, dim: number): void;
  scatterAddRows(out: Float32Array, src: Float32Array, idx: Int32Array, scale: Float32Array | null, rows: number, dim: number): void;
  rowDots(out: Float32Array, a: Float32Array, b: Float32Array, idx: Int32Array, rows: number, dim: number): void;
  rope(x: Float32Array, cos: Float32Array, sin: Float32Array, rows: number, T: number, nH: number, d: number, inverse: boolean): void;
  add(y: Float32Array, x: Float32Array, n: number): void;
  softmaxRows(y: Float32Array, x: Float32Array, rows: number, dim: number): void;
  dispose(): void;
}

const LAYOUT: Record<MatmulLayout, number> = { nt: 0, nn: 1, tn: 2 };

/**
 * Matrix products in f32 (exact to the reference within f32 rounding, the default) or mixed precision: the forward
 * products and the input gradients (NT, NN) with both operands rounded to bf16 and f32 sums (about twice the products
 * per instruction on AVX-512 BF16 / AMX, at bf16's 8-bit mantissa), the weight gradients (TN, sums over every token
 * of the batch) in f32. Every other op stays f32 either way.
 */
export type TrainProducts = 'f32' | 'bf16';

export class NativeTrainBackend implements TrainBackend {
  readonly name: string;
  constructor(
    private readonly eng: RawTrainEngine,
    readonly products: TrainProducts = 'f32',
  ) {
    this.name = `native-${eng.isa}x${eng.threads}${products === 'bf16' ? '-bf16' : ''}`;
  }
  matmul(
    layout: MatmulLayout,
    C: Float32Array,
    A: Float32Array,
    B: Float32Array,
    m: number,
    n: number,
    k: number,
    accumulate: boolean,
  ): void {
    if (this.products === 'bf16' && layout !== 'tn') this.eng.matmulBf16(LAYOUT[layout], C, A, B, m, n, k, accumulate);
    else this.eng.matmul(LAYOUT[layout], C, A, B, m, n, k, accumulate);
  }
  attnForward(q: Float32Array, k: Float32Array, v: Float32Array, P: Float32Array, O: Float32Array, s: AttnShape): void {
    this.eng.attnFwd(q, k, v, P, O, s.B, s.T, s.nh, s.nkv, s.d, s.scale, s.chunk);
  }
  attnBackward(
    q: Float32Array,
    k: Float32Array,
    v: Float32Array,
    P: Float32Array,
    dO: Float32Array,
    dq: Float32Array,
    dk: Float32Array,
    dv: Float32Array,
    s: AttnShape,
  ): void {
    this.eng.attnBwd(q, k, v, P, dO, dq, dk, dv, s.B, s.T, s.nh, s.nkv, s.d, s.scale, s.chunk);
  }
  rmsNormFwd(y: Float32Array, r: Float32Array, x: Float32Array, w: Float32Array | null, rows: number, dim: number, eps: number): void {
    this.eng.rmsNormFwd(y, r, x, w, rows, dim, eps);
  }
  rmsNormBwd(
    dx: Float32Array,
    dw: Float32Array | null,
    dy: Float32Array,
    x: Float32Array,
    r: Float32Array,
    w: Float32Array | null,
    rows: number,
    dim: number,
    accumulate: boolean,
  ): void {
    this.eng.rmsNormBwd(dx, dw, dy, x, r, w, rows, dim, accumulate);
  }
  swigluFwd(m: Float32Array, G: Float32Array, U: Float32Array, rows: number, I: number, stride: number, gOff: number, uOff: number): void {
    this.eng.swigluFwd(m, G, U, rows, I, stride, gOff, uOff);
  }
  swigluBwd(
    dG: Float32Array,
    dU: Float32Array,
    dm: Float32Array,
    G: Float32Array,
    U: Float32Array,
    rows: number,
    I: number,
    stride: number,
    gOff: number,
    uOff: number,
  ): void {
    this.eng.swigluBwd(dG, dU, dm, G, U, rows, I, stride, gOff, uOff);
  }
  softmaxXent(dLogits: Float32Array, logits: Float32Array, targets: Int32Array, rows: number, V: number, scale: number): number {
    return this.eng.xent(dLogits, logits, targets, rows, V, scale);
  }
  adamw(w: Float32Array, g: Float32Array, m: Float32Array, v: Float32Array, h: AdamWStep): void {
    this.eng.adamw(w, g, m, v, h.lr, h.beta1, h.beta2, h.eps, h.wd, h.bc1, h.bc2, h.gmul);
  }
  sumSquares(g: Float32Array, div: number): number {
    return this.eng.sumSquares(g, div);
  }
  gatherRows(out: Float32Array, src: Float32Array, idx: Int32Array, scale: Float32Array | null, rows: number, dim: number): void {
    this.eng.gatherRows(out, src, idx, scale, rows, dim);
  }
  scatterAddRows(out: Float32Array, src: Float32Array, idx: Int32Array, scale: Float32Array | null, rows: number, dim: number): void {
    this.eng.scatterAddRows(out, src, idx, scale, rows, dim);
  }
  rowDots(out: Float32Array, a: Float32Array, b: Float32Array, idx: Int32Array, rows: number, dim: number): void {
    this.eng.rowDots(out, a, b, idx, rows, dim);
  }
  rope(x: Float32Array, cos: Float32Array, sin: Float32Array, rows: number, T: number, nH: number, d: number, inverse: boolean): void {
    this.eng.rope(x, cos, sin, rows, T, nH, d, inverse);
  }
  add(y: Float32Array, x: Float32Array, n: number): void {
    this.eng.add(y, x, n);
  }
  softmaxRows(y: Float32Array, x: Float32Array, rows: number, dim: number): void {
    this.eng.softmaxRows(y, x, rows, dim);
  }
  dispose(): void {
    this.eng.dispose();
  }
}

/** The native training backend, or null plus the reason (addon missing, too old, disabled, or no BF16 products). */
export function tryCreateNativeTrainBackend(
  threads: number,
  isa?: NativeIsa,
  products: TrainProducts = 'f32',
): { backend: NativeTrainBackend | null; reason: string } {
  const { addon, reason } = loadAddon();
  if (!addon) return { backend: null, reason };
  const Ctor = (addon as unknown as { TrainEngine?: new (threads: number, isa?: string) => RawTrainEngine }).TrainEngine;
  if (!Ctor) return { backend: null, reason: 'native core has no TrainEngine (rebuild with `npm run build:native`)' };
  if (typeof (Ctor.prototype as { softmaxRows?: unknown }).softmaxRows !== 'function')
    return { backend: null, reason: 'native core predates the row training ops (rebuild with `npm run build:native`)' };
  // avx2-vnni and the AMX-INT8 sets change only int8 inference kernels: training (f32/bf16 products) runs the AVX2
  // or AVX-512 set's kernels there.
  const trainIsa = isa === 'avx2-vnni' ? 'avx2' : isa === 'avx512-amx' || isa === 'avx512-amx-emulated' ? 'avx512' : isa;
  const eng = new Ctor(threads, trainIsa);
  if (products === 'bf16' && !eng.bf16Gemm) {
    eng.dispose();
    return { backend: null, reason: 'no BF16 products on this CPU or build (AVX-512 BF16 or AMX-BF16 needed)' };
  }
  return { backend: new NativeTrainBackend(eng, products), reason: '' };
}
