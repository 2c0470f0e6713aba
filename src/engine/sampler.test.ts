import { test } from 'node:test';
import assert from 'node:assert/strict';
import { applyMinP, applyPenalties, applyTopK, applyTopP, argmax, makeRng, makeSampler, softmaxCandidates } from './sampler.ts';

const logits = Float32Array.from([1, 3, 2, 0, -1]);

test('argmax and temperature 0 are greedy', () => {
  assert.equal(argmax(logits), 1);
  assert.equal(makeSampler({ temperature: 0 }).sample(logits, []), 1);
});

test('softmax candidates are a distribution', () => {
  const c = softmaxCandidates(logits, 1);
  let s = 0;
  for (let i = 0; i < c.n; i++) s += c.p[i]!;
  assert.ok(Math.abs(s - 1) < 1e-12);
  assert.equal(c.n, 5);
});

test('top-k keeps the k most probable, renormalised', () => {
  const c = softmaxCandidates(logits, 1);
  applyTopK(c, 2);
  assert.deepEqual(Array.from(c.ids.subarray(0, c.n)), [1, 2]);
  assert.ok(Math.abs(c.p[0]! + c.p[1]! - 1) < 1e-12);
});

test('top-p keeps the smallest prefix reaching p', () => {
  const c = softmaxCandidates(logits, 1); // p ≈ [.087, .644, .237, .032, .012] by id
  applyTopP(c, 0.7);
  assert.deepEqual(Array.from(c.ids.subarray(0, c.n)), [1, 2]);
  const d = softmaxCandidates(logits, 1);
  applyTopP(d, 0.5);
  assert.deepEqual(Array.from(d.ids.subarray(0, d.n)), [1]);
});

test('min-p drops tokens below min_p × max', () => {
  const c = softmaxCandidates(logits, 1);
  applyMinP(c, 0.3); // keeps p >= .193: ids 1 and 2
  assert.deepEqual(Array.from(c.ids.subarray(0, c.n)).sort(), [1, 2]);
});

test('penalties: repetition divides positive and multiplies negative logits; presence/frequency subtract', () => {
  const l = Float32Array.from([2, -2, 1]);
  applyPenalties(l, [0, 1, 1], { repetitionPenalty: 2 });
  assert.deepEqual(Array.from(l), [1, -4, 1]);
  const m = Float32Array.from([2, -2, 1]);
  applyPenalties(m, [0, 1, 1], { presencePenalty: 0.5, frequencyPenalty: 0.25 });
  assert.deepEqual(Array.from(m), [2 - 0.75, -2 - 1, 1]);
});

test('a seed makes sampling reproducible and the draws follow the distribution', () => {
  const draw = (seed: number) => {
    const s = makeSampler({ temperature: 1, seed });
    return Array.from({ length: 50 }, () => s.sample(logits, []));
  };
  assert.deepEqual(draw(42), draw(42));
  assert.notDeepEqual(draw(42), draw(43));
  const s = makeSampler({ temperature: 1, seed: 7 });
  const counts = new Array(5).fill(0);
  for (let i = 0; i < 20000; i++) counts[s.sample(logits, [])]++;
  const c = softmaxCandidates(logits, 1);
  for (let i = 0; i < c.n; i++) assert.ok(Math.abs(counts[c.ids[i]!] / 20000 - c.p[i]!) < 0.015, `token ${c.ids[i]}`);
  const r = makeRng(1);
  for (let i = 0; i < 1000; i++) {
    const x = r();
    assert.ok(x >= 0 && x < 1);
  }
});

test('bad sampler options are rejected', () => {
  assert.throws(() => makeSampler({ temperature: -1 }), /temperature/);
  assert.throws(() => makeSampler({ topP: -0.1 }), /top_p/);
  assert.throws(() => makeSampler({ topP: 1.5 }), /top_p/);
});

test('top_p 0 keeps only the most probable token', () => {
  const logits = Float32Array.from([0.5, 2, 1.9, -1, 0]);
  const s = makeSampler({ temperature: 1, topP: 0, seed: 3 });
  for (let i = 0; i < 200; i++) assert.equal(s.sample(logits, []), 1);
});

test('top_k option is an integer', () => {
  assert.throws(() => makeSampler({ topK: 1.5 }), /top_k/);
});
