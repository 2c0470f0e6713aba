/** The continuous-batching scheduler (engine/scheduler.ts) on the fake model: batching, chunked prefill, n > 1,
 * cancellation, the bounded queue, prefix reuse (and its refusal by chunked layers), failing batches, an
 * asynchronous forward (a model worker) and freeing every dropped sequence. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { QueueFullError, Scheduler, type GenerationRequest } from '../src/engine/scheduler.ts';
import { FakeModel, detok, tokenize, scriptFor, EOT } from './server-fixtures.ts';
import { UsageError } from '../src/util/index.ts';
import type { AsyncCausalLM, ForwardItem, SequenceState } from '../src/model/types.ts';

const chat = (text: string) => tokenize(`<|begin_of_text|><|header|>user\n${text}<|eot|><|header|>assistant\n`, true);

function collect(s: Scheduler, req: Omit<GenerationRequest, 'onToken'>) {
  const out: number[][] = Array.from({ length: req.n ?? 1 }, () => []);
  const done = s.submit({ ...req, sampling: { temperature: 0, ...req.sampling }, onToken: (c, info) => void out[c]!.push(info.token) });
  return done.then((r) => ({ r, texts: out.map(detok), tokens: out }));
}

test('concurrent requests share forward calls, long prompts prefill in pieces, outputs equal solo ones', async () => {
  const model = new FakeModel();
  const s = new Scheduler(model, { parallel: 4, stepTokens: 16 });
  const prompts = ['one', 'a much longer prompt that needs several prefill steps to get through', 'three'];
  const solo: string[] = [];
  for (const p of prompts) solo.push((await collect(new Scheduler(new FakeModel()), { prompt: chat(p), maxTokens: 64 })).texts[0]!);
  const runs = await Promise.all(prompts.map((p) => collect(s, { prompt: chat(p), maxTokens: 64 })));
  assert.deepEqual(
    runs.map((x) => x.texts[0]),
    solo,
  );
  assert.deepEqual(
    solo,
    prompts.map((p) => scriptFor(chat(p), [])),
  );
  assert.ok(Math.max(...model.batchSizes) === 3, `batch sizes ${model.batchSizes.slice(0, 12)}`);
  // The long prompt (about 80 tokens) took several steps while the others were already decoding.
  assert.ok(model.batchSizes.length >= 6);
  for (const x of runs) assert.equal(x.r.choices[0]!.finishReason, 'stop');
});

test('n > 1 prefills once and clones; seeds make choices reproducible', async () => {
  const model = new FakeModel();
  const s = new Scheduler(model, { parallel: 4 });
  const a = await collect(s, { prompt: chat('hi'), maxTokens: 10, n: 3, sampling: { temperature: 3, seed: 11 } });
  s.clearPrefixCache();
  const b = await collect(s, { prompt: chat('hi'), maxTokens: 10, n: 3, sampling: { temperature: 3, seed: 11 } });
  assert.deepEqual(a.texts, b.texts);
  assert.equal(a.r.choices.length, 3);
  assert.ok(new Set(a.texts).size > 1);
  assert.deepEqual(
    a.r.choices.map((c) => c.completionTokens),
    a.tokens.map((t) => t.length),
  );
});

test('max tokens, stop callback, context limit and logprobs', async () => {
  const s = new Scheduler(new FakeModel({ contextLength: 40 }), { parallel: 2 });
  const r1 = await collect(s, { prompt: chat('hello'), maxTokens: 3 });
  assert.equal(r1.r.choices[0]!.finishReason, 'length');
  assert.equal(r1.r.choices[0]!.completionTokens, 3);
  let n = 0;
  const r2 = await s.submit({
    prompt: chat('hello'),
    maxTokens: 50,
    sampling: { temperature: 0 },
    topLogprobs: 2,
    onToken: (_c, info) => {
      assert.ok(info.logprob! <= 0 && info.top!.length === 2 && info.top![0]!.token === info.token);
      return ++n === 4;
    },
  });
  assert.equal(r2.choices[0]!.finishReason, 'stop');
  assert.equal(r2.choices[0]!.completionTokens, 4);
  const long = await collect(s, { prompt: chat('hello hello hello'), maxTokens: 1000 });
  assert.equal(long.r.choices[0]!.finishReason, 'length');
  assert.ok(long.r.promptTokens + long.r.choices[0]!.completionTokens <= 40);
  assert.throws(() => s.submit({ prompt: new Array(40).fill(5), maxTokens: 1 }), UsageError);
  assert.throws(() => s.submit({ prompt: [999999], maxTokens: 1 }), /outside the vocabulary/);
  assert.throws(() => s.submit({ prompt: [5], maxTokens: 1, n: 3 }), /parallel/);
  assert.throws(() => s.submit({ prompt: [5], maxTokens: 1, sampling: { topP: -0.5 } }), UsageError); // (top_p 0 is allowed: the most probable token only)
});

test('bounded queue and cancellation', async () => {
  const model = new FakeModel({ delayMs: 2 });
  const s = new Scheduler(model, { parallel: 1, maxQueue: 2 });
  const ac = new AbortController();
  const running = collect(s, { prompt: chat('long story'), maxTokens: 100000, signal: ac.signal });
  while (s.stats().active === 0) await new Promise((r) => setImmediate(r)); // admitted: the queue is empty again
  const q1 = collect(s, { prompt: chat('a'), maxTokens: 50 });
  const q2ac = new AbortController();
  const q2 = collect(s, { prompt: chat('b'), maxTokens: 5, signal: q2ac.signal });
  assert.throws(
    () => s.submit({ prompt: chat('c'), maxTokens: 5 }),
    (e: unknown) => e instanceof QueueFullError && e.retryAfterS >= 1,
  );
  q2ac.abort(); // cancelled while queued: resolves at once
  assert.equal((await q2).r.choices[0]!.finishReason, 'cancelled');
  await new Promise((r) => setTimeout(r, 30));
  ac.abort(); // cancelled while running: its slot frees at the next step
  const r = await running;
  assert.equal(r.r.choices[0]!.finishReason, 'cancelled');
  assert.ok(r.r.choices[0]!.completionTokens > 0 && r.r.choices[0]!.completionTokens < 100000);
  assert.equal((await q1).texts[0], 'Hello! You said: a');
  assert.equal(s.stats().active, 0);
});

test('prefix reuse, and a fresh sequence when a chunked layer cannot truncate', async () => {
  const sys = 'shared system prompt '.repeat(4);
  const model = new FakeModel();
  const s = new Scheduler(model, { parallel: 2 });
  await collect(s, { prompt: chat(sys + 'first'), maxTokens: 200 });
  const second = await collect(s, { prompt: chat(sys + 'second'), maxTokens: 200 });
  assert.ok(second.r.cachedTokens > 60, `reused ${second.r.cachedTokens}`);
  assert.equal(second.texts[0], scriptFor(chat(sys + 'second'), []));
  // Chunk 8: the kept sequence (prompt + answer) ends far past the shared prefix, so truncate() refuses.
  const chunked = new Scheduler(new FakeModel({ chunk: 8 }), { parallel: 2 });
  await collect(chunked, { prompt: chat(sys + 'first'), maxTokens: 200 });
  const again = await collect(chunked, { prompt: chat(sys + 'second'), maxTokens: 200 });
  assert.equal(again.r.cachedTokens, 0);
  assert.equal(again.texts[0], scriptFor(chat(sys + 'second'), []));
  // Identical prompt: everything but the last token is reused, and the answer is unchanged.
  const same1 = await collect(s, { prompt: chat('same'), maxTokens: 200 });
  const same2 = await collect(s, { prompt: chat('same'), maxTokens: 200 });
  assert.equal(same2.r.cachedTokens, chat('same').length - 1);
  assert.equal(same1.texts[0], same2.texts[0]);
});

test('a failing forward fails its batch only; the scheduler keeps going', async () => {
  const model = new FakeModel();
  const s = new Scheduler(model, { parallel: 2 });
  // Image tokens without patch rows: the fake model throws, like a real one given a bad item.
  const bad = await collect(s, { prompt: [...chat('x'), 2, 2], maxTokens: 5, patchEmbeddings: new Float32Array(8) });
  assert.equal(bad.r.choices[0]!.finishReason, 'error');
  assert.match(bad.r.choices[0]!.error!.message, /patch rows/);
  const ok = await collect(s, { prompt: chat('fine'), maxTokens: 50 });
  assert.equal(ok.texts[0], 'Hello! You said: fine');
  assert.ok(!ok.texts[0]!.includes(detok([EOT])));
});

test('an exception outside forward (a broken constraint) fails its request, not the process', async () => {
  const s = new Scheduler(new FakeModel(), { parallel: 2 });
  const good = collect(s, { prompt: chat('neighbour'), maxTokens: 50 });
  const bad = await collect(s, {
    prompt: chat('x'),
    maxTokens: 5,
    constraint: () => ({
      mask() {
        throw new Error('broken mask');
      },
      accept() {},
      done: false,
    }),
  });
  assert.equal(bad.r.choices[0]!.finishReason, 'error');
  assert.equal((await good).texts[0], 'Hello! You said: neighbour', 'the request batched beside it is unharmed');
  assert.match(bad.r.choices[0]!.error!.message, /broken mask/);
  const ok = await collect(s, { prompt: chat('fine'), maxTokens: 50 });
  assert.equal(ok.texts[0], 'Hello! You said: fine');
});

/** Sequences that count themselves: live until free(); use after free() is a failure. */
class TrackedSeq implements SequenceState {
  freed = false;
  constructor(
    readonly inner: SequenceState,
    readonly live: Set<TrackedSeq>,
  ) {
    live.add(this);
  }
  get length() {
    return this.inner.length;
  }
  private check() {
    if (this.freed) throw new Error('sequence used after free()');
  }
  truncate(n: number) {
    this.check();
    return this.inner.truncate(n);
  }
  clone() {
    this.check();
    return new TrackedSeq(this.inner.clone(), this.live);
  }
  cacheBytes() {
    return this.inner.cacheBytes();
  }
  free() {
    this.check();
    this.freed = true;
    this.live.delete(this);
  }
}

