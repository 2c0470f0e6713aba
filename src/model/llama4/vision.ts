/**
 * Llama 4 vision encoder, adapter and projector (spec §3.3), computed through the Backend seam only.
 *
 * Per tile [C, S, S]: unfold into Np = (S/P)² patches of C·P·P values → linear → append the class token LAST →
 * + positional embedding → layernorm_pre → L bidirectional pre-LN ViT layers (biased q/k/v/o, 2-D RoPE, exact GELU
 * MLP) → layernorm_post → drop the class row → pixel shuffle (ratio r: [Np, Hv] → [Np·r², Hv/r²]) → adapter
 * fc1, GELU, fc2, GELU → multi_modal_projector.linear_1 → rows that replace `<|patch|>` embeddings in order.
 *
 * Shapes below use Scout's numbers in comments: S 336, P 14, Np 576, Hv 1408, 16 heads × 88, I 5632, 144 tokens.
 */
import type { Backend, RawTensor, Weight } from '../../tensor/index.ts';
import { ModelFileError, UsageError } from '../../util/index.ts';
import type { Llama4VisionConfig } from './vision-config.ts';
import { hasVisionConfig, parseVisionConfig } from './vision-config.ts';

/** Where the encoder reads HF tensors from: a loaded map, or a lazily read checkpoint (io/safetensors TensorSource). */
export type VisionTensorSource =
  | ReadonlyMap<string, RawTensor>
  | { readonly infos: ReadonlyMap<string, unknown>; read(name: string): RawTensor };

/** True when a checkpoint holds the HF vision tower (`vision_model.*`) and projector. */
export function hasVisionTensors(names: Iterable<string>): boolean {
  let v = false,
    p = false;
  for (const n of names) {
    if (n.startsWith('vision_model.')) v = true;
    else if (n.startsWith('multi_modal_projector.')) p = true;
    if (v && p) return true;
  }
  return false;
}

interface VisionLayer {
  ln1w: Float32Array;
  ln1b: Float32Array;
  wq: Weight;
  bq: Float32Array;
  wk: Weight;
  bk: Float32Array;
  wv: Weight;
  bv: Float32Array;
  wo: Weight;
  bo: Float32Array;
  ln2w: Float32Array;
  ln2b: Float32Array;
  fc1: Weight;
  b1: Float32Array; // [I, Hv], [I]
  fc2: Weight;
  b2: Float32Array; // [Hv, I], [Hv]
}

/**
 * The 2-D rotary tables for one tile, [Np + 1, headDim/2] each. Pair p < headDim/4 rotates by (x+1)·f_p, pair
 * p ≥ headDim/4 by (y+1)·f_(p − headDim/4), with x = n mod side, y = n div side for patch n (1-based so that no
 * patch gets the identity), f_j = 1 / theta^(2j / (headDim/2)); the class token (last row) gets angle 0 = identity.
 * float32 at every step, as HF builds `freqs_ci` (Llama4VisionRotaryEmbedding).
 */
export function visionRopeTables(side: number, headDim: number, theta: number): { cos: Float32Array; sin: Float32Array } {
  const f = Math.fround;
  const half = headDim / 2; // rotary pairs per head (44)
  const quarter = headDim / 4; // pairs per axis (22)
  const freq = new Float32Array(quarter);
  for (let j = 0; j < quarter; j++) freq[j] = f(1 / f(Math.pow(theta, f((2 * j) / half))));
  const T = side * side + 1;
  const cos = new Float32Array(T * half).fill(1); // CLS row stays cos 1, sin 0
  const sin = new Float32Array(T * half);
  for (let n = 0; n < side * side; n++) {
    const x = n % side,
      y = Math.floor(n / side);
    for (let p = 0; p < half; p++) {
      const a = p < quarter ? f((x + 1) * freq[p]!) : f((y + 1) * freq[p - quarter]!);
      cos[n * half + p] = f(Math.cos(a));
      sin[n * half + p] = f(Math.sin(a));
    }
  }
  return { cos, sin };
}

