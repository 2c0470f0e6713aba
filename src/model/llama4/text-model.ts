/**
 * The Llama 4 text decoder (spec §2), written once against the Backend interface.
 *
 * Shapes: N = tokens in this forward call (all items together), H hidden, nh/nkv heads, d head dim,
 * E experts, I expert width, Imlp dense width, V vocab.
 * Per layer l:  h += Attn_l(RMSNorm(h));  h += FFN_l(RMSNorm(h));  logits = RMSNorm(h) · Woutᵀ.
 */
import type { AttentionJob, Backend, KvType, MatmulJob, RawTensor, Weight } from '../../tensor/index.ts';
import { encodeKv, isKvType } from '../../tensor/index.ts';
import { UsageError } from '../../util/index.ts';
import type { CausalLM, ForwardItem, ModelInfo, SequenceState } from '../types.ts';
import type { LayerCache } from '../kv-cache.ts';
import { ChunkedKvCache, FullKvCache, type KvEncoder } from '../kv-cache.ts';
import type { LayerFacts, Llama4Config } from './config.ts';
import { attnTemperatureScale, ropeInvFreq } from './config.ts';
import { validateTensors } from './weights.ts';

interface LayerWeights {
  readonly facts: LayerFacts;
  readonly attnNorm: Float32Array; // [H]
  readonly wq: Weight; // [nh·d, H]
  readonly wk: Weight; // [nkv·d, H]
  readonly wv: Weight; // [nkv·d, H]
  readonly wo: Weight; // [H, nh·d]
  readonly ffnNorm: Float32Array; // [H]
  // MoE layers
  readonly router?: Weight; // [E, H]
  readonly gateExps?: Weight; // [E, I, H]
  readonly upExps?: Weight; // [E, I, H]
  readonly downExps?: Weight; // [E, H, I]
  readonly gateSh?: Weight; // [I, H]
  readonly upSh?: Weight; // [I, H]
  readonly downSh?: Weight; // [H, I]
  // dense layers
  readonly gate?: Weight; // [Imlp, H]
  readonly up?: Weight; // [Imlp, H]
  readonly down?: Weight; // [H, Imlp]
}

/** The caches of one sequence: one LayerCache per layer, chunked on RoPE layers and full on NoPE layers. */
export class Llama4Sequence implements SequenceState {
  constructor(readonly caches: LayerCache[]) {}
  get length(): number {
    return this.caches[0]?.length ?? 0;
  }
  truncate(length: number): boolean {
    if (!this.caches.every((c) => c.canTruncate(length))) return false;
    for (const c of this.caches) c.truncate(length);
    return true;
  }
  clone(): Llama4Sequence {
    return new Llama4Sequence(this.caches.map((c) => c.clone()));
  }
  cacheBytes(): number {
    return this.caches.reduce((s, c) => s + c.bytes(), 0);
  }
  /** Binary search on canTruncate: the truncatable lengths of every layer form one interval ending at `length`. */
  truncateFloor(): number {
    let lo = 0;
    let hi = this.length;
    while (lo < hi) {
      const mid = (lo + hi) >> 1;
      if (this.caches.every((c) => c.canTruncate(mid))) hi = mid;
      else lo = mid + 1;
    }
    return lo;
  }
}

export interface TextModelOptions {
  /**
   * Storage of every layer's KV cache (default f32, exact). f16 halves it, q8_0 stores ~1.06 bytes per value
   * (head_dim must be a multiple of 32). Both the global (NoPE) caches, which grow with the context, and the chunked
   * (RoPE) ones, which hold up to one chunk, use it — as llama.cpp's --cache-type-k/v does for its iSWA cache.
   */
  readonly kvType?: KvType;
  /**
   * Work buffers are dropped after a call of more than this many tokens (default SCRATCH_KEEP_ROWS), so one long
   * prompt's buffers are not kept alive. A trainer that runs the same large batch every step keeps them.
   */
  readonly scratchKeepRows?: number;
}

/** Optional per-layer hook for tests and debugging: sees the residual stream after each layer. */
export type LayerObserver = (layer: number, hidden: Float32Array, rows: number) => void;

