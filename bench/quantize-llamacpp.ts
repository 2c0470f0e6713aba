/**
 * Makes benchmark GGUFs with llama.cpp's own quantizer (llama_model_quantize of the llama.cpp bundled with
 * node-llama-cpp, via test/fixtures/llamacpp-quantize/quantize.py): llama-quantize's per-tensor mix for the file
 * type. The 1-3-bit i-quants require an importance matrix; random-weight benchmark models have no data to compute
 * one from, so `--uniform-imatrix` gives every weight matrix an all-ones matrix (the speed is the same).
 * usage: node --import tsx bench/quantize-llamacpp.ts IN-f16.gguf OUT.gguf LLAMA_FTYPE [--uniform-imatrix]
 * e.g.   … bench-models/bench-2b-f16.gguf bench-models/bench-2b-iq4_xs.gguf 30
 *        … bench-models/bench-2b-f16.gguf bench-models/bench-2b-iq2_xxs.gguf 19 --uniform-imatrix
 */
import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { readGgufHeader } from '../src/io/gguf/index.ts';

const [input, output, ftype, flag] = process.argv.slice(2);
if (!input || !output || !ftype) throw new Error('usage: bench/quantize-llamacpp.ts IN.gguf OUT.gguf LLAMA_FTYPE [--uniform-imatrix]');
const args = ['test/fixtures/llamacpp-quantize/quantize.py', input, output, ftype];
const dir = mkdtempSync(join(tmpdir(), 'lcq-imatrix-'));
try {
  if (flag === '--uniform-imatrix') {
    // llama.cpp wants ne[0]·ne[2] entries per tensor (row length × experts).
    const sizes: Record<string, number> = {};
    for (const t of readGgufHeader(input).tensors.values()) {
      if (t.shape.length < 2) continue;
      sizes[t.name] = t.shape[t.shape.length - 1]! * (t.shape.length === 3 ? t.shape[0]! : 1);
    }
    writeFileSync(join(dir, 'sizes.json'), JSON.stringify(sizes));
    args.push(join(dir, 'sizes.json'));
  }
  execFileSync('python3', args, { stdio: 'inherit' });
} finally {
  rmSync(dir, { recursive: true, force: true });
}
