/**
 * Training runs the inference model's forward pass: TrainModel (model.ts) drives `Llama4TextModel` (model/llama4,
 * the code `llama4 run` uses) on this Backend. Each op is computed with the training kernels (kernels.ts: the
 * TypeScript reference or the native core) and, while recording, keeps what its backward needs; `backward()` then
 * walks the record in reverse (reverse-mode differentiation of the Backend ops) and accumulates every parameter's
 * gradient into its Param.grad. So there is one Llama 4 forward — config facts, RoPE tables, qk-norm, temperature
 * tuning, routing, shared expert — and training owns only the backward rules.
 *
 * Activation gradients live in one float32 buffer per activation ArrayBuffer, at the same offsets, so the model's
 * subarray views map to gradient views for free. The model reuses its work buffers from layer to layer; the reverse
 * walk handles that as any tape does with mutation: an op that overwrites `out` consumes out's gradient and zeroes
 * it (the buffer's earlier contents get their own gradient from the ops that read them, visited later), and an
 * in-place op (RoPE, qk-norm, residual adds, temperature scaling) turns the gradient in place.
 *
 * Limits, each an error rather than a silent wrong gradient: f32 weights bound by the trainer (bind), fresh sequences
 * (attention over exactly the call's own keys from position 0), no image features, no vision ops.
 */
import type { AttentionJob, AttentionShape, Backend, KvData, MatmulJob, RawTensor, Weight } from '../tensor/index.ts';
import { routeTop1 as routeRows, scaleRows as scaleRowsRef } from '../tensor/row-ops.ts';
import { UsageError } from '../util/index.ts';
import {
  add,
  attnBackward,
  attnForward,
  gatherRows,
  linear,
  linearBackward,
  rmsNormBwd,
  rmsNormFwd,
  rope,
  rowDots,
  scatterAddRows,
  softmaxRows,
  swigluBwd,
  swigluFwd,
} from './kernels.ts';

/** A parameter's storage as the tape sees it (model.ts's Param has these two fields). */
export interface TapeParam {
  readonly data: Float32Array;
  readonly grad: Float32Array;
}

/**
 * A weight bound to a parameter: matrix [N, K] or expert stack [E, N, K]. Expert e's matrix starts at
 * `offset + e·stride` in the parameter (stride 0: N·K, a plain stack; the trainer's fused gate/up stack [E, 2I, H]
 * serves as two [E, I, H] stacks with stride 2I·H).
 */
class TapeWeight implements Weight {
  readonly dtype = 'f32' as const;
  constructor(
    readonly shape: readonly number[],
    readonly p: TapeParam,
    readonly offset: number,
    readonly stride: number,
  ) {}
  get rows(): number {
    return this.shape[this.shape.length - 2] ?? 1;
  }
  get cols(): number {
    return this.shape[this.shape.length - 1]!;
  }
  /** Where expert e's (or the matrix's) [N, K] block starts in p.data / p.grad. */
  at(expert?: number): number {
    if (this.shape.length === 3) {
      if (expert === undefined || expert < 0 || expert >= this.shape[0]!)
        throw new UsageError(`expert ${expert} of an [${this.shape}] stack`);
      return this.offset + expert * (this.stride || this.rows * this.cols);
    }
    return this.offset;
  }
}

type Back = () => void;

/** Whether view `b` starts right where view `a` (of `n` values) ends, in the same buffer. */
function follows(a: Float32Array, n: number, b: Float32Array): boolean {
  return a.buffer === b.buffer && a.byteOffset + 4 * n === b.byteOffset;
}

/**
 * Attention jobs that are one batch: fresh f32 sequences of equal length and shape whose q, k, v and out rows lie one
 * after another (the training forward's B sequences). They then run as one kernel call with B sequences and one
 * tape record, instead of B calls and B records.
 */
