/**
 * The native training backend: native/src/train-ops.cc (train-kern.h compiled per ISA, chosen by CPU features) on
 * its own thread pool. Same contract as the TypeScript reference (src/kernels/ts/train-ops.ts).
 */
import type { AttnShape, MatmulLayout, TrainBackend } from '../../tensor/train-backend.ts';
import { loadAddon, type NativeIsa } from './addon.ts';

export interface RawTrainEngine {
  readonly threads: number;
  readonly isa: NativeIsa;
  matmul(layout: number, C: Float32Array, A: Float32Array, B: Float32Array, m: number, n: number, k: number, accumulate: boolean): void;
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
  dispose(): void;
}

const LAYOUT: Record<MatmulLayout, number> = { nt: 0, nn: 1, tn: 2 };

export class NativeTrainBackend implements TrainBackend {
  readonly name: string;
  constructor(private readonly eng: RawTrainEngine) {
    this.name = `native-${eng.isa}x${eng.threads}`;
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
    this.eng.matmul(LAYOUT[layout], C, A, B, m, n, k, accumulate);
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
  dispose(): void {
    this.eng.dispose();
  }
}

/** The native training backend, or null plus the reason (addon missing, too old, or disabled). */
export function tryCreateNativeTrainBackend(threads: number, isa?: NativeIsa): { backend: NativeTrainBackend | null; reason: string } {
  const { addon, reason } = loadAddon();
  if (!addon) return { backend: null, reason };
  const Ctor = (addon as unknown as { TrainEngine?: new (threads: number, isa?: string) => RawTrainEngine }).TrainEngine;
  if (!Ctor) return { backend: null, reason: 'native core has no TrainEngine (rebuild with `npm run build:native`)' };
  return { backend: new NativeTrainBackend(new Ctor(threads, isa)), reason: '' };
}
