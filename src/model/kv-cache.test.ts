// KV caches in every storage type: rows are stored as the type's encoder writes them, chunked caches drop what no
// query can see, truncate/clone keep working on the stored form, and bytes() reports the real (smaller) size.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { KvData, KvType } from '../tensor/index.ts';
import { KV_TYPES, decodeKv, kvElements } from '../tensor/index.ts';
import { ChunkedKvCache, FullKvCache } from './kv-cache.ts';

const ROW = 2 * 64; // nKvHeads 2 · headDim 64
function rows(n: number, seed: number): Float32Array {
  const a = new Float32Array(n * ROW);
  let s = seed;
  for (let i = 0; i < a.length; i++) {
    s = (s * 1103515245 + 12345) >>> 0;
    a[i] = (s / 2 ** 32 - 0.5) * 6;
  }
  return a;
}
/** The float32 values a view holds for positions [from, to). */
function values(type: KvType, data: KvData, kPos0: number, from: number, to: number): Float32Array {
  const out = new Float32Array((to - from) * ROW);
  decodeKv(type, data, (from - kPos0) * ROW, (to - from) * ROW, out);
  return out;
}

for (const type of KV_TYPES) {
  test(`FullKvCache ${type}: appends, truncate, clone and bytes`, () => {
    const c = new FullKvCache(ROW, 4, type);
    const k = rows(30, 1),
      v = rows(30, 2);
    c.append(k, v, 10);
    const view = c.append(k.subarray(10 * ROW), v.subarray(10 * ROW), 20);
    assert.equal(view.kvType, type);
    assert.equal(view.S, 30);
    assert.equal(view.k.length, 30 * kvElements(type, ROW));
    const got = values(type, view.k, 0, 0, 30);
    let maxErr = 0;
    for (let i = 0; i < got.length; i++) maxErr = Math.max(maxErr, Math.abs(got[i]! - k[i]!));
    // f32 exact; f16 relative 2^-11 of |x| <= 3; q8_0 half a step of amax/127 (amax <= 3)
    const bound =
      type === 'f32' ? 0 : type === 'f16' ? 3 * 2 ** -11 : (3 / 127) * 0.57 /* half a step plus the f16 scale rounding (127·2^-11 steps) */;
    assert.ok(maxErr <= bound, `${type}: max error ${maxErr} > ${bound}`);
    if (type !== 'f32') assert.ok(maxErr > 0, 'a compressed cache is lossy');
    const bytesPerRow = type === 'f32' ? ROW * 8 : type === 'f16' ? ROW * 4 : (ROW / 32) * 34 * 2;
    assert.ok(c.bytes() >= 30 * bytesPerRow && c.bytes() < 50 * bytesPerRow, `${type}: ${c.bytes()} bytes for 30 rows of ${bytesPerRow}`);
    const cl = c.clone();
    c.truncate(12);
    assert.equal(c.length, 12);
    const after = c.append(k.subarray(20 * ROW), v.subarray(20 * ROW), 1);
    assert.deepEqual(values(type, after.k, 0, 12, 13), values(type, view.k, 0, 20, 21), 'row 12 now holds row 20');
    assert.equal(cl.length, 30);
    assert.deepEqual(values(type, (cl as FullKvCache).append(k, v, 0).k, 0, 0, 30), got, 'the clone kept every row');
    assert.equal(cl.kvType, type);
  });

  test(`ChunkedKvCache ${type}: keeps one chunk, stored compressed`, () => {
    const C = 8,
      c = new ChunkedKvCache(ROW, C, type);
    const k = rows(37, 3),
      v = rows(37, 4);
    const full = new FullKvCache(ROW, 64, type); // the same rows, never dropped
    for (let p = 0; p < 37; p++) {
      const view = c.append(k.subarray(p * ROW), v.subarray(p * ROW), 1);
      const all = full.append(k.subarray(p * ROW), v.subarray(p * ROW), 1);
      assert.equal(view.kPos0, Math.floor(p / C) * C);
      assert.deepEqual(values(type, view.v, view.kPos0, view.kPos0, p + 1), values(type, all.v, 0, view.kPos0, p + 1));
      c.settle();
    }
    assert.ok(c.bytes() <= C * kvElements(type, ROW) * (type === 'f32' ? 4 : type === 'f16' ? 2 : 1) * 2, `${type}: ${c.bytes()} bytes`);
    assert.equal(c.canTruncate(33), true);
    assert.equal(c.canTruncate(31), false);
    c.truncate(35);
    assert.equal(c.length, 35);
    assert.equal(c.clone().bytes(), c.bytes());
  });
}