function batchOf(jobs: readonly AttentionJob[]): AttentionJob | null {
  const j0 = jobs[0];
  if (!j0 || jobs.length < 2) return null;
  const s0 = j0.shape,
    qn = s0.T * s0.nHeads * s0.headDim,
    kn = s0.T * s0.nKvHeads * s0.headDim;
  for (let i = 1; i < jobs.length; i++) {
    const a = jobs[i - 1]!,
      b = jobs[i]!,
      s = b.shape;
    if (
      !(a.k instanceof Float32Array && b.k instanceof Float32Array && a.v instanceof Float32Array && b.v instanceof Float32Array) ||
      s.T !== s0.T ||
      s.S !== s0.S ||
      s.qPos0 !== s0.qPos0 ||
      s.kPos0 !== s0.kPos0 ||
      s.nHeads !== s0.nHeads ||
      s.nKvHeads !== s0.nKvHeads ||
      s.headDim !== s0.headDim ||
      s.scale !== s0.scale ||
      s.mask.causal !== s0.mask.causal ||
      s.mask.chunkSize !== s0.mask.chunkSize ||
      (s.kvType ?? 'f32') !== (s0.kvType ?? 'f32') ||
      !follows(a.q, qn, b.q) ||
      !follows(a.out, qn, b.out) ||
      !follows(a.k, kn, b.k) ||
      !follows(a.v, kn, b.v)
    )
      return null;
  }
  return j0;
}

function sameView(a: Float32Array, b: Float32Array): boolean {
  return a.buffer === b.buffer && a.byteOffset === b.byteOffset && a.length === b.length;
}

/** rows·cols factorisation of an elementwise length (rows for the kernels' threads). */
function split(n: number): [number, number] {
  for (const c of [256, 128, 64, 32, 16, 8, 4, 2]) if (n % c === 0) return [n / c, c];
  return [1, n];
}

export class TapeBackend implements Backend {
  readonly name = 'training tape';
  /** Router load-balancing loss of the last forward (sum over MoE layers, before its coefficient). */
  auxLoss = 0;
  private readonly bound = new Map<RawTensor, TapeWeight>();
  /** Norm weight arrays (handed out by toF32) → their gradients. */
  private readonly normGrads = new Map<Float32Array, Float32Array>();
  private recording = false;
  private record: Back[] = [];
  /** The last product's output: the head's logits, where backward() seeds the gradient. */
  private lastOut: Float32Array | null = null;
  /** Saved inputs, reused slot by slot from step to step (a step's record has the same shape every time). */
  private saved: Float32Array[] = [];
  private savedInts: Int32Array[] = [];
  private slot = 0;
  private intSlot = 0;
  private readonly grads = new WeakMap<ArrayBufferLike, Float32Array>();
  private live = new Set<ArrayBufferLike>();
  private auxCoef = 0;
  private tmpBufs: Float32Array[] = [];
  /** During backward(): the last product's output (the logits) and its gradient, the caller's array. */
  private seed: { out: Float32Array; grad: Float32Array } | null = null;

  /** Binds a tensor the model will adopt to a parameter (whole, or one half of a fused expert stack). */
  bind(t: RawTensor, p: TapeParam, offset = 0, stride = 0): void {
    this.bound.set(t, new TapeWeight(t.shape, p, offset, stride));
  }

  /** Starts a forward; `record` keeps what backward() needs (the previous record is dropped either way). */
  begin(record: boolean): void {
    this.recording = record;
    this.record = [];
    this.lastOut = null;
    this.slot = 0;
    this.intSlot = 0;
    this.auxLoss = 0;
  }

  /** Whether a recorded forward is waiting for its backward. */
  get pending(): boolean {
    return this.recording && this.record.length > 0;
  }

