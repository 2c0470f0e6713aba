/**
 * The Llama 4 text model with a hand-written backward pass (spec §2), f32 throughout.
 *
 * Batches are B sequences of T tokens, every sequence starting at absolute position 0, rows laid out [B·T, …].
 * Internally the expert stacks are kept Linear-style ([E, 2I, H] gate-first and [E, H, I]) so every product is
 * x·Wᵀ; checkpoint.ts converts to and from HF's `x @ W` layout ([E, H, 2I], [E, I, H]).
 *
 * Forward caches what the backward needs; `backward(dLogits)` accumulates into each Param's `grad`.
 */
import { assert } from '../util/errors.ts';
import { ropeInvFreq, type TrainModelConfig } from './config.ts';
import { attnTemperatureScale } from '../model/llama4/config.ts';
import {
  add,
  attnBackward,
  attnForward,
  linear,
  linearBackward,
  matmulNT,
  gatherRows,
  rmsNormBwd,
  rmsNormFwd,
  rope,
  rowDots,
  scatterAddRows,
  softmaxRows,
  sigmoid,
  swigluBwd,
  swigluFwd,
} from './kernels.ts';
import { Rng } from './rng.ts';

export interface Param {
  /** HF tensor name (experts: internal layout, see checkpoint.ts). */
  readonly name: string;
  readonly shape: readonly number[];
  readonly data: Float32Array;
  readonly grad: Float32Array;
  /** MetaP-style learning-rate multiplier (width-transferable; 1 for norms and embeddings). */
  lrMult: number;
  /** AdamW weight decay applies (matrices, not norms or embeddings). */
  readonly decay: boolean;
}

export interface InitOptions {
  seed?: number;
  /** Base init std at the base width (HF initializer_range). */
  initStd?: number | undefined;
  /**
   * MetaP-style width transfer: hidden matrices get init std ∝ sqrt(baseWidth/fan_in) and Adam LR ∝ baseWidth/fan_in,
   * so hyperparameters tuned at baseWidth carry over to wider models. Output projections are further scaled by
   * 1/sqrt(2·L) (depth). Defaults to the model's hidden size (multipliers 1 at that width).
   */
  baseWidth?: number | undefined;
}

interface Layer {
  inNorm: Param;
  q: Param;
  k: Param;
  v: Param;
  o: Param;
  postNorm: Param;
  // MoE
  router?: Param;
  gateUp?: Param;
  down?: Param;
  shGate?: Param;
  shUp?: Param;
  shDown?: Param;
  // dense
  gate?: Param;
  up?: Param;
  dn?: Param;
}

/** What one layer's forward keeps for the backward. */
interface LayerCache {
  hIn: Float32Array;
  rIn: Float32Array;
  a: Float32Array;
  qRot: Float32Array;
  rq: Float32Array;
  kRot: Float32Array;
  rk: Float32Array;
  q: Float32Array;
  k: Float32Array;
  v: Float32Array;
  P: Float32Array;
  O: Float32Array;
  h2: Float32Array;
  rPost: Float32Array;
  f: Float32Array;
  // dense / shared expert
  g?: Float32Array;
  u?: Float32Array;
  m?: Float32Array;
  // MoE
  rl?: Float32Array;
  sel?: Int32Array;
  score?: Float32Array;
  perm?: Int32Array;
  counts?: Int32Array;
  xe?: Float32Array;
  gu?: Float32Array;
  me?: Float32Array;
  auxFrac?: Float32Array;
  auxProb?: Float32Array;
}

/** A buffer for a role ("layer.name"): reused across training steps, zero-filled only when asked. */
type Alloc = (key: string, n: number, zero?: boolean) => Float32Array;
const fresh: Alloc = (_key, n) => new Float32Array(n);