const SCRATCH_KEEP_ROWS = 512;

export class Llama4TextModel implements CausalLM {
  readonly info: ModelInfo;
  private readonly tokEmbd: Weight; // [V, H]
  private readonly outputNorm: Float32Array; // [H]
  private readonly output: Weight; // [V, H]
  private readonly layers: LayerWeights[];
  private readonly invFreq: Float32Array; // [d/2]
  /** How the caches store appended rows: the backend's encodeKv where it has one (the same bits), else kv.ts's. */
  private readonly kvEncode: KvEncoder;
  /** Set by tests to capture hidden states. */
  observer: LayerObserver | null = null;
  /**
   * Work buffers, reused by every layer of a forward call and across calls: allocating and zeroing a dozen arrays per
   * decode step showed up as ~5% of decode time in garbage collection, and a 512-token prefill churned ~200 MB of
   * per-layer MoE buffers (peak RSS above llama.cpp's). They are dropped after a call of more than SCRATCH_KEEP_ROWS
   * tokens, so one long prompt's buffers are not kept alive. Every buffer is fully written before it is read.
   */
  private readonly scratchBufs = new Map<string, Float32Array>();
  readonly kvType: KvType;
  private readonly scratchKeepRows: number;
  private disposed = false;

  /**
   * @param tensors internal names (see weights.ts), already validated or validated here.
   * @param where file name used in error messages.
   */
  constructor(
    readonly config: Llama4Config,
    tensors: Map<string, RawTensor>,
    readonly backend: Backend,
    where = 'model',
    opts: TextModelOptions = {},
  ) {
    validateTensors(config, tensors, where);
    this.kvType = opts.kvType ?? 'f32';
    this.scratchKeepRows = opts.scratchKeepRows ?? SCRATCH_KEEP_ROWS;
    if (!isKvType(this.kvType)) throw new UsageError(`unknown KV cache type '${this.kvType}' (f32, f16 or q8_0)`);
    if (this.kvType === 'q8_0' && config.headDim % 32 !== 0) {
      throw new UsageError(`a q8_0 KV cache needs head_dim to be a multiple of 32 (this model has ${config.headDim}); use f16 or f32`);
    }
    const w = (name: string): Weight => backend.weight(tensors.get(name)!);
    const f32 = (name: string): Float32Array => backend.toF32(w(name));
    this.tokEmbd = w('token_embd');
    this.outputNorm = f32('output_norm');
    this.output = config.tieWordEmbeddings ? this.tokEmbd : w('output');
    this.layers = config.layers.map((facts, l) => {
      const b = `blk.${l}.`;
      const base = {
        facts,
        attnNorm: f32(b + 'attn_norm'),
        wq: w(b + 'attn_q'),
        wk: w(b + 'attn_k'),
        wv: w(b + 'attn_v'),
        wo: w(b + 'attn_output'),
        ffnNorm: f32(b + 'ffn_norm'),
      };
      return facts.isMoe
        ? {
            ...base,
            router: w(b + 'ffn_gate_inp'),
            gateExps: w(b + 'ffn_gate_exps'),
            upExps: w(b + 'ffn_up_exps'),
            downExps: w(b + 'ffn_down_exps'),
            gateSh: w(b + 'ffn_gate_shexp'),
            upSh: w(b + 'ffn_up_shexp'),
            downSh: w(b + 'ffn_down_shexp'),
          }
        : { ...base, gate: w(b + 'ffn_gate'), up: w(b + 'ffn_up'), down: w(b + 'ffn_down') };
    });
    this.invFreq = ropeInvFreq(config);
    this.kvEncode = backend.encodeKv ? backend.encodeKv.bind(backend) : encodeKv;
    this.info = {
      architecture: 'llama4',
      vocabSize: config.vocabSize,
      hiddenSize: config.hiddenSize,
      contextLength: config.maxPositionEmbeddings,
      bosTokenId: config.bosTokenId,
      eosTokenIds: config.eosTokenIds,
      imageTokenId: config.imageTokenId,
    };
  }