  /**
   * Backward of the recorded forward from the gradient of its last product's output (the logits [rows, V]).
   * Parameter gradients accumulate; `auxCoef` weights the router balancing loss.
   */
  backward(dOut: Float32Array, auxCoef: number): void {
    if (!this.pending || !this.lastOut) throw new UsageError('backward without a recorded forward');
    if (dOut.length !== this.lastOut.length)
      throw new UsageError(`backward: gradient of ${dOut.length} values for ${this.lastOut.length} outputs`);
    this.auxCoef = auxCoef;
    this.live = new Set();
    // The logits' gradient is dOut itself: no copy into the logits buffer's gradient, which then needs no zeroing.
    this.seed = { out: this.lastOut, grad: dOut };
    for (let i = this.record.length - 1; i >= 0; i--) this.record[i]!();
    this.seed = null;
    this.record = [];
    this.recording = false;
    this.live = new Set();
  }

  // ---- tape helpers ----
  /** A saved copy of x (its slot's buffer from the last step when the length matches). */
  private keep(x: Float32Array): Float32Array {
    const b = this.keepEmpty(x.length);
    b.set(x);
    return b;
  }
  private keepEmpty(n: number): Float32Array {
    let b = this.saved[this.slot];
    if (!b || b.length !== n) b = this.saved[this.slot] = new Float32Array(n);
    this.slot++;
    return b;
  }
  private keepInts(x: ArrayLike<number>): Int32Array {
    let b = this.savedInts[this.intSlot];
    if (!b || b.length !== x.length) b = this.savedInts[this.intSlot] = new Int32Array(x.length);
    this.intSlot++;
    b.set(x);
    return b;
  }
  /** Scratch for one backward rule (i = which of a rule's temporaries). */
  private tmp(i: number, n: number): Float32Array {
    let b = this.tmpBufs[i];
    if (!b || b.length < n) b = this.tmpBufs[i] = new Float32Array(n);
    return b.subarray(0, n);
  }
  /** The gradient view of an activation view (zeroed the first time its buffer is touched in this backward). */
  private gradOf(v: Float32Array): Float32Array {
    if (this.seed && sameView(v, this.seed.out)) return this.seed.grad;
    const buf = v.buffer;
    let g = this.grads.get(buf);
    if (!g || g.length * 4 !== buf.byteLength) {
      g = new Float32Array(buf.byteLength / 4);
      this.grads.set(buf, g);
      this.live.add(buf);
    } else if (!this.live.has(buf)) {
      g.fill(0);
      this.live.add(buf);
    }
    const o = v.byteOffset / 4;
    return g.subarray(o, o + v.length);
  }
  private push(b: Back): void {
    if (this.recording) this.record.push(b);
  }
  private tw(w: Weight): TapeWeight {
    if (!(w instanceof TapeWeight)) throw new UsageError('the training tape only computes with weights it bound');
    return w;
  }
  private static notForTraining(op: string): never {
    throw new UsageError(`${op} is not part of the text model's training forward`);
  }

  // ---- Backend ----
  weight(t: RawTensor): Weight {
    const w = this.bound.get(t);
    if (!w) throw new UsageError(`tensor "${t.name}" is not bound to a training parameter`);
    return w;
  }

  toF32(w: Weight): Float32Array {
    const tw = this.tw(w);
    if (tw.offset !== 0 || tw.p.data.length !== tw.shape.reduce((a, b) => a * b, 1)) throw new UsageError('toF32 of a partial weight');
    this.normGrads.set(tw.p.data, tw.p.grad);
    return tw.p.data;
  }

  matmul(out: Float32Array, x: Float32Array, w: Weight, T: number, expert?: number): void {
    this.product({ out, x, w, T, ...(expert === undefined ? {} : { expert }) }, null);
  }

  matmulMany(jobs: readonly MatmulJob[]): void {
    // Jobs reading the same x (q/k/v; router + shared gate/up; an expert's gate and up) share one saved copy.
    const shared = new Map<Float32Array, Float32Array>();
    for (const j of jobs) this.product(j, shared);
  }

