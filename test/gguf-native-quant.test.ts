/**
 * The native weight quantizers (native/src/quant.cc) write exactly the bytes of the TypeScript ones (src/tensor/quant)
 * for every type the GGUF writer emits: random rows at many scales, adversarial rows (zeros, constants, one spike,
 * huge and subnormal magnitudes, ties at rounding boundaries), llama.cpp's own reference bytes, and whole GGUF files
 * written by the writer with and without the native quantizer. Skipped when the addon is not built.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { BulkQuantizer, DType } from '../src/tensor/index.ts';
import { DTYPES, quantize } from '../src/tensor/index.ts';
import { tryCreateNativeQuantizer } from '../src/kernels/native/index.ts';
import { parallelRandomProducer, presetConfig, randomProducer, syntheticTokenizer, writeLlama4Gguf } from '../src/model-files/index.ts';
import type { FileType } from '../src/io/gguf/quant-policy.ts';
import { PROJECT_ROOT } from './helpers/shared.ts';

const TYPES: DType[] = ['q4_0', 'q4_1', 'q5_0', 'q5_1', 'q8_0', 'q2_k', 'q3_k', 'q4_k', 'q5_k', 'q6_k', 'q8_k', 'iq4_nl', 'iq4_xs'];
const { quantizer, reason } = tryCreateNativeQuantizer(2);
const skip = quantizer ? false : `native quantizer unavailable: ${reason}`;
const native = quantizer as BulkQuantizer;
// The scalar scale searches (an engine made for the 'scalar' kernel set) next to the AVX2 8-lane ones.
const scalar = quantizer ? tryCreateNativeQuantizer(2, 'scalar').quantizer : null;
process.on('exit', () => {
  quantizer?.close();
  scalar?.close();
});

const K = 512; // two super-blocks, 16 legacy blocks per row

function lcg(seed: number): () => number {
  let s = seed >>> 0;
  return () => {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    return s / 4294967296;
  };
}

/** Rows of K values: gaussian-ish at scales 1e-30..1e15, then adversarial patterns. */
function testRows(): Float32Array {
  const rnd = lcg(7);
  const rows: ((j: number) => number)[] = [];
  for (const scale of [1, 1e-3, 0.02, 30, 1e4, 1e8, 1e12, 1e15, 1e-20, 1e-30, 1e-38])
    for (let r = 0; r < 3; r++) rows.push(() => (rnd() + rnd() + rnd() - 1.5) * scale);
  rows.push(
    () => 0,
    () => 1,
    () => -1,
    () => 0.37,
    () => -1e20,
    () => 3e38,
    (j) => (j % 32 === 5 ? 1 : 0), // one spike per block
    (j) => (j % 256 === 0 ? -7 : 1e-3), // a negative outlier per super-block
    (j) => (j % 2 ? 1e-40 : -3e-42), // subnormals only
    (j) => (j % 3) - 1, // exact small integers (ties in the scale searches)
    (j) => ((j % 16) - 8) * 0.125, // values on a q4 grid
    (j) => ((j % 64) - 32) / 32, // values on a q6 grid
    (j) => (j < K / 2 ? 0 : (rnd() - 0.5) * 1e-6), // half zero
    (j) => (j % 32 < 16 ? 1e30 : -1e-30), // mixed extremes in one block
    (j) => (rnd() < 0.5 ? 0.5 : -0.5) * 2 ** ((j % 20) - 10),
    (j) => (rnd() - 0.5) * 2 ** ((j % 60) - 30),
    (j) => Math.fround(1 / (j + 1)),
    (j) => (j % 32 === 31 ? 65504 : 0.1), // the largest half
    (j) => (j % 32 === 31 ? 1e5 : -0.1), // beyond the largest half
  );
  const x = new Float32Array(rows.length * K);
  rows.forEach((f, r) => {
    for (let j = 0; j < K; j++) x[r * K + j] = f(j);
  });
  return x;
}

function firstDiff(a: Uint8Array, b: Uint8Array, blockBytes: number): string {
  assert.equal(a.length, b.length, 'lengths');
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return `byte ${i} (block ${Math.floor(i / blockBytes)}): ${a[i]} vs ${b[i]}`;
  return '';
}

const rows = testRows();
for (const type of TYPES) {
  test(`${type}: native quantizer bytes equal the TypeScript quantizer's on random and adversarial rows`, { skip }, async () => {
    assert.ok(native.supports(type));
    const want = quantize(type, rows, K);
    assert.equal(firstDiff(await native.quantize(type, rows, K), want, DTYPES[type].bytesPerBlock), '', 'best kernel set');
    assert.equal(firstDiff(await scalar!.quantize(type, rows, K), want, DTYPES[type].bytesPerBlock), '', 'scalar');
  });
}

test("native quantizer bytes equal llama.cpp's reference quantizer (test/fixtures/ggml-quant-ref)", { skip }, async () => {
  const dir = join(PROJECT_ROOT, 'test/fixtures/ggml-quant-ref');
  const b = readFileSync(join(dir, 'input.f32'));
  const input = new Float32Array(b.buffer.slice(b.byteOffset, b.byteOffset + b.length));
  for (const type of ['q4_0', 'q4_1', 'q5_0', 'q5_1', 'q8_0', 'q2_k', 'q3_k', 'q4_k', 'q5_k', 'q6_k', 'q8_k'] as DType[]) {
    const want = new Uint8Array(readFileSync(join(dir, `${type}.bin`)));
    assert.equal(firstDiff(await native.quantize(type, input, 256), want, DTYPES[type].bytesPerBlock), '', type);
  }
});