  /**
   * Lets go of the weights and work buffers; forward() and newSequence() refuse afterwards. The backend and the
   * mapped files under the weights are released by whoever made them (LoadedModel.dispose in src/load.ts).
   */
  dispose(): void {
    this.disposed = true;
    this.layers.length = 0;
    this.scratchBufs.clear();
  }

  private buf(name: string, n: number): Float32Array {
    let b = this.scratchBufs.get(name);
    if (!b || b.length < n) this.scratchBufs.set(name, (b = new Float32Array(n)));
    return b.length === n ? b : b.subarray(0, n);
  }

  newSequence(): Llama4Sequence {
    if (this.disposed) throw new UsageError('the model was disposed');
    const rowSize = this.config.numKvHeads * this.config.headDim;
    const t = this.kvType;
    const enc = this.kvEncode;
    return new Llama4Sequence(
      this.config.layers.map((f) =>
        f.chunkSize > 0 ? new ChunkedKvCache(rowSize, f.chunkSize, t, enc) : new FullKvCache(rowSize, 64, t, enc),
      ),
    );
  }

  /**
   * One-shot forward of token rows, each a sequence of its own from position 0 (a trainer's batch): every row's
   * logits, concatenated [ΣT, V] in one fresh array. No sequence state is kept — keys and values are attended where
   * they were computed and never cached — so a training step pays no cache appends and no per-sequence copies of the
   * head's output.
   */
  forwardRows(rows: readonly ArrayLike<number>[]): Float32Array {
    // Keys are attended as computed, so only an exact (f32) cache gives forward()'s bits: refuse the others.
    if (this.kvType !== 'f32')
      throw new UsageError(`forwardRows attends uncached f32 keys; this model stores its KV cache as ${this.kvType}`);
    return this.run(
      rows.map((tokens) => ({ tokens, logits: 'all' as const })),
      true,
    )[0]!;
  }

  forward(items: readonly ForwardItem[]): Float32Array[] {
    return this.run(items, false);
  }

