/**
 * The model in a worker thread (src/model-worker/) with the real default model
 * (models/default) and the openai client:
 * - the event loop stays free: /health answers within 100 ms while a ~0.5 s prefill step runs in the worker, and the
 *   same check fails with the in-thread engine (the step holds the event loop);
 * - outputs are identical to the in-thread engine: logits bit for bit, truncate()'s answers for every length,
 *   greedy/sampled completions with logprobs, n > 1 and concurrent batched requests;
 * - failures are one clear error: a bad model file at startup (its class kept), an exception in forward (that call
 *   only), a worker killed mid-request (the request fails, /health and later requests still answer);
 * - no leak: the worker's own count of sequences and cache bytes equals the scheduler's, and is zero once the kept
 *   prefixes are cleared;
 * - image encoding in the worker equals the in-thread encoder (e_multimodal golden checkpoint);
 * - `llama4 serve` (tsx dev run) starts the worker by default and with --no-worker runs in-thread.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import OpenAI from 'openai';
import { DEFAULT_MODEL_DIR, loadModel, type LoadedModel } from '../src/load.ts';
import { startServer } from '../src/server/app.ts';
import { loadServerEngine } from '../src/server/load-engine.ts';
import type { ServerEngine } from '../src/server/engine.ts';
import { startModelWorker, WorkerModel } from '../src/model-worker/index.ts';
import { SupervisedModel } from '../src/server/supervised-model.ts';
import { Llama4Error, ModelFileError, UsageError } from '../src/util/index.ts';
import { LLAMA4_IMAGE_TOKEN_IDS } from '../src/image/index.ts';
import { imagePromptEncoder } from '../src/model/llama4/vision-prompt.ts';
import { PROJECT_ROOT, sharedPath } from './helpers/shared.ts';

/** A prompt of `n` token ids inside the default model's ordinary vocabulary (BOS first). */
const longPrompt = (n: number) => [992, ...Array.from({ length: n - 1 }, (_, i) => ((i * 37) % 900) + 20)];

async function serve(worker: boolean, extra: Parameters<typeof loadServerEngine>[1] = {}) {
  const engine = await loadServerEngine(DEFAULT_MODEL_DIR, { worker, ...extra });
  const srv = await startServer(engine, { port: 0, log: () => undefined });
  const openai = new OpenAI({ baseURL: `${srv.url}/v1`, apiKey: 'none', maxRetries: 0, timeout: 60_000 });
  return { engine, srv, openai };
}

const workerOf = (e: ServerEngine): WorkerModel => {
  const m = e.scheduler.model;
  assert.ok(m instanceof SupervisedModel && m.current instanceof WorkerModel, 'the engine runs its model in a supervised worker');
  return m.current;
};

/**
 * Runs completions whose first step prefills `promptLen` tokens each at once, polling /health every 10 ms meanwhile.
 * Returns the slowest /health answer and how long the request took.
 */
async function healthDuringLongStep(s: Awaited<ReturnType<typeof serve>>, promptLen: number, copies = 1) {
  const lat: number[] = [];
  let done = false;
  const t0 = performance.now();
  // `copies` requests with distinct prompts, prefilled together in one step when they arrive together.
  const req = Promise.all(
    Array.from({ length: copies }, (_, k) =>
      s.openai.completions.create({
        model: s.engine.modelId,
        prompt: [992, 20 + k, ...longPrompt(promptLen - 1).slice(1)],
        max_tokens: 4,
        temperature: 0,
      }),
    ),
  ).finally(() => (done = true));
  const poll = (async () => {
    while (!done) {
      const t = performance.now();
      const r = await fetch(`${s.srv.url}/health`);
      assert.equal(r.status, 200);
      await r.json();
      if (!done) lat.push(performance.now() - t);
      await new Promise((r) => setTimeout(r, 10));
    }
  })();
  const rs = await req;
  const requestMs = performance.now() - t0;
  await poll;
  for (const r of rs) assert.equal(r.usage!.prompt_tokens, promptLen);
  return { maxMs: Math.max(...lat), polls: lat.length, requestMs };
}

