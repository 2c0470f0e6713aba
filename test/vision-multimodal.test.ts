/**
 * Early fusion end to end: the e_multimodal golden case (logits within 1e-4 of HF, greedy continuation identical)
 * through loadModel + loadVisionEncoder, and a tiny multimodal checkpoint built here (28-pixel tiles, multi-tile
 * grids with a global tile, several images of different shapes from image files, a feature cache, a corrupt image)
 * — the golden case has one tile only, so multi-tile order and prefill-in-pieces are checked on this model.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { spawnSync } from 'node:child_process';
import sharp from 'sharp';
import { sharedPath, maxAbsDiff, PROJECT_ROOT } from './helpers/shared.ts';
import { loadModel } from '../src/load.ts';
import { openSafetensors, readSafetensors, writeSafetensors } from '../src/io/safetensors.ts';
import { TsBackend } from '../src/kernels/ts/index.ts';
import { generateAll } from '../src/engine/index.ts';
import { loadVisionEncoder } from '../src/model/llama4/vision.ts';
import {
  ImageFeatureCache,
  encodeImages,
  expandImagePrompt,
  imagePromptEncoder,
  imageTokenIdsFor,
} from '../src/model/llama4/vision-prompt.ts';
import { ImageError, decodeImage, parsePixelValues, preprocessImage, readPixelValuesFile } from '../src/image/index.ts';
import type { RawTensor } from '../src/tensor/index.ts';
import { UsageError } from '../src/util/index.ts';

const golden = sharedPath('golden', 'e_multimodal');

test('e_multimodal: fused logits within 1e-4 of HF and the greedy continuation is identical', {
  skip: !golden && '../shared/golden/e_multimodal missing',
}, async () => {
  const exp = JSON.parse(readFileSync(join(golden!, 'expected.json'), 'utf8')) as {
    input_ids: number[];
    pixel_values: number[][];
    logits: number[][];
    generation: { generated_ids: number[]; max_new_tokens: number };
  };
  const { model } = await loadModel(golden!, { backend: 'typescript' });
  const configJson = JSON.parse(readFileSync(join(golden!, 'config.json'), 'utf8'));
  const enc = loadVisionEncoder(configJson, openSafetensors(golden!), new TsBackend(), golden!);
  assert.ok(enc, 'vision encoder found');
  assert.equal(model.info.imageTokenId, enc.cfg.imageTokenId);
  // The golden file's [3][32·32] rows are accepted as pixel values for one tile.
  const pv = parsePixelValues(exp.pixel_values, enc.cfg.imageSize);
  const feats = enc.encode(pv.pixels, pv.nTiles);
  const [logits] = model.forward([{ seq: model.newSequence(), tokens: exp.input_ids, logits: 'all', patchEmbeddings: feats }]);
  const d = maxAbsDiff(logits!, exp.logits.flat());
  assert.ok(d < 1e-4, `logits max abs diff ${d}`);
  const gen = await generateAll(model, exp.input_ids, {
    maxTokens: exp.generation.max_new_tokens,
    sampler: { temperature: 0 },
    stopTokens: [],
    patchEmbeddings: feats,
  });
  assert.deepEqual(gen.tokens, exp.generation.generated_ids);
  process.stdout.write(`# e_multimodal: fused logits max|Δ| ${d.toExponential(2)}, greedy ${gen.tokens.join(',')}\n`);
  // Without the image, the logits at and after the patches differ: the features really are fused.
  const [plain] = model.forward([{ seq: model.newSequence(), tokens: exp.input_ids, logits: 'all' }]);
  assert.ok(maxAbsDiff(plain!, exp.logits.flat()) > 1e-2);
});

/** Deterministic N(0, std²)-ish values (sum of uniforms) from a seed. */
function randn(n: number, seed: number, std: number): Float32Array {
  let s = seed >>> 0;
  const u = () => {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    return s / 2 ** 32;
  };
  const out = new Float32Array(n);
  for (let i = 0; i < n; i++) out[i] = (u() + u() + u() + u() - 2) * Math.sqrt(3) * std;
  return out;
}

