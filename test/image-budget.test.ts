/**
 * Images of one request are checked against a pixel budget from their headers before any is decoded, then decoded
 * one at a time (eight 64-megapixel images once took 21 s and 1.76 GB decoded together).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import sharp from 'sharp';
import { encodeImages } from '../src/model/llama4/vision-prompt.ts';
import type { Llama4VisionEncoder } from '../src/model/llama4/vision.ts';
import { ImageError, readImageSize } from '../src/image/index.ts';

/** An encoder that must never be reached: the budget check comes first. */
const unreachable = new Proxy(
  {},
  {
    get: () => {
      throw new Error('the encoder was used');
    },
  },
) as unknown as Llama4VisionEncoder;

test('a request over the pixel budget fails from the headers, before decoding, in well under a second', async () => {
  // 8192 × 8192 = 64 MP of one colour: a small PNG whose decoded size would be 192 MB.
  const big = await sharp({ create: { width: 8192, height: 8192, channels: 3, background: { r: 10, g: 20, b: 30 } } })
    .png({ compressionLevel: 9 })
    .toBuffer();
  assert.deepEqual(await readImageSize(big), { width: 8192, height: 8192 });
  const rss0 = process.memoryUsage().rss;
  const t0 = performance.now();
  await assert.rejects(
    encodeImages(
      unreachable,
      Array.from({ length: 8 }, (_, i) => ({ bytes: new Uint8Array(big), label: `#${i + 1}` })),
    ),
    (e: unknown) =>
      e instanceof ImageError && /#2: the images of this request have more than 67108864 pixels together/.test((e as Error).message),
  );
  const ms = performance.now() - t0;
  const grew = (process.memoryUsage().rss - rss0) / 2 ** 20;
  assert.ok(ms < 1000, `took ${ms.toFixed(0)} ms`);
  assert.ok(grew < 150, `RSS grew ${grew.toFixed(0)} MiB`);
  // A lower budget refuses even one such image; a single image over the per-image limit names its own limit.
  await assert.rejects(
    encodeImages(unreachable, [big], { maxTotalPixels: 1_000_000 }),
    /#1: the images of this request have more than 1000000 pixels/,
  );
  await assert.rejects(
    encodeImages(unreachable, [big], { limits: { maxPixels: 4_000_000 } }),
    /#1: 8192x8192 is over the 4000000-pixel limit/,
  );
});
