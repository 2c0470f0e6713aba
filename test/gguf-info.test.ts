/** `llama4 info`: parameters, tensor types and memory from headers; the bench-2b preset's advertised size. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { formatFacts } from '../src/cli/commands/info.ts';
import { kvCacheBytes, modelFacts, paramsOfConfig } from '../src/model-files/index.ts';
import { PRESETS } from '../src/model-files/index.ts';
import { parseHfConfig } from '../src/model/llama4/config.ts';
import { sharedPath } from './helpers/shared.ts';

test('bench-2b preset: about 2.0 B total and 0.47 B active parameters', () => {
  const { total, active } = paramsOfConfig(parseHfConfig(PRESETS['bench-2b']));
  assert.ok(Math.abs(total / 1e9 - 2.0) < 0.06, `total ${total}`);
  assert.ok(Math.abs(active / 1e9 - 0.47) < 0.01, `active ${active}`);
});

test('info on a llama.cpp GGUF: types, parameters, KV memory with one chunk per chunked layer', (t) => {
  const dir = sharedPath('gguf');
  if (!dir) return t.skip('../shared/gguf missing');
  const f = modelFacts(join(dir, 'llama4-tiny-g1-Q4_K.gguf'), 100000);
  assert.deepEqual(f.tensorTypes, { q4_k: 42, f32: 13 });
  // 4 layers: 3 chunked (8192 rows max) + 1 global (100000 rows), K and V of 2 heads × 64 float32.
  assert.equal(f.kvBytes, (3 * 8192 + 100000) * 2 * 64 * 4 * 2);
  assert.equal(kvCacheBytes(f.config, 100), 4 * 100 * 2 * 64 * 4 * 2);
  assert.equal(kvCacheBytes(f.config, 100, 'f16'), 4 * 100 * 2 * 64 * 2 * 2);
  assert.equal(kvCacheBytes(f.config, 100, 'q8_0'), 4 * 100 * 2 * 64 * (34 / 32) * 2);
  // Per layer: attention 2·256·256 + 2·128·256, router 4·256, 4 experts + shared of 3·256·256, 2 norms; + embd/out/norm.
  const perLayer = 2 * 256 * 256 + 2 * 128 * 256 + 4 * 256 + 5 * 3 * 256 * 256 + 2 * 256;
  assert.equal(f.totalParams, 4 * perLayer + 2 * 512 * 256 + 256);
  assert.equal(f.activeParams, f.totalParams - 4 * 3 * 3 * 256 * 256 - 512 * 256);
  assert.ok(f.weightBytes < 2842720 && f.weightBytes > 2.7e6);
  const text = formatFacts(f);
  assert.match(text, /42 q4_k, 13 f32/);
  assert.match(text, /3 chunked layers \(chunk 8192\), 1 global \(1 NoPE\)/);
});

test("info on llama-quantize's IQ2_M mix: every tensor type as the file's expected.json lists them", (t) => {
  const dir = sharedPath('gguf');
  if (!dir) return t.skip('../shared/gguf missing');
  const f = modelFacts(join(dir, 'llama4-tiny-g1-IQ2_M.gguf'), 1000);
  // expected.json tensor_types: IQ2_S 32, IQ3_S 5, Q4_K 4, Q5_K 1, F32 13
  assert.deepEqual(f.tensorTypes, { iq2_s: 32, iq3_s: 5, q4_k: 4, q5_k: 1, f32: 13 });
  assert.match(formatFacts(f), /32 iq2_s, 13 f32, 5 iq3_s, 4 q4_k, 1 q5_k/);
});