export class TrainModel {
  readonly params: Param[] = [];
  readonly embed: Param;
  readonly norm: Param;
  readonly head: Param;
  readonly layers: Layer[] = [];
  private readonly invFreq: Float32Array;
  private caches: LayerCache[] = [];
  private last: { tokens: Int32Array; B: number; T: number; hFinal: Float32Array; rFinal: Float32Array; hn: Float32Array } | null = null;
  /** Router load-balancing loss of the last forward (sum over MoE layers, before the coefficient). */
  auxLoss = 0;
  /**
   * Activations and gradients of training steps, reused from step to step (a step allocates tens of MB otherwise,
   * zero-filled, page-faulted and collected every time). Kept forwards and backwards use it; a forward that keeps
   * nothing allocates fresh arrays, so it never overwrites what a pending backward needs.
   */
  private readonly ws = new Map<string, Float32Array>();
  private readonly buf: Alloc = (key, n, zero = false) => {
    const b = this.ws.get(key);
    if (b && b.length === n) {
      if (zero) b.fill(0);
      return b;
    }
    const nb = new Float32Array(n);
    this.ws.set(key, nb);
    return nb;
  };

  constructor(
    readonly cfg: TrainModelConfig,
    opts: InitOptions = {},
  ) {
    const rng = new Rng(opts.seed ?? 1);
    const H = cfg.hiddenSize,
      d = cfg.headDim,
      E = cfg.nExperts,
      I = cfg.intermediateSize;
    const std0 = opts.initStd ?? 0.02;
    const base = opts.baseWidth ?? H;
    const depth = 1 / Math.sqrt(2 * cfg.nLayers);
    const add = (name: string, shape: number[], init: 'one' | number, lrMult: number, decay: boolean): Param => {
      const n = shape.reduce((a, b) => a * b, 1);
      const data = new Float32Array(n);
      if (init === 'one') data.fill(1);
      else for (let i = 0; i < n; i++) data[i] = init * rng.normal();
      const p: Param = { name, shape, data, grad: new Float32Array(n), lrMult, decay };
      this.params.push(p);
      return p;
    };
    // Hidden matrix with fan-in K: std ∝ sqrt(base/K), Adam LR ∝ base/K.
    const mat = (name: string, shape: number[], K: number, out = false): Param =>
      add(name, shape, std0 * Math.sqrt(base / K) * (out ? depth : 1), base / K, true);
    this.embed = add('model.embed_tokens.weight', [cfg.vocabSize, H], std0 * 50, 1, false);
    for (let l = 0; l < cfg.nLayers; l++) {
      const p = `model.layers.${l}.`;
      const L: Layer = {
        inNorm: add(`${p}input_layernorm.weight`, [H], 'one', 1, false),
        q: mat(`${p}self_attn.q_proj.weight`, [cfg.nHeads * d, H], H),
        k: mat(`${p}self_attn.k_proj.weight`, [cfg.nKvHeads * d, H], H),
        v: mat(`${p}self_attn.v_proj.weight`, [cfg.nKvHeads * d, H], H),
        o: mat(`${p}self_attn.o_proj.weight`, [H, cfg.nHeads * d], cfg.nHeads * d, true),
        postNorm: add(`${p}post_attention_layernorm.weight`, [H], 'one', 1, false),
      };
      if (cfg.moeLayers[l]) {
        L.router = mat(`${p}feed_forward.router.weight`, [E, H], H);
        L.gateUp = mat(`${p}feed_forward.experts.gate_up_proj`, [E, 2 * I, H], H);
        L.down = mat(`${p}feed_forward.experts.down_proj`, [E, H, I], I, true);
        L.shGate = mat(`${p}feed_forward.shared_expert.gate_proj.weight`, [I, H], H);
        L.shUp = mat(`${p}feed_forward.shared_expert.up_proj.weight`, [I, H], H);
        L.shDown = mat(`${p}feed_forward.shared_expert.down_proj.weight`, [H, I], I, true);
      } else {
        const Im = cfg.intermediateSizeMlp;
        L.gate = mat(`${p}feed_forward.gate_proj.weight`, [Im, H], H);
        L.up = mat(`${p}feed_forward.up_proj.weight`, [Im, H], H);
        L.dn = mat(`${p}feed_forward.down_proj.weight`, [H, Im], Im, true);
      }
      this.layers.push(L);
    }
    this.norm = add('model.norm.weight', [H], 'one', 1, false);
    // Readout: small init and LR ∝ base/H (μP readout) so logits do not blow up with width.
    this.head = add('lm_head.weight', [cfg.vocabSize, H], std0 * Math.sqrt(base / H), base / H, true);
    this.invFreq = ropeInvFreq(cfg);
  }

