/**
 * Llama 4 image preprocessing against the Hugging Face processor's outputs in ../shared/images/expected.json:
 * tile grids, shapes, prompt expansion exact; pixels exact where no resize happened, within one bf16 step where one
 * did; plus canvas choice, resize and expansion on shapes the reference files do not cover.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { sharedPath } from './helpers/shared.ts';
import {
  bestFitCanvas,
  decodeImage,
  expandImagePlaceholders,
  expandImageTokenIds,
  imagePromptLength,
  imagePromptText,
  imagePromptTokenIds,
  planTiles,
  preprocessImage,
  resizeBilinearAntialias,
  rgbImage,
  supportedCanvases,
  tileStats,
  LLAMA4_IMAGE_TOKEN_IDS,
} from '../src/image/index.ts';

interface ExpectedTile {
  mean: number;
  std: number;
  sum: number;
  abs_sum: number;
  channel_sums: number[];
  pixels: Array<[number, number, number, number]>;
}
interface ExpectedImage {
  file: string;
  width: number;
  height: number;
  aspect_ratios: [number, number];
  pixel_values_shape: number[];
  tiles: ExpectedTile[];
  patch_tokens_per_tile: number;
  image_prompt_tokens: string[];
  image_prompt_token_count: number;
}

const dir = sharedPath('images');
const expected = dir
  ? (JSON.parse(readFileSync(join(dir, 'expected.json'), 'utf8')) as { images: ExpectedImage[]; special_token_ids: Record<string, number> })
  : null;

/** One bf16 step near ±1 (2^-7), which is also one grey level after normalisation (2/255 rounds to it). */
const BF16_STEP = 2 ** -7;

test('reference images: grids, shapes, pixels and statistics match the HF processor', {
  skip: !expected && '../shared/images missing',
}, async () => {
  for (const im of expected!.images) {
    const img = await decodeImage(join(dir!, im.file));
    assert.equal(img.width, im.width, im.file);
    assert.equal(img.height, im.height, im.file);
    const t = preprocessImage(img);
    assert.deepEqual([...t.grid], im.aspect_ratios, `${im.file} grid`);
    assert.deepEqual([t.nTiles, 3, t.tileSize, t.tileSize], im.pixel_values_shape, `${im.file} shape`);
    assert.equal(
      t.pixels.length,
      im.pixel_values_shape.reduce((a, b) => a * b, 1),
    );
    const { resized } = planTiles(img.height, img.width);
    const bodyResized = resized[0] !== img.height || resized[1] !== img.width;
    const S = t.tileSize,
      plane = S * S;
    im.tiles.forEach((et, i) => {
      const isGlobal = t.nTiles > 1 && i === t.nTiles - 1;
      const resizedTile = isGlobal ? !(img.width === S && img.height === S) : bodyResized;
      const o = i * 3 * plane;
      let sum = 0,
        abs = 0,
        sq = 0;
      const ch = [0, 0, 0];
      for (let c = 0; c < 3; c++)
        for (let p = 0; p < plane; p++) {
          const v = t.pixels[o + c * plane + p]!;
          sum += v;
          abs += Math.abs(v);
          sq += v * v;
          ch[c]! += v;
        }
      const n = 3 * plane,
        mean = sum / n,
        std = Math.sqrt(sq / n - mean * mean);
      for (const [c, y, x, v] of et.pixels) {
        const got = t.pixels[o + c * plane + y * S + x]!;
        if (resizedTile) assert.ok(Math.abs(got - v) <= BF16_STEP, `${im.file} tile ${i} pixel [${c},${y},${x}] ${got} vs ${v}`);
        else assert.equal(got, v, `${im.file} tile ${i} pixel [${c},${y},${x}]`);
      }
      if (!resizedTile) {
        // Not resized: every value is exact, so the float64 statistics agree to rounding.
        assert.ok(Math.abs(sum - et.sum) <= 1e-6 * et.abs_sum, `${im.file} tile ${i} sum ${sum} vs ${et.sum}`);
        assert.ok(Math.abs(abs - et.abs_sum) <= 1e-6 * et.abs_sum, `${im.file} tile ${i} abs_sum`);
        et.channel_sums.forEach((s, c) => assert.ok(Math.abs(ch[c]! - s) <= 1e-6 * et.abs_sum, `${im.file} tile ${i} channel ${c}`));
      } else {
        assert.ok(Math.abs(sum - et.sum) <= 1e-3 * Math.max(Math.abs(et.sum), 1), `${im.file} tile ${i} sum ${sum} vs ${et.sum}`);
        assert.ok(Math.abs(abs - et.abs_sum) <= 1e-3 * et.abs_sum, `${im.file} tile ${i} abs_sum`);
      }
      assert.ok(Math.abs(mean - et.mean) <= 1e-5, `${im.file} tile ${i} mean`);
      assert.ok(Math.abs(std - et.std) <= 1e-4, `${im.file} tile ${i} std`);
      assert.ok(Math.abs(tileStats(t)[i]!.sum - sum) < 1e-9);
    });
  }
});