test('the native quantizer gives the same bytes on 1 and 2 threads and for rows quantized apart', { skip }, async () => {
  const one = tryCreateNativeQuantizer(1).quantizer!;
  try {
    for (const type of ['q4_k', 'q6_k', 'iq4_xs'] as DType[]) {
      const a = await one.quantize(type, rows, K),
        b = await native.quantize(type, rows, K);
      assert.equal(firstDiff(a, b, 1), '', type);
      const rb = a.length / (rows.length / K);
      const r3 = await native.quantize(type, rows.subarray(3 * K, 4 * K), K);
      assert.equal(firstDiff(r3, a.subarray(3 * rb, 4 * rb), 1), '', `${type} row 3 alone`);
    }
  } finally {
    one.close();
  }
});

test('the engine refuses other calls while quantizing and closes after it settles', { skip }, async () => {
  const q = tryCreateNativeQuantizer(1).quantizer!;
  const p = q.quantize('q4_k', rows, K);
  await assert.rejects(q.quantize('q4_k', rows, K), /busy/);
  q.close(); // deferred until p settles
  assert.equal((await p).length, (rows.length / 256) * 144);
});

async function writeTiny(dir: string, ftype: FileType, q: BulkQuantizer | null, name: string): Promise<Buffer> {
  const cfg = presetConfig('tiny');
  const out = join(dir, name);
  await writeLlama4Gguf(out, cfg, ftype, randomProducer(3, cfg.hiddenSize), syntheticTokenizer(cfg.vocabSize), 'tiny', {
    threads: 1,
    quantizer: q,
  });
  return readFileSync(out);
}

for (const ftype of [
  'q4_k_m',
  'q5_k_s',
  'q2_k',
  'q3_k',
  'q6_k',
  'q8_0',
  'q4_0',
  'q4_1',
  'q5_0',
  'q5_1',
  'iq4_nl',
  'iq4_xs',
] as FileType[]) {
  test(`a whole tiny ${ftype} GGUF is byte-identical with and without the native quantizer`, { skip }, async () => {
    const dir = mkdtempSync(join(tmpdir(), 'l4-nq-'));
    try {
      const ts = await writeTiny(dir, ftype, null, 'ts.gguf');
      const nat = await writeTiny(dir, ftype, native, 'native.gguf');
      assert.ok(ts.equals(nat), `${ftype}: files differ (${ts.length} vs ${nat.length} bytes)`);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
}

/** The random weights as randomProducer made them before it could jump ahead (one sequential mulberry32 stream). */
function sequentialProducer(seed: number): (name: string, shape: readonly number[]) => Float32Array {
  let s = seed >>> 0 || 1;
  const next = (): number => {
    s = (s + 0x6d2b79f5) >>> 0;
    let t = Math.imul(s ^ (s >>> 15), 1 | s);
    t ^= t + Math.imul(t ^ (t >>> 7), 61 | t);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
  let spare = NaN;
  const gauss = (): number => {
    if (!Number.isNaN(spare)) {
      const v = spare;
      spare = NaN;
      return v;
    }
    const r = Math.sqrt(-2 * Math.log(next() + 1e-12)),
      a = 2 * Math.PI * next();
    spare = r * Math.sin(a);
    return r * Math.cos(a);
  };
  return (name, shape) => {
    const n = shape.reduce((a, b) => a * b, 1);
    const x = new Float32Array(n);
    if (shape.length === 1) {
      for (let i = 0; i < n; i++) x[i] = 1 + (next() - 0.5) * 0.2;
      return x;
    }
    const fanIn = shape[shape.length - 1]!;
    const gain = name === 'token_embd' ? Math.sqrt(fanIn) : name === 'output' ? 3 : name.endsWith('ffn_gate_inp') ? 2 : 1;
    for (let i = 0; i < n; i++) x[i] = gauss() * (gain / Math.sqrt(fanIn));
    return x;
  };
}

test("randomProducer and parallelRandomProducer give the sequential stream's values (odd runs carry a spare)", async () => {
  const shapes: [string, number[]][] = [
    ['a', [3, 5]],
    ['norm', [7]],
    ['token_embd', [9, 33]],
    ['b', [1, 1]],
    ['norm2', [3]],
    ['output', [300001, 1]],
    ['c', [4, 70001]],
    ['blk.0.ffn_gate_inp', [3, 131072]],
    ['d', [2, 3]],
  ];
  const want = sequentialProducer(5),
    one = randomProducer(5, 0),
    par = parallelRandomProducer(5, 2);
  try {
    for (const [name, shape] of shapes) {
      const w = want(name, shape);
      assert.deepEqual(await one(name, shape), w, `${name} on one thread`);
      assert.deepEqual(await par.produce(name, shape), w, `${name} on workers`);
    }
  } finally {
    await par.close();
  }
});
