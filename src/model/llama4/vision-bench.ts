/**
 * The vision benchmark behind `llama4 bench --vision`: a random Scout-size vision encoder built in memory (weights
 * in bf16, as the real checkpoints store them) encodes one 336-pixel tile, and the wall time is split into matrix
 * products, attention and the rest by a Backend wrapper that times each call.
 *
 * Scout's vision tower: 34 layers, width 1408, MLP 5632, 16 heads × 88, patch 14 → 576 patches + the class token
 * = 577 rows, pixel shuffle 0.5 → 144 tokens, adapter 5632 → 4096 → 4096, projector 4096 → 5120.
 */
import type { AttentionJob, AttentionShape, Backend, KvData, MatmulJob, RawTensor, Weight, WeightOptions } from '../../tensor/index.ts';
import { f32ToBf16 } from '../../tensor/index.ts';
import { Llama4VisionEncoder } from './vision.ts';
import type { Llama4VisionConfig } from './vision-config.ts';
import { parseVisionConfig } from './vision-config.ts';

/**
 * Scout's vision config (config.json's vision_config and the keys around it), with `layers` ViT layers and
 * `tilePixels`-pixel tiles (336 in Scout; a smaller multiple of 28 gives fewer rows, for tests).
 */
export function scoutVisionConfig(layers = 34, tilePixels = 336): Llama4VisionConfig {
  return parseVisionConfig(
    {
      vision_config: {
        hidden_size: 1408,
        num_hidden_layers: layers,
        num_attention_heads: 16,
        intermediate_size: 5632,
        num_channels: 3,
        image_size: tilePixels,
        patch_size: 14,
        pixel_shuffle_ratio: 0.5,
        projector_input_dim: 4096,
        projector_output_dim: 4096,
        vision_output_dim: 4096,
        rope_theta: 10000,
      },
      text_config: { hidden_size: 5120 },
      image_token_index: 200092,
    },
    'Scout vision config',
  );
}

/** Every tensor the encoder reads, by HF name and shape. */
function visionTensorShapes(c: Llama4VisionConfig): [string, number[]][] {
  const { hiddenSize: H, intermediateSize: I, numChannels: C, patchSize: P, patchesPerSide: side } = c;
  const vm = 'vision_model.';
  const out: [string, number[]][] = [
    [vm + 'patch_embedding.linear.weight', [H, C * P * P]],
    [vm + 'class_embedding', [H]],
    [vm + 'positional_embedding_vlm', [side * side + 1, H]],
    [vm + 'layernorm_pre.weight', [H]],
    [vm + 'layernorm_pre.bias', [H]],
    [vm + 'layernorm_post.weight', [H]],
    [vm + 'layernorm_post.bias', [H]],
    [vm + 'vision_adapter.mlp.fc1.weight', [c.projectorInputDim, I]],
    [vm + 'vision_adapter.mlp.fc2.weight', [c.projectorOutputDim, c.projectorInputDim]],
    ['multi_modal_projector.linear_1.weight', [c.textHiddenSize, c.visionOutputDim]],
  ];
  for (let l = 0; l < c.numLayers; l++) {
    const p = `${vm}model.layers.${l}.`;
    for (const n of ['input_layernorm', 'post_attention_layernorm']) out.push([`${p}${n}.weight`, [H]], [`${p}${n}.bias`, [H]]);
    for (const n of ['q_proj', 'k_proj', 'v_proj', 'o_proj'])
      out.push([`${p}self_attn.${n}.weight`, [H, H]], [`${p}self_attn.${n}.bias`, [H]]);
    out.push([`${p}mlp.fc1.weight`, [I, H]], [`${p}mlp.fc1.bias`, [I]], [`${p}mlp.fc2.weight`, [H, I]], [`${p}mlp.fc2.bias`, [H]]);
  }
  return out;
}

/**
 * Random bf16 tensors for every name the encoder reads: matrices uniform in ±1/√K (activations keep their scale
 * through the layers), layernorm weights 1, biases and embeddings small. Values repeat from a 1 Mi pool at seeded
 * offsets, so building Scout's 1.7 GB takes memory bandwidth, not a random number per weight.
 */