describe('model worker: the event loop answers during a step', () => {
  test('/health within 100 ms during long prefill steps with the worker; the in-thread engine fails the same check', async () => {
    // One step prefills 8 × 1900 tokens (stepTokens 16000): hundreds of ms of compute in a single forward call, even
    // with the native kernels on a quiet machine (3 × 1900 took only 250 ms there, too short for the check to mean much).
    // The machine is shared: a descheduled process can miss any bound now and then, so the worker gets three rounds
    // and its best one counts. The in-thread engine is the control: its step holds the event loop, so /health must be
    // slow in at least one of its three rounds (requests that arrive apart can split the prefill into shorter steps,
    // and the batched kernels made a step short enough that one round may slip under the bound).
    for (const worker of [true, false]) {
      const s = await serve(worker, { stepTokens: 16000, parallel: 8 });
      try {
        await healthDuringLongStep(s, 64); // warm-up (first-call costs)
        const rounds: string[] = [];
        let best = Infinity;
        let worst = 0;
        for (let round = 0; round < 3 && (worker ? best >= 100 : worst < 100); round++) {
          s.engine.scheduler.clearPrefixCache();
          const m = await healthDuringLongStep(s, 1900, 8);
          rounds.push(`slowest /health ${m.maxMs.toFixed(0)} ms over ${m.polls} polls, request ${m.requestMs.toFixed(0)} ms`);
          assert.ok(m.requestMs > 300, `the steps must be slow enough for the check to mean something (${rounds.at(-1)})`);
          assert.ok(m.polls >= (worker ? 5 : 1), rounds.at(-1));
          best = Math.min(best, m.maxMs);
          worst = Math.max(worst, m.maxMs);
        }
        const where = `${worker ? 'worker' : 'in-thread'}: ${rounds.join('; ')}`;
        if (worker) assert.ok(best < 100, where);
        else assert.ok(worst >= 100, where);
      } finally {
        await s.srv.close();
      }
    }
  });
});

describe('model worker: identical to the in-thread model', () => {
  let loaded: LoadedModel;
  let wm: WorkerModel;
  before(async () => {
    loaded = await loadModel(DEFAULT_MODEL_DIR, {});
    wm = await startModelWorker(DEFAULT_MODEL_DIR, {});
    assert.equal(wm.ready.backend, loaded.backend.name);
  });
  after(async () => {
    await wm?.close();
  });

  test('forward logits bit for bit, clones, truncation answers for every length, cache bytes', async () => {
    const lm = loaded.model;
    const p = longPrompt(150);
    const a1 = lm.newSequence();
    const a2 = wm.newSequence();
    const o1 = lm.forward([{ seq: a1, tokens: p, logits: 'all' }]);
    const o2 = await wm.forward([{ seq: a2, tokens: p, logits: 'all' }]);
    assert.deepEqual(o2, o1);
    assert.equal(a2.length, a1.length);
    assert.equal(a2.cacheBytes(), a1.cacheBytes());
    // The mirror's truncation rule equals the model's for every length (chunk 64: positions before 128 are gone).
    const ok1: boolean[] = [];
    const ok2: boolean[] = [];
    for (let L = 0; L <= a1.length + 1; L++) {
      ok1.push(a1.clone().truncate(L));
      const c = a2.clone();
      ok2.push(c.truncate(L));
      c.free();
    }
    assert.deepEqual(ok2, ok1);
    assert.ok(ok1.includes(true) && ok1.includes(false), 'both answers occur');
    // A batch of a clone truncated back, the original going on and a fresh sequence.
    const b1 = a1.clone();
    const b2 = a2.clone();
    assert.equal(b1.truncate(140), true);
    assert.equal(b2.truncate(140), true);
    const f1 = lm.newSequence();
    const f2 = wm.newSequence();
    const items = <S>(a: S, b: S, f: S) => [
      { seq: a, tokens: [5, 6, 7], logits: 'all' as const },
      { seq: b, tokens: [9], logits: 'last' as const },
      { seq: f, tokens: p.slice(0, 20), logits: 'none' as const },
    ];
    const r1 = lm.forward(items(a1, b1, f1));
    const r2 = await wm.forward(items(a2, b2, f2));
    assert.deepEqual(r2, r1);
    for (const [x, y] of [
      [a1, a2],
      [b1, b2],
      [f1, f2],
    ] as const) {
      assert.equal(y.length, x.length);
      assert.equal(y.cacheBytes(), x.cacheBytes());
    }
    for (const s of [a2, b2, f2]) s.free();
    assert.deepEqual(await wm.workerStats(), { sequences: 0, cacheBytes: 0 });
  });

  test('an exception in forward fails that call with its own error class; the worker goes on', async () => {
    const s = wm.newSequence();
    await assert.rejects(
      wm.forward([{ seq: s, tokens: [1, 999999], logits: 'last' }]),
      (e: Error) => e instanceof UsageError && /outside the vocabulary/.test(e.message),
    );
    s.free();
    const t = wm.newSequence();
    const [out] = await wm.forward([{ seq: t, tokens: [992, 30], logits: 'last' }]);
    assert.equal(out!.length, wm.info.vocabSize);
    t.free();
    assert.equal((await wm.workerStats()).sequences, 0);
  });
});

