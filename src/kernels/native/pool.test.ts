// The native thread pool: many back-to-back small jobs give the same answers as one thread (no lost or doubled
// chunks between generations), and an idle pool sleeps instead of spinning.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { setTimeout as sleep } from 'node:timers/promises';
import { tryCreateNativeBackend } from './index.ts';
import { randomWeight, rng } from '../backend-refs.case.test.ts';

const one = tryCreateNativeBackend({ threads: 1 });
const skip = one.backend ? false : one.reason;

test('pool: 3000 back-to-back jobs on 3 threads match one thread exactly', { skip }, () => {
  const multi = tryCreateNativeBackend({ threads: 3 }).backend!;
  const N = 40,
    K = 256;
  const { bytes } = randomWeight('q4_0', N, K, 21);
  const w1 = one.backend!.weight({ name: 'w', dtype: 'q4_0', shape: [N, K], bytes });
  const w3 = multi.weight({ name: 'w', dtype: 'q4_0', shape: [N, K], bytes });
  const r = rng(5);
  const x = new Float32Array(K).map(() => r.n());
  const ref = new Float32Array(N),
    out = new Float32Array(N);
  one.backend!.matmul(ref, x, w1, 1);
  for (let i = 0; i < 3000; i++) {
    out.fill(NaN);
    multi.matmul(out, x, w3, 1);
    if (i % 500 === 0 || out.some((v, j) => v !== ref[j])) assert.deepEqual(out, ref, `iteration ${i}`);
  }
  multi.dispose();
  assert.throws(() => multi.matmul(out, x, w3, 1), /disposed/);
});

test('pool: idle workers sleep (no spinning between calls)', { skip }, async () => {
  const be = tryCreateNativeBackend({ threads: 2 }).backend!;
  const { bytes } = randomWeight('f32', 256, 256, 3);
  const w = be.weight({ name: 'w', dtype: 'f32', shape: [256, 256], bytes });
  be.matmul(new Float32Array(256), new Float32Array(256), w, 1);
  await sleep(20);
  const c0 = process.cpuUsage();
  await sleep(300);
  const used = process.cpuUsage(c0);
  const ms = (used.user + used.system) / 1000;
  assert.ok(ms < 100, `idle process used ${ms.toFixed(0)} ms of CPU in 300 ms`);
  be.dispose();
});