/**
 * Pixel shuffle with ratio r = 1/k on one tile's patch grid (HF `pixel_shuffle`, two view/permute rounds):
 * input [side·side, c] → output [(side/k)², c·k²], output token h'·(side/k) + w', channel q reads input patch
 * (row k·h' + q div (k·c), col k·w' + (q div c) mod k), channel q mod c. (k = 2: 4 neighbours stacked.)
 */
export function pixelShuffle(x: Float32Array, side: number, c: number, ratio: number): Float32Array {
  const k = Math.round(1 / ratio);
  const os = side / k;
  const oc = c * k * k;
  const out = new Float32Array(os * os * oc);
  for (let h2 = 0; h2 < os; h2++) {
    for (let w2 = 0; w2 < os; w2++) {
      const o = (h2 * os + w2) * oc;
      for (let dy = 0; dy < k; dy++) {
        for (let dx = 0; dx < k; dx++) {
          const src = ((k * h2 + dy) * side + (k * w2 + dx)) * c;
          out.set(x.subarray(src, src + c), o + (dy * k + dx) * c);
        }
      }
    }
  }
  return out;
}

export interface VisionEncoderOptions {
  /** Tiles pushed through the ViT together (bigger batches, bigger matmuls, more memory). Default 4. */
  readonly tilesPerBatch?: number;
  /** Name of the checkpoint in error messages. */
  readonly where?: string;
  /**
   * How the tower's, adapter's and projector's matrix products are computed (WeightOptions.products): 'bf16' (default)
   * lets the backend round activations to bf16 for bf16 weights, as Hugging Face does running the bf16 checkpoints in
   * bf16 (matrix products about 5x faster on CPUs with AVX-512 BF16; f32 and f16 weights are unaffected, so the f32
   * golden cases keep the exact kernels); 'exact' keeps every activation in float32. The error this adds is measured
   * against what bf16 weights already cost in test/vision-bf16-products.test.ts.
   */
  readonly products?: 'bf16' | 'exact';
}

export class Llama4VisionEncoder {
  private readonly patchW: Weight; // [Hv, C·P·P]
  private readonly cls: Float32Array; // [Hv]
  private readonly pos: Float32Array; // [Np + 1, Hv]
  private readonly lnPre: [Float32Array, Float32Array];
  private readonly lnPost: [Float32Array, Float32Array];
  private readonly layers: VisionLayer[];
  private readonly adapterFc1: Weight; // [projector_input_dim, Hv/r²]
  private readonly adapterFc2: Weight; // [projector_output_dim, projector_input_dim]
  private readonly projector: Weight; // [textHidden, vision_output_dim]
  private readonly projectorBias: Float32Array | null;
  private readonly rope: { cos: Float32Array; sin: Float32Array };
  private readonly tilesPerBatch: number;
  /** Width of the adapter output (vision_model's last_hidden_state). */
  readonly visionOutputDim: number;

