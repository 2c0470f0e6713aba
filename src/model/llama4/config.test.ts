import { test } from 'node:test';
import assert from 'node:assert/strict';
import { parseHfConfig, ropeInvFreq } from './config.ts';

const base = {
  model_type: 'llama4_text',
  hidden_size: 64,
  num_attention_heads: 4,
  num_key_value_heads: 2,
  head_dim: 16,
  num_hidden_layers: 8,
  num_local_experts: 4,
  vocab_size: 256,
};

test('per-layer facts from the intervals (Scout defaults): NoPE every 4th layer, MoE everywhere', () => {
  const c = parseHfConfig(base);
  assert.deepEqual(
    c.layers.map((f) => f.usesRope),
    [true, true, true, false, true, true, true, false],
  );
  assert.deepEqual(
    c.layers.map((f) => f.chunkSize),
    [8192, 8192, 8192, 0, 8192, 8192, 8192, 0],
  );
  assert.ok(c.layers.every((f) => f.isMoe));
  assert.deepEqual(
    c.layers.map((f) => f.qkNorm),
    [true, true, true, false, true, true, true, false],
  );
  assert.deepEqual(
    c.layers.map((f) => f.temperatureTuning),
    [false, false, false, true, false, false, false, true],
  );
  assert.equal(c.attnScale, 0.1);
  assert.equal(c.floorScale, 8192);
});

test('Maverick: interleave step 2 puts MoE on odd layers; qk-norm off; explicit [] moe_layers means dense everywhere', () => {
  const m = parseHfConfig({ ...base, interleave_moe_layer_step: 2, use_qk_norm: false });
  assert.deepEqual(
    m.layers.map((f) => f.isMoe),
    [false, true, false, true, false, true, false, true],
  );
  assert.ok(m.layers.every((f) => !f.qkNorm));
  const d = parseHfConfig({ ...base, moe_layers: [] });
  assert.ok(d.layers.every((f) => !f.isMoe));
});

test("Scout's attn_temperature_tuning: 4 means on; explicit no_rope_layers win", () => {
  const c = parseHfConfig({ ...base, attn_temperature_tuning: 4, no_rope_layers: [1, 0, 1, 1, 1, 1, 1, 1] });
  assert.equal(c.attnTemperatureTuning, true);
  assert.deepEqual(
    c.layers.map((f) => f.usesRope),
    [true, false, true, true, true, true, true, true],
  );
});

test('rope: legacy rope_scaling and newer rope_parameters give the same frequencies; 16/1/1 has no smooth band', () => {
  const scaling = { rope_type: 'llama3', factor: 16, low_freq_factor: 1, high_freq_factor: 1, original_max_position_embeddings: 8192 };
  const legacy = parseHfConfig({ ...base, head_dim: 128, hidden_size: 512, rope_theta: 500000, rope_scaling: scaling });
  const modern = parseHfConfig({ ...base, head_dim: 128, hidden_size: 512, rope_parameters: { rope_theta: 500000, ...scaling } });
  const a = ropeInvFreq(legacy),
    b = ropeInvFreq(modern);
  assert.deepEqual(Array.from(a), Array.from(b));
  assert.ok(a.every((x) => Number.isFinite(x)));
  // spec §1.3: pairs 0–34 kept, 35–63 divided by 16
  const plain = ropeInvFreq({ headDim: 128, ropeTheta: 500000, ropeScaling: null });
  for (let j = 0; j < 64; j++) assert.equal(a[j], j <= 34 ? plain[j] : Math.fround(plain[j]! / 16), `pair ${j}`);
});

test('full llama4 layout reads text_config, the image token and generation_config eos ids', () => {
  const c = parseHfConfig(
    { model_type: 'llama4', image_token_index: 200092, text_config: { ...base, model_type: 'llama4_text', eos_token_id: 2 } },
    { eos_token_id: [200001, 200007, 200008] },
  );
  assert.equal(c.imageTokenId, 200092);
  assert.deepEqual(c.eosTokenIds, [200001, 200007, 200008]);
});

