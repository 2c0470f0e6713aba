/**
 * Block codecs against llama.cpp itself: test/fixtures/ggml-quant-ref holds 38 rows × 256 inputs and the bytes
 * llama.cpp's ggml_quantize_chunk made of them (the quantize_row_*_ref path llama-quantize uses without an
 * imatrix), plus llama.cpp's dequantization of those bytes (see make.py there). Ours must match bit for bit.
 * Then: quantize → dequantize error bounds, and dequantizing the quantized tensors of ../shared/gguf.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { DType } from '../src/tensor/index.ts';
import { DTYPES, dequantize, quantize } from '../src/tensor/index.ts';
import { readGguf } from '../src/io/gguf/index.ts';
import { PROJECT_ROOT, sharedPath } from './helpers/shared.ts';

const FIX = join(PROJECT_ROOT, 'test/fixtures/ggml-quant-ref');
const TYPES: DType[] = ['q4_0', 'q4_1', 'q5_0', 'q5_1', 'q8_0', 'q2_k', 'q3_k', 'q4_k', 'q5_k', 'q6_k'];
const EXACT_TYPES: DType[] = [...TYPES, 'q8_k'];

function f32File(path: string): Float32Array {
  const b = readFileSync(path);
  return new Float32Array(b.buffer.slice(b.byteOffset, b.byteOffset + b.length));
}

const input = f32File(join(FIX, 'input.f32'));

for (const type of EXACT_TYPES) {
  test(`${type}: quantizeRow bytes equal llama.cpp's reference quantizer`, () => {
    const ref = new Uint8Array(readFileSync(join(FIX, `${type}.bin`)));
    const ours = quantize(type, input, 256);
    assert.equal(ours.length, ref.length);
    const bpb = DTYPES[type].bytesPerBlock;
    const bad: number[] = [];
    for (let i = 0; i < ref.length; i++) if (ours[i] !== ref[i] && !bad.includes(Math.floor(i / bpb))) bad.push(Math.floor(i / bpb));
    assert.deepEqual(bad, [], `${type}: blocks differing from llama.cpp: ${bad.slice(0, 10).join(', ')}`);
  });

  test(`${type}: dequantizeRow equals llama.cpp's dequantize_row bit for bit`, () => {
    const ref = new Uint8Array(readFileSync(join(FIX, `${type}.bin`)));
    const want = f32File(join(FIX, `${type}.deq.f32`));
    const got = dequantize(type, ref, input.length);
    const gw = new Uint32Array(got.buffer),
      ww = new Uint32Array(want.buffer);
    let first = -1;
    for (let i = 0; i < ww.length; i++)
      if (gw[i] !== ww[i]) {
        first = i;
        break;
      }
    assert.equal(first, -1, `first difference at element ${first}: ${got[first]} vs ${want[first]}`);
  });
}

test("quantize -> dequantize error stays within each format's bound on gaussian rows", () => {
  // Relative RMS error on N(0,1) rows, measured (q8_0 .0053, q6_k .0177, q5_k .0358, q5_1 .0375, q5_0 .0427,
  // q4_k .0717, q4_1 .0782, q4_0 .0856, q3_k .151, q2_k .296) plus ~12% slack; below 2/3 of it is suspicious too.
  const bound: Record<string, number> = {
    q8_0: 0.006,
    q6_k: 0.02,
    q5_k: 0.04,
    q5_1: 0.042,
    q5_0: 0.048,
    q4_k: 0.08,
    q4_1: 0.088,
    q4_0: 0.096,
    q3_k: 0.17,
    q2_k: 0.33,
  };
  let s = 7;
  const rnd = (): number => {
    s = (Math.imul(s, 1103515245) + 12345) >>> 0;
    return (s + 0.5) / 2 ** 32;
  };
  const x = new Float32Array(256 * 32);
  for (let i = 0; i < x.length; i++) x[i] = Math.sqrt(-2 * Math.log(rnd())) * Math.cos(2 * Math.PI * rnd());
  let ss = 0;
  for (const v of x) ss += v * v;
  for (const type of TYPES) {
    const y = dequantize(type, quantize(type, x, 256), x.length);
    let es = 0;
    for (let i = 0; i < x.length; i++) es += (y[i]! - x[i]!) ** 2;
    const rel = Math.sqrt(es / ss);
    assert.ok(rel < bound[type]!, `${type}: relative RMS error ${rel.toFixed(4)} >= ${bound[type]}`);
    assert.ok(rel > bound[type]! / 1.5, `${type}: relative RMS error ${rel} is implausibly small`);
  }
});

test('all-zero rows round-trip to zeros in every format', () => {
  for (const type of TYPES) {
    const y = dequantize(type, quantize(type, new Float32Array(256), 256), 256);
    assert.ok(
      y.every((v) => v === 0),
      `${type}: zeros came back as ${y.find((v) => v !== 0)}`,
    );
  }
});

test("../shared/gguf: every quantized tensor dequantizes close to the F16 file's weights", (t) => {
  const dir = sharedPath('gguf');
  if (!dir) return t.skip('../shared/gguf missing');
  const f16 = readGguf(join(dir, 'llama4-tiny-g1-F16.gguf'));
  // The quantized files were made from an F32 original, so compare against F16 with the format's error scale.
  const relBound: Record<string, number> = { Q8_0: 0.01, Q6_K: 0.02, Q5_K: 0.04, Q5_0: 0.05, Q4_K: 0.08, Q4_1: 0.08, Q4_0: 0.1 };
  for (const [name, bound] of Object.entries(relBound)) {
    const q = readGguf(join(dir, `llama4-tiny-g1-${name}.gguf`));
    let quantized = 0;
    for (const [tn, tq] of q.tensorData) {
      const tf = f16.tensorData.get(tn);
      assert.ok(tf, `${name}: ${tn} missing from the F16 file`);
      assert.deepEqual(tq.shape, tf.shape);
      const n = tq.shape.reduce((a, b) => a * b, 1);
      const a = dequantize(tq.dtype, tq.bytes, n),
        b = dequantize(tf.dtype, tf.bytes, n);
      let es = 0,
        ss = 0;
      for (let i = 0; i < n; i++) {
        es += (a[i]! - b[i]!) ** 2;
        ss += b[i]! ** 2;
      }
      const rel = Math.sqrt(es / ss);
      if (tq.dtype !== 'f32') quantized++;
      assert.ok(rel < (tq.dtype === 'f32' ? 1e-3 : bound), `${name} ${tn} (${tq.dtype}): relative error ${rel}`);
    }
    assert.equal(quantized, 42, `${name}: 42 quantized tensors`);
  }
});

test('QuantizePool (worker threads) gives exactly the single-thread bytes', async () => {
  const { QuantizePool } = await import('../src/io/gguf/index.ts');
  const x = new Float32Array(1 << 20);
  for (let i = 0; i < x.length; i++) x[i] = Math.sin(i * 0.7) * Math.cos(i * 0.013) + ((i * 2654435761) % 1000) / 5000;
  const pool = new QuantizePool(2);
  try {
    const par = await pool.quantize('q6_k', x, 256);
    const one = quantize('q6_k', x, 256);
    assert.equal(Buffer.compare(Buffer.from(par), Buffer.from(one)), 0);
  } finally {
    await pool.close();
  }
});