describe('model worker: server outputs identical to the in-thread engine', () => {
  let w: Awaited<ReturnType<typeof serve>>;
  let t: Awaited<ReturnType<typeof serve>>;
  before(async () => {
    w = await serve(true, { parallel: 4, stepTokens: 32 });
    t = await serve(false, { parallel: 4, stepTokens: 32 });
  });
  after(async () => {
    await w?.srv.close();
    await t?.srv.close();
  });

  const strip = (r: { choices: unknown[]; usage?: unknown }) => ({ choices: r.choices, usage: r.usage });

  test('greedy and sampled completions with logprobs, n > 1, and a concurrent batch', async () => {
    const runAll = async (s: typeof w) => {
      const m = s.engine.modelId;
      const out: unknown[] = [];
      out.push(
        strip(await s.openai.completions.create({ model: m, prompt: 'Once upon a time', max_tokens: 24, temperature: 0, logprobs: 3 })),
      );
      out.push(
        strip(
          await s.openai.chat.completions.create({
            model: m,
            messages: [{ role: 'user', content: 'Tell me about cats.' }],
            max_tokens: 20,
            temperature: 0.9,
            seed: 7,
            n: 2,
            logprobs: true,
            top_logprobs: 2,
          }),
        ),
      );
      // Concurrent requests sharing a prefix (batched, prefix reuse from the kept sequences).
      const batch = await Promise.all(
        ['The weather today', 'The weather today is', 'The cat sat on the'].map((prompt) =>
          s.openai.completions.create({ model: m, prompt, max_tokens: 16, temperature: 0, logprobs: 1 }),
        ),
      );
      // Which kept prefix each one finds depends on arrival timing, so cached_tokens is left out here.
      out.push(batch.map((r) => ({ choices: r.choices, completion: r.usage!.completion_tokens, prompt: r.usage!.prompt_tokens })));
      return out;
    };
    const a = await runAll(w);
    const b = await runAll(t);
    assert.deepEqual(a, b);
    assert.ok(w.engine.scheduler.stats().promptTokensReused > 0, 'prefix reuse happened through the worker');
  });

  test('no leak: the worker holds exactly the kept prefixes, and nothing once they are cleared', async () => {
    const m = workerOf(w.engine);
    await Promise.all(
      Array.from({ length: 6 }, (_, i) =>
        w.openai.completions.create({
          model: w.engine.modelId,
          prompt: `Story number ${i}:`,
          max_tokens: 8,
          temperature: 0.5,
          seed: i,
          n: 1 + (i % 2),
        }),
      ),
    );
    const ws = await m.workerStats();
    const st = w.engine.scheduler.stats();
    assert.equal(st.active, 0);
    assert.equal(ws.sequences, st.cachedSequences);
    assert.ok(ws.sequences <= 4, `kept prefixes are bounded (${ws.sequences})`);
    assert.equal(ws.cacheBytes, st.cacheBytes, 'the mirror of cache bytes equals the worker count');
    w.engine.scheduler.clearPrefixCache();
    assert.deepEqual(await m.workerStats(), { sequences: 0, cacheBytes: 0 });
    assert.equal(m.liveSequences, 0);
    assert.equal(w.engine.scheduler.stats().cacheBytes, 0);
  });
});