export function randomVisionTensors(c: Llama4VisionConfig, seed = 1): Map<string, RawTensor> {
  let s = seed >>> 0 || 1;
  const rnd = (): number => {
    s ^= s << 13;
    s ^= s >>> 17;
    s ^= s << 5;
    return (s >>> 0) / 2 ** 32;
  };
  const POOL = 1 << 20;
  const pools = new Map<number, Uint16Array>();
  // bf16 bits of uniform [-scale, scale), one pool per scale
  const poolFor = (scale: number): Uint16Array => {
    let p = pools.get(scale);
    if (!p) {
      p = new Uint16Array(POOL);
      for (let i = 0; i < POOL; i++) p[i] = f32ToBf16((2 * rnd() - 1) * scale);
      pools.set(scale, p);
    }
    return p;
  };
  const out = new Map<string, RawTensor>();
  for (const [name, shape] of visionTensorShapes(c)) {
    const n = shape.reduce((a, b) => a * b, 1);
    const v = new Uint16Array(n);
    if (name.endsWith('layernorm.weight') || /layernorm_(pre|post)\.weight$/.test(name)) v.fill(f32ToBf16(1));
    else {
      const p = poolFor(shape.length === 2 && !name.includes('positional') ? 1 / Math.sqrt(shape[1]!) : 0.02);
      for (let i = 0; i < n; ) {
        const off = Math.floor(rnd() * POOL),
          len = Math.min(n - i, POOL - off);
        v.set(p.subarray(off, off + len), i);
        i += len;
      }
    }
    out.set(name, { name, dtype: 'bf16', shape, bytes: new Uint8Array(v.buffer) });
  }
  return out;
}

/**
 * Matrix-product FLOPs of one tile's encode (vision tower, adapter and projector): 2·rows·N·K per product x[rows, K]
 * · W[N, K]ᵀ, one multiply and one add per weight per row. Attention's q·kᵀ and p·v are not counted (see
 * attentionFlops).
 */
export function visionMatmulFlops(c: Llama4VisionConfig): number {
  const { hiddenSize: H, intermediateSize: I, numChannels: C, patchSize: P, patchesPerSide: side } = c;
  const Np = side * side,
    T = Np + 1,
    n = c.tokensPerTile;
  const patch = 2 * Np * H * C * P * P;
  const layer = 2 * T * (4 * H * H + 2 * H * I);
  const adapter = 2 * n * (c.projectorInputDim * I + c.projectorOutputDim * c.projectorInputDim);
  const projector = 2 * n * c.textHiddenSize * c.visionOutputDim;
  return patch + c.numLayers * layer + adapter + projector;
}

/** Attention FLOPs of one tile: q·kᵀ and p·v, 2·2·T²·headDim per head per layer (all 577 rows see all 577). */
export function attentionFlops(c: Llama4VisionConfig): number {
  const T = c.patchesPerSide * c.patchesPerSide + 1;
  return c.numLayers * c.numHeads * 4 * T * T * c.headDim;
}

