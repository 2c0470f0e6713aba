/**
 * The Llama 4 vision encoder, adapter and projector against the Hugging Face reference (../shared/golden/e_multimodal:
 * vision_model_output and image_features_after_projector within 1e-4), plus the pieces on their own: pixel shuffle
 * against a literal transcription of HF's view/permute code, 2-D RoPE tables, batching of tiles, config checks.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { sharedPath, maxAbsDiff } from './helpers/shared.ts';
import { readSafetensors } from '../src/io/safetensors.ts';
import { TsBackend } from '../src/kernels/ts/index.ts';
import { tryCreateNativeBackend } from '../src/kernels/native/index.ts';
import { parseVisionConfig } from '../src/model/llama4/vision-config.ts';
import { Llama4VisionEncoder, hasVisionTensors, pixelShuffle, visionRopeTables } from '../src/model/llama4/vision.ts';
import type { RawTensor } from '../src/tensor/index.ts';
import { f32ToBf16, f32ToF16 } from '../src/tensor/index.ts';
import { GgufWriter, GgufType, readGguf } from '../src/io/gguf/index.ts';
import { mmprojEncoder } from '../src/model/llama4/vision-gguf.ts';

/** What load.ts does for `--mmproj FILE`. */
function loadMmprojEncoder(path: string, backend: TsBackend, ids = {}) {
  const f = readGguf(path, (n) => n.startsWith('v.') || n.startsWith('mm.'));
  return mmprojEncoder(f.metadata, f.tensorData, backend, ids, {}, path);
}
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { ConfigError, ModelFileError, UsageError } from '../src/util/index.ts';

const dir = sharedPath('golden', 'e_multimodal');

function loadCase() {
  const config = JSON.parse(readFileSync(join(dir!, 'config.json'), 'utf8'));
  const exp = JSON.parse(readFileSync(join(dir!, 'expected.json'), 'utf8')) as {
    pixel_values: number[][];
    vision_model_output: number[][][] | number[][];
    image_features_after_projector: number[][];
  };
  return { config, exp, tensors: readSafetensors(join(dir!, 'model.safetensors')) };
}

test('e_multimodal: vision_model output and projected features within 1e-4 of HF', {
  skip: !dir && '../shared/golden/e_multimodal missing',
}, () => {
  const { config, exp, tensors } = loadCase();
  const cfg = parseVisionConfig(config);
  assert.equal(cfg.tokensPerTile, 4);
  assert.equal(cfg.imageTokenId, 250);
  assert.ok(hasVisionTensors(tensors.keys()));
  const enc = new Llama4VisionEncoder(cfg, tensors, new TsBackend());
  const pixels = Float32Array.from(exp.pixel_values.flat());
  assert.equal(pixels.length, 3 * 32 * 32);
  const vision = enc.encodeVision(pixels, 1);
  const wantVision = (exp.vision_model_output as number[][]).flat(2) as number[];
  assert.equal(vision.length, wantVision.length);
  const dv = maxAbsDiff(vision, wantVision);
  assert.ok(dv < 1e-4, `vision_model_output max abs diff ${dv}`);
  const feats = enc.encode(pixels, 1);
  const want = exp.image_features_after_projector.flat();
  assert.equal(feats.length, want.length);
  const dp = maxAbsDiff(feats, want);
  assert.ok(dp < 1e-4, `projected features max abs diff ${dp}`);
  process.stdout.write(`# e_multimodal: vision_model_output max|Δ| ${dv.toExponential(2)}, projector ${dp.toExponential(2)}\n`);
});

test('e_multimodal on the native backend: same tolerance', { skip: !dir && '../shared/golden/e_multimodal missing' }, (t) => {
  const { backend, reason } = tryCreateNativeBackend({ threads: 1 });
  if (!backend) {
    t.skip(`native backend unavailable: ${reason}`);
    return;
  }
  const { config, exp, tensors } = loadCase();
  const enc = new Llama4VisionEncoder(parseVisionConfig(config), tensors, backend, { tilesPerBatch: 2 });
  const pixels = Float32Array.from(exp.pixel_values.flat());
  const three = new Float32Array(3 * pixels.length);
  for (let i = 0; i < 3; i++) three.set(pixels, i * pixels.length);
  const feats = enc.encode(three, 3);
  const want = exp.image_features_after_projector.flat();
  for (let i = 0; i < 3; i++) {
    const d = maxAbsDiff(feats.subarray(i * want.length, (i + 1) * want.length), want);
    assert.ok(d < 1e-4, `native projected features (tile ${i}) max abs diff ${d}`);
  }
  const dv = maxAbsDiff(enc.encodeVision(pixels, 1), (exp.vision_model_output as number[][]).flat(2) as number[]);
  assert.ok(dv < 1e-4, `native vision_model_output max abs diff ${dv}`);
});

