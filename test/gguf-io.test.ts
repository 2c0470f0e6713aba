/**
 * GGUF reader/writer: every metadata type (nested arrays included) round-trips with its type, v2 files read like
 * v3, custom alignment, torch-order shapes, llama.cpp's own files parse, and malformed headers give one clear
 * ModelFileError naming the problem.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { GgufType, GgufWriter, isGgufFile, readGguf, readGgufHeader } from '../src/io/gguf/index.ts';
import { ModelFileError } from '../src/util/index.ts';
import { sharedPath } from './helpers/shared.ts';

function withDir(fn: (dir: string) => void): void {
  const dir = mkdtempSync(join(tmpdir(), 'gguf-io-'));
  try {
    fn(dir);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

test('every metadata type round-trips with its GGUF type; tensors keep torch-order shapes', () =>
  withDir((dir) => {
    const p = join(dir, 'a.gguf');
    const w = new GgufWriter(p, 64);
    w.set('u8', 200, GgufType.UINT8).set('i8', -100, GgufType.INT8).set('u16', 60000, GgufType.UINT16).set('i16', -30000, GgufType.INT16);
    w.set('u32', 4000000000, GgufType.UINT32).set('i32', -2000000000, GgufType.INT32).set('f32', 1.5, GgufType.FLOAT32);
    w.set('u64', 2n ** 63n, GgufType.UINT64)
      .set('i64', -5, GgufType.INT64)
      .set('f64', Math.PI, GgufType.FLOAT64);
    w.set('bool', false).set('str', 'ünïcödé ✓').set('empty', '');
    w.set('arr.i32', new Int32Array([1, -2, 3]))
      .set('arr.f64', new Float64Array([0.1]))
      .set('arr.u64', new BigUint64Array([1n, 2n ** 64n - 1n]));
    w.set('arr.str', ['a', '', 'ccc'])
      .set('arr.bool', [true, false, true])
      .set('arr.nested', [[1, 2], [3]].map((a) => Int32Array.from(a)) as never);
    w.addTensor('t.weight', 'f32', [3, 2, 32]);
    w.writeHeader();
    const data = new Float32Array(192).map((_, i) => i);
    w.writeTensor('t.weight', new Uint8Array(data.buffer));
    w.close();
    assert.ok(isGgufFile(p));
    const f = readGguf(p);
    assert.equal(f.version, 3);
    assert.equal(f.alignment, 64);
    assert.equal(f.dataOffset % 64, 0);
    const md = f.metadata;
    assert.deepEqual(
      [md.get('u8'), md.get('i8'), md.get('u16'), md.get('i16'), md.get('u32'), md.get('i32'), md.get('f32')],
      [200, -100, 60000, -30000, 4000000000, -2000000000, 1.5],
    );
    assert.equal(md.get('u64'), 2n ** 63n);
    assert.equal(md.get('i64'), -5);
    assert.equal(md.get('f64'), Math.PI);
    assert.equal(md.get('bool'), false);
    assert.equal(md.get('str'), 'ünïcödé ✓');
    assert.equal(md.get('empty'), '');
    assert.deepEqual(md.get('arr.i32'), new Int32Array([1, -2, 3]));
    assert.deepEqual(md.get('arr.u64'), new BigUint64Array([1n, 2n ** 64n - 1n]));
    assert.deepEqual(md.get('arr.str'), ['a', '', 'ccc']);
    assert.deepEqual(md.get('arr.bool'), [true, false, true]);
    assert.deepEqual(md.get('arr.nested'), [new Int32Array([1, 2]), new Int32Array([3])]);
    assert.equal(f.types.get('u16'), GgufType.UINT16);
    assert.equal(f.types.get('arr.str'), GgufType.ARRAY);
    assert.equal(f.arrayTypes.get('arr.str'), GgufType.STRING);
    const t = f.tensorData.get('t.weight')!;
    assert.deepEqual(t.shape, [3, 2, 32]);
    assert.deepEqual(f.tensors.get('t.weight')!.ne, [32, 2, 3]);
    assert.deepEqual(new Float32Array(t.bytes.buffer, t.bytes.byteOffset, 192), data);
    // Version 2 has the same little-endian layout.
    const b = readFileSync(p);
    b.writeUInt32LE(2, 4);
    writeFileSync(p, b);
    assert.equal(readGgufHeader(p).version, 2);
  }));

test('llama.cpp-made files parse: tokenizer arrays, chat template, ggml ne reversed', (t) => {
  const dir = sharedPath('gguf');
  if (!dir) return t.skip('../shared/gguf missing');
  const h = readGgufHeader(join(dir, 'llama4-tiny-g1-Q6_K.gguf'));
  assert.equal(h.metadata.get('general.architecture'), 'llama4');
  assert.equal((h.metadata.get('tokenizer.ggml.tokens') as string[]).length, 512);
  assert.equal((h.metadata.get('tokenizer.ggml.merges') as string[]).length, 224);
  assert.match(h.metadata.get('tokenizer.chat_template') as string, /header_start/);
  const e = h.tensors.get('blk.0.ffn_gate_exps.weight')!;
  assert.deepEqual(e.shape, [4, 256, 256]);
  assert.equal(e.dtype, 'q6_k');
  assert.equal(e.byteLength, 4 * 256 * 210);
});

test('malformed headers: one ModelFileError that names the problem', () =>
  withDir((dir) => {
    const p = join(dir, 'bad.gguf');
    const good = join(dir, 'good.gguf');
    const w = new GgufWriter(good);
    w.set('general.architecture', 'llama4');
    w.addTensor('x.weight', 'q8_0', [2, 32]);
    w.writeHeader();
    w.writeTensor('x.weight', new Uint8Array(68));
    w.close();
    const bytes = readFileSync(good);
    const expectError = (buf: Buffer, re: RegExp): void => {
      writeFileSync(p, buf);
      assert.throws(
        () => readGguf(p),
        (e: Error) => e instanceof ModelFileError && re.test(e.message) && e.message.includes(p),
        re.source,
      );
    };
    expectError(Buffer.from('GGML0000000000000000000000000000'), /not a GGUF file/);
    const v = Buffer.from(bytes);
    v.writeUInt32LE(1, 4);
    expectError(v, /version 1/);
    const be = Buffer.from(bytes);
    be.writeUInt32BE(3, 4);
    expectError(be, /big-endian/);
    expectError(bytes.subarray(0, bytes.length - 40), /truncated: tensor 'x.weight'/);
    expectError(bytes.subarray(0, 30), /truncated/);
    // The tensor's ggml type id sits 12 bytes before the end of the header (type u32, offset u64).
    const headerEnd = readGgufHeader(good).dataOffset;
    let pos = -1;
    for (let i = 0; i < headerEnd - 12; i++)
      if (bytes.readUInt32LE(i) === 8 && bytes.readBigUInt64LE(i + 4) === 0n && bytes.subarray(i - 16, i).includes(2)) pos = i;
    assert.ok(pos > 0);
    const ty = Buffer.from(bytes);
    ty.writeUInt32LE(39, pos);
    expectError(ty, /MXFP4/);
    const off = Buffer.from(bytes);
    off.writeBigUInt64LE(7n, pos + 4);
    expectError(off, /alignment/);
    assert.throws(
      () => readGguf(join(dir, 'missing.gguf')),
      (e: Error) => e instanceof ModelFileError && /cannot open/.test(e.message),
    );
  }));

test('tensor types follow llama-quantize: F32 norms/router, Q4_K_M mix, --pure, fallbacks', async () => {
  const { tensorTypeFor } = await import('../src/io/gguf/index.ts');
  const L = 48,
    m = (name: string, shape = [1024, 5120]) => tensorTypeFor('q4_k_m', name, shape, L, { nGqa: 5 });
  assert.equal(m('blk.0.attn_norm', [5120]), 'f32');
  assert.equal(m('blk.0.ffn_gate_inp', [16, 5120]), 'f32');
  assert.equal(m('output', [202048, 5120]), 'q6_k');
  assert.equal(m('token_embd', [202048, 5120]), 'q4_k');
  // use_more_bits(i, 48): i < 6, i >= 42, or (i - 6) % 3 == 2
  assert.deepEqual(
    [0, 5, 6, 7, 8, 11, 40, 42, 47].map((i) => m(`blk.${i}.attn_v`)),
    ['q6_k', 'q6_k', 'q4_k', 'q4_k', 'q6_k', 'q6_k', 'q4_k', 'q6_k', 'q6_k'],
  );
  assert.equal(m('blk.8.ffn_down_exps', [16, 5120, 8192]), 'q6_k');
  assert.equal(m('blk.7.ffn_down_shexp', [5120, 8192]), 'q4_k');
  assert.equal(m('blk.7.attn_q', [5120, 5120]), 'q4_k');
  assert.equal(tensorTypeFor('q4_k_m', 'blk.0.attn_v', [1024, 5120], L, { pure: true }), 'q4_k');
  assert.equal(tensorTypeFor('q4_0', 'output', [512, 256], 4, {}), 'q6_k');
  assert.equal(tensorTypeFor('q4_0', 'output', [512, 256], 4, { pure: true }), 'q4_0');
  assert.equal(tensorTypeFor('q8_0', 'output', [512, 256], 4, {}), 'q8_0');
  assert.equal(tensorTypeFor('f16', 'output', [512, 256], 4, {}), 'f16');
  // rows of 64 cannot hold 256-element super-blocks: llama.cpp's fallbacks
  assert.equal(tensorTypeFor('q4_k', 'blk.1.attn_q', [64, 64], 4, { pure: true }), 'q5_0');
  assert.equal(tensorTypeFor('q6_k', 'blk.1.attn_q', [64, 64], 4, { pure: true }), 'q8_0');
});