  constructor(
    readonly cfg: Llama4VisionConfig,
    tensors: VisionTensorSource,
    readonly backend: Backend,
    opts: VisionEncoderOptions = {},
  ) {
    const where = opts.where ?? 'vision weights';
    const has = (n: string): boolean => ('read' in tensors ? tensors.infos.has(n) : tensors.has(n));
    const get = (name: string, shape: number[]): RawTensor => {
      if (!has(name)) throw new ModelFileError(where, `missing tensor "${name}"`);
      const t = 'read' in tensors ? tensors.read(name) : tensors.get(name)!;
      if (t.shape.length !== shape.length || t.shape.some((s, i) => s !== shape[i])) {
        throw new ModelFileError(
          where,
          `tensor "${name}" has shape [${t.shape.join(', ')}], the vision config needs [${shape.join(', ')}]`,
        );
      }
      return t;
    };
    const products = opts.products ?? 'bf16';
    const w = (name: string, shape: number[]): Weight => backend.weight(get(name, shape), { products });
    const vec = (name: string, n: number): Float32Array => backend.toF32(backend.weight(get(name, [n])));
    const { hiddenSize: Hv, intermediateSize: I, numChannels: C, patchSize: P, patchesPerSide: side } = cfg;
    const Np = side * side;
    const vm = 'vision_model.';
    this.patchW = w(vm + 'patch_embedding.linear.weight', [Hv, C * P * P]);
    this.cls = vec(vm + 'class_embedding', Hv);
    this.pos = backend.toF32(backend.weight(get(vm + 'positional_embedding_vlm', [Np + 1, Hv])));
    this.lnPre = [vec(vm + 'layernorm_pre.weight', Hv), vec(vm + 'layernorm_pre.bias', Hv)];
    this.lnPost = [vec(vm + 'layernorm_post.weight', Hv), vec(vm + 'layernorm_post.bias', Hv)];
    this.layers = [];
    for (let l = 0; l < cfg.numLayers; l++) {
      const p = `${vm}model.layers.${l}.`;
      this.layers.push({
        ln1w: vec(p + 'input_layernorm.weight', Hv),
        ln1b: vec(p + 'input_layernorm.bias', Hv),
        wq: w(p + 'self_attn.q_proj.weight', [Hv, Hv]),
        bq: vec(p + 'self_attn.q_proj.bias', Hv),
        wk: w(p + 'self_attn.k_proj.weight', [Hv, Hv]),
        bk: vec(p + 'self_attn.k_proj.bias', Hv),
        wv: w(p + 'self_attn.v_proj.weight', [Hv, Hv]),
        bv: vec(p + 'self_attn.v_proj.bias', Hv),
        wo: w(p + 'self_attn.o_proj.weight', [Hv, Hv]),
        bo: vec(p + 'self_attn.o_proj.bias', Hv),
        ln2w: vec(p + 'post_attention_layernorm.weight', Hv),
        ln2b: vec(p + 'post_attention_layernorm.bias', Hv),
        fc1: w(p + 'mlp.fc1.weight', [I, Hv]),
        b1: vec(p + 'mlp.fc1.bias', I),
        fc2: w(p + 'mlp.fc2.weight', [Hv, I]),
        b2: vec(p + 'mlp.fc2.bias', Hv),
      });
    }
    const shuffled = Hv / (cfg.pixelShuffleRatio * cfg.pixelShuffleRatio);
    // HF: fc1 = Linear(intermediate_size → projector_input_dim), fc2 = Linear(projector_output_dim → projector_output_dim).
    this.adapterFc1 = w(vm + 'vision_adapter.mlp.fc1.weight', [cfg.projectorInputDim, shuffled]);
    this.adapterFc2 = w(vm + 'vision_adapter.mlp.fc2.weight', [cfg.projectorOutputDim, cfg.projectorInputDim]);
    this.visionOutputDim = cfg.projectorOutputDim;
    this.projector = w('multi_modal_projector.linear_1.weight', [cfg.textHiddenSize, cfg.visionOutputDim]);
    this.projectorBias = has('multi_modal_projector.linear_1.bias') ? vec('multi_modal_projector.linear_1.bias', cfg.textHiddenSize) : null;
    this.rope = visionRopeTables(side, cfg.headDim, cfg.ropeTheta);
    this.tilesPerBatch = Math.max(1, Math.floor(opts.tilesPerBatch ?? 4));
  }

  /** Patch tokens (rows) each tile yields. */
  get tokensPerTile(): number {
    return this.cfg.tokensPerTile;
  }

  private checkPixels(pixels: Float32Array, nTiles: number): void {
    const { numChannels: C, imageSize: S } = this.cfg;
    if (!Number.isInteger(nTiles) || nTiles < 1) throw new UsageError(`need at least one tile, got ${nTiles}`);
    if (pixels.length !== nTiles * C * S * S) {
      throw new UsageError(`pixel values: ${pixels.length} floats is not ${nTiles} tiles of [${C}, ${S}, ${S}]`);
    }
    for (let i = 0; i < pixels.length; i++) if (!Number.isFinite(pixels[i]!)) throw new UsageError(`pixel value ${i} is not finite`);
  }