  private product(j: MatmulJob, shared: Map<Float32Array, Float32Array> | null): void {
    const w = this.tw(j.w),
      N = w.rows,
      K = w.cols,
      T = j.T,
      off = w.at(j.expert);
    const out = j.out.subarray(0, T * N),
      x = j.x.subarray(0, T * K);
    linear(out, x, w.p.data, T, N, K, off);
    this.lastOut = out;
    if (!this.recording) return;
    let xs = shared?.get(j.x);
    if (!xs) {
      xs = this.keep(x);
      shared?.set(j.x, xs);
    }
    const saved = xs;
    this.push(() => {
      const gOut = this.gradOf(out);
      linearBackward(this.gradOf(x), w.p.grad, gOut, saved, w.p.data, T, N, K, true, off);
      if (gOut !== this.seed?.grad) gOut.fill(0); // the caller's dOut is left as it was
    });
  }

  getRows(out: Float32Array, w: Weight, ids: ArrayLike<number>): void {
    const tw = this.tw(w),
      H = tw.cols,
      n = ids.length;
    const idx = this.recording ? this.keepInts(ids) : Int32Array.from(ids);
    const o = out.subarray(0, n * H);
    gatherRows(o, tw.p.data, idx, null, n, H);
    this.push(() => {
      const g = this.gradOf(o);
      scatterAddRows(tw.p.grad, g, idx, null, n, H);
      g.fill(0);
    });
  }

  rmsNorm(out: Float32Array, x: Float32Array, weight: Float32Array | null, rows: number, dim: number, eps: number): void {
    const n = rows * dim,
      o = out.subarray(0, n),
      xv = x.subarray(0, n);
    const inPlace = sameView(o, xv);
    const xs = this.recording ? this.keep(xv) : inPlace ? xv.slice() : xv;
    const r = this.recording ? this.keepEmpty(rows) : this.tmp(0, rows);
    rmsNormFwd(o, r, xs, weight, rows, dim, eps);
    if (!this.recording) return;
    const dw = weight ? this.normGrads.get(weight) : null;
    if (weight && !dw) throw new UsageError('rmsNorm weight not handed out by this backend');
    this.push(() => {
      const gOut = this.gradOf(o);
      if (inPlace) rmsNormBwd(gOut, dw ?? null, gOut, xs, r, weight, rows, dim, false);
      else {
        rmsNormBwd(this.gradOf(xv), dw ?? null, gOut, xs, r, weight, rows, dim, true);
        gOut.fill(0);
      }
    });
  }

  layerNorm(): void {
    TapeBackend.notForTraining('layerNorm');
  }

  rope(x: Float32Array, T: number, nHeads: number, headDim: number, cos: Float32Array, sin: Float32Array): void {
    // The model's tables are per row ([T, d/2] for rows at their own positions): row i uses table row i.
    const half = headDim / 2,
      xv = x.subarray(0, T * nHeads * headDim);
    const c = this.recording ? this.keep(cos.subarray(0, T * half)) : cos,
      s = this.recording ? this.keep(sin.subarray(0, T * half)) : sin;
    rope(xv, c, s, T, T, nHeads, headDim, false);
    this.push(() => rope(this.gradOf(xv), c, s, T, T, nHeads, headDim, true));
  }