  /** `oneShot`: items carry no sequences (forwardRows); the result is one [ΣT, V] array. */
  private run(items: readonly (Omit<ForwardItem, 'seq'> & { seq?: ForwardItem['seq'] })[], oneShot: boolean): Float32Array[] {
    if (this.disposed) throw new UsageError('the model was disposed');
    const cfg = this.config;
    const be = this.backend;
    const { hiddenSize: H, numHeads: nh, numKvHeads: nkv, headDim: d, vocabSize: V } = cfg;
    const seqs = items.map((it) => {
      if (oneShot) return null;
      if (!(it.seq instanceof Llama4Sequence)) throw new UsageError('sequence was not created by this model');
      return it.seq;
    });
    if (!oneShot && new Set(seqs).size !== seqs.length) throw new UsageError('a sequence may appear only once in a forward() call');
    // Row offsets of each item inside the N concatenated tokens, and the absolute position of each row.
    const offsets: number[] = [];
    let N = 0;
    for (const it of items) {
      offsets.push(N);
      N += it.tokens.length;
    }
    if (N === 0) return oneShot ? [new Float32Array(0)] : items.map(() => new Float32Array(0));
    const ids = new Int32Array(N);
    const pos = new Int32Array(N);
    items.forEach((it, i) => {
      const p0 = seqs[i]?.length ?? 0;
      for (let t = 0; t < it.tokens.length; t++) {
        const id = it.tokens[t]!;
        if (!Number.isInteger(id) || id < 0 || id >= V) throw new UsageError(`token id ${id} is outside the vocabulary (0..${V - 1})`);
        ids[offsets[i]! + t] = id;
        pos[offsets[i]! + t] = p0 + t;
      }
    });

    // h [N, H]: unscaled token embeddings, with image features written into <|patch|> slots (early fusion).
    const h = this.buf('h', N * H);
    be.getRows(h, this.tokEmbd, ids);
    items.forEach((it, i) => {
      if (it.patchEmbeddings) this.fusePatches(h, ids, offsets[i]!, it.tokens.length, it.patchEmbeddings);
    });

    // RoPE tables [N, d/2]: angle = fp32(pos · inv_j), then fp32 cos/sin (gotcha 14), shared by every RoPE layer.
    const half = d / 2;
    const cos = this.buf('cos', N * half),
      sin = this.buf('sin', N * half);
    for (let r = 0; r < N; r++) {
      for (let j = 0; j < half; j++) {
        const a = Math.fround(pos[r]! * this.invFreq[j]!);
        cos[r * half + j] = Math.cos(a);
        sin[r * half + j] = Math.sin(a);
      }
    }

    // NoPE temperature factors per row; null while every factor is 1 (positions below floor_scale − 1).
    let tempScale: Float32Array | null = null;
    if (cfg.layers.some((f) => !f.usesRope && f.temperatureTuning)) {
      const ts = this.buf('tempScale', N);
      for (let r = 0; r < N; r++) ts[r] = attnTemperatureScale(cfg, pos[r]!);
      if (ts.some((s) => s !== 1)) tempScale = ts;
    }

    const x = this.buf('x', N * H);
    const q = this.buf('q', N * nh * d);
    const k = this.buf('k', N * nkv * d);
    const v = this.buf('v', N * nkv * d);
    const att = this.buf('att', N * nh * d);
    const tmp = this.buf('tmp', N * H);
    const scale = 1 / Math.sqrt(d);
    for (let l = 0; l < this.layers.length; l++) {
      const L = this.layers[l]!;
      const f = L.facts;
      // --- attention ---
      be.rmsNorm(x, h, L.attnNorm, N, H, cfg.rmsNormEps);
      be.matmulMany([
        { out: q, x, w: L.wq, T: N },
        { out: k, x, w: L.wk, T: N },
        { out: v, x, w: L.wv, T: N },
      ]);
      if (f.usesRope) {
        be.rope(q, N, nh, d, cos, sin);
        be.rope(k, N, nkv, d, cos, sin);
        // Llama 4 quirk: weightless RMSNorm on q and k per head, AFTER RoPE, only on RoPE layers.
        if (f.qkNorm) {
          be.rmsNorm(q, q, null, N * nh, d, cfg.rmsNormEps);
          be.rmsNorm(k, k, null, N * nkv, d, cfg.rmsNormEps);
        }
      } else if (f.temperatureTuning && tempScale) {
        // NoPE layers: q ·= 1 + attn_scale · ln(1 + floor((p + 1) / floor_scale)), p the absolute position.
        be.scaleRows(q, tempScale, N, nh * d);
      }
      // Every sequence's queries against its own cache, all in one call.
      const jobs: AttentionJob[] = [];
      items.forEach((it, i) => {
        const n = it.tokens.length;
        if (n === 0) return;
        const o = offsets[i]!;
        const cache = seqs[i]?.caches[l];
        const qPos0 = cache?.length ?? 0;
        const kRows = k.subarray(o * nkv * d, (o + n) * nkv * d),
          vRows = v.subarray(o * nkv * d, (o + n) * nkv * d);
        const kv = cache ? cache.append(kRows, vRows, n) : { k: kRows, v: vRows, S: n, kPos0: 0, kvType: 'f32' as const };
        // A fresh f32 sequence's cache holds exactly this call's rows, bit for bit: attend over them where they were
        // computed. Same values; and a backend that records the forward (training's tape) sees that the keys are
        // these k/v rows, so their gradients reach the k/v projections.
        const own = kv.kvType === 'f32' && kv.S === n && kv.kPos0 === qPos0;
        jobs.push({
          out: att.subarray(o * nh * d, (o + n) * nh * d),
          q: q.subarray(o * nh * d, (o + n) * nh * d),
          k: own ? kRows : kv.k,
          v: own ? vRows : kv.v,
          shape: {
            nHeads: nh,
            nKvHeads: nkv,
            headDim: d,
            T: n,
            S: kv.S,
            qPos0,
            kPos0: kv.kPos0,
            scale,
            mask: { causal: true, chunkSize: f.chunkSize },
            kvType: kv.kvType,
          },
        });
      });
      if (jobs.length === 1)
        be.attention(jobs[0]!.out, jobs[0]!.q, jobs[0]!.k, jobs[0]!.v, jobs[0]!.shape); // may split key slices over threads
      else be.attentionMany(jobs);
      items.forEach((it, i) => {
        if (it.tokens.length) seqs[i]?.caches[l]?.settle();
      });
      be.matmul(tmp, att, L.wo, N);
      be.addInPlace(h, tmp, N * H);
      // --- feed-forward ---
      be.rmsNorm(x, h, L.ffnNorm, N, H, cfg.rmsNormEps);
      if (f.isMoe) this.moe(L, x, tmp, N);
      else this.dense(L, x, tmp, N);
      be.addInPlace(h, tmp, N * H);
      this.observer?.(l, h, N);
    }

    // Logits only for the rows asked for, all items' rows in ONE head matmul (the head is the biggest matrix: a
    // batch of decoding sequences reads it once per step, not once per sequence). Rows are batch invariant, so a
    // row's logits are the same bits whichever rows share the call. 'hidden' items get final-norm states instead.
    const want = items.map((it) =>
      it.logits === 'none' || it.tokens.length === 0 ? 0 : it.logits === 'all' || it.logits === 'hidden' ? it.tokens.length : 1,
    );
    const head = items.map((it, i) => (it.logits === 'hidden' ? 0 : want[i]!));
    const R = head.reduce((a, b) => a + b, 0);
    const xs = this.buf('xs', R * H);
    const headRows = new Int32Array(R);
    let r0 = 0;
    items.forEach((it, i) => {
      const first = offsets[i]! + it.tokens.length - head[i]!;
      for (let j = 0; j < head[i]!; j++) headRows[r0 + j] = first + j;
      r0 += head[i]!;
    });
    be.gatherRows(xs, h, headRows, null, R, H);
    // The head writes every item's rows into one fresh [R, V] array, and each item gets a view of its rows: the
    // arrays belong to the caller (one allocation per call; copying 8 decoding sequences' rows out of a reused
    // buffer allocated the same megabyte per step and copied it too).
    const all = new Float32Array(R * V);
    if (R > 0) {
      be.rmsNorm(xs, xs, this.outputNorm, R, H, cfg.rmsNormEps);
      be.matmul(all, xs, this.output, R);
    }
    if (oneShot) {
      if (N > this.scratchKeepRows) this.scratchBufs.clear();
      return [all];
    }
    r0 = 0;
    const out = items.map((it, i) => {
      const rows = want[i]!;
      if (it.logits === 'hidden') {
        const first = offsets[i]! + it.tokens.length - rows;
        return rows ? this.finalNorm(h.subarray(first * H, (first + rows) * H), rows) : new Float32Array(0);
      }
      const o = items.length === 1 ? all : all.subarray(r0 * V, (r0 + rows) * V);
      r0 += rows;
      return o;
    });
    if (N > this.scratchKeepRows) this.scratchBufs.clear();
    return out;
  }

