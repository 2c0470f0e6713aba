/**
 * Users' checkpoints vary: tiny HF checkpoints built here (BF16, sharded, GQA extremes, explicit layer lists,
 * Maverick interleaving, both llama3 scalings, sequences over several chunks) must match an independent float64
 * reference (test/helpers/reference-llama4.ts), and cached decoding must equal one full forward.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { loadModel } from '../src/load.ts';
import { writeTinyCheckpoint, rng, type TinySpec } from './helpers/tiny-checkpoint.ts';
import { referenceLogits } from './helpers/reference-llama4.ts';
import { maxAbsDiff } from './helpers/shared.ts';

const tmp = mkdtempSync(join(tmpdir(), 'llama4-ckpt-'));
process.on('exit', () => rmSync(tmp, { recursive: true, force: true }));

const VARIANTS: Record<string, TinySpec & { long?: boolean }> = {
  'GQA 2, all MoE, qk-norm, temperature tuning (floor 4)': {},
  'one KV head (nkv = 1)': { kvHeads: 1 },
  'as many KV heads as query heads': { kvHeads: 4 },
  'explicit no_rope_layers and moe_layers lists': { noRopeLayers: [1, 0, 1, 1], moeLayers: [0, 2] },
  'Maverick interleave (step 2), qk-norm off, no tuning': { step: 2, qkNorm: false, tempTuning: false, ropeTheta: 500000 },
  'llama3 rope scaling 16/1/1 (Scout)': {
    ropeTheta: 500000,
    ropeScaling: { rope_type: 'llama3', factor: 16, low_freq_factor: 1, high_freq_factor: 1, original_max_position_embeddings: 8 },
  },
  'llama3 rope scaling 8/4/1 (smooth band)': {
    headDim: 16,
    ropeScaling: { rope_type: 'llama3', factor: 8, low_freq_factor: 1, high_freq_factor: 4, original_max_position_embeddings: 16 },
  },
  'BF16 weights': { dtype: 'bf16' },
  'sharded into 3 files': { shards: 3 },
  'no MoE, all RoPE': { moeLayers: [], noRopeLayers: [1, 1, 1, 1], tempTuning: false },
  'long sequence over several chunks (chunk 4)': { chunk: 4, floorScale: 3 },
  // Llama Guard 4's shape: no experts at all, attention_chunk_size null, NoPE layers and temperature tuning kept.
  'dense (0 experts, step 0), attention_chunk_size null, NoPE + tuning (Llama Guard 4 shape)': {
    experts: 0,
    step: 0,
    moeLayers: [],
    chunk: null,
    floorScale: 3,
    long: true,
  },
  'dense, chunk null, full llama4 layout (language_model.*), GQA 4:1': {
    experts: 0,
    moeLayers: [],
    chunk: null,
    kvHeads: 1,
    floorScale: 5,
    layout: 'full',
    long: true,
  },
  'dense, chunk null, all RoPE, qk-norm off': {
    experts: 0,
    moeLayers: [],
    chunk: null,
    noRopeLayers: [1, 1, 1, 1],
    qkNorm: false,
    long: true,
  },
};

let n = 0;
for (const [name, spec] of Object.entries(VARIANTS)) {
  test(`checkpoint: ${name} matches the float64 reference`, async () => {
    const dir = join(tmp, `v${n++}`);
    const { config, tensors } = writeTinyCheckpoint(dir, { ...spec, seed: 11 + n });
    const { model } = await loadModel(dir, { backend: 'typescript' });
    const r = rng(99 + n);
    const ids = Array.from({ length: spec.chunk || spec.long ? 23 : 14 }, () => Math.floor(r() * 64));
    const want = referenceLogits(config, tensors, ids);
    const [got] = model.forward([{ seq: model.newSequence(), tokens: ids, logits: 'all' }]);
    const V = 64;
    let worst = 0;
    want.forEach((row, p) => (worst = Math.max(worst, maxAbsDiff(got!.subarray(p * V, (p + 1) * V), row))));
    assert.ok(worst < 1e-4, `max |Δlogit| ${worst}`);
    // Token-by-token decode through the caches equals the full forward.
    const seq = model.newSequence();
    for (let p = 0; p < ids.length; p++) {
      const [step] = model.forward([{ seq, tokens: [ids[p]!], logits: 'last' }]);
      assert.ok(maxAbsDiff(step!, want[p]!) < 1e-4, `decode step ${p}`);
    }
  });
}

test('batched forward of several sequences equals running each alone', async () => {
  const dir = join(tmp, 'batch');
  writeTinyCheckpoint(dir, { chunk: 4, seed: 3 });
  const { model } = await loadModel(dir, { backend: 'typescript' });
  const a = [3, 9, 27, 5, 1, 8, 13],
    b = [40, 2, 2, 7, 33];
  const [la] = model.forward([{ seq: model.newSequence(), tokens: a, logits: 'all' }]);
  const [lb] = model.forward([{ seq: model.newSequence(), tokens: b, logits: 'all' }]);
  const [ba, bb] = model.forward([
    { seq: model.newSequence(), tokens: a, logits: 'all' },
    { seq: model.newSequence(), tokens: b, logits: 'all' },
  ]);
  assert.ok(maxAbsDiff(la!, ba!) < 1e-5);
  assert.ok(maxAbsDiff(lb!, bb!) < 1e-5);
});

test('chunked layers keep at most one chunk of cache while global layers grow', async () => {
  const dir = join(tmp, 'mem');
  writeTinyCheckpoint(dir, { chunk: 8, layers: 4, seed: 5 });
  const { model, config } = await loadModel(dir, { backend: 'typescript' });
  const seq = model.newSequence();
  const rowBytes = config.numKvHeads * config.headDim * 4 * 2; // k + v, float32
  const r = rng(1);
  model.forward([{ seq, tokens: Array.from({ length: 20 }, () => Math.floor(r() * 64)), logits: 'none' }]);
  let maxChunked = 0;
  for (let p = 20; p < 120; p++) {
    model.forward([{ seq, tokens: [Math.floor(r() * 64)], logits: 'none' }]);
    seq.caches.forEach((c, l) => {
      if (config.layers[l]!.chunkSize > 0) maxChunked = Math.max(maxChunked, c.bytes());
    });
  }
  assert.ok(maxChunked <= 8 * rowBytes, `chunked cache reached ${maxChunked} bytes, one chunk is ${8 * rowBytes}`);
  const global = seq.caches[3]!.bytes();
  assert.ok(global >= 120 * rowBytes, `global cache holds every position (${global} bytes)`);
  assert.equal(seq.length, 120);
});

test('sequence clone and truncate: truncation inside the retained chunk works, before it is refused', async () => {
  const dir = join(tmp, 'trunc');
  writeTinyCheckpoint(dir, { chunk: 4, seed: 9 });
  const { model } = await loadModel(dir, { backend: 'typescript' });
  const ids = [5, 6, 7, 8, 9, 10, 11, 12, 13, 14];
  const seq = model.newSequence();
  model.forward([{ seq, tokens: ids, logits: 'none' }]);
  const copy = seq.clone();
  assert.equal(seq.truncate(3), false, 'positions 0..7 of chunked layers were dropped');
  assert.equal(seq.length, 10, 'a refused truncate changes nothing');
  assert.equal(seq.truncate(9), true);
  const [a] = model.forward([{ seq, tokens: [20], logits: 'last' }]);
  const [b] = model.forward([{ seq: model.newSequence(), tokens: [...ids.slice(0, 9), 20], logits: 'last' }]);
  assert.ok(maxAbsDiff(a!, b!) < 1e-5);
  const [c] = model.forward([{ seq: copy, tokens: [21], logits: 'last' }]);
  const [d] = model.forward([{ seq: model.newSequence(), tokens: [...ids, 21], logits: 'last' }]);
  assert.ok(maxAbsDiff(c!, d!) < 1e-5, 'the clone kept the original state');
});