  paramCount(): number {
    return this.params.reduce((a, p) => a + p.data.length, 0);
  }

  zeroGrad(): void {
    for (const p of this.params) p.grad.fill(0);
  }

  private temp: { N: number; T: number; rows: Int32Array; scale: Float32Array } | null = null;
  /** Rows 0..N-1 and each row's temperature factor (position i mod T), for gatherRows. */
  private tempRows(N: number, T: number): { rows: Int32Array; scale: Float32Array } {
    if (!this.temp || this.temp.N !== N || this.temp.T !== T) {
      const rows = Int32Array.from({ length: N }, (_, i) => i),
        scale = Float32Array.from({ length: N }, (_, i) => this.tempScale(i % T));
      this.temp = { N, T, rows, scale };
    }
    return this.temp;
  }

  /** Temperature tuning factor for NoPE layers at absolute position p (spec §2.2). */
  private tempScale(p: number): number {
    return attnTemperatureScale(this.cfg, p);
  }

  /**
   * Forward over B sequences of T tokens (tokens [B·T]). Returns logits [B·T, V] (a fresh array).
   * With `keep` false nothing is cached (evaluation, generation).
   */
  forward(tokens: Int32Array, B: number, T: number, keep = true): Float32Array {
    const c = this.cfg,
      H = c.hiddenSize,
      N = B * T,
      V = c.vocabSize;
    assert(tokens.length === N, 'tokens length');
    for (let i = 0; i < N; i++) {
      const t = tokens[i]!;
      if (!(t >= 0 && t < V)) throw new RangeError(`token id ${t} out of range 0..${V - 1}`);
    }
    // Angle tables [T, d/2]: θ = fround(pos·inv) then cos/sin, as torch does in fp32 (spec gotcha 14).
    const half = c.headDim / 2;
    const cos = new Float32Array(T * half),
      sin = new Float32Array(T * half);
    for (let t = 0; t < T; t++)
      for (let j = 0; j < half; j++) {
        const th = Math.fround(t * this.invFreq[j]!);
        cos[t * half + j] = Math.cos(th);
        sin[t * half + j] = Math.sin(th);
      }
    const A = keep ? this.buf : fresh;
    let h: Float32Array = A('h', N * H);
    gatherRows(h, this.embed.data, tokens, null, N, H);
    this.caches = [];
    this.auxLoss = 0;
    for (let l = 0; l < c.nLayers; l++) {
      const cache = this.layerForward(l, h, B, T, cos, sin, A);
      h = cache.out;
      if (keep) this.caches.push(cache.cache);
    }
    const rFinal = A('rFinal', N),
      hn = A('hn', N * H);
    rmsNormFwd(hn, rFinal, h, this.norm.data, N, H, c.eps);
    const logits = new Float32Array(N * V);
    linear(logits, hn, this.head.data, N, V, H);
    this.last = keep ? { tokens, B, T, hFinal: h, rFinal, hn } : null;
    this.ropeTables = { cos, sin };
    return logits;
  }
  private ropeTables: { cos: Float32Array; sin: Float32Array } | null = null;

