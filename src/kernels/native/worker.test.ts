// The addon is context-aware: a worker thread (how engines keep the event loop free) loads it and computes,
// alongside the main thread's own engine, with identical results.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Worker } from 'node:worker_threads';
import { fileURLToPath } from 'node:url';
import { loadAddon, nativeIsas, tryCreateNativeBackend } from './index.ts';

const skip = nativeIsas().length ? false : 'native core unavailable';
// The worker loads the compiled addon directly (workers do not inherit the TypeScript loader).
const body = (file: string) => `
  const { parentPort } = require('node:worker_threads');
  try {
    const a = require(${JSON.stringify(file)});
    const e = new a.Engine(2);
    const K = 256, N = 8;
    const w = new Uint8Array(new Float32Array(N * K).map((_, i) => (i % 13) / 13).buffer);
    const out = new Float32Array(N);
    e.matmul(out, new Float32Array(K).fill(0.5), w, 0, N, K, 1, 0);
    e.dispose();
    parentPort.postMessage(Array.from(out));
  } catch (e) { parentPort.postMessage(String(e)); }`;

test('native: works inside worker threads, concurrently with the main thread', { skip }, async () => {
  const mod = fileURLToPath(new URL(`../../../${loadAddon().file}`, import.meta.url));
  const run = () =>
    new Promise<unknown>((res, rej) => {
      const w = new Worker(body(mod), { eval: true });
      w.once('message', res);
      w.once('error', rej);
    });
  const [a, b] = await Promise.all([run(), run()]);
  const be = tryCreateNativeBackend({ threads: 2 }).backend!;
  const K = 256,
    N = 8;
  const w = be.weight({
    name: 'w',
    dtype: 'f32',
    shape: [N, K],
    bytes: new Uint8Array(new Float32Array(N * K).map((_, i) => (i % 13) / 13).buffer),
  });
  const out = new Float32Array(N);
  be.matmul(out, new Float32Array(K).fill(0.5), w, 1);
  assert.deepEqual(a, Array.from(out));
  assert.deepEqual(b, Array.from(out));
});