  /** `B` sequences of T rows each, laid out one after another in out, q, k and v (attentionMany's batch). */
  attention(out: Float32Array, q: Float32Array, k: KvData, v: KvData, shape: AttentionShape, B = 1): void {
    const { nHeads: nh, nKvHeads: nkv, headDim: d } = shape,
      T = shape.T,
      BT = B * T;
    if (!(k instanceof Float32Array) || !(v instanceof Float32Array) || (shape.kvType ?? 'f32') !== 'f32')
      throw new UsageError('training attention needs float32 keys and values');
    if (shape.qPos0 !== 0 || shape.kPos0 !== 0 || shape.S !== T || !shape.mask.causal)
      throw new UsageError('training attention runs over fresh sequences only (causal, keys = the call’s own rows from position 0)');
    const s = { B, T, nh, nkv, d, scale: shape.scale, chunk: shape.mask.chunkSize };
    // Views over all B sequences' rows (a job's own views end at its first sequence).
    const span = (x: Float32Array, n: number) => (B === 1 ? x.subarray(0, n) : new Float32Array(x.buffer, x.byteOffset, n));
    const o = span(out, BT * nh * d),
      qv = span(q, BT * nh * d),
      kv = span(k, BT * nkv * d),
      vv = span(v, BT * nkv * d);
    if (!this.recording) {
      // One sequence at a time: the probabilities need only [nh, T, T] of scratch (kept for the tape's life).
      const qn = T * nh * d,
        kn = T * nkv * d;
      for (let b = 0; b < B; b++)
        attnForward(
          qv.subarray(b * qn, (b + 1) * qn),
          kv.subarray(b * kn, (b + 1) * kn),
          vv.subarray(b * kn, (b + 1) * kn),
          this.tmp(0, nh * T * T),
          o.subarray(b * qn, (b + 1) * qn),
          { ...s, B: 1 },
        );
      return;
    }
    const qs = this.keep(qv),
      ks = this.keep(kv),
      vs = this.keep(vv),
      P = this.keepEmpty(B * nh * T * T);
    attnForward(qs, ks, vs, P, o, s);
    this.push(() => {
      const gO = this.gradOf(o);
      attnBackward(qs, ks, vs, P, gO, this.gradOf(qv), this.gradOf(kv), this.gradOf(vv), s);
      gO.fill(0);
    });
  }

  attentionMany(jobs: readonly AttentionJob[]): void {
    const b = batchOf(jobs);
    if (b) this.attention(b.out, b.q, b.k, b.v, b.shape, jobs.length);
    else for (const j of jobs) this.attention(j.out, j.q, j.k, j.v, j.shape);
  }

  siluMul(out: Float32Array, gate: Float32Array, up: Float32Array, n: number): void {
    const [rows, cols] = split(n);
    const o = out.subarray(0, n),
      gv = gate.subarray(0, n),
      uv = up.subarray(0, n);
    if (!this.recording) {
      swigluFwd(o, gv, uv, rows, cols, cols, 0, 0);
      return;
    }
    const gs = this.keep(gv),
      us = this.keep(uv);
    swigluFwd(o, gs, us, rows, cols, cols, 0, 0);
    this.push(() => {
      const gOut = this.gradOf(o);
      if (sameView(o, gv) && !sameView(o, uv)) {
        // The model's in-place form (out = gate): gate's gradient is dg alone, computed over out's gradient in place
        // (elementwise, each value read before it is written).
        const du = this.tmp(0, n);
        swigluBwd(gOut, du, gOut, gs, us, rows, cols, cols, 0, 0);
        add(this.gradOf(uv), du, n);
        return;
      }
      // out may alias gate or up: take out's gradient first, then hand it on.
      const dm = this.tmp(0, n),
        dg = this.tmp(1, n),
        du = this.tmp(2, n);
      dm.set(gOut);
      gOut.fill(0);
      swigluBwd(dg, du, dm, gs, us, rows, cols, cols, 0, 0);
      add(this.gradOf(gv), dg, n);
      add(this.gradOf(uv), du, n);
    });
  }

  gelu(): void {
    TapeBackend.notForTraining('gelu');
  }

  addInPlace(x: Float32Array, y: Float32Array, n: number): void {
    const xv = x.subarray(0, n),
      yv = y.subarray(0, n);
    add(xv, yv, n);
    this.push(() => add(this.gradOf(yv), this.gradOf(xv), n));
  }

  addBias(): void {
    TapeBackend.notForTraining('addBias');
  }