test('reference images: prompt expansion tokens and counts are exact', { skip: !expected && '../shared/images missing' }, () => {
  const ids = expected!.special_token_ids;
  assert.equal(ids['<|image_start|>'], LLAMA4_IMAGE_TOKEN_IDS.start);
  assert.equal(ids['<|image_end|>'], LLAMA4_IMAGE_TOKEN_IDS.end);
  assert.equal(ids['<|image|>'], LLAMA4_IMAGE_TOKEN_IDS.image);
  assert.equal(ids['<|patch|>'], LLAMA4_IMAGE_TOKEN_IDS.patch);
  assert.equal(ids['<|tile_x_separator|>'], LLAMA4_IMAGE_TOKEN_IDS.tileX);
  assert.equal(ids['<|tile_y_separator|>'], LLAMA4_IMAGE_TOKEN_IDS.tileY);
  for (const im of expected!.images) {
    const text = imagePromptText(im.aspect_ratios, im.patch_tokens_per_tile);
    assert.equal(text, im.image_prompt_tokens.join(''), im.file);
    const tokIds = imagePromptTokenIds(im.aspect_ratios, im.patch_tokens_per_tile);
    assert.deepEqual(
      tokIds,
      im.image_prompt_tokens.map((s) => ids[s]),
      im.file,
    );
    assert.equal(tokIds.length, im.image_prompt_token_count);
    assert.equal(imagePromptLength(im.aspect_ratios, im.patch_tokens_per_tile), im.image_prompt_token_count);
  }
});

test('canvases: HF order, best fit, no upscaling of images that fit', () => {
  const c = supportedCanvases(16, 336);
  // n = 16 first: ratios 1/16, 2/8, 4/4, 8/2, 16/1, then n = 15 …; 1x1 (ratio 1) joins the 4x4 group.
  assert.deepEqual(c.slice(0, 10), [
    [336, 5376],
    [672, 2688],
    [336, 1344],
    [1344, 1344],
    [1008, 1008],
    [672, 672],
    [336, 336],
    [2688, 672],
    [1344, 336],
    [5376, 336],
  ]);
  const squares = c.filter(([h, w]) => h === w);
  assert.deepEqual(squares, [
    [1344, 1344],
    [1008, 1008],
    [672, 672],
    [336, 336],
  ]);
  assert.equal(c.length, new Set(c.map((x) => x.join('x'))).size);
  // Every factor pair of n <= 16 appears exactly once.
  let pairs = 0;
  for (let n = 1; n <= 16; n++) for (let h = 1; h <= n; h++) if (n % h === 0) pairs++;
  assert.equal(c.length, pairs);
  // Small image: smallest upscale wins, smallest area among equals.
  assert.deepEqual(
    bestFitCanvas(200, 300, [
      [224, 672],
      [672, 224],
      [224, 448],
      [448, 224],
      [224, 224],
    ]),
    [224, 448],
  );
  // Larger than any canvas: the largest downscale; 10000x10000 → 4x4.
  assert.deepEqual(planTiles(10000, 10000).grid, [4, 4]);
  assert.deepEqual(planTiles(10000, 10000).resized, [1344, 1344]);
  // Very wide: 1x16 strip, height fitted exactly.
  const wide = planTiles(100, 8000);
  assert.deepEqual(wide.grid, [1, 16]);
  assert.deepEqual(wide.resized, [67, 5376]); // floor(100 · 0.672)
  // Fits a canvas: only padded.
  assert.deepEqual(planTiles(300, 500).resized, [300, 500]);
  // Smaller than a tile: upscaled to one tile side, aspect kept.
  assert.deepEqual(planTiles(50, 100).resized, [168, 336]);
  assert.deepEqual(planTiles(50, 100).grid, [1, 1]);
  // Options: tiny tiles and a small tile budget.
  const tiny = planTiles(60, 30, { tileSize: 28, maxTiles: 4 });
  assert.deepEqual(tiny.grid, [2, 1]);
  assert.deepEqual(tiny.resized, [56, 28]);
  assert.throws(() => planTiles(10, 10, { tileSize: 0 }), /tile size/);
});