  /**
   * vision_model output (HF `last_hidden_state` of Llama4VisionModel): [nTiles · tokensPerTile, visionOutputDim],
   * tiles in the order given.
   */
  encodeVision(pixels: Float32Array, nTiles: number): Float32Array {
    this.checkPixels(pixels, nTiles);
    const per = this.cfg.tokensPerTile,
      D = this.visionOutputDim;
    const out = new Float32Array(nTiles * per * D);
    const tileLen = this.cfg.numChannels * this.cfg.imageSize * this.cfg.imageSize;
    for (let t0 = 0; t0 < nTiles; t0 += this.tilesPerBatch) {
      const nb = Math.min(this.tilesPerBatch, nTiles - t0);
      const feats = this.towerBatch(pixels.subarray(t0 * tileLen, (t0 + nb) * tileLen), nb);
      out.set(feats, t0 * per * D);
    }
    return out;
  }

  /** multi_modal_projector.linear_1: [rows, visionOutputDim] → [rows, textHidden]. */
  project(features: Float32Array, rows: number): Float32Array {
    const out = new Float32Array(rows * this.cfg.textHiddenSize);
    this.backend.matmul(out, features, this.projector, rows);
    if (this.projectorBias) this.backend.addBias(out, this.projectorBias, rows, this.cfg.textHiddenSize);
    return out;
  }

  /**
   * Pixels [nTiles, C, S, S] (an image's tiles row-major then its global tile, or several images back to back) →
   * patch embeddings [nTiles · tokensPerTile, textHidden] for ForwardItem.patchEmbeddings.
   */
  encode(pixels: Float32Array, nTiles: number): Float32Array {
    return this.project(this.encodeVision(pixels, nTiles), nTiles * this.cfg.tokensPerTile);
  }

