/**
 * Our GGUFs equal llama-quantize's, byte for byte: for each case of test/fixtures/llamacpp-quantize, the F16
 * model (our writer, fixed seed) was quantized by llama.cpp's own llama_model_quantize (default parameters, i.e. its
 * per-tensor type mix, no imatrix) and every tensor's type and a hash of all tensor bytes recorded. We quantize the
 * same F16 values with our policy and quantizers and must get the same types and the same bytes.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { readGguf } from '../src/io/gguf/index.ts';
import type { FileType } from '../src/io/gguf/quant-policy.ts';
import { tensorTypeFor } from '../src/io/gguf/quant-policy.ts';
import { dequantize, quantize } from '../src/tensor/index.ts';
import { randomProducer, writeLlama4Gguf } from '../src/model-files/index.ts';
import { CASES, MODELS } from './fixtures/llamacpp-quantize/models.ts';
import { PROJECT_ROOT } from './helpers/shared.ts';

const expected = JSON.parse(readFileSync(join(PROJECT_ROOT, 'test/fixtures/llamacpp-quantize/expected.json'), 'utf8')) as Record<
  string,
  { types: Record<string, string>; sha256: string }
>;

for (const [model, ftype] of CASES) {
  test(`${model} ${ftype}: tensor types and bytes equal llama_model_quantize's`, async () => {
    const { config, seed } = MODELS[model];
    const gen = randomProducer(seed, config.hiddenSize);
    // The F16 file's values: weight matrices rounded to f16, 1-D tensors and routers kept f32.
    const f16Values = (name: string, shape: readonly number[]): Float32Array => {
      const x = gen(name, shape) as Float32Array; // randomProducer is synchronous (TensorProducer may be async)
      if (tensorTypeFor('f16', name, shape, config.numLayers) !== 'f16') return x;
      return dequantize('f16', quantize('f16', x, shape[shape.length - 1]!), x.length);
    };
    const dir = mkdtempSync(join(tmpdir(), 'lcq-test-'));
    try {
      const path = join(dir, 'ours.gguf');
      await writeLlama4Gguf(path, config, ftype as FileType, f16Values, null, model, { threads: 1 });
      const f = readGguf(path);
      const want = expected[`${model}/${ftype}`]!;
      const types: Record<string, string> = {};
      const h = createHash('sha256');
      // Sorted by name: llama.cpp writes tensors in its own order.
      for (const [n, t] of [...f.tensorData].sort((a, b) => (a[0] < b[0] ? -1 : 1))) {
        types[n] = t.dtype;
        h.update(n);
        h.update(t.bytes);
      }
      assert.deepEqual(types, want.types, 'per-tensor types');
      assert.equal(h.digest('hex'), want.sha256, 'tensor bytes');
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
}