test('unsupported or inconsistent configs are clear errors', () => {
  assert.throws(() => parseHfConfig({ ...base, model_type: 'llama' }), /unsupported model_type "llama"/);
  assert.throws(() => parseHfConfig({ ...base, num_key_value_heads: 3 }), /not a multiple/);
  assert.throws(() => parseHfConfig({ ...base, no_rope_layers: [1, 0] }), /2 entries for 8 layers/);
  assert.throws(() => parseHfConfig({ ...base, moe_layers: [9] }), /outside 0\.\.7/);
  assert.throws(() => parseHfConfig({ ...base, hidden_size: 'big' }), /"hidden_size" must be a number/);
  assert.throws(() => parseHfConfig({ ...base, rope_scaling: { rope_type: 'yarn', factor: 4 } }), /unsupported rope scaling type "yarn"/);
  assert.throws(() => parseHfConfig({ ...base, num_experts_per_tok: 2 }), /num_experts_per_tok 2/);
  assert.throws(() => parseHfConfig({ model_type: 'llama4' }), /needs a "text_config"/);
});

test('dense checkpoints (Llama Guard 4 shape): 0 experts, step 0, moe_layers [], num_experts_per_tok 0', () => {
  const g = parseHfConfig({
    ...base,
    num_local_experts: 0,
    num_experts_per_tok: 0,
    interleave_moe_layer_step: 0,
    moe_layers: [],
    intermediate_size_mlp: 96,
  });
  assert.ok(g.layers.every((f) => !f.isMoe));
  assert.equal(g.numExperts, 0);
  assert.equal(g.intermediateSizeMlp, 96);
  // No experts and no list: dense too (HF's range(step-1, L, step) would be all-MoE with nothing to route to).
  assert.ok(parseHfConfig({ ...base, num_local_experts: 0 }).layers.every((f) => !f.isMoe));
  assert.throws(
    () => parseHfConfig({ ...base, num_local_experts: 0, moe_layers: [1] }),
    /moe_layers lists layer 1 but num_local_experts is 0/,
  );
  assert.throws(() => parseHfConfig({ ...base, moe_layers: [1], num_experts_per_tok: 0 }), /num_experts_per_tok 0/);
});

test('attention_chunk_size null: no chunking on any layer; NoPE layers and their temperature tuning stay (HF)', () => {
  const c = parseHfConfig({ ...base, attention_chunk_size: null });
  assert.equal(c.attentionChunkSize, null);
  assert.ok(c.layers.every((f) => f.chunkSize === 0));
  assert.deepEqual(
    c.layers.map((f) => f.usesRope),
    [true, true, true, false, true, true, true, false],
  );
  assert.deepEqual(
    c.layers.map((f) => f.temperatureTuning),
    [false, false, false, true, false, false, false, true],
  );
  // Absent (not null) keeps HF's class default.
  assert.equal(parseHfConfig(base).attentionChunkSize, 8192);
});

test('nonsense attention settings are one clear error at load, not a RangeError in the forward pass', () => {
  for (const bad of [1e308, 0, -4, 2.5, Number.NaN, Infinity, 2 ** 31, '8192', true]) {
    assert.throws(
      () => parseHfConfig({ ...base, attention_chunk_size: bad }),
      (e: Error) => e.name === 'ConfigError' && /"attention_chunk_size" must be an integer from 1 to 2147483647/.test(e.message),
      String(bad),
    );
  }
  for (const bad of [1e308, 0, 0.5, Number.NaN]) {
    assert.throws(() => parseHfConfig({ ...base, floor_scale: bad }), /"floor_scale" must be an integer from 1/, String(bad));
  }
  assert.throws(() => parseHfConfig({ ...base, attn_scale: Number.NaN }), /"attn_scale" must be a number/);
  assert.throws(() => parseHfConfig({ ...base, interleave_moe_layer_step: -1 }), /non-negative integer/);
});
