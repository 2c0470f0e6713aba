/**
 * BF16 products on the vision path (WeightOptions.products, native/src/gemm-bf16.h) against the e_multimodal golden
 * case with its vision weights rounded to bf16 (as the hub checkpoints store them). Three errors are measured:
 *   weights  — exact products on bf16 weights vs HF's float32 run on the f32 weights (what bf16 storage costs);
 *   products — bf16 products vs exact products on the same bf16 weights (what rounding activations adds);
 *   total    — bf16 products vs HF.
 * The tolerance decision: rounding activations must add less error than storing the weights in bf16 already costs,
 * and the total must stay within the bound the bf16-weights test of vision-encoder.test.ts sets (2% of the largest
 * feature). The f32 golden weights never take this path (products 'bf16' applies to bf16 weights only), so the 1e-4
 * golden tests keep running the exact kernels.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { sharedPath, maxAbsDiff } from './helpers/shared.ts';
import { readSafetensors } from '../src/io/safetensors.ts';
import { TsBackend } from '../src/kernels/ts/index.ts';
import { tryCreateNativeBackend } from '../src/kernels/native/index.ts';
import { parseVisionConfig } from '../src/model/llama4/vision-config.ts';
import { Llama4VisionEncoder } from '../src/model/llama4/vision.ts';
import type { RawTensor } from '../src/tensor/index.ts';
import { f32ToBf16 } from '../src/tensor/index.ts';

const dir = sharedPath('golden', 'e_multimodal');

test('e_multimodal, bf16 vision weights: bf16 products add less error than bf16 weights, total within 2%', {
  skip: !dir && '../shared/golden/e_multimodal missing',
}, (t) => {
  const { backend, reason } = tryCreateNativeBackend({ threads: 2 });
  if (!backend) return t.skip(`native backend unavailable: ${reason}`);
  const config = JSON.parse(readFileSync(join(dir!, 'config.json'), 'utf8'));
  const exp = JSON.parse(readFileSync(join(dir!, 'expected.json'), 'utf8')) as {
    pixel_values: number[][];
    image_features_after_projector: number[][];
  };
  const bf = new Map<string, RawTensor>();
  for (const [name, t] of readSafetensors(join(dir!, 'model.safetensors'))) {
    if (!name.startsWith('vision_model.') && !name.startsWith('multi_modal_projector.')) continue;
    const src = new Float32Array(t.bytes.slice().buffer);
    const out = new Uint16Array(src.length);
    for (let i = 0; i < src.length; i++) out[i] = f32ToBf16(src[i]!);
    bf.set(name, { name, dtype: 'bf16', shape: t.shape, bytes: new Uint8Array(out.buffer) });
  }
  const cfg = parseVisionConfig(config);
  const pixels = Float32Array.from(exp.pixel_values.flat());
  const hf = exp.image_features_after_projector.flat();
  let scale = 0;
  for (const v of hf) scale = Math.max(scale, Math.abs(v));
  const exact = new Llama4VisionEncoder(cfg, bf, new TsBackend()).encode(pixels, 1);
  const nativeExact = new Llama4VisionEncoder(cfg, bf, backend, { products: 'exact' }).encode(pixels, 1);
  const fast = new Llama4VisionEncoder(cfg, bf, backend).encode(pixels, 1); // products 'bf16', the default
  const weights = maxAbsDiff(exact, hf),
    products = maxAbsDiff(fast, exact),
    total = maxAbsDiff(fast, hf);
  process.stdout.write(
    `# bf16 weights ${weights.toExponential(2)}, bf16 products ${products.toExponential(2)}, total ${total.toExponential(2)} ` +
      `(max |feature| ${scale.toFixed(3)}; kernel ${backend.bf16Products ?? 'none'})\n`,
  );
  assert.ok(maxAbsDiff(nativeExact, exact) < 1e-5, 'native exact products match the TypeScript reference');
  if (backend.bf16Products) assert.ok(products > 0, 'bf16 products really used');
  assert.ok(products < weights, `bf16 products add ${products}, more than bf16 weights cost (${weights})`);
  assert.ok(total < 0.02 * scale, `total ${total} (scale ${scale})`);
});
