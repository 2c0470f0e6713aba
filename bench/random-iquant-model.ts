/**
 * A benchmark GGUF in a 1-3-bit i-quant without quantizing: copies a GGUF (e.g. llama.cpp's IQ4_XS bench-2b file),
 * replacing every tensor of type FROM by random blocks of type TO with a sane scale (the f16 super-block scale set so
 * weights have an RMS near 0.02). Decode speed does not depend on the values, and llama.cpp's IQ2_XXS quantizer
 * needs about 0.35 M weights/s per core (1.5 h for bench-2b on one core), so the race uses such a file; both engines
 * read the same bytes. Writes general.file_type = LLAMA_FTYPE.
 * usage: node --import tsx bench/random-iquant-model.ts IN.gguf OUT.gguf FROM TO LLAMA_FTYPE
 * e.g.   … bench-models/bench-2b-iq4_xs.gguf bench-models/bench-2b-iq2_xxs.gguf iq4_xs iq2_xxs 19
 */
import { closeSync, openSync } from 'node:fs';
import type { DType } from '../src/tensor/index.ts';
import { DTYPES, byteSize, f32ToF16 } from '../src/tensor/index.ts';
import { GgufType, GgufWriter, readGgufHeader, readTensorBytes } from '../src/io/gguf/index.ts';

const [input, output, from, to, ftype] = process.argv.slice(2) as [string, string, DType, DType, string];
if (!ftype || !DTYPES[from] || !DTYPES[to] || to === 'iq1_m')
  throw new Error('usage: bench/random-iquant-model.ts IN.gguf OUT.gguf FROM TO LLAMA_FTYPE (TO: an i-quant with its f16 scale first)');
const h = readGgufHeader(input);
const w = new GgufWriter(output, h.alignment);
for (const [key, value] of h.metadata) {
  if (key === 'general.alignment') continue;
  const type = h.types.get(key)!;
  if (key === 'general.file_type') w.set(key, Number(ftype), GgufType.UINT32);
  else w.set(key, value, type === GgufType.ARRAY ? h.arrayTypes.get(key) : type);
}
for (const t of h.tensors.values()) w.addTensor(t.name, t.dtype === from ? to : t.dtype, t.shape);
w.writeHeader();
let s = 12345;
const fd = openSync(input, 'r');
try {
  for (const t of h.tensors.values()) {
    if (t.dtype !== from) {
      w.writeTensor(t.name, readTensorBytes(fd, t, input));
      continue;
    }
    const n = t.shape.reduce((a, b) => a * b, 1);
    const bytes = new Uint8Array(byteSize(to, n));
    const words = new Uint32Array(bytes.buffer);
    for (let i = 0; i < words.length; i++) {
      s ^= s << 13;
      s ^= s >>> 17;
      s ^= s << 5;
      words[i] = s >>> 0;
    }
    const bb = DTYPES[to].bytesPerBlock,
      d = f32ToF16(to.startsWith('iq2') ? 4e-4 : to.startsWith('iq3') ? 2e-3 : 4e-3);
    for (let p = 0; p < bytes.length; p += bb) {
      bytes[p] = d & 0xff;
      bytes[p + 1] = d >> 8;
    }
    w.writeTensor(t.name, bytes);
  }
} finally {
  closeSync(fd);
  w.close();
}