test('resize: identity, constants, hand-computed upscale and downscale', () => {
  const img = new Uint8Array(4 * 5 * 3).map((_, i) => (i * 37) % 256);
  assert.deepEqual(resizeBilinearAntialias(img, 4, 5, 4, 5), img);
  const flat = new Uint8Array(7 * 9 * 3).fill(131);
  for (const [h, w] of [
    [3, 4],
    [20, 30],
    [7, 2],
    [1, 1],
  ] as const) {
    assert.ok(
      resizeBilinearAntialias(flat, 7, 9, h, w).every((v) => v === 131),
      `${h}x${w}`,
    );
  }
  // 1x2 → 1x4 upscale: centres at 0.25, 0.75, 1.25, 1.75 in input pixels → weights (1,0), (.75,.25), (.25,.75), (0,1).
  const two = new Uint8Array([0, 0, 0, 200, 100, 40]);
  const up = resizeBilinearAntialias(two, 1, 2, 1, 4);
  assert.deepEqual([...up], [0, 0, 0, 50, 25, 10, 150, 75, 30, 200, 100, 40]);
  // 1x4 → 1x2 downscale by 2 (antialias: triangle of radius 2): output 0 = (0.5·a + 1·b + 0.5·c) / 2 … edge-normalised.
  const four = new Uint8Array([0, 0, 0, 100, 100, 100, 200, 200, 200, 40, 40, 40]);
  const down = resizeBilinearAntialias(four, 1, 4, 1, 2);
  // centre 1.0: weights for x = 0, 1, 2 are tri(-0.25)… = 0.75, 0.75, 0.25 → (0·.75 + 100·.75 + 200·.25)/1.75 = 71.43 → 71
  assert.equal(down[0], 71);
  // centre 3.0: x = 1, 2, 3 → 0.25, 0.75, 0.75 → (25 + 150 + 30)/1.75 = 117.1 → 117
  assert.equal(down[3], 117);
});

test('synthetic images: multi-tile layout, padding with -1, global tile, small tiles', () => {
  // 60x30 (h x w) with tile 28 and at most 4 tiles: 2x1 grid of 28-pixel tiles, resized to 56x28, + global.
  const W = 30,
    H = 60;
  const data = new Uint8Array(W * H * 3);
  for (let y = 0; y < H; y++)
    for (let x = 0; x < W; x++) for (let c = 0; c < 3; c++) data[(y * W + x) * 3 + c] = (x * 7 + y * 3 + c * 50) % 256;
  const t = preprocessImage(rgbImage(W, H, data), { tileSize: 28, maxTiles: 4 });
  assert.deepEqual(t.grid, [2, 1]);
  assert.equal(t.nTiles, 3);
  assert.equal(t.pixels.length, 3 * 3 * 28 * 28);
  assert.ok(t.pixels.every((v) => v >= -1 && v <= 1));
  // A 300x500 white image on a 1x2 canvas of 336 tiles: the right tile is 164 columns of white then -1 padding.
  const white = rgbImage(500, 300, new Uint8Array(500 * 300 * 3).fill(255));
  const w = preprocessImage(white);
  assert.deepEqual(w.grid, [1, 2]);
  assert.equal(w.nTiles, 3);
  const S = 336,
    plane = S * S,
    tile1 = 3 * plane;
  assert.equal(w.pixels[tile1 + 0 * S + 163], 1); // last image column in tile 1 (x = 336 + 163 = 499)
  assert.equal(w.pixels[tile1 + 0 * S + 164], -1); // padding
  assert.equal(w.pixels[tile1 + 2 * plane + 299 * S + 100], 1);
  assert.equal(w.pixels[tile1 + 2 * plane + 300 * S + 100], -1); // bottom padding
  // The global tile is the whole image squashed: all white.
  assert.ok(w.pixels.subarray(2 * tile1).every((v) => v === 1));
  // Single tile: no global tile, and a 336x336 image is not resized.
  assert.equal(preprocessImage(rgbImage(336, 336, new Uint8Array(336 * 336 * 3))).nTiles, 1);
  // Bf16 normalisation: 0 → -1, 255 → 1, 128 → bf16(128/255) = 0.50390625 (0.50196 rounds up), − .5, ·2 = 2^-7.
  const one = preprocessImage(rgbImage(1, 1, new Uint8Array([0, 128, 255])), { tileSize: 2, maxTiles: 1 });
  assert.deepEqual([one.pixels[0], one.pixels[4], one.pixels[8]], [-1, 0.0078125, 1]);
});

