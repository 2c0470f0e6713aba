/**
 * Image decoding: formats, sources (path, bytes, data URL), EXIF orientation, alpha without compositing, and one
 * clear ImageError for every bad input (corrupt, truncated, oversized, unsupported) without harming later decodes.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import sharp from 'sharp';
import { decodeImage, ImageError, parseDataUrl } from '../src/image/index.ts';
import { Llama4Error } from '../src/util/index.ts';
import { sharedPath } from './helpers/shared.ts';

/** A W x H RGB test pattern: R = 10x, G = 10y, B = 77. */
function pattern(w: number, h: number): Buffer {
  const b = Buffer.alloc(w * h * 3);
  for (let y = 0; y < h; y++)
    for (let x = 0; x < w; x++) {
      const o = (y * w + x) * 3;
      b[o] = 10 * x;
      b[o + 1] = 10 * y;
      b[o + 2] = 77;
    }
  return b;
}
const raw = (w: number, h: number, ch: 3 | 4 | 1 = 3) => ({ raw: { width: w, height: h, channels: ch } });

test('PNG, WebP (lossless), GIF first frame and JPEG decode to RGB u8', async () => {
  const px = pattern(6, 4);
  const png = await sharp(px, raw(6, 4)).png().toBuffer();
  const webp = await sharp(px, raw(6, 4)).webp({ lossless: true }).toBuffer();
  for (const [name, buf] of [
    ['png', png],
    ['webp', webp],
  ] as const) {
    const img = await decodeImage(new Uint8Array(buf));
    assert.equal(img.width, 6, name);
    assert.equal(img.height, 4, name);
    assert.deepEqual(Buffer.from(img.data), px, name);
  }
  // GIF (a palette of few colours, so exact).
  const flat = (r: number) => Buffer.alloc(5 * 3 * 3, 0).map((_, i) => (i % 3 === 0 ? r : 0));
  const gif = await sharp(flat(255), raw(5, 3)).gif().toBuffer();
  const g = await decodeImage(new Uint8Array(gif));
  assert.equal(g.width, 5);
  assert.equal(g.height, 3);
  assert.equal(g.data[0], 255);
  assert.equal(g.data[1], 0);
  const jpg = await sharp(px, raw(6, 4)).jpeg({ quality: 100 }).toBuffer();
  const j = await decodeImage(new Uint8Array(jpg));
  assert.equal(j.width, 6);
  assert.ok(Math.abs(j.data[(2 * 6 + 3) * 3]! - 30) <= 6, 'JPEG close to the pattern');
});

test('animated GIF: first frame only', async () => {
  // sharp writes a multi-page GIF from a tall image with pageHeight.
  const red = Buffer.alloc(4 * 4 * 3).map((_, i) => (i % 3 === 0 ? 255 : 0));
  const blue = Buffer.alloc(4 * 4 * 3).map((_, i) => (i % 3 === 2 ? 255 : 0));
  const anim = await sharp(Buffer.concat([red, blue]), { raw: { width: 4, height: 8, channels: 3, pageHeight: 4 } as never })
    .gif({ loop: 0 })
    .toBuffer();
  const meta = await sharp(anim).metadata();
  assert.equal(meta.pages, 2, 'test GIF has two frames');
  const img = await decodeImage(new Uint8Array(anim));
  assert.equal(img.height, 4);
  assert.deepEqual([img.data[0], img.data[1], img.data[2]], [255, 0, 0]);
});

test('EXIF orientation is applied', async () => {
  const px = pattern(6, 4);
  // Orientation 6 = the stored image must be rotated 90° clockwise for display: 6x4 stored → 4x6 shown.
  const jpg = await sharp(px, raw(6, 4)).jpeg({ quality: 100 }).withMetadata({ orientation: 6 }).toBuffer();
  const img = await decodeImage(new Uint8Array(jpg));
  assert.equal(img.width, 4);
  assert.equal(img.height, 6);
  // After a 90° clockwise turn, the displayed top-right pixel is the stored top-left (R 0, G 0).
  const tr = (0 * 4 + 3) * 3;
  assert.ok(img.data[tr]! < 8 && img.data[tr + 1]! < 8, `top-right ${img.data[tr]},${img.data[tr + 1]}`);
});