/** The fake model behind an asynchronous forward (as a model worker answers), with tracked sequences. */
class AsyncFake implements AsyncCausalLM {
  readonly live = new Set<TrackedSeq>();
  readonly inner: FakeModel;
  constructor(o: ConstructorParameters<typeof FakeModel>[0] = {}) {
    this.inner = new FakeModel(o);
  }
  get info() {
    return this.inner.info;
  }
  newSequence() {
    return new TrackedSeq(this.inner.newSequence(), this.live);
  }
  async forward(items: readonly ForwardItem[]) {
    const unwrapped = items.map((it) => {
      const s = it.seq as TrackedSeq;
      if (s.freed) throw new Error('forward on a freed sequence');
      return { ...it, seq: s.inner };
    });
    await new Promise((r) => setTimeout(r, 1));
    return this.inner.forward(unwrapped);
  }
}

test('an asynchronous forward gives the same outputs; every sequence the scheduler drops is freed, none is used after', async () => {
  const prompts = ['one', 'a much longer prompt that needs several prefill steps to get through', 'three', 'one more'];
  const solo = prompts.map((p) => scriptFor(chat(p), []));
  for (const [chunk, keep] of [
    [0, 2],
    [8, 2],
    [0, 0],
  ] as const) {
    const model = new AsyncFake({ chunk });
    const s = new Scheduler(model, { parallel: 4, stepTokens: 16, prefixCacheSize: keep });
    const runs = await Promise.all(prompts.map((p) => collect(s, { prompt: chat(p), maxTokens: 64 })));
    assert.deepEqual(
      runs.map((x) => x.texts[0]),
      solo,
    );
    // n > 1 (clones), prefix reuse and refusals, a cancelled request, an eviction beyond prefixCacheSize.
    const n3 = await collect(s, { prompt: chat('one'), maxTokens: 20, n: 3, sampling: { temperature: 2, seed: 5 } });
    assert.equal(n3.tokens.length, 3);
    const ac = new AbortController();
    const cancelled = collect(s, { prompt: chat('long story'), maxTokens: 5000, signal: ac.signal });
    setTimeout(() => ac.abort(), 20);
    assert.equal((await cancelled).r.choices[0]!.finishReason, 'cancelled');
    for (const p of ['a', 'b', 'c']) await collect(s, { prompt: chat(p), maxTokens: 8 });
    // A failing forward (image tokens without patch rows): its sequence is dropped, not kept.
    const bad = await collect(s, { prompt: [...chat('x'), 2, 2], maxTokens: 5, patchEmbeddings: new Float32Array(8) });
    assert.equal(bad.r.choices[0]!.finishReason, 'error');
    assert.equal(s.stats().active, 0);
    assert.equal(model.live.size, s.stats().cachedSequences, `chunk ${chunk}, keep ${keep}: live sequences are exactly the kept prefixes`);
    assert.ok(model.live.size <= keep);
    s.clearPrefixCache();
    assert.equal(model.live.size, 0);
  }
});