  /** Final-norm hidden states [rows, H] of residual rows `h` (forward's 'hidden' output; the golden hidden-state check). */
  finalNorm(h: Float32Array, rows: number): Float32Array {
    const out = new Float32Array(rows * this.config.hiddenSize);
    this.backend.rmsNorm(out, h, this.outputNorm, rows, this.config.hiddenSize, this.config.rmsNormEps);
    return out;
  }

  private fusePatches(h: Float32Array, ids: Int32Array, start: number, n: number, feats: Float32Array): void {
    const H = this.config.hiddenSize;
    const img = this.config.imageTokenId;
    if (img === null) throw new UsageError('this model has no image token: it cannot take image features');
    let j = 0;
    const total = feats.length / H;
    for (let t = start; t < start + n; t++) {
      if (ids[t] !== img) continue;
      if (j >= total) throw new UsageError(`the prompt has more <|patch|> tokens than image feature rows (${total})`);
      h.set(feats.subarray(j * H, (j + 1) * H), t * H);
      j++;
    }
    if (j !== total) throw new UsageError(`the prompt has ${j} <|patch|> tokens but the images give ${total} feature rows`);
  }

  /** Dense SwiGLU: out = down(silu(gate(x)) ⊙ up(x)). */
  private dense(L: LayerWeights, x: Float32Array, out: Float32Array, N: number): void {
    const Imlp = this.config.intermediateSizeMlp;
    const g = this.buf('g', N * Imlp),
      u = this.buf('u', N * Imlp);
    this.backend.matmulMany([
      { out: g, x, w: L.gate!, T: N },
      { out: u, x, w: L.up!, T: N },
    ]);
    this.backend.siluMul(g, g, u, N * Imlp);
    this.backend.matmul(out, g, L.down!, N);
  }