  private layerForward(
    l: number,
    hIn: Float32Array,
    B: number,
    T: number,
    cos: Float32Array,
    sin: Float32Array,
    alloc: Alloc,
  ): { out: Float32Array; cache: LayerCache } {
    const A = (name: string, n: number): Float32Array => alloc(`${l}.${name}`, n);
    const c = this.cfg,
      L = this.layers[l]!,
      H = c.hiddenSize,
      N = B * T,
      d = c.headDim;
    const nh = c.nHeads,
      nkv = c.nKvHeads;
    const rIn = A('rIn', N),
      a = A('a', N * H);
    rmsNormFwd(a, rIn, hIn, L.inNorm.data, N, H, c.eps);
    const q = A('q', N * nh * d),
      k = A('k', N * nkv * d),
      v = A('v', N * nkv * d);
    linear(q, a, L.q.data, N, nh * d, H);
    linear(k, a, L.k.data, N, nkv * d, H);
    linear(v, a, L.v.data, N, nkv * d, H);
    const isRope = c.ropeLayers[l]!;
    let qRot = q,
      kRot = k,
      rq: Float32Array = new Float32Array(0),
      rk: Float32Array = new Float32Array(0);
    let qF = q,
      kF = k;
    if (isRope) {
      // Interleaved pairs (x[2j], x[2j+1]) — Llama 4's complex layout, not rotate_half.
      rope(q, cos, sin, N, T, nh, d, false);
      rope(k, cos, sin, N, T, nkv, d, false);
      if (c.useQkNorm) {
        // Weightless RMSNorm per head AFTER RoPE (RoPE layers only); keep the pre-norm values for the backward.
        qRot = q;
        kRot = k;
        qF = A('qF', q.length);
        kF = A('kF', k.length);
        rq = A('rq', N * nh);
        rk = A('rk', N * nkv);
        rmsNormFwd(qF, rq, qRot, null, N * nh, d, c.eps);
        rmsNormFwd(kF, rk, kRot, null, N * nkv, d, c.eps);
      }
    } else if (c.attnTemperatureTuning) {
      // NoPE layers: q scaled by 1 + attn_scale·ln(1 + floor((p+1)/floor_scale)), p absolute; keys untouched.
      qF = A('qF', q.length);
      const { rows, scale } = this.tempRows(N, T);
      gatherRows(qF, q, rows, scale, N, nh * d);
    }
    // Attention. RoPE layers: causal AND same chunk (floor(pos/C)); NoPE layers: causal over all positions.
    const P = A('P', B * nh * T * T),
      O = A('O', N * nh * d);
    attnForward(qF, kF, v, P, O, { B, T, nh, nkv, d, scale: 1 / Math.sqrt(d), chunk: c.layers[l]!.chunkSize });
    const h2 = A('h2', N * H);
    linear(h2, O, L.o.data, N, H, nh * d);
    add(h2, hIn, N * H);
    const rPost = A('rPost', N),
      f = A('f', N * H);
    rmsNormFwd(f, rPost, h2, L.postNorm.data, N, H, c.eps);
    const out = A('out', N * H);
    const cache: LayerCache = { hIn, rIn, a, qRot, rq, kRot, rk, q: qF, k: kF, v, P, O, h2, rPost, f };
    if (L.router) this.moeForward(L, f, N, out, cache, A);
    else {
      const Im = c.intermediateSizeMlp;
      const g = A('g', N * Im),
        u = A('u', N * Im),
        m = A('m', N * Im);
      linear(g, f, L.gate!.data, N, Im, H);
      linear(u, f, L.up!.data, N, Im, H);
      swigluFwd(m, g, u, N, Im);
      linear(out, m, L.dn!.data, N, H, Im);
      cache.g = g;
      cache.u = u;
      cache.m = m;
    }
    add(out, h2, N * H);
    return { out, cache };
  }