test('bf16 vision weights (as the hub checkpoints store them) stay close to the f32 reference', {
  skip: !dir && '../shared/golden/e_multimodal missing',
}, () => {
  const { config, exp, tensors } = loadCase();
  const bf = new Map<string, RawTensor>();
  for (const [name, t] of tensors) {
    if (!name.startsWith('vision_model.') && !name.startsWith('multi_modal_projector.')) continue;
    const src = new Float32Array(t.bytes.slice().buffer);
    const out = new Uint16Array(src.length);
    for (let i = 0; i < src.length; i++) out[i] = f32ToBf16(src[i]!);
    bf.set(name, { name, dtype: 'bf16', shape: t.shape, bytes: new Uint8Array(out.buffer) });
  }
  const enc = new Llama4VisionEncoder(parseVisionConfig(config), bf, new TsBackend());
  const feats = enc.encode(Float32Array.from(exp.pixel_values.flat()), 1);
  const want = exp.image_features_after_projector.flat();
  let scale = 0;
  for (const v of want) scale = Math.max(scale, Math.abs(v));
  const d = maxAbsDiff(feats, want);
  // bf16 weights carry ~2^-9 relative error each; through 2 ViT layers and 3 projections that stays within 2% (measured 0.54%).
  assert.ok(d < 0.02 * scale, `bf16 features max abs diff ${d} (scale ${scale})`);
  assert.ok(d > 0, 'bf16 path really used');
  process.stdout.write(`# bf16 vision weights: features max abs diff ${d.toExponential(2)} of max ${scale.toFixed(3)}\n`);
});

test('several tiles: batched encoding equals tile-by-tile, order kept', { skip: !dir && '../shared/golden/e_multimodal missing' }, () => {
  const { config, exp, tensors } = loadCase();
  const cfg = parseVisionConfig(config);
  const base = Float32Array.from(exp.pixel_values.flat());
  const n = 3,
    len = base.length;
  const pixels = new Float32Array(n * len);
  for (let t = 0; t < n; t++) for (let i = 0; i < len; i++) pixels[t * len + i] = t === 1 ? base[i]! : Math.sin(i * (t + 1) * 0.37);
  const batched = new Llama4VisionEncoder(cfg, tensors, new TsBackend(), { tilesPerBatch: 2 }).encode(pixels, n);
  const single = new Llama4VisionEncoder(cfg, tensors, new TsBackend(), { tilesPerBatch: 1 });
  const rows = cfg.tokensPerTile * cfg.textHiddenSize;
  for (let t = 0; t < n; t++) {
    const one = single.encode(pixels.slice(t * len, (t + 1) * len), 1);
    assert.ok(maxAbsDiff(batched.subarray(t * rows, (t + 1) * rows), one) < 1e-6, `tile ${t}`);
  }
  // Tile 1 is the reference tile: its rows are the golden features.
  assert.ok(maxAbsDiff(batched.subarray(rows, 2 * rows), exp.image_features_after_projector.flat()) < 1e-4);
  assert.throws(() => single.encode(new Float32Array(10), 1), UsageError);
  assert.throws(() => single.encode(new Float32Array(len).fill(NaN), 1), /not finite/);
});

/** HF pixel_shuffle, transcribed literally with explicit view/permute index arithmetic (batch 1). */
function hfPixelShuffle(x: Float32Array, nPatches: number, c: number, r: number): Float32Array {
  const s = Math.sqrt(nPatches);
  // view [s(h), s(w), c] → view [h, w·r, c/r] → permute(0,2,1,3) → [w·r, h, c/r]
  const A = (h: number, w: number, k: number) => x[(h * s + w) * c + k]!; // [h, w, c]
  const w1 = s * r,
    c1 = c / r;
  const B = (h: number, w: number, k: number) => {
    const flat = (h * w1 + w) * c1 + k;
    return A(Math.floor(flat / (s * c)), Math.floor(flat / c) % s, flat % c);
  };
  const Bp = (w: number, h: number, k: number) => B(h, w, k); // [w1, h, c1] (contiguous copy)
  // view [h·r, w·r, c/r²] of the contiguous [w1, s, c1] tensor → permute(0,2,1,3)
  const h2 = s * r,
    c2 = c / (r * r);
  const C = (i: number, j: number, k: number) => {
    const flat = (i * w1 + j) * c2 + k;
    return Bp(Math.floor(flat / (s * c1)), Math.floor(flat / c1) % s, flat % c1);
  };
  const out = new Float32Array(h2 * w1 * c2);
  for (let a = 0; a < w1; a++) for (let b = 0; b < h2; b++) for (let k = 0; k < c2; k++) out[(a * h2 + b) * c2 + k] = C(b, a, k);
  return out;
}