/** A Backend that forwards every call and adds the wall time of matrix products and attention to its counters. */
class TimedBackend implements Backend {
  readonly name: string;
  matmulMs = 0;
  attentionMs = 0;
  constructor(private readonly be: Backend) {
    this.name = be.name;
  }
  private timed<T>(f: () => T, add: (ms: number) => void): T {
    const t0 = performance.now();
    const r = f();
    add(performance.now() - t0);
    return r;
  }
  weight(t: RawTensor, opts?: WeightOptions): Weight {
    return this.be.weight(t, opts);
  }
  matmul(out: Float32Array, x: Float32Array, w: Weight, T: number, expert?: number): void {
    this.timed(
      () => this.be.matmul(out, x, w, T, expert),
      (ms) => (this.matmulMs += ms),
    );
  }
  matmulMany(jobs: readonly MatmulJob[]): void {
    this.timed(
      () => this.be.matmulMany(jobs),
      (ms) => (this.matmulMs += ms),
    );
  }
  attention(out: Float32Array, q: Float32Array, k: KvData, v: KvData, shape: AttentionShape): void {
    this.timed(
      () => this.be.attention(out, q, k, v, shape),
      (ms) => (this.attentionMs += ms),
    );
  }
  attentionMany(jobs: readonly AttentionJob[]): void {
    this.timed(
      () => this.be.attentionMany(jobs),
      (ms) => (this.attentionMs += ms),
    );
  }
  getRows(out: Float32Array, w: Weight, ids: ArrayLike<number>): void {
    this.be.getRows(out, w, ids);
  }
  toF32(w: Weight): Float32Array {
    return this.be.toF32(w);
  }
  rmsNorm(out: Float32Array, x: Float32Array, w: Float32Array | null, rows: number, dim: number, eps: number): void {
    this.be.rmsNorm(out, x, w, rows, dim, eps);
  }
  layerNorm(out: Float32Array, x: Float32Array, w: Float32Array, b: Float32Array, rows: number, dim: number, eps: number): void {
    this.be.layerNorm(out, x, w, b, rows, dim, eps);
  }
  rope(x: Float32Array, T: number, nHeads: number, headDim: number, cos: Float32Array, sin: Float32Array): void {
    this.be.rope(x, T, nHeads, headDim, cos, sin);
  }
  siluMul(out: Float32Array, gate: Float32Array, up: Float32Array, n: number): void {
    this.be.siluMul(out, gate, up, n);
  }
  gelu(x: Float32Array, n: number): void {
    this.be.gelu(x, n);
  }
  addInPlace(x: Float32Array, y: Float32Array, n: number): void {
    this.be.addInPlace(x, y, n);
  }
  addBias(x: Float32Array, bias: Float32Array, rows: number, dim: number): void {
    this.be.addBias(x, bias, rows, dim);
  }
  scaleRows(x: Float32Array, scale: Float32Array, rows: number, dim: number): void {
    this.be.scaleRows(x, scale, rows, dim);
  }
  gatherRows(out: Float32Array, src: Float32Array, idx: Int32Array, scale: Float32Array | null, rows: number, dim: number): void {
    this.be.gatherRows(out, src, idx, scale, rows, dim);
  }
  scatterAddRows(out: Float32Array, src: Float32Array, idx: Int32Array, rows: number, dim: number): void {
    this.be.scatterAddRows(out, src, idx, rows, dim);
  }
  routeTop1(logits: Float32Array, rows: number, E: number, choice: Int32Array, score: Float32Array): void {
    this.be.routeTop1(logits, rows, E, choice, score);
  }
}

/** One encoder's timings: per run, seconds for the whole tile, its matrix products and its attention. */
export interface VisionTileRuns {
  readonly products: 'bf16' | 'exact';
  readonly tile: number[];
  readonly matmul: number[];
  readonly attention: number[];
}

/**
 * Builds one encoder per products mode over the same tensors and encodes one random tile `repeat` times with each,
 * the modes taking turns (so a noisy neighbour hits both alike), after one untimed warm-up each.
 */
export function timeVisionTile(
  backend: Backend,
  cfg: Llama4VisionConfig,
  tensors: ReadonlyMap<string, RawTensor>,
  modes: readonly ('bf16' | 'exact')[],
  repeat: number,
): VisionTileRuns[] {
  const { numChannels: C, imageSize: S } = cfg;
  const pixels = new Float32Array(C * S * S);
  let s = 7;
  for (let i = 0; i < pixels.length; i++) {
    s = (Math.imul(s, 1103515245) + 12345) >>> 0;
    pixels[i] = s / 2 ** 31 - 1;
  }
  const runs = modes.map((products) => {
    const tb = new TimedBackend(backend);
    const enc = new Llama4VisionEncoder(cfg, tensors, tb, { products, tilesPerBatch: 1 });
    enc.encode(pixels, 1); // warm-up: packs nothing more, grows scratch buffers, pages weights in
    return { tb, enc, out: { products, tile: [] as number[], matmul: [] as number[], attention: [] as number[] } };
  });
  for (let r = 0; r < repeat; r++) {
    for (const { tb, enc, out } of runs) {
      tb.matmulMs = tb.attentionMs = 0;
      const t0 = performance.now();
      enc.encode(pixels, 1);
      out.tile.push((performance.now() - t0) / 1000);
      out.matmul.push(tb.matmulMs / 1000);
      out.attention.push(tb.attentionMs / 1000);
    }
  }
  return runs.map((r) => r.out);
}