  private moeForward(
    L: Layer,
    f: Float32Array,
    N: number,
    out: Float32Array,
    cache: LayerCache,
    A: (name: string, n: number) => Float32Array,
  ): void {
    const c = this.cfg,
      H = c.hiddenSize,
      E = c.nExperts,
      I = c.intermediateSize;
    const rl = A('rl', N * E);
    linear(rl, f, L.router!.data, N, E, H);
    // Top-1 on raw logits (lowest index on ties), score = sigmoid(logit) — no softmax, no renormalisation.
    const sel = new Int32Array(N),
      score = new Float32Array(N),
      counts = new Int32Array(E);
    for (let n = 0; n < N; n++) {
      let best = 0;
      for (let e = 1; e < E; e++) if (rl[n * E + e]! > rl[n * E + best]!) best = e;
      sel[n] = best;
      score[n] = sigmoid(rl[n * E + best]!);
      counts[best] = counts[best]! + 1;
    }
    // Tokens grouped by expert (stable), so each expert runs one product over its rows.
    const offs = new Int32Array(E + 1);
    for (let e = 0; e < E; e++) offs[e + 1] = offs[e]! + counts[e]!;
    const fill = offs.slice(0, E),
      perm = new Int32Array(N);
    for (let n = 0; n < N; n++) perm[fill[sel[n]!]!++] = n;
    // The score scales the expert INPUT (x_e = x·s), not its output: the two differ through SiLU.
    const xe = A('xe', N * H),
      gu = A('gu', N * 2 * I),
      me = A('me', N * I),
      ye = A('ye', N * H);
    gatherRows(xe, f, perm, score, N, H);
    for (let e = 0; e < E; e++) {
      const r0 = offs[e]!,
        cnt = counts[e]!;
      if (cnt === 0) continue;
      const W = L.gateUp!.data.subarray(e * 2 * I * H, (e + 1) * 2 * I * H);
      linear(gu.subarray(r0 * 2 * I), xe.subarray(r0 * H), W, cnt, 2 * I, H);
      const guE = gu.subarray(r0 * 2 * I);
      swigluFwd(me.subarray(r0 * I), guE, guE, cnt, I, 2 * I, 0, I);
      linear(ye.subarray(r0 * H), me.subarray(r0 * I), L.down!.data.subarray(e * H * I, (e + 1) * H * I), cnt, H, I);
    }
    // Shared expert on the unscaled input, always on.
    const g = A('sg', N * I),
      u = A('su', N * I),
      m = A('sm', N * I);
    linear(g, f, L.shGate!.data, N, I, H);
    linear(u, f, L.shUp!.data, N, I, H);
    swigluFwd(m, g, u, N, I);
    linear(out, m, L.shDown!.data, N, H, I);
    scatterAddRows(out, ye, perm, null, N, H);
    // Switch-style load balancing: E·Σ_e frac_e·mean_n softmax(rl)_e (frac has no gradient).
    const auxFrac = new Float32Array(E),
      auxProb = A('auxProb', N * E);
    for (let e = 0; e < E; e++) auxFrac[e] = counts[e]! / N;
    softmaxRows(auxProb, rl, N, E);
    let aux = 0;
    for (let n = 0; n < N; n++) for (let e = 0; e < E; e++) aux += (E * auxFrac[e]! * auxProb[n * E + e]!) / N;
    this.auxLoss += aux;
    Object.assign(cache, { rl, sel, score, perm, counts, xe, gu, me, g, u, m, auxFrac, auxProb });
  }