/** A tiny multimodal checkpoint: e_multimodal's text model + a fresh 28-pixel vision tower (spec §8 V1). */
function buildTinyMultimodal(dir: string): void {
  const config = JSON.parse(readFileSync(join(golden!, 'config.json'), 'utf8'));
  config.vision_config = {
    ...config.vision_config,
    hidden_size: 32,
    num_attention_heads: 4,
    num_hidden_layers: 2,
    intermediate_size: 128,
    image_size: 28,
    patch_size: 7,
    projector_input_dim: 48,
    projector_output_dim: 48,
    vision_output_dim: 48,
  };
  writeFileSync(join(dir, 'config.json'), JSON.stringify(config));
  const tensors: RawTensor[] = [];
  for (const t of readSafetensors(join(golden!, 'model.safetensors')).values()) if (t.name.startsWith('language_model.')) tensors.push(t);
  let seed = 1;
  const add = (name: string, shape: number[], std: number, mean = 0) => {
    const v = randn(
      shape.reduce((a, b) => a * b, 1),
      seed++,
      std,
    );
    if (mean) for (let i = 0; i < v.length; i++) v[i]! += mean;
    tensors.push({ name, dtype: 'f32', shape, bytes: new Uint8Array(v.buffer) });
  };
  const vm = 'vision_model.';
  add(vm + 'patch_embedding.linear.weight', [32, 3 * 49], 0.1);
  add(vm + 'class_embedding', [32], 0.5);
  add(vm + 'positional_embedding_vlm', [17, 32], 0.5);
  for (const ln of ['layernorm_pre', 'layernorm_post']) {
    add(vm + ln + '.weight', [32], 0.1, 1);
    add(vm + ln + '.bias', [32], 0.1);
  }
  for (let l = 0; l < 2; l++) {
    const p = `${vm}model.layers.${l}.`;
    for (const ln of ['input_layernorm', 'post_attention_layernorm']) {
      add(p + ln + '.weight', [32], 0.1, 1);
      add(p + ln + '.bias', [32], 0.1);
    }
    for (const m of ['q', 'k', 'v', 'o']) {
      add(`${p}self_attn.${m}_proj.weight`, [32, 32], 0.3);
      add(`${p}self_attn.${m}_proj.bias`, [32], 0.1);
    }
    add(p + 'mlp.fc1.weight', [128, 32], 0.2);
    add(p + 'mlp.fc1.bias', [128], 0.1);
    add(p + 'mlp.fc2.weight', [32, 128], 0.1);
    add(p + 'mlp.fc2.bias', [32], 0.1);
  }
  add(vm + 'vision_adapter.mlp.fc1.weight', [48, 128], 0.2);
  add(vm + 'vision_adapter.mlp.fc2.weight', [48, 48], 0.3);
  add('multi_modal_projector.linear_1.weight', [64, 48], 0.5);
  writeSafetensors(join(dir, 'model.safetensors'), tensors);
}

/** A W x H RGB pattern with some structure, as PNG or JPEG bytes. */
async function imageFile(path: string, w: number, h: number, kind: 'png' | 'jpeg', seed: number): Promise<void> {
  const b = Buffer.alloc(w * h * 3);
  for (let y = 0; y < h; y++)
    for (let x = 0; x < w; x++) for (let c = 0; c < 3; c++) b[(y * w + x) * 3 + c] = (x * (5 + seed) + y * (3 + c) * seed + c * 70) % 256;
  const s = sharp(b, { raw: { width: w, height: h, channels: 3 } });
  writeFileSync(path, kind === 'png' ? await s.png().toBuffer() : await s.jpeg({ quality: 95 }).toBuffer());
}

