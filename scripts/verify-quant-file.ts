/**
 * Checks a make-test-model GGUF against the TypeScript quantizers without re-quantizing all of it:
 *   node --import tsx scripts/verify-quant-file.ts FILE.gguf [--seed 1] [--rows 16] [--full REGEX]
 * regenerates every tensor's random values in file order (randomProducer on one thread, as the writer's TypeScript
 * path would), quantizes `rows` evenly spaced rows of each with src/tensor/quant and compares them with the file's
 * bytes; f32 tensors and those whose name matches --full are compared whole. Exit status 1 on the first difference.
 */
import { closeSync, openSync } from 'node:fs';
import { parseArgs } from 'node:util';
import { DTYPES, quantize } from '../src/tensor/index.ts';
import { readGgufHeader, readTensorBytes } from '../src/io/gguf/index.ts';
import { randomProducer } from '../src/model-files/index.ts';

const { values, positionals } = parseArgs({
  allowPositionals: true,
  options: { seed: { type: 'string' }, rows: { type: 'string' }, full: { type: 'string' } },
});
const file = positionals[0];
if (!file) throw new Error('usage: verify-quant-file.ts FILE.gguf [--seed N] [--rows N] [--full REGEX]');
const sample = Number(values.rows ?? 16);
const full = values.full ? new RegExp(values.full) : null;
const produce = randomProducer(Number(values.seed ?? 1), 0);
const header = readGgufHeader(file);
const fd = openSync(file, 'r');
let checked = 0,
  tensors = 0;
const t0 = Date.now();
try {
  for (const info of header.tensors.values()) {
    if (info.name === 'rope_freqs.weight') continue; // not from the generator
    const x = produce(info.name.replace(/\.weight$/, ''), info.shape) as Float32Array;
    const bytes = readTensorBytes(fd, info, file);
    const K = info.shape[info.shape.length - 1]!;
    const rows = x.length / K;
    const rb = (K / DTYPES[info.dtype].blockSize) * DTYPES[info.dtype].bytesPerBlock;
    const pick =
      info.dtype === 'f32' || full?.test(info.name)
        ? [...Array(rows).keys()]
        : [...new Set(Array.from({ length: Math.min(sample, rows) }, (_, i) => Math.floor((i * (rows - 1)) / Math.max(1, sample - 1))))];
    for (const r of pick) {
      const want = quantize(info.dtype, x.subarray(r * K, (r + 1) * K), K);
      const got = bytes.subarray(r * rb, (r + 1) * rb);
      for (let i = 0; i < rb; i++)
        if (got[i] !== want[i]) {
          console.error(`${info.name} (${info.dtype}) row ${r}: byte ${i} is ${got[i]}, TypeScript writes ${want[i]}`);
          process.exit(1);
        }
      checked += K;
    }
    tensors++;
  }
} finally {
  closeSync(fd);
}
console.log(
  `${file}: ${tensors} tensors, ${checked} values in sampled rows equal the TypeScript quantizers' bytes (${((Date.now() - t0) / 1000).toFixed(0)} s)`,
);