describe('model worker: failures are clear errors', () => {
  let dir: string;
  before(() => {
    dir = mkdtempSync(join(tmpdir(), 'llama4-worker-'));
  });
  after(() => rmSync(dir, { recursive: true, force: true }));

  test('a missing or corrupt model file fails startup with the loader error, class kept', async () => {
    await assert.rejects(
      loadServerEngine(join(dir, 'missing.gguf')),
      (e: Error) => e instanceof ModelFileError && /no such file/.test(e.message),
    );
    const bad = join(dir, 'bad.gguf');
    writeFileSync(bad, Buffer.concat([Buffer.from('GGUF'), Buffer.alloc(60, 0xff)]));
    await assert.rejects(loadServerEngine(bad), (e: Error) => e instanceof Llama4Error && e.message.includes(bad));
    writeFileSync(join(dir, 'x.txt'), 'x');
    await assert.rejects(loadServerEngine(dir), (e: Error) => e instanceof ModelFileError && /config\.json/.test(e.message));
  });

  test('a worker killed mid-request: that request fails with 503, the worker is restarted, later requests succeed', async () => {
    const s = await serve(true, { parallel: 2, stepTokens: 8 });
    try {
      const supervised = s.engine.scheduler.model as SupervisedModel;
      const m = workerOf(s.engine);
      const greedy = { model: s.engine.modelId, prompt: 'What is 7 plus 5?', max_tokens: 12, temperature: 0 };
      const before = await s.openai.completions.create(greedy);
      const long = s.openai.completions.create({ model: s.engine.modelId, prompt: longPrompt(600), max_tokens: 200, temperature: 0 });
      while (s.engine.scheduler.stats().steps < 3) await new Promise((r) => setTimeout(r, 5));
      await m.terminate();
      await assert.rejects(
        long,
        (e: Error) =>
          e instanceof OpenAI.APIError &&
          e.status === 503 &&
          /the model is unavailable: the model worker (stopped \(the model worker exited|was restarted)/.test(e.message),
      );
      // /health answers 503 (a load balancer stops sending work here) while the new worker starts, then 200.
      const h = await fetch(`${s.srv.url}/health`);
      if (h.status === 503) assert.match(((await h.json()) as { error: string }).error, /model worker exited/);
      const t0 = performance.now();
      await supervised.settled();
      assert.ok(performance.now() - t0 < 30_000, 'no hang');
      assert.equal((await fetch(`${s.srv.url}/health`)).status, 200);
      assert.equal(supervised.restarts, 1);
      assert.notEqual(workerOf(s.engine), m);
      const after = await s.openai.completions.create(greedy);
      assert.equal(after.choices[0]!.text, before.choices[0]!.text, 'the new worker computes the same greedy output');
      assert.equal((await fetch(`${s.srv.url}/v1/models`)).status, 200);
    } finally {
      await s.srv.close();
    }
  });
});

const mm = sharedPath('golden', 'e_multimodal');
const png = sharedPath('images', 'synthetic_50x50.png');

describe('model worker: images are encoded in the worker', {
  skip: mm && png ? false : 'SKIPPED LOUDLY: ../shared/golden/e_multimodal or ../shared/images missing',
}, () => {
  test('prompt expansion and patch embeddings equal the in-thread encoder; a bad image is an ImageError (a Llama4Error)', async () => {
    const loaded = await loadModel(mm!, { backend: 'typescript' });
    const wm = await startModelWorker(mm!, { backend: 'typescript' });
    try {
      assert.equal(wm.ready.vision, true);
      const bytes = new Uint8Array(readFileSync(png!));
      const tokens = [1, 72, LLAMA4_IMAGE_TOKEN_IDS.image, 73, 2];
      const a = await imagePromptEncoder(loaded.vision!)(tokens, [bytes]);
      const b = await wm.encodeImages(tokens, [bytes]);
      assert.deepEqual(b.tokens, a.tokens);
      assert.ok(b.patchEmbeddings.length > 0);
      assert.deepEqual(b.patchEmbeddings, a.patchEmbeddings);
      const again = await wm.encodeImages(tokens, [bytes]); // the worker's feature cache answers this time
      assert.deepEqual(again.patchEmbeddings, a.patchEmbeddings);
      await assert.rejects(
        wm.encodeImages(tokens, [Uint8Array.of(1, 2, 3)]),
        (e: Error) => e instanceof Llama4Error && e.name === 'ImageError' && /not a readable image/.test(e.message),
      );
    } finally {
      await wm.close();
    }
  });
});

describe('model worker: the serve command', () => {
  /** Starts `llama4 serve` on a free port, waits for its URL, fetches /health, stops it with SIGTERM. */
  async function serveCli(args: string[]): Promise<{ health: unknown; stderr: string; code: number | null }> {
    const p = spawn(process.execPath, ['--import', 'tsx', join(PROJECT_ROOT, 'src/cli/main.ts'), 'serve', '--port', '0', ...args], {
      stdio: ['ignore', 'ignore', 'pipe'],
    });
    let stderr = '';
    const url = await new Promise<string>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`serve did not start: ${stderr}`)), 60_000);
      p.stderr.on('data', (d: Buffer) => {
        stderr += d.toString();
        const m = /listening on (http:\/\/\S+)/.exec(stderr);
        if (m) {
          clearTimeout(timer);
          resolve(m[1]!);
        }
      });
      p.on('exit', (code) => reject(new Error(`serve exited (${code}): ${stderr}`)));
    });
    const health = await (await fetch(`${url}/health`)).json();
    const code = await new Promise<number | null>((resolve) => {
      p.on('exit', (c) => resolve(c));
      p.kill('SIGTERM');
    });
    return { health, stderr, code };
  }

  test('the tsx dev run starts the model worker by default, and --no-worker serves in-thread', async () => {
    for (const args of [[], ['--no-worker']]) {
      const r = await serveCli(args);
      assert.equal((r.health as { status: string }).status, 'ok', r.stderr);
      assert.match(r.stderr, args.length ? /computing in-thread/ : /computing in a worker thread/);
      assert.equal(r.code, 0, r.stderr);
    }
  });
});
