/**
 * The quality cost of a compressed KV cache (--kv-type f16 | q8_0) over a context long enough that the global
 * (NoPE) layer's attention spans many chunks: logits at every position against the exact f32 cache, on a tiny
 * random checkpoint with head_dim 32 (q8_0 needs whole 32-value blocks; dense, so the figures are not dominated by
 * top-1 expert flips) and on the embedded trained model (head_dim 32: f16 compared, q8_0 runs); q8_0 is refused for a
 * head_dim-16 checkpoint.
 * The bounds are ~3-5x the measured figures (printed): a wrong path (unread, stale or misdecoded cache) gives
 * errors of the logits' own size and ~1/V greedy agreement, while f16 must stay far below q8_0.
 * Also: a compressed cache decodes token by token exactly as a prefill computes (same stored rows, same kernels).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { DEFAULT_MODEL_DIR, loadModel, type BackendChoice } from '../src/load.ts';
import type { KvType } from '../src/tensor/index.ts';
import { UsageError } from '../src/util/index.ts';
import { nativeIsas } from '../src/kernels/native/index.ts';
import { rng, writeTinyCheckpoint } from './helpers/tiny-checkpoint.ts';

const tmp = mkdtempSync(join(tmpdir(), 'llama4-kvtype-'));
process.on('exit', () => rmSync(tmp, { recursive: true, force: true }));
const TINY = join(tmp, 'tiny');
writeTinyCheckpoint(TINY, { headDim: 32, hidden: 64, chunk: 32, layers: 4, vocab: 64, moeLayers: [], seed: 3 });
const TINY16 = join(tmp, 'tiny16');
writeTinyCheckpoint(TINY16, { headDim: 16, hidden: 32, chunk: 32, layers: 2, vocab: 64, moeLayers: [], seed: 4 });

interface Run {
  logits: Float32Array;
  bytes: number;
  V: number;
}

/** Logits at every position of `ids`: prefill in 100-token pieces, then the last 8 tokens decoded one by one. */
async function run(path: string, backend: BackendChoice, kvType: KvType, ids: number[]): Promise<Run> {
  const { model, config } = await loadModel(path, { backend, kvType });
  const seq = model.newSequence();
  const parts: Float32Array[] = [];
  const P = ids.length;
  for (let i = 0; i < P - 8; i += 100)
    parts.push(model.forward([{ seq, tokens: ids.slice(i, Math.min(i + 100, P - 8)), logits: 'all' }])[0]!);
  for (let i = P - 8; i < P; i++) parts.push(model.forward([{ seq, tokens: [ids[i]!], logits: 'last' }])[0]!);
  const logits = new Float32Array(P * config.vocabSize);
  let o = 0;
  for (const p of parts) {
    logits.set(p, o);
    o += p.length;
  }
  return { logits, bytes: seq.cacheBytes(), V: config.vocabSize };
}

/** maxAbs / meanAbs / rel over all logits; p99: the 99th percentile over positions of a position's largest |Δ|. */
function compare(got: Run, ref: Run): { maxAbs: number; meanAbs: number; rel: number; agree: number; p99: number } {
  const V = ref.V,
    P = ref.logits.length / V;
  let maxAbs = 0,
    sum = 0,
    maxRef = 0,
    agree = 0;
  const perPosition: number[] = [];
  for (let p = 0; p < P; p++) {
    let a = 0,
      b = 0,
      worst = 0;
    for (let j = 0; j < V; j++) {
      const x = got.logits[p * V + j]!,
        y = ref.logits[p * V + j]!;
      const e = Math.abs(x - y);
      worst = Math.max(worst, e);
      maxAbs = Math.max(maxAbs, e);
      sum += e;
      maxRef = Math.max(maxRef, Math.abs(y));
      if (x > got.logits[p * V + a]!) a = j;
      if (y > ref.logits[p * V + b]!) b = j;
    }
    if (a === b) agree++;
    perPosition.push(worst);
  }
  perPosition.sort((x, y) => x - y);
  const p99 = perPosition[Math.min(P - 1, Math.floor(0.99 * P))]!;
  return { maxAbs, meanAbs: sum / (P * V), rel: maxAbs / maxRef, agree: agree / P, p99 };
}

const fmt = (o: Record<string, number>) =>
  Object.entries(o)
    .map(([k, v]) => `${k} ${Number.isInteger(v) ? v : v.toExponential(2)}`)
    .join(', ');
const backends: BackendChoice[] = ['typescript', 'native'];
/** The reason a backend cannot run here, or null (native without its addon is skipped loudly). */
const missing = (b: BackendChoice) =>
  b === 'native' && nativeIsas().length === 0 ? 'native backend unavailable (addon not built or not loadable)' : null;

