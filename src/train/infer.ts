/**
 * Token-by-token inference with a KV cache over a TrainModel's weights (same math as TrainModel.forward, checked
 * by a test), used for evaluation, SFT filtering and preference-pair generation: decoding costs one token's
 * compute per step instead of re-running the prefix.
 */
import { ropeInvFreq } from './config.ts';
import { linear, rmsNormFwd, sigmoid, silu } from './kernels.ts';
import type { TrainModel } from './model.ts';

export class KvDecoder {
  private readonly K: Float32Array[];
  private readonly V: Float32Array[];
  private readonly inv: Float32Array;
  pos = 0;
  constructor(readonly model: TrainModel, readonly maxT: number) {
    const c = model.cfg, n = maxT * c.nKvHeads * c.headDim;
    this.K = c.ropeLayers.map(() => new Float32Array(n));
    this.V = c.ropeLayers.map(() => new Float32Array(n));
    this.inv = ropeInvFreq(c);
  }

  /** Appends one token at position `pos` and returns its logits [V]. */
  step(token: number): Float32Array {
    const m = this.model, c = m.cfg, H = c.hiddenSize, d = c.headDim, nh = c.nHeads, nkv = c.nKvHeads, p = this.pos;
    if (p >= this.maxT) throw new RangeError(`KvDecoder: position ${p} beyond maxT ${this.maxT}`);
    const h = m.embed.data.slice(token * H, token * H + H);
    const a = new Float32Array(H), r = new Float32Array(1), rr = new Float32Array(nh);
    const q = new Float32Array(nh * d), k = new Float32Array(nkv * d), v = new Float32Array(nkv * d), o = new Float32Array(nh * d);
    const tmp = new Float32Array(H);
    for (let l = 0; l < c.nLayers; l++) {
      const L = m.layers[l]!;
      rmsNormFwd(a, r, h, L.inNorm.data, 1, H, c.eps);
      linear(q, a, L.q.data, 1, nh * d, H); linear(k, a, L.k.data, 1, nkv * d, H); linear(v, a, L.v.data, 1, nkv * d, H);
      const rope = c.ropeLayers[l]!;
      if (rope) {
        for (const [x, n] of [[q, nh], [k, nkv]] as const) for (let hh = 0; hh < n; hh++) for (let j = 0; j < d / 2; j++) {
          const th = Math.fround(p * this.inv[j]!), cs = Math.cos(th), sn = Math.sin(th), b = hh * d + 2 * j;
          const x0 = x[b]!, x1 = x[b + 1]!;
          x[b] = x0 * cs - x1 * sn; x[b + 1] = x0 * sn + x1 * cs;
        }
        if (c.useQkNorm) { rmsNormFwd(q, rr, q, null, nh, d, c.eps); rmsNormFwd(k, rr, k, null, nkv, d, c.eps); }
      } else if (c.attnTemperatureTuning) {
        const s = 1 + c.attnScale * Math.log(1 + Math.floor((p + 1) / c.floorScale));
        for (let i = 0; i < q.length; i++) q[i] = q[i]! * s;
      }
      this.K[l]!.set(k, p * nkv * d); this.V[l]!.set(v, p * nkv * d);
      const s0 = rope ? Math.floor(p / c.chunkSize) * c.chunkSize : 0, group = nh / nkv, scale = 1 / Math.sqrt(d);
      const Kc = this.K[l]!, Vc = this.V[l]!, sc = new Float32Array(p + 1);
      o.fill(0);
      for (let hh = 0; hh < nh; hh++) {
        const kh = Math.floor(hh / group);
        let mx = -Infinity;
        for (let s = s0; s <= p; s++) {
          let dot = 0;
          for (let j = 0; j < d; j++) dot += q[hh * d + j]! * Kc[(s * nkv + kh) * d + j]!;
          sc[s] = dot * scale; if (sc[s]! > mx) mx = sc[s]!;
        }
        let sum = 0;
        for (let s = s0; s <= p; s++) { sc[s] = Math.exp(sc[s]! - mx); sum += sc[s]!; }
        for (let s = s0; s <= p; s++) {
          const w = sc[s]! / sum;
          for (let j = 0; j < d; j++) o[hh * d + j] = o[hh * d + j]! + w * Vc[(s * nkv + kh) * d + j]!;
        }
      }
      linear(tmp, o, L.o.data, 1, H, nh * d);
      for (let i = 0; i < H; i++) h[i] = h[i]! + tmp[i]!;
      rmsNormFwd(a, r, h, L.postNorm.data, 1, H, c.eps);
      if (L.router) {
        const E = c.nExperts, I = c.intermediateSize;
        const rl = new Float32Array(E);
        linear(rl, a, L.router.data, 1, E, H);
        let e = 0;
        for (let j = 1; j < E; j++) if (rl[j]! > rl[e]!) e = j;
        const s = sigmoid(rl[e]!), xe = a.map((x) => x * s);
        const gu = new Float32Array(2 * I), mm = new Float32Array(I);
        linear(gu, xe, L.gateUp!.data.subarray(e * 2 * I * H, (e + 1) * 2 * I * H), 1, 2 * I, H);
        for (let j = 0; j < I; j++) mm[j] = silu(gu[j]!) * gu[I + j]!;
        linear(tmp, mm, L.down!.data.subarray(e * H * I, (e + 1) * H * I), 1, H, I);
        for (let i = 0; i < H; i++) h[i] = h[i]! + tmp[i]!;
        const g = new Float32Array(I), u = new Float32Array(I);
        linear(g, a, L.shGate!.data, 1, I, H); linear(u, a, L.shUp!.data, 1, I, H);
        for (let j = 0; j < I; j++) g[j] = silu(g[j]!) * u[j]!;
        linear(tmp, g, L.shDown!.data, 1, H, I);
      } else {
        const Im = c.intermediateSizeMlp, g = new Float32Array(Im), u = new Float32Array(Im);
        linear(g, a, L.gate!.data, 1, Im, H); linear(u, a, L.up!.data, 1, Im, H);
        for (let j = 0; j < Im; j++) g[j] = silu(g[j]!) * u[j]!;
        linear(tmp, g, L.dn!.data, 1, H, Im);
      }
      for (let i = 0; i < H; i++) h[i] = h[i]! + tmp[i]!;
    }
    this.pos++;
    rmsNormFwd(a, r, h, m.norm.data, 1, H, c.eps);
    const logits = new Float32Array(c.vocabSize);
    linear(logits, a, m.head.data, 1, c.vocabSize, H);
    return logits;
  }
}

