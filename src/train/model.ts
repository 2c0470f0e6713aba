/**
 * The Llama 4 text model as the trainer holds it: f32 parameters with gradients, MetaP-style initialisation, and a
 * forward pass that is the inference model's own — `Llama4TextModel` (model/llama4) running on the training tape
 * (tape.ts), which records each Backend op and differentiates it in reverse. Nothing here computes a layer.
 *
 * Batches are B sequences of T tokens, every sequence starting at absolute position 0, rows laid out [B·T, …].
 * Expert stacks are kept Linear-style ([E, 2I, H] gate-first and [E, H, I]) so every product is x·Wᵀ; the gate and
 * up halves are bound to the model as two [E, I, H] stacks, and checkpoint.ts converts to and from HF's `x @ W`
 * layout ([E, H, 2I], [E, I, H]).
 */
import { assert } from '../util/errors.ts';
import type { TrainModelConfig } from './config.ts';
import { Llama4TextModel } from '../model/llama4/text-model.ts';
import type { RawTensor } from '../tensor/index.ts';
import { TapeBackend } from './tape.ts';
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

export class TrainModel {
  readonly params: Param[] = [];
  readonly embed: Param;
  readonly norm: Param;
  readonly head: Param;
  readonly layers: Layer[] = [];
  /** The one Llama 4 forward pass, on the tape. */
  private readonly net: Llama4TextModel;
  private readonly tape = new TapeBackend();

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
    this.net = this.buildNet(this.tape);
  }

  /** Router load-balancing loss of the last forward (sum over MoE layers, before the coefficient). */
  get auxLoss(): number {
    return this.tape.auxLoss;
  }

  /**
   * Llama4TextModel over the parameters themselves: each internal tensor is bound to its Param (no copy), so every
   * optimizer step is seen by the next forward, and the gate/up halves of the fused expert stacks become the two
   * [E, I, H] stacks the inference model reads.
   */
  private buildNet(tape: TapeBackend): Llama4TextModel {
    const c = this.cfg,
      I = c.intermediateSize,
      H = c.hiddenSize,
      E = c.nExperts;
    const tensors = new Map<string, RawTensor>();
    const put = (name: string, p: Param, shape: readonly number[] = p.shape, offset = 0, stride = 0): void => {
      const t: RawTensor = { name, dtype: 'f32', shape, bytes: new Uint8Array(p.data.buffer, p.data.byteOffset, p.data.byteLength) };
      tape.bind(t, p, offset, stride);
      tensors.set(name, t);
    };
    put('token_embd', this.embed);
    put('output_norm', this.norm);
    put('output', this.head);
    this.layers.forEach((L, l) => {
      const b = `blk.${l}.`;
      put(b + 'attn_norm', L.inNorm);
      put(b + 'attn_q', L.q);
      put(b + 'attn_k', L.k);
      put(b + 'attn_v', L.v);
      put(b + 'attn_output', L.o);
      put(b + 'ffn_norm', L.postNorm);
      if (L.router) {
        put(b + 'ffn_gate_inp', L.router);
        put(b + 'ffn_gate_exps', L.gateUp!, [E, I, H], 0, 2 * I * H);
        put(b + 'ffn_up_exps', L.gateUp!, [E, I, H], I * H, 2 * I * H);
        put(b + 'ffn_down_exps', L.down!);
        put(b + 'ffn_gate_shexp', L.shGate!);
        put(b + 'ffn_up_shexp', L.shUp!);
        put(b + 'ffn_down_shexp', L.shDown!);
      } else {
        put(b + 'ffn_gate', L.gate!);
        put(b + 'ffn_up', L.up!);
        put(b + 'ffn_down', L.dn!);
      }
    });
    // A training step runs the same large batch every time: keep the work buffers between steps.
    return new Llama4TextModel(c.llama, tensors, tape, 'training model', { scratchKeepRows: Number.POSITIVE_INFINITY });
  }

  paramCount(): number {
    return this.params.reduce((a, p) => a + p.data.length, 0);
  }

  zeroGrad(): void {
    for (const p of this.params) p.grad.fill(0);
  }

  /**
   * Forward over B sequences of T tokens (tokens [B·T]) through Llama4TextModel. Returns logits [B·T, V] (a fresh
   * array). With `keep` false nothing is recorded (evaluation, generation); a kept forward waits for backward().
   */
  forward(tokens: Int32Array, B: number, T: number, keep = true): Float32Array {
    const N = B * T,
      V = this.cfg.vocabSize;
    assert(tokens.length === N, 'tokens length');
    for (let i = 0; i < N; i++) {
      const t = tokens[i]!;
      if (!(t >= 0 && t < V)) throw new RangeError(`token id ${t} out of range 0..${V - 1}`);
    }
    // A forward that keeps nothing must not disturb a recorded one waiting for its backward: it runs on a second
    // Llama4TextModel over the same parameters, with its own tape and buffers.
    let run = { tape: this.tape, net: this.net };
    if (!keep && this.tape.pending) {
      if (!this.side) {
        const tape = new TapeBackend();
        this.side = { tape, net: this.buildNet(tape) };
      }
      run = this.side;
    }
    run.tape.begin(keep);
    return runRows(run.net, tokens, B, T, V);
  }
  private side: { tape: TapeBackend; net: Llama4TextModel } | null = null;

  /**
   * Backward from dLogits [B·T, V] of the last kept forward; `auxCoef` weights the router balancing loss's gradient.
   * Gradients accumulate (gradient accumulation = several forward/backward pairs before a step).
   */
  backward(dLogits: Float32Array, auxCoef = 0): void {
    this.tape.backward(dLogits, auxCoef); // checks that a kept forward is pending and that dLogits matches its logits
  }
}

/** B fresh sequences of T tokens in one Llama4TextModel call; logits of every row, [B·T, V]. */
function runRows(net: Llama4TextModel, tokens: Int32Array, B: number, T: number, V: number): Float32Array {
  const logits = net.forwardRows(Array.from({ length: B }, (_, b) => tokens.subarray(b * T, (b + 1) * T)));
  assert(logits.length === B * T * V, 'logits length');
  return logits;
}
