// Memory-mapped files: bytes in place equal the file's, per-range views for files over the single-view limit,
// one clear ModelFileError per bad path or range, copy-on-write (a stray write changes neither the file nor the
// process's health), and kernels reading weights straight from the mapping.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ModelFileError } from '../../util/errors.ts';
import { MappedFile, canMmap, tryCreateNativeBackend } from './index.ts';
import { loadAddon } from './addon.ts';
import { randomWeight, rng } from '../backend-refs.case.test.ts';

const skip = canMmap() ? false : loadAddon().reason;
const dir = mkdtempSync(join(tmpdir(), 'l4-mmap-'));
process.on('exit', () => rmSync(dir, { recursive: true, force: true }));

function sampleFile(n: number): { path: string; data: Uint8Array } {
  const r = rng(n);
  const data = new Uint8Array(n).map(() => Math.floor(r.u() * 256));
  const path = join(dir, `f${n}.bin`);
  writeFileSync(path, data);
  return { path, data };
}

test('mmap: views equal the file bytes (one whole-file view)', { skip }, () => {
  const { path, data } = sampleFile(100_003);
  const m = MappedFile.open(path);
  assert.equal(m.size, data.length);
  assert.deepEqual(m.bytes(0, data.length), data);
  assert.deepEqual(m.bytes(12_345, 777), data.subarray(12_345, 12_345 + 777));
  assert.equal(m.bytes(500, 0).length, 0);
  assert.equal(m.bytes(1000, 10).buffer, m.bytes(2000, 10).buffer, 'subarrays of one mapping, no copies');
});

test('mmap: per-range views when the file exceeds the single-view limit (Node caps a view at 4 GiB)', { skip }, () => {
  const { path, data } = sampleFile(65_536);
  const m = MappedFile.open(path, { wholeViewLimit: 1000 });
  const a = m.bytes(4096, 5000),
    b = m.bytes(40_000, 100);
  assert.deepEqual(a, data.subarray(4096, 9096));
  assert.deepEqual(b, data.subarray(40_000, 40_100));
  assert.notEqual(a.buffer, b.buffer);
  assert.equal(m.bytes(4096, 100).buffer, a.buffer, 'a range is mapped once and reused');
  assert.throws(() => m.bytes(4096, 6000), ModelFileError);
});

test('mmap: bad paths and ranges give one ModelFileError', { skip }, () => {
  assert.throws(
    () => MappedFile.open(join(dir, 'missing.gguf')),
    (e: unknown) => e instanceof ModelFileError && /cannot open/.test(e.message),
  );
  assert.throws(() => MappedFile.open(dir), ModelFileError);
  const { path } = sampleFile(1000);
  const m = MappedFile.open(path);
  assert.throws(() => m.bytes(990, 11), ModelFileError);
  assert.throws(() => m.bytes(-1, 2), ModelFileError);
  const empty = join(dir, 'empty.bin');
  writeFileSync(empty, new Uint8Array(0));
  assert.equal(MappedFile.open(empty).bytes(0, 0).length, 0);
});

test('mmap: writes into a view are private (file unchanged, no crash)', { skip }, () => {
  const { path, data } = sampleFile(5000);
  const v = MappedFile.open(path).bytes(0, 5000);
  v[10] = (v[10]! + 1) & 255;
  assert.equal(v[10], (data[10]! + 1) & 255);
  assert.deepEqual(new Uint8Array(readFileSync(path)), data);
});

test('mmap: kernels read weights in place from the mapping', { skip }, () => {
  const N = 64,
    K = 1024;
  const { bytes } = randomWeight('q8_0', N, K, 9);
  const path = join(dir, 'w.bin');
  writeFileSync(path, Buffer.concat([Buffer.alloc(32), bytes])); // tensor data at offset 32, as in GGUF
  const be = tryCreateNativeBackend({ threads: 2 }).backend!;
  const x = new Float32Array(K).map((_, i) => Math.sin(i));
  const fromHeap = new Float32Array(N),
    fromMap = new Float32Array(N);
  be.matmul(fromHeap, x, be.weight({ name: 'h', dtype: 'q8_0', shape: [N, K], bytes }), 1);
  be.matmul(fromMap, x, be.weight({ name: 'm', dtype: 'q8_0', shape: [N, K], bytes: MappedFile.open(path).bytes(32, bytes.length) }), 1);
  assert.deepEqual(fromMap, fromHeap);
});

test("mmap: a mapped bf16 matrix adopted with products 'bf16' is packed, its pages dropped, and still reads back", { skip }, () => {
  const { backend } = tryCreateNativeBackend({ threads: 2 });
  if (!backend?.bf16Products) return; // no BF16-products kernel here: nothing is packed
  const N = 96,
    K = 4096; // 768 KiB: whole pages inside the tensor
  const { bytes, values } = randomWeight('bf16', N, K, 3);
  const path = join(dir, 'bf16.bin');
  writeFileSync(path, Buffer.concat([Buffer.alloc(100), bytes]));
  const m = MappedFile.open(path);
  const raw = { name: 'w', dtype: 'bf16' as const, shape: [N, K], bytes: m.bytes(100, bytes.length) };
  const packed = backend.weight(raw, { products: 'bf16' }),
    exact = backend.weight(raw);
  assert.deepEqual(backend.toF32(packed), values, 'the file layout is still there (pages faulted back in)');
  const x = new Float32Array(3 * K).map((_, i) => Math.sin(i));
  const a = new Float32Array(3 * N),
    b = new Float32Array(3 * N);
  backend.matmul(a, x, packed, 3);
  backend.matmul(b, x, exact, 3);
  let e = 0,
    s = 0;
  for (let i = 0; i < a.length; i++) {
    e += (a[i]! - b[i]!) ** 2;
    s += b[i]! ** 2;
  }
  assert.ok(e / s < 1e-5 && e > 0, `bf16 products against exact: NMSE ${e / s}`);
  assert.deepEqual(readFileSync(path).subarray(100), Buffer.from(bytes), 'the file is untouched');
});