test('pixel shuffle matches the HF view/permute code', () => {
  for (const [side, c] of [
    [4, 3],
    [6, 2],
    [24, 5],
  ] as const) {
    const x = Float32Array.from({ length: side * side * c }, (_, i) => i);
    assert.deepEqual(pixelShuffle(x, side, c, 0.5), hfPixelShuffle(x, side * side, c, 0.5), `side ${side}`);
  }
});

test('2-D RoPE tables: 1-based x/y angles, class token identity', () => {
  const { cos, sin } = visionRopeTables(3, 8, 10000); // 9 patches + CLS, 4 pairs: 2 for x, 2 for y
  const f = Math.fround;
  const f1 = f(1 / f(Math.pow(10000, f(2 / 4))));
  // Patch 5: x = 2, y = 1 → pairs (x+1)·f0, (x+1)·f1, (y+1)·f0, (y+1)·f1.
  assert.equal(cos[5 * 4 + 0], f(Math.cos(3)));
  assert.equal(sin[5 * 4 + 1], f(Math.sin(f(3 * f1))));
  assert.equal(cos[5 * 4 + 2], f(Math.cos(2)));
  assert.equal(sin[5 * 4 + 3], f(Math.sin(f(2 * f1))));
  // Patch 0 is not the identity (angles start at 1), the CLS row (9) is.
  assert.notEqual(sin[0], 0);
  assert.deepEqual([...cos.subarray(36, 40)], [1, 1, 1, 1]);
  assert.deepEqual([...sin.subarray(36, 40)], [0, 0, 0, 0]);
});