  /**
   * MoE (spec §2.3). T tokens, E experts, 1 active. Router: top-1 of x·Wrᵀ, score s = sigmoid(logit) — no softmax,
   * no renormalisation — and s scales the expert's INPUT (not its output; they differ through SiLU).
   * out = shared_expert(x) + Σ expert_e(s·x).
   * Tokens are grouped by expert (rows of one expert contiguous in xe), so each chosen expert's matrices are read
   * once per call for all its tokens — across the sequences of a batched decode step as in a prompt. The whole
   * layer is three matmulMany calls: the router (with the shared expert's gate/up below 4 tokens), every chosen
   * expert's gate/up (and the shared one's from 4 tokens on), then the shared and every chosen expert's down (rows
   * [0, N) shared, [N, 2N) routed, so one SiLU·mul covers both).
   */
  private moe(L: LayerWeights, x: Float32Array, out: Float32Array, N: number): void {
    const be = this.backend;
    const { hiddenSize: H, intermediateSize: I, numExperts: E } = this.config;
    const logits = this.buf('router', N * E);
    const g = this.buf('g', 2 * N * I),
      u = this.buf('u', 2 * N * I);
    // With 4+ tokens the shared expert's gate/up go with the routed experts' (below): they are bound by arithmetic
    // (every token reads them) and the routed ones by memory, and the backend interleaves the two kinds of work. With
    // fewer, all are bound by memory and they go with the router (one call fewer per layer).
    const shared: MatmulJob[] = [
      { out: g.subarray(0, N * I), x, w: L.gateSh!, T: N },
      { out: u.subarray(0, N * I), x, w: L.upSh!, T: N },
    ];
    const sharedWithRouted = N >= 4;
    be.matmulMany([{ out: logits, x, w: L.router!, T: N }, ...(sharedWithRouted ? [] : shared)]);
    const choice = new Int32Array(N);
    const score = new Float32Array(N);
    be.routeTop1(logits, N, E, choice, score);
    const start = new Int32Array(E + 1); // expert e's rows in xe: [start[e], start[e + 1])
    for (let t = 0; t < N; t++) start[choice[t]! + 1]!++;
    for (let e = 0; e < E; e++) start[e + 1]! += start[e]!;
    // xe [N, H]: row j = token tokenOf[j]'s input scaled by its score, tokens grouped by expert (stable).
    const tokenOf = new Int32Array(N);
    const next = start.slice(0, E);
    for (let t = 0; t < N; t++) tokenOf[next[choice[t]!]!++] = t;
    const xe = this.buf('xe', N * H);
    be.gatherRows(xe, x, tokenOf, score, N, H);
    const ge = g.subarray(N * I),
      ue = u.subarray(N * I);
    const up: MatmulJob[] = sharedWithRouted ? shared : [];
    const down: MatmulJob[] = [{ out: out, x: g.subarray(0, N * I), w: L.downSh!, T: N }];
    const ye = this.buf('ye', N * H);
    for (let e = 0; e < E; e++) {
      const a = start[e]!,
        n = start[e + 1]! - a;
      if (n === 0) continue;
      const xs = xe.subarray(a * H, (a + n) * H);
      up.push({ out: ge.subarray(a * I, (a + n) * I), x: xs, w: L.gateExps!, T: n, expert: e });
      up.push({ out: ue.subarray(a * I, (a + n) * I), x: xs, w: L.upExps!, T: n, expert: e });
      down.push({ out: ye.subarray(a * H, (a + n) * H), x: ge.subarray(a * I, (a + n) * I), w: L.downExps!, T: n, expert: e });
    }
    be.matmulMany(up);
    be.siluMul(g, g, u, 2 * N * I);
    be.matmulMany(down);
    be.scatterAddRows(out, ye, tokenOf, N, H);
  }
}