  /**
   * Backward from dLogits [B·T, V] of the last forward; `auxCoef` weights the router balancing loss's gradient.
   * Gradients accumulate (gradient accumulation = several forward/backward pairs before a step).
   */
  backward(dLogits: Float32Array, auxCoef = 0): void {
    const c = this.cfg,
      H = c.hiddenSize,
      V = c.vocabSize;
    const last = this.last;
    assert(last && this.caches.length === c.nLayers, 'backward without a kept forward');
    const N = last.B * last.T;
    const W = this.buf;
    const dhn = W('dhn', N * H);
    linearBackward(dhn, this.head.grad, dLogits, last.hn, this.head.data, N, V, H, false);
    let dh: Float32Array = W('dh', N * H);
    rmsNormBwd(dh, this.norm.grad, dhn, last.hFinal, last.rFinal, this.norm.data, N, H, false);
    for (let l = c.nLayers - 1; l >= 0; l--) dh = this.layerBackward(l, dh, last.B, last.T, auxCoef);
    scatterAddRows(this.embed.grad, dh, last.tokens, null, N, H);
    this.caches = [];
    this.last = null;
  }

  /** Takes dOut (gradient w.r.t. the layer output, reused as the residual gradient) and returns dIn. */
  private layerBackward(l: number, dOut: Float32Array, B: number, T: number, auxCoef: number): Float32Array {
    const c = this.cfg,
      L = this.layers[l]!,
      K = this.caches[l]!,
      H = c.hiddenSize,
      N = B * T,
      d = c.headDim;
    const nh = c.nHeads,
      nkv = c.nKvHeads;
    // FFN block: out = h2 + FFN(norm(h2)).
    const W = this.buf;
    const df = W('df', N * H, true);
    if (L.router) this.moeBackward(L, K, dOut, df, N, auxCoef);
    else {
      const Im = c.intermediateSizeMlp;
      const dm = W('dm', N * Im);
      linearBackward(dm, L.dn!.grad, dOut, K.m!, L.dn!.data, N, H, Im, false);
      const dg = W('dg', N * Im),
        du = W('du', N * Im);
      swigluBwd(dg, du, dm, K.g!, K.u!, N, Im);
      linearBackward(df, L.gate!.grad, dg, K.f, L.gate!.data, N, Im, H, true);
      linearBackward(df, L.up!.grad, du, K.f, L.up!.data, N, Im, H, true);
    }
    const dh2 = dOut; // residual: reuse the buffer
    rmsNormBwd(dh2, L.postNorm.grad, df, K.h2, K.rPost, L.postNorm.data, N, H, true);
    // Attention block: h2 = hIn + o(attn(norm(hIn))).
    const dO = W('dO', N * nh * d);
    linearBackward(dO, L.o.grad, dh2, K.O, L.o.data, N, H, nh * d, false);
    const dq = W('dq', N * nh * d, true),
      dk = W('dk', N * nkv * d, true),
      dv = W('dv', N * nkv * d, true);
    const isRope = c.ropeLayers[l]!;
    attnBackward(K.q, K.k, K.v, K.P, dO, dq, dk, dv, { B, T, nh, nkv, d, scale: 1 / Math.sqrt(d), chunk: c.layers[l]!.chunkSize });
    if (isRope) {
      if (c.useQkNorm) {
        rmsNormBwd(dq, null, dq, K.qRot, K.rq, null, N * nh, d, false);
        rmsNormBwd(dk, null, dk, K.kRot, K.rk, null, N * nkv, d, false);
      }
      // Inverse rotation (transpose of the 2×2 rotation).
      const { cos, sin } = this.ropeTables!;
      rope(dq, cos, sin, N, T, nh, d, true);
      rope(dk, cos, sin, N, T, nkv, d, true);
    } else if (c.attnTemperatureTuning) {
      const { rows, scale } = this.tempRows(N, T);
      gatherRows(dq, dq, rows, scale, N, nh * d); // in place: row i reads and writes row i
    }
    const da = W('da', N * H, true);
    linearBackward(da, L.q.grad, dq, K.a, L.q.data, N, nh * d, H, true);
    linearBackward(da, L.k.grad, dk, K.a, L.k.data, N, nkv * d, H, true);
    linearBackward(da, L.v.grad, dv, K.a, L.v.data, N, nkv * d, H, true);
    rmsNormBwd(dh2, L.inNorm.grad, da, K.hIn, K.rIn, L.inNorm.data, N, H, true);
    return dh2;
  }