  scaleRows(x: Float32Array, scale: Float32Array, rows: number, dim: number): void {
    // Constant factors (NoPE temperature tuning depends on positions only): the gradient scales the same way.
    const xv = x.subarray(0, rows * dim);
    const s = this.recording ? this.keep(scale.subarray(0, rows)) : scale;
    scaleRowsRef(xv, s, rows, dim);
    this.push(() => scaleRowsRef(this.gradOf(xv), s, rows, dim));
  }

  gatherRows(out: Float32Array, src: Float32Array, idx: Int32Array, scale: Float32Array | null, rows: number, dim: number): void {
    const o = out.subarray(0, rows * dim);
    gatherRows(o, src, idx, scale, rows, dim);
    if (!this.recording) return;
    const ids = this.keepInts(idx.subarray(0, rows));
    const ss = scale ? this.keep(scale) : null,
      xs = scale ? this.keep(src) : null;
    this.push(() => {
      const gOut = this.gradOf(o);
      scatterAddRows(this.gradOf(src), gOut, ids, ss, rows, dim);
      if (scale && ss && xs) {
        // d scale[idx[j]] += out_grad[j] · src[idx[j]]  (the router score's gradient, through the expert input)
        const ds = this.tmp(0, rows);
        rowDots(ds, gOut, xs, ids, rows, dim);
        const gs = this.gradOf(scale);
        for (let j = 0; j < rows; j++) gs[ids[j]!] = gs[ids[j]!]! + ds[j]!;
      }
      gOut.fill(0);
    });
  }

  scatterAddRows(out: Float32Array, src: Float32Array, idx: Int32Array, rows: number, dim: number): void {
    const sv = src.subarray(0, rows * dim);
    scatterAddRows(out, sv, idx, null, rows, dim);
    if (!this.recording) return;
    const ids = this.keepInts(idx.subarray(0, rows));
    this.push(() => {
      const t = this.tmp(0, rows * dim);
      gatherRows(t, this.gradOf(out), ids, null, rows, dim);
      add(this.gradOf(sv), t, rows * dim);
    });
  }

  routeTop1(logits: Float32Array, rows: number, E: number, choice: Int32Array, score: Float32Array): void {
    const lv = logits.subarray(0, rows * E);
    routeRows(lv, rows, E, choice, score);
    // Switch-style load balancing, training's own: aux = E · Σ_e frac_e · mean_n softmax(logits)_ne (frac: no gradient).
    const prob = this.recording ? this.keepEmpty(rows * E) : this.tmp(0, rows * E);
    softmaxRows(prob, lv, rows, E);
    const frac = new Float64Array(E);
    for (let t = 0; t < rows; t++) frac[choice[t]!]! += 1 / rows;
    let aux = 0;
    for (let t = 0; t < rows; t++) for (let e = 0; e < E; e++) aux += (E * frac[e]! * prob[t * E + e]!) / rows;
    this.auxLoss += aux;
    if (!this.recording) return;
    const ch = this.keepInts(choice.subarray(0, rows)),
      sc = this.keep(score.subarray(0, rows)),
      sv = score.subarray(0, rows);
    this.push(() => {
      const gL = this.gradOf(lv),
        gS = this.gradOf(sv);
      // score = sigmoid(logit of the chosen expert): d logit = d score · s(1 − s).
      for (let t = 0; t < rows; t++) {
        const s = sc[t]!;
        gL[t * E + ch[t]!] = gL[t * E + ch[t]!]! + gS[t]! * s * (1 - s);
      }
      gS.fill(0);
      const c = this.auxCoef;
      if (c !== 0) {
        // d/d logit[n,e] of c·E·Σ_j frac_j·mean_n p_nj = c·E/N · p_ne·(frac_e − Σ_j frac_j p_nj).
        for (let t = 0; t < rows; t++) {
          let dot = 0;
          for (let e = 0; e < E; e++) dot += frac[e]! * prob[t * E + e]!;
          for (let e = 0; e < E; e++) gL[t * E + e] = gL[t * E + e]! + ((c * E) / rows) * prob[t * E + e]! * (frac[e]! - dot);
        }
      }
    });
  }
}
