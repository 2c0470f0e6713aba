// encodeKv('f16') has a bit-level fast path for normal halves; it must store exactly what f32ToF16 (the reference
// round-to-nearest-even conversion) stores, at every rounding boundary and outside the fast path's range.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { encodeKv } from './kv.ts';
import { f32ToF16 } from './half.ts';

test('encodeKv f16 equals f32ToF16 bit for bit (edges, subnormals, overflow, NaN, random)', () => {
  const edges = [
    0, 0x33000000, 0x33000001, 0x387fefff, 0x387fffff, 0x38800000, 0x38800fff, 0x38801000, 0x38801001, 0x38803000, 0x3f800fff, 0x3f801000,
    0x3f803000, 0x477fefff, 0x477ff000, 0x477fffff, 0x47800000, 0x7f7fffff, 0x7f800000, 0x7fc00001,
  ];
  const n = edges.length * 2 + 200000;
  const src = new Float32Array(n);
  const bits = new Uint32Array(src.buffer);
  edges.forEach((e, i) => {
    bits[2 * i] = e;
    bits[2 * i + 1] = (e | 0x80000000) >>> 0;
  });
  let s = 7;
  for (let i = edges.length * 2; i < n; i++) {
    s = (Math.imul(s, 1103515245) + 12345) >>> 0;
    // half the values near the half-precision range (exponents 100..139), half any bit pattern
    bits[i] = i & 1 ? (s ^ (s << 11)) >>> 0 : (((((s >>> 8) % 40) + 100) << 23) | (s & 0x7fffff) | (s & 0x80 ? 0x80000000 : 0)) >>> 0;
  }
  const dst = new Uint16Array(n + 3);
  encodeKv('f16', src, 0, n, dst, 3);
  for (let i = 0; i < n; i++) assert.equal(dst[3 + i], f32ToF16(src[i]!), `bits ${bits[i]!.toString(16)}`);
});