test('prompt expansion: layout, several images, mismatched counts', () => {
  const ids = { start: 1, end: 2, image: 3, patch: 4, tileX: 5, tileY: 6 };
  assert.deepEqual(imagePromptTokenIds([1, 1], 2, ids), [1, 3, 4, 4, 2]);
  assert.deepEqual(imagePromptTokenIds([2, 2], 1, ids), [1, 4, 5, 4, 6, 4, 5, 4, 6, 3, 4, 2]);
  assert.deepEqual(imagePromptTokenIds([1, 3], 1, ids), [1, 4, 5, 4, 5, 4, 6, 3, 4, 2]);
  assert.equal(imagePromptLength([3, 4], 144), 3 + 12 + 144 * 13);
  const text = expandImagePlaceholders(
    'a<|image|>b<|image|>c',
    [
      [1, 1],
      [1, 2],
    ],
    1,
  );
  assert.equal(
    text,
    'a<|image_start|><|image|><|patch|><|image_end|>b<|image_start|><|patch|><|tile_x_separator|><|patch|><|tile_y_separator|><|image|><|patch|><|image_end|>c',
  );
  assert.throws(() => expandImagePlaceholders('<|image|>', [], 1), /1 <\|image\|> placeholders for 0 images/);
  assert.deepEqual(
    expandImageTokenIds(
      [9, 3, 9, 3],
      [
        [1, 1],
        [1, 1],
      ],
      1,
      ids,
    ),
    [9, 1, 3, 4, 2, 9, 1, 3, 4, 2],
  );
  assert.throws(
    () =>
      expandImageTokenIds(
        [3],
        [
          [1, 1],
          [1, 1],
        ],
        1,
        ids,
      ),
    /1 image placeholders for 2 images/,
  );
  assert.throws(() => expandImageTokenIds([3, 3], [[1, 1]], 1, ids), /more image placeholders/);
});

test("with Meta's tokenizer: text expansion tokenises to exactly the id expansion", {
  skip: !sharedPath('tokenizer', 'llama4-tokenizer.model') && 'tokenizer missing',
}, async () => {
  const { loadTokenizer } = await import('../src/tokenizer/index.ts');
  const tok = loadTokenizer(sharedPath('tokenizer', 'llama4-tokenizer.model')!);
  for (const [name, id] of Object.entries({
    '<|image_start|>': 200080,
    '<|image_end|>': 200081,
    '<|tile_x_separator|>': 200084,
    '<|tile_y_separator|>': 200085,
    '<|image|>': 200090,
    '<|patch|>': 200092,
  })) {
    assert.deepEqual(tok.encode(name, { allowSpecial: true }), [id], name);
  }
  const grids: Array<[number, number]> = [
    [2, 3],
    [1, 1],
    [4, 1],
  ];
  const text = '<|header_start|>user<|header_end|>\n\nCompare <|image|>, <|image|> and <|image|>.<|eot|>';
  const viaText = tok.encode(expandImagePlaceholders(text, grids, 144), { allowSpecial: true });
  const viaIds = expandImageTokenIds(tok.encode(text, { allowSpecial: true }), grids, 144);
  assert.deepEqual(viaText, viaIds);
  assert.equal(viaIds.filter((t) => t === 200092).length, 144 * (7 + 1 + 5));
});