for (const backend of backends) {
  test(`kv-type (${backend}): tiny head_dim-32 model, 500 positions over 16 chunks — f16 and q8_0 logits vs f32`, async (t) => {
    if (missing(backend)) return t.skip(missing(backend)!);
    const r = rng(5);
    const ids = Array.from({ length: 500 }, () => Math.floor(r() * 64));
    const ref = await run(TINY, backend, 'f32', ids);
    const f16 = await run(TINY, backend, 'f16', ids),
      q8 = await run(TINY, backend, 'q8_0', ids);
    const e16 = compare(f16, ref),
      e8 = compare(q8, ref);
    console.log(`# ${backend} tiny, 500 positions: f16 ${fmt(e16)}; cache ${f16.bytes} vs f32 ${ref.bytes} bytes`);
    console.log(`# ${backend} tiny, 500 positions: q8_0 ${fmt(e8)}; cache ${q8.bytes} bytes`);
    // storage: f16 is half of f32; q8_0 is 34/128 of it (allocation growth is the same for every type)
    assert.equal(f16.bytes * 2, ref.bytes);
    assert.equal(q8.bytes * 128, ref.bytes * 34);
    assert.ok(e16.maxAbs > 0 && e8.maxAbs > 0, 'compressed caches must change the logits (is the cache really compressed?)');
    assert.ok(e16.rel < 5e-3 && e16.meanAbs < 3e-3, `f16: ${fmt(e16)}`);
    assert.equal(e16.agree, 1, 'f16: greedy tokens all equal');
    assert.ok(e8.rel < 0.1 && e8.meanAbs < 0.06, `q8_0: ${fmt(e8)}`);
    assert.ok(e8.agree >= 0.95, `q8_0: greedy agreement ${e8.agree}`);
    assert.ok(e16.meanAbs * 5 < e8.meanAbs, 'f16 must be much closer to f32 than q8_0');
  });

  test(`kv-type (${backend}): embedded model, 600 positions — f16 logits vs f32; q8_0 runs; refused for head_dim 16`, async (t) => {
    if (missing(backend)) return t.skip(missing(backend)!);
    const r = rng(6);
    const ids = Array.from({ length: 600 }, () => Math.floor(r() * 1024));
    const ref = await run(DEFAULT_MODEL_DIR, backend, 'f32', ids);
    const f16 = await run(DEFAULT_MODEL_DIR, backend, 'f16', ids);
    const e = compare(f16, ref);
    console.log(`# ${backend} embedded model, 600 positions: f16 ${fmt(e)}; cache ${f16.bytes} vs f32 ${ref.bytes} bytes`);
    // Random ids give a trained model near-tied logits: an f16 key rounding may flip one greedy token in a few hundred
    // (the 3.8M default model after RL: 1 of 600, mean |Δ| 1.3e-3), and where a near-tied top-1 router picks another
    // expert one position's logits jump. The shipped model: largest |Δ| 0.016, 99th percentile over positions 0.014
    // (the one before it: 0.027 / 0.017). A candidate trained beside it (fl2, models/default/README.md) had 599 of 600
    // positions within 0.03 and one at 2.06 (rel 8e-2), and its 100 held-out tool calls as served were the same under
    // f16 as under f32 keys; so the bound is on the 99th percentile, not on the one worst position.
    // A wrong path moves every position (rel ~1).
    assert.ok(e.maxAbs > 0 && e.p99 < 0.05 && e.meanAbs < 3e-3, `f16: ${fmt(e)}`);
    assert.ok(e.agree >= 0.99, `f16: greedy agreement ${e.agree}`);
    assert.equal(f16.bytes * 2, ref.bytes);
    const q8 = await run(DEFAULT_MODEL_DIR, backend, 'q8_0', ids);
    assert.ok(
      q8.logits.every((x) => Number.isFinite(x)),
      'q8_0 cache: finite logits',
    );
    assert.equal(q8.bytes * 128, ref.bytes * 34);
    await assert.rejects(
      loadModel(TINY16, { backend, kvType: 'q8_0' }),
      (err: Error) => err instanceof UsageError && /head_dim/.test(err.message),
    );
  });

  test(`kv-type (${backend}): a compressed cache decodes token by token exactly as one prefill computes`, async (t) => {
    if (missing(backend)) return t.skip(missing(backend)!);
    const r = rng(8);
    const ids = Array.from({ length: 90 }, () => Math.floor(r() * 64));
    for (const kvType of ['f16', 'q8_0'] as const) {
      const { model } = await loadModel(TINY, { backend, kvType });
      const whole = model.forward([{ seq: model.newSequence(), tokens: ids, logits: 'all' }])[0]!;
      const seq = model.newSequence();
      for (let i = 0; i < ids.length; i++) {
        const one = model.forward([{ seq, tokens: [ids[i]!], logits: 'last' }])[0]!;
        assert.deepEqual(one, whole.subarray(i * 64, (i + 1) * 64), `${kvType}: position ${i}`);
      }
    }
  });
}