test('alpha is dropped without compositing; grey becomes RGB', async () => {
  const rgba = Buffer.from([200, 100, 50, 0, 10, 20, 30, 255]);
  const png = await sharp(rgba, raw(2, 1, 4))
    .png()
    .toBuffer();
  const img = await decodeImage(new Uint8Array(png));
  assert.deepEqual([...img.data], [200, 100, 50, 10, 20, 30]); // the transparent pixel keeps its colour
  const grey = await sharp(Buffer.from([0, 128, 255]), raw(3, 1, 1))
    .png()
    .toBuffer();
  const g = await decodeImage(new Uint8Array(grey));
  assert.deepEqual([...g.data], [0, 0, 0, 128, 128, 128, 255, 255, 255]);
});

test('ICC profiles are ignored like PIL does: stored values reach the model unconverted', async () => {
  const px = Buffer.from([200, 30, 40, 10, 220, 50]);
  const p3 = await sharp(px, raw(2, 1)).withIccProfile('p3').png().toBuffer();
  const stored = await sharp(p3).keepIccProfile().raw().toBuffer(); // the file's own values (P3-encoded)
  assert.notDeepEqual([...stored], [...px], 'the test image really was converted into P3');
  const img = await decodeImage(new Uint8Array(p3));
  assert.deepEqual([...img.data], [...stored]);
});

test('sources: path, bytes, data URL', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'l4img-'));
  try {
    const png = await sharp(pattern(3, 2), raw(3, 2)).png().toBuffer();
    const file = join(dir, 'a.png');
    writeFileSync(file, png);
    const a = await decodeImage(file);
    const b = await decodeImage({ bytes: new Uint8Array(png), label: 'upload' });
    const c = await decodeImage(`data:image/png;base64,${png.toString('base64')}`);
    assert.deepEqual(a, b);
    assert.deepEqual(a, c);
    assert.throws(() => parseDataUrl('data:image/png;base64,@@@'), ImageError);
    assert.throws(() => parseDataUrl('http://x/y.png'), /not a data URL/);
    assert.throws(() => parseDataUrl('data:image/png,%E0%A4%A'), /malformed/);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('bad inputs give one clear ImageError and later decodes still work', async () => {
  const png = await sharp(pattern(20, 20), raw(20, 20)).png().toBuffer();
  const jpg = await sharp(pattern(20, 20), raw(20, 20)).jpeg().toBuffer();
  const cases: Array<[string, () => Promise<unknown>, RegExp]> = [
    ['garbage', () => decodeImage(new Uint8Array([1, 2, 3, 4, 5, 6, 7, 8])), /not a readable image/],
    ['empty', () => decodeImage(new Uint8Array(0)), /empty/],
    ['truncated png', () => decodeImage(new Uint8Array(png.subarray(0, png.length - 40))), /corrupt or truncated|not a readable/],
    [
      'truncated jpeg',
      () => decodeImage(new Uint8Array(jpg.subarray(0, Math.floor(jpg.length / 2)))),
      /corrupt or truncated|not a readable/,
    ],
    ['too many bytes', () => decodeImage(new Uint8Array(png), { maxBytes: 100 }), /over the 100-byte limit/],
    ['too many pixels', () => decodeImage(new Uint8Array(png), { maxPixels: 399 }), /pixel|limit/],
    ['missing file', () => decodeImage('/nonexistent/x.png'), /cannot read \(ENOENT\)/],
    ['directory', () => decodeImage(tmpdir()), /not a regular file/],
    [
      'svg',
      () => decodeImage(new Uint8Array(Buffer.from('<svg xmlns="http://www.w3.org/2000/svg" width="4" height="4"/>'))),
      /unsupported format|not a readable/,
    ],
  ];
  for (const [name, p, re] of cases) {
    await assert.rejects(p(), (e: unknown) => {
      assert.ok(e instanceof ImageError && e instanceof Llama4Error, `${name}: ${String(e)}`);
      assert.match((e as Error).message, re, name);
      return true;
    });
  }
  const ok = await decodeImage(new Uint8Array(png));
  assert.equal(ok.width, 20);
});

test('the reference JPEG and PNG decode to their recorded sizes', {
  skip: !sharedPath('images') && '../shared/images missing',
}, async () => {
  const dir = sharedPath('images')!;
  const exp = JSON.parse(readFileSync(join(dir, 'expected.json'), 'utf8')) as {
    images: Array<{ file: string; width: number; height: number }>;
  };
  for (const im of exp.images) {
    const img = await decodeImage(join(dir, im.file));
    assert.equal(img.width, im.width);
    assert.equal(img.height, im.height);
    assert.equal(img.data.length, im.width * im.height * 3);
  }
});