test('vision config: derived sizes and clear errors', { skip: !dir && '../shared/golden/e_multimodal missing' }, () => {
  const { config, tensors } = loadCase();
  const bad = (patch: Record<string, unknown>) => ({ ...config, vision_config: { ...config.vision_config, ...patch } });
  assert.throws(() => parseVisionConfig({ text_config: {} }), /no vision_config/);
  assert.throws(
    () => parseVisionConfig(bad({ intermediate_size: 100 })),
    (e) => e instanceof ConfigError && /intermediate_size 100/.test(e.message),
  );
  assert.throws(() => parseVisionConfig(bad({ num_attention_heads: 16 })), /multiple of 4 for 2-D RoPE/);
  assert.throws(() => parseVisionConfig(bad({ patch_size: 5 })), /not a multiple of patch_size/);
  assert.throws(() => parseVisionConfig(bad({ hidden_size: 'x' })), /must be a number/);
  assert.throws(() => parseVisionConfig(bad({ vision_output_dim: 32 })), /must equal projector_output_dim/);
  // Missing or mis-shaped tensors name the tensor.
  const cfg = parseVisionConfig(config);
  const missing = new Map(tensors);
  missing.delete('vision_model.model.layers.1.mlp.fc2.bias');
  assert.throws(
    () => new Llama4VisionEncoder(cfg, missing, new TsBackend()),
    (e) => e instanceof ModelFileError && /layers\.1\.mlp\.fc2\.bias/.test(e.message),
  );
  const wrong = new Map(tensors);
  const t = tensors.get('vision_model.class_embedding')!;
  wrong.set('vision_model.class_embedding', { ...t, shape: [16], bytes: t.bytes.subarray(0, 64) } as RawTensor);
  assert.throws(() => new Llama4VisionEncoder(cfg, wrong, new TsBackend()), /class_embedding" has shape \[16\]/);
});

/** Writes a llama.cpp-style Llama 4 mmproj GGUF from HF vision tensors (the converter's renames, §6.4). */
function writeMmproj(
  path: string,
  tensors: Map<string, RawTensor>,
  cfgJson: { vision_config: Record<string, number> },
  opts: { convPatch: boolean; postNorm: 'ln2' | 'attn_post_norm'; f16: boolean },
): void {
  const v = cfgJson.vision_config;
  const w = new GgufWriter(path);
  w.set('general.architecture', 'clip');
  w.set('clip.projector_type', 'llama4');
  w.set('clip.has_vision_encoder', true);
  w.set('clip.vision.image_size', v.image_size!);
  w.set('clip.vision.patch_size', v.patch_size!);
  w.set('clip.vision.embedding_length', v.hidden_size!);
  w.set('clip.vision.feed_forward_length', v.intermediate_size!);
  w.set('clip.vision.block_count', v.num_hidden_layers!);
  w.set('clip.vision.attention.head_count', v.num_attention_heads!);
  w.set('clip.vision.attention.layer_norm_epsilon', 1e-5, GgufType.FLOAT32);
  w.set('clip.vision.projector.scale_factor', 2);
  w.set('clip.use_gelu', true);
  const rename: Array<[string, string]> = [
    ['vision_model.patch_embedding.linear.weight', 'v.patch_embd.weight'],
    ['vision_model.class_embedding', 'v.class_embd'],
    ['vision_model.positional_embedding_vlm', 'v.position_embd.weight'],
    ['vision_model.layernorm_pre.', 'v.pre_ln.'],
    ['vision_model.layernorm_post.', 'v.post_ln.'],
    ['vision_model.vision_adapter.mlp.fc1.', 'mm.model.mlp.1.'],
    ['vision_model.vision_adapter.mlp.fc2.', 'mm.model.mlp.2.'],
    ['multi_modal_projector.linear_1.', 'mm.model.fc.'],
    ['self_attn.q_proj.', 'attn_q.'],
    ['self_attn.k_proj.', 'attn_k.'],
    ['self_attn.v_proj.', 'attn_v.'],
    ['self_attn.o_proj.', 'attn_out.'],
    ['input_layernorm.', 'ln1.'],
    ['post_attention_layernorm.', `${opts.postNorm}.`],
    ['mlp.fc1.', 'ffn_up.'],
    ['mlp.fc2.', 'ffn_down.'],
    ['vision_model.model.layers.', 'v.blk.'],
  ];
  const out: RawTensor[] = [];
  for (const [name, t] of tensors) {
    if (!name.startsWith('vision_model.') && !name.startsWith('multi_modal_projector.')) continue;
    let g = name;
    for (const [a, b] of rename) g = g.replace(a, b);
    let shape = t.shape;
    if (g === 'v.patch_embd.weight' && opts.convPatch) shape = [shape[0]!, 3, v.patch_size!, v.patch_size!];
    let { dtype, bytes } = t;
    // f16 for matrices (as llama.cpp writes mmproj files), f32 for vectors.
    if (opts.f16 && shape.length >= 2) {
      const src = new Float32Array(bytes.slice().buffer);
      const h = new Uint16Array(src.length);
      for (let i = 0; i < src.length; i++) h[i] = f32ToF16(src[i]!);
      dtype = 'f16';
      bytes = new Uint8Array(h.buffer);
    }
    out.push({ name: g, dtype, shape, bytes });
  }
  for (const t of out) w.addTensor(t.name, t.dtype, t.shape);
  w.writeHeader();
  for (const t of out) w.writeTensor(t.name, t.bytes);
  w.close();
}

test('llama.cpp mmproj GGUF: renamed tensors and clip.* metadata give the same features', {
  skip: !dir && '../shared/golden/e_multimodal missing',
}, () => {
  const { config, exp, tensors } = loadCase();
  const tmp = mkdtempSync(join(tmpdir(), 'l4mmproj-'));
  try {
    const pixels = Float32Array.from(exp.pixel_values.flat());
    const want = exp.image_features_after_projector.flat();
    for (const [i, opts] of (
      [
        { convPatch: false, postNorm: 'ln2', f16: false },
        { convPatch: true, postNorm: 'attn_post_norm', f16: true },
      ] as const
    ).entries()) {
      const file = join(tmp, `mmproj-${i}.gguf`);
      writeMmproj(file, tensors, config, opts);
      const enc = loadMmprojEncoder(file, new TsBackend(), { imageTokenId: 250, boiTokenId: 248, eoiTokenId: 249 });
      assert.equal(enc.cfg.tokensPerTile, 4);
      assert.equal(enc.cfg.imageTokenId, 250);
      const d = maxAbsDiff(enc.encode(pixels, 1), want);
      assert.ok(d < (opts.f16 ? 5e-3 : 1e-6), `mmproj ${JSON.stringify(opts)}: max abs diff ${d}`);
    }
    // Defaults: Meta's <|patch|> id when the text model's ids are not given.
    assert.equal(loadMmprojEncoder(join(tmp, 'mmproj-0.gguf'), new TsBackend()).cfg.imageTokenId, 200092);
    // Not a Llama 4 projector: one clear error.
    const other = join(tmp, 'other.gguf');
    const w = new GgufWriter(other);
    w.set('clip.projector_type', 'mlp');
    w.writeHeader();
    w.close();
    assert.throws(
      () => loadMmprojEncoder(other, new TsBackend()),
      (e) => e instanceof ModelFileError && /projector_type is "mlp"/.test(e.message),
    );
  } finally {
    rmSync(tmp, { recursive: true, force: true });
  }
});