  /** ViT + adapter for nb tiles: [nb · tokensPerTile, visionOutputDim]. */
  private towerBatch(pixels: Float32Array, nb: number): Float32Array {
    const be = this.backend;
    const {
      hiddenSize: Hv,
      intermediateSize: I,
      numChannels: C,
      imageSize: S,
      patchSize: P,
      patchesPerSide: side,
      numHeads: nh,
      headDim: d,
    } = this.cfg;
    const Np = side * side,
      T = Np + 1,
      K = C * P * P;
    const rows = nb * T;

    // 1. Unfold (torch nn.Unfold(P, stride P)): vector element c·P² + ky·P + kx, patches row-major py·side + px.
    const patches = new Float32Array(nb * Np * K);
    for (let b = 0; b < nb; b++) {
      const tile = b * C * S * S;
      for (let py = 0; py < side; py++)
        for (let px = 0; px < side; px++) {
          const o = (b * Np + py * side + px) * K;
          for (let c = 0; c < C; c++)
            for (let ky = 0; ky < P; ky++) {
              const src = tile + c * S * S + (py * P + ky) * S + px * P;
              patches.set(pixels.subarray(src, src + P), o + c * P * P + ky * P);
            }
        }
    }
    const emb = new Float32Array(nb * Np * Hv);
    be.matmul(emb, patches, this.patchW, nb * Np);

    // 2–4. Class token appended LAST (row Np of each tile), + positional embedding, layernorm_pre. x: [nb, T, Hv].
    const x = new Float32Array(rows * Hv);
    for (let b = 0; b < nb; b++) {
      x.set(emb.subarray(b * Np * Hv, (b + 1) * Np * Hv), b * T * Hv);
      x.set(this.cls, (b * T + Np) * Hv);
      be.addInPlace(x.subarray(b * T * Hv, (b + 1) * T * Hv), this.pos, T * Hv);
    }
    be.layerNorm(x, x, this.lnPre[0], this.lnPre[1], rows, Hv, this.cfg.normEps);

    // 5. Bidirectional ViT layers: x += o(attn(LN1 x)); x += fc2(gelu(fc1(LN2 x))).
    const h = new Float32Array(rows * Hv);
    const q = new Float32Array(rows * Hv),
      k = new Float32Array(rows * Hv),
      v = new Float32Array(rows * Hv);
    const att = new Float32Array(rows * Hv),
      tmp = new Float32Array(rows * Hv);
    const mid = new Float32Array(rows * I);
    const shape = {
      nHeads: nh,
      nKvHeads: nh,
      headDim: d,
      T,
      S: T,
      qPos0: 0,
      kPos0: 0,
      scale: 1 / Math.sqrt(d),
      mask: { causal: false, chunkSize: 0 },
    };
    for (const L of this.layers) {
      be.layerNorm(h, x, L.ln1w, L.ln1b, rows, Hv, this.cfg.normEps);
      be.matmul(q, h, L.wq, rows);
      be.addBias(q, L.bq, rows, Hv);
      be.matmul(k, h, L.wk, rows);
      be.addBias(k, L.bk, rows, Hv);
      be.matmul(v, h, L.wv, rows);
      be.addBias(v, L.bv, rows, Hv);
      for (let b = 0; b < nb; b++) {
        const r = b * T * Hv,
          e = r + T * Hv;
        // 6. 2-D RoPE on q and k (interleaved pairs), identity on the class token.
        be.rope(q.subarray(r, e), T, nh, d, this.rope.cos, this.rope.sin);
        be.rope(k.subarray(r, e), T, nh, d, this.rope.cos, this.rope.sin);
        be.attention(att.subarray(r, e), q.subarray(r, e), k.subarray(r, e), v.subarray(r, e), shape);
      }
      be.matmul(tmp, att, L.wo, rows);
      be.addBias(tmp, L.bo, rows, Hv);
      be.addInPlace(x, tmp, rows * Hv);
      be.layerNorm(h, x, L.ln2w, L.ln2b, rows, Hv, this.cfg.normEps);
      be.matmul(mid, h, L.fc1, rows);
      be.addBias(mid, L.b1, rows, I);
      be.gelu(mid, rows * I);
      be.matmul(tmp, mid, L.fc2, rows);
      be.addBias(tmp, L.b2, rows, Hv);
      be.addInPlace(x, tmp, rows * Hv);
    }

    // 7. layernorm_post, then drop each tile's class row and 8. pixel-shuffle the patch grid.
    be.layerNorm(x, x, this.lnPost[0], this.lnPost[1], rows, Hv, this.cfg.normEps);
    const per = this.cfg.tokensPerTile;
    const shuffledDim = Hv / (this.cfg.pixelShuffleRatio * this.cfg.pixelShuffleRatio);
    const sh = new Float32Array(nb * per * shuffledDim);
    for (let b = 0; b < nb; b++) {
      sh.set(pixelShuffle(x.subarray(b * T * Hv, (b * T + Np) * Hv), side, Hv, this.cfg.pixelShuffleRatio), b * per * shuffledDim);
    }

    // 9. Adapter MLP (Llama4VisionMLP2): fc1, GELU, fc2, GELU — the second GELU is part of the reference.
    const n = nb * per;
    const a1 = new Float32Array(n * this.cfg.projectorInputDim);
    be.matmul(a1, sh, this.adapterFc1, n);
    be.gelu(a1, a1.length);
    const a2 = new Float32Array(n * this.visionOutputDim);
    be.matmul(a2, a1, this.adapterFc2, n);
    be.gelu(a2, a2.length);
    return a2;
  }
}

/**
 * What the composition root calls for a Hugging Face folder: the encoder when config.json has a `vision_config`
 * and the checkpoint holds `vision_model.*` + `multi_modal_projector.*` tensors, else null (text-only use).
 * A vision_config without the tensors (or the reverse) is a broken checkpoint and throws.
 */
export function loadVisionEncoder(
  configJson: unknown,
  tensors: VisionTensorSource,
  backend: Backend,
  where = 'model',
  opts: Omit<VisionEncoderOptions, 'where'> = {},
): Llama4VisionEncoder | null {
  const names = 'read' in tensors ? tensors.infos.keys() : tensors.keys();
  const hasTensors = hasVisionTensors(names);
  const hasConfig = hasVisionConfig(configJson);
  if (!hasConfig && !hasTensors) return null;
  if (!hasConfig) throw new ModelFileError(where, 'the checkpoint has vision tensors but config.json has no vision_config');
  if (!hasTensors)
    throw new ModelFileError(
      where,
      'config.json has a vision_config but the checkpoint has no vision_model.* / multi_modal_projector.* tensors',
    );
  return new Llama4VisionEncoder(parseVisionConfig(configJson, `${where}/config.json`), tensors, backend, { ...opts, where });
}