  private moeBackward(L: Layer, K: LayerCache, dOut: Float32Array, df: Float32Array, N: number, auxCoef: number): void {
    const c = this.cfg,
      H = c.hiddenSize,
      E = c.nExperts,
      I = c.intermediateSize;
    const perm = K.perm!,
      counts = K.counts!,
      score = K.score!,
      sel = K.sel!;
    // Shared expert.
    const W = this.buf;
    const dm = W('sdm', N * I);
    linearBackward(dm, L.shDown!.grad, dOut, K.m!, L.shDown!.data, N, H, I, false);
    const dg = W('sdg', N * I),
      du = W('sdu', N * I);
    swigluBwd(dg, du, dm, K.g!, K.u!, N, I);
    linearBackward(df, L.shGate!.grad, dg, K.f, L.shGate!.data, N, I, H, true);
    linearBackward(df, L.shUp!.grad, du, K.f, L.shUp!.data, N, I, H, true);
    // Routed experts, rows in expert order.
    const dye = W('dye', N * H);
    gatherRows(dye, dOut, perm, null, N, H);
    const dme = W('dme', N * I),
      dgu = W('dgu', N * 2 * I),
      dxe = W('dxe', N * H);
    let r0 = 0;
    for (let e = 0; e < E; e++) {
      const cnt = counts[e]!;
      if (cnt === 0) continue;
      const dW = L.down!.grad.subarray(e * H * I, (e + 1) * H * I),
        W = L.down!.data.subarray(e * H * I, (e + 1) * H * I);
      linearBackward(dme.subarray(r0 * I), dW, dye.subarray(r0 * H), K.me!.subarray(r0 * I), W, cnt, H, I, false);
      const gu = K.gu!.subarray(r0 * 2 * I),
        dguE = dgu.subarray(r0 * 2 * I);
      swigluBwd(dguE, dguE, dme.subarray(r0 * I), gu, gu, cnt, I, 2 * I, 0, I);
      const gW = L.gateUp!.grad.subarray(e * 2 * I * H, (e + 1) * 2 * I * H),
        Wg = L.gateUp!.data.subarray(e * 2 * I * H, (e + 1) * 2 * I * H);
      linearBackward(dxe.subarray(r0 * H), gW, dguE, K.xe!.subarray(r0 * H), Wg, cnt, 2 * I, H, false);
      r0 += cnt;
    }
    // x_e = f·s: df += s·dx_e, ds = dx_e·f, d logit = ds·s(1−s) (gradient through the router score).
    const drl = W('drl', N * E, true),
      ds = W('ds', N);
    scatterAddRows(df, dxe, perm, score, N, H);
    rowDots(ds, dxe, K.f, perm, N, H);
    for (let j = 0; j < N; j++) {
      const n = perm[j]!,
        s = score[n]!;
      drl[n * E + sel[n]!] = drl[n * E + sel[n]!]! + ds[j]! * s * (1 - s);
    }
    if (auxCoef !== 0) {
      // d/d rl[n,e] of coef·E·Σ_j frac_j·mean_n p_nj = coef·E/N · p_ne·(frac_e − Σ_j frac_j p_nj).
      const fr = K.auxFrac!,
        pr = K.auxProb!;
      for (let n = 0; n < N; n++) {
        let dot = 0;
        for (let e = 0; e < E; e++) dot += fr[e]! * pr[n * E + e]!;
        for (let e = 0; e < E; e++) drl[n * E + e] = drl[n * E + e]! + ((auxCoef * E) / N) * pr[n * E + e]! * (fr[e]! - dot);
      }
    }
    linearBackward(df, L.router!.grad, drl, K.f, L.router!.data, N, E, H, true);
  }
}

/** Used by tests: matmul over a weight slice through the same kernel the model uses. */
export { matmulNT };