function argmax(x: Float32Array): number {
  let b = 0;
  for (let j = 1; j < x.length; j++) if (x[j]! > x[b]!) b = j;
  return b;
}

/** Greedy continuation of one prompt with the KV cache (stops after a stop id, which is included). */
export function greedyKv(model: TrainModel, prompt: readonly number[], maxNew: number, stopIds: readonly number[]): number[] {
  const dec = new KvDecoder(model, prompt.length + maxNew);
  let logits: Float32Array | null = null;
  for (const t of prompt) logits = dec.step(t);
  const out: number[] = [];
  for (let i = 0; i < maxNew && logits; i++) {
    const t = argmax(logits);
    out.push(t);
    if (stopIds.includes(t)) break;
    logits = dec.step(t);
  }
  return out;
}

/** Samples with temperature (for RL / preference pairs); `rand` gives uniforms in [0, 1). */
export function sampleKv(model: TrainModel, prompt: readonly number[], maxNew: number, stopIds: readonly number[], temperature: number, rand: () => number): number[] {
  const dec = new KvDecoder(model, prompt.length + maxNew);
  let logits: Float32Array | null = null;
  for (const t of prompt) logits = dec.step(t);
  const out: number[] = [];
  for (let i = 0; i < maxNew && logits; i++) {
    let mx = -Infinity;
    for (const x of logits) mx = Math.max(mx, x);
    let sum = 0;
    const pr = logits.map((x) => { const e = Math.exp((x - mx) / temperature); sum += e; return e; });
    let u = rand() * sum, t = 0;
    for (; t < pr.length - 1; t++) { u -= pr[t]!; if (u <= 0) break; }
    out.push(t);
    if (stopIds.includes(t)) break;
    logits = dec.step(t);
  }
  return out;
}