test('tiny multimodal model: several multi-tile images from files, order, pieces, cache, corrupt image', {
  skip: !golden && '../shared/golden/e_multimodal missing',
}, async () => {
  const dir = mkdtempSync(join(tmpdir(), 'l4mm-'));
  try {
    buildTinyMultimodal(dir);
    const { model } = await loadModel(dir, { backend: 'typescript' });
    const enc = loadVisionEncoder(JSON.parse(readFileSync(join(dir, 'config.json'), 'utf8')), openSafetensors(dir), new TsBackend(), dir);
    assert.ok(enc);
    assert.equal(enc.cfg.tokensPerTile, 4);
    const a = join(dir, 'a.png'),
      b = join(dir, 'b.jpg'),
      c = join(dir, 'c.png');
    await imageFile(a, 30, 60, 'png', 1); // h 60, w 30 → 3x2 grid of 28-pixel tiles + global = 7 tiles
    await imageFile(b, 90, 10, 'jpeg', 2); // wide strip
    await imageFile(c, 20, 20, 'png', 3); // smaller than a tile: one tile, upscaled
    const cache = new ImageFeatureCache();
    const imgs = await encodeImages(enc, [a, b, c], { cache });
    assert.deepEqual(
      imgs.images.map((im) => im.grid),
      [
        [3, 2],
        [1, 4],
        [1, 1],
      ],
    );
    assert.deepEqual(
      imgs.images.map((im) => im.nTiles),
      [7, 5, 1],
    );
    const H = model.info.hiddenSize;
    assert.equal(imgs.embeddings.length, (7 + 5 + 1) * 4 * H);

    // Features are per tile, in tile order (row-major grid, then global): tile k alone gives rows 4k..4k+3.
    const tilesA = preprocessImage(await decodeImage(a), { tileSize: 28 });
    const tileLen = 3 * 28 * 28;
    for (let k = 0; k < tilesA.nTiles; k++) {
      const one = enc.encode(tilesA.pixels.slice(k * tileLen, (k + 1) * tileLen), 1);
      assert.ok(maxAbsDiff(imgs.embeddings.subarray(k * 4 * H, (k + 1) * 4 * H), one) < 1e-6, `tile ${k}`);
    }

    // Prompt: BOS, text, three placeholders (<|image|> = 251 here; separators 252/253 inside the tiny vocab).
    const ids = imageTokenIdsFor(enc.cfg, { image: 251, tileX: 252, tileY: 253 });
    assert.equal(ids.patch, 250);
    assert.equal(ids.start, 248);
    const prompt = [1, 17, 251, 23, 251, 40, 251, 41, 42];
    const tokens = expandImagePrompt(prompt, imgs, enc.cfg, ids);
    assert.equal(tokens.filter((t) => t === 250).length, 13 * 4);
    assert.equal(tokens.length, prompt.length - 3 + (3 + 6 + 4 * 7) + (3 + 4 + 4 * 5) + (3 + 4));
    const [full] = model.forward([{ seq: model.newSequence(), tokens, logits: 'all', patchEmbeddings: imgs.embeddings }]);
    const V = model.info.vocabSize;
    const last = full!.subarray(full!.length - V);
    // Prefill in pieces of 7 tokens (features split across pieces by counting <|patch|> slots) gives the same logits.
    const gen = await generateAll(model, tokens, {
      maxTokens: 3,
      sampler: { temperature: 0 },
      stopTokens: [],
      patchEmbeddings: imgs.embeddings,
      prefillChunk: 7,
    });
    const [again] = model.forward([{ seq: model.newSequence(), tokens, logits: 'last', patchEmbeddings: imgs.embeddings }]);
    assert.ok(maxAbsDiff(again!, last) < 1e-6);
    let argmax = 0;
    for (let i = 1; i < V; i++) if (last[i]! > last[argmax]!) argmax = i;
    assert.equal(gen.tokens[0], argmax, 'first greedy token after a piecewise prefill = full-forward argmax');

    // Swapping the images changes the answer (the features are positional, not pooled).
    const swapped = await encodeImages(enc, [c, b, a], { cache });
    const [sw] = model.forward([
      {
        seq: model.newSequence(),
        tokens: expandImagePrompt(prompt, swapped, enc.cfg, ids),
        logits: 'last',
        patchEmbeddings: swapped.embeddings,
      },
    ]);
    assert.ok(maxAbsDiff(sw!, last) > 1e-4);
    assert.equal(cache.hits, 3, 'second request reuses all three images');
    assert.equal(cache.size, 3);

    // Count mismatches are clear errors.
    assert.throws(() => expandImagePrompt([1, 251], imgs, enc.cfg, ids), UsageError);
    assert.throws(
      () => model.forward([{ seq: model.newSequence(), tokens, logits: 'last', patchEmbeddings: imgs.embeddings.subarray(H) }]),
      UsageError,
    );

    // A corrupt image fails alone, before any encoding, and the model keeps working.
    const bad = join(dir, 'bad.png');
    writeFileSync(bad, readFileSync(a).subarray(0, 60));
    await assert.rejects(
      encodeImages(enc, [a, bad], { cache }),
      (e: unknown) => e instanceof ImageError && /bad\.png/.test((e as Error).message),
    );
    const [after] = model.forward([{ seq: model.newSequence(), tokens, logits: 'last', patchEmbeddings: imgs.embeddings }]);
    assert.ok(maxAbsDiff(after!, last) < 1e-6);

    // The server/CLI hook: bytes in, expanded tokens + embeddings out, cached across turns.
    const hook = imagePromptEncoder(enc, { ids });
    const bytes = [a, b, c].map((f) => new Uint8Array(readFileSync(f)));
    const turn1 = await hook(prompt, bytes);
    assert.deepEqual(turn1.tokens, tokens);
    assert.ok(maxAbsDiff(turn1.patchEmbeddings, imgs.embeddings) === 0);
    const turn2 = await hook([...prompt, 251], [...bytes, bytes[0]!]);
    assert.equal(turn2.patchEmbeddings.length, imgs.embeddings.length + 7 * 4 * H);
    await assert.rejects(
      hook([251], [new Uint8Array([1, 2, 3])]),
      (e: unknown) => e instanceof ImageError && /#1/.test((e as Error).message),
    );

    // Pixel values as JSON [tiles][3][H][W] give the same features as the image file.
    const pvFile = join(dir, 'pv.json');
    const arr = Array.from({ length: tilesA.nTiles }, (_, t) =>
      Array.from({ length: 3 }, (_, ch) =>
        Array.from({ length: 28 }, (_, y) =>
          Array.from(tilesA.pixels.subarray(t * tileLen + ch * 784 + y * 28, t * tileLen + ch * 784 + y * 28 + 28)),
        ),
      ),
    );
    writeFileSync(pvFile, JSON.stringify(arr));
    const pv = readPixelValuesFile(pvFile, 28);
    assert.equal(pv.nTiles, 7);
    assert.ok(maxAbsDiff(enc.encode(pv.pixels, pv.nTiles), imgs.embeddings.subarray(0, 7 * 4 * H)) < 1e-6);
    writeFileSync(pvFile, JSON.stringify([[[1, 2], [3]]]));
    assert.throws(() => readPixelValuesFile(pvFile, 28), /ragged|shape/);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('llama4 image-tiles FILE --json matches the reference statistics', {
  skip: !sharedPath('images') && '../shared/images missing',
}, () => {
  const dir = sharedPath('images')!;
  const exp = JSON.parse(readFileSync(join(dir, 'expected.json'), 'utf8')) as {
    images: Array<{ file: string; aspect_ratios: number[]; tiles: Array<{ mean: number; sum: number; abs_sum: number }> }>;
  };
  const im = exp.images.find((x) => x.file === 'real_joy_sddm-preview.jpg')!;
  const r = spawnSync(
    process.execPath,
    ['--import', 'tsx', join(PROJECT_ROOT, 'src/cli/main.ts'), 'image-tiles', join(dir, im.file), '--json'],
    { encoding: 'utf8', cwd: PROJECT_ROOT },
  );
  assert.equal(r.status, 0, r.stderr);
  const out = JSON.parse(r.stdout) as { grid: number[]; tiles: Array<{ mean: number; sum: number }> };
  assert.deepEqual(Object.keys(out), ['grid', 'tiles']);
  assert.deepEqual(out.grid, im.aspect_ratios);
  assert.equal(out.tiles.length, im.tiles.length);
  out.tiles.forEach((t, i) => {
    assert.ok(Math.abs(t.sum - im.tiles[i]!.sum) <= 1e-3 * im.tiles[i]!.abs_sum, `tile ${i}`);
    assert.ok(Math.abs(t.mean - im.tiles[i]!.mean) <= 1e-5, `tile ${i}`);
  });
  const human = spawnSync(process.execPath, ['--import', 'tsx', join(PROJECT_ROOT, 'src/cli/main.ts'), 'image-tiles', join(dir, im.file)], {
    encoding: 'utf8',
    cwd: PROJECT_ROOT,
  });
  assert.match(human.stdout, /900x506 → grid 2x3, 7 tiles of 336x336, 1017 prompt tokens/);
  const bad = spawnSync(
    process.execPath,
    ['--import', 'tsx', join(PROJECT_ROOT, 'src/cli/main.ts'), 'image-tiles', join(PROJECT_ROOT, 'package.json')],
    { encoding: 'utf8', cwd: PROJECT_ROOT },
  );
  assert.equal(bad.status, 1);
  assert.match(bad.stderr, /llama4 image-tiles: image .*package\.json: not a readable image/);
  assert.doesNotMatch(bad.stderr, /at .*\.ts:\d+/, 'no stack trace');
});
