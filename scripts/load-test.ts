/**
 * Bounded load test of `llama4 serve`'s server, in-process on 127.0.0.1 only.
 *
 *   node --expose-gc --import tsx scripts/load-test.ts [-m MODEL | --fake] [--requests 64] [--invalid 16]
 *        [--parallel 8] [--max-tokens 24] [--bench 1,4,8] [--bench-tokens 32] [--timeout 600] [--backend auto]
 *        [--bench-only]  (skip phases 1-3)
 *
 * 1. Solo: each distinct valid prompt alone, greedy, streaming → its reference text.
 * 2. Load: `--requests` concurrent streaming requests, `--invalid` of them malformed in different ways; every valid one
 *    must stream exactly its solo text, every invalid one must get its 4xx.
 * 3. Memory: after the load (prefix cache dropped, GC run), heap and KV bytes must be back to the baseline taken after
 *    the solo phase (heap within 10% + 8 MiB).
 * 4. Throughput: aggregate completion tokens/s with 1, 4 and 8 concurrent clients (`--bench`).
 * Exits 1 on any mismatch or when `--timeout` seconds pass.
 */
import { parseArgs } from 'node:util';
import { startServer } from '../src/server/app.ts';
import { loadServerEngine } from '../src/server/load-engine.ts';
import type { ServerEngine } from '../src/server/engine.ts';

const { values } = parseArgs({
  options: {
    model: { type: 'string', short: 'm' },
    fake: { type: 'boolean' },
    requests: { type: 'string' },
    invalid: { type: 'string' },
    parallel: { type: 'string' },
    'max-tokens': { type: 'string' },
    bench: { type: 'string' },
    'bench-tokens': { type: 'string' },
    timeout: { type: 'string' },
    backend: { type: 'string' },
    threads: { type: 'string' },
    'bench-only': { type: 'boolean' },
  },
});
const N = Number(values.requests ?? 64);
const INVALID = Number(values.invalid ?? 16);
const PARALLEL = Number(values.parallel ?? 8);
const MAX_TOKENS = Number(values['max-tokens'] ?? 24);
const BENCH = (values.bench ?? '1,4,8').split(',').filter(Boolean).map(Number);
const BENCH_TOKENS = Number(values['bench-tokens'] ?? 32);
const TIMEOUT_S = Number(values.timeout ?? 600);

const timer = setTimeout(() => {
  console.error(`load test: timed out after ${TIMEOUT_S} s`);
  process.exit(1);
}, TIMEOUT_S * 1000);
timer.unref();

let engine: ServerEngine;
if (values.fake || !values.model) {
  const { fakeEngine } = await import('../test/server-fixtures.ts');
  engine = fakeEngine({ parallel: PARALLEL, maxQueue: N * 2 });
} else {
  const backend = (values.backend ?? 'auto') as 'auto' | 'native' | 'typescript';
  engine = await loadServerEngine(values.model, {
    backend,
    ...(values.threads ? { threads: Number(values.threads) } : {}),
    parallel: PARALLEL,
    maxQueue: N * 2,
  });
}
const srv = await startServer(engine, { host: '127.0.0.1', port: 0, log: () => undefined });
if (!srv.url.startsWith('http://127.0.0.1:')) throw new Error('load test runs against 127.0.0.1 only');
const model = engine.modelId;
console.log(`load test: ${model} at ${srv.url}, parallel ${PARALLEL}, ${N} requests (${INVALID} invalid), max_tokens ${MAX_TOKENS}`);

const TOPICS = ['the sea', 'a red fox', 'prime numbers', 'bread', 'the moon', 'winter', 'a small robot', 'tea'];
const prompt = (i: number) => `Tell me something about ${TOPICS[i % TOPICS.length]}.`;

interface Outcome {
  status: number;
  text: string;
  tokens: number;
  finish: string | null;
}

/** One streaming chat request through raw fetch + SSE parsing. */
async function stream(body: unknown, headers: Record<string, string> = {}): Promise<Outcome> {
  const r = await fetch(`${srv.url}/v1/chat/completions`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', ...headers },
    body: typeof body === 'string' ? body : JSON.stringify(body),
  });
  if (r.status !== 200) {
    await r.text();
    return { status: r.status, text: '', tokens: 0, finish: null };
  }
  let text = '';
  let tokens = 0;
  let finish: string | null = null;
  let buf = '';
  const dec = new TextDecoder();
  for await (const chunk of r.body as unknown as AsyncIterable<Uint8Array>) {
    buf += dec.decode(chunk, { stream: true });
    let i: number;
    while ((i = buf.indexOf('\n\n')) >= 0) {
      const line = buf.slice(0, i);
      buf = buf.slice(i + 2);
      if (!line.startsWith('data: ') || line === 'data: [DONE]') continue;
      const j = JSON.parse(line.slice(6)) as {
        choices: { delta: { content?: string }; finish_reason: string | null }[];
        usage?: { completion_tokens: number };
      };
      if (j.usage) tokens = j.usage.completion_tokens;
      for (const c of j.choices ?? []) {
        text += c.delta?.content ?? '';
        finish = c.finish_reason ?? finish;
      }
    }
  }
  return { status: 200, text, tokens, finish };
}

const valid = (i: number, maxTokens = MAX_TOKENS) => ({
  model,
  messages: [{ role: 'user', content: prompt(i) }],
  temperature: 0,
  max_tokens: maxTokens,
  stream: true,
  stream_options: { include_usage: true },
});
const INVALID_KINDS: [string, () => Promise<Outcome>, number][] = [
  ['malformed JSON', () => stream('{"model": '), 400],
  ['unknown model', () => stream({ ...valid(0), model: 'no-such-model' }), 404],
  ['wrong type', () => stream({ ...valid(0), temperature: 'warm' }), 400],
  ['empty messages', () => stream({ ...valid(0), messages: [] }), 400],
  [
    'invalid image',
    () =>
      stream({
        ...valid(0),
        messages: [{ role: 'user', content: [{ type: 'image_url', image_url: { url: 'data:image/png;base64,bm90IGFuIGltYWdl' } }] }],
      }),
    400,
  ],
  [
    'prompt too long',
    () => stream({ ...valid(0), messages: [{ role: 'user', content: 'word '.repeat(engine.scheduler.contextLength + 10) }] }),
    400,
  ],
  ['bad n', () => stream({ ...valid(0), n: 0 }), 400],
  ['bad role', () => stream({ ...valid(0), messages: [{ role: 'robot', content: 'x' }] }), 400],
];

const gc = (globalThis as { gc?: () => void }).gc;
const settle = async () => {
  engine.scheduler.clearPrefixCache();
  for (let i = 0; i < 3; i++) {
    gc?.();
    await new Promise((r) => setTimeout(r, 50));
  }
  return { heap: process.memoryUsage().heapUsed, kv: engine.scheduler.stats().cacheBytes };
};

let failures = 0;
/** Counts and prints a failure; returns 'bad' so a job can `return fail(…)`. */
const fail = (msg: string): 'bad' => {
  failures++;
  console.error(`FAIL ${msg}`);
  return 'bad';
};

// 1. Solo references.
const benchOnly = values['bench-only'] === true;
const t0 = performance.now();
const solo: string[] = [];
for (let i = 0; i < (benchOnly ? 0 : TOPICS.length); i++) {
  engine.scheduler.clearPrefixCache();
  const o = await stream(valid(i));
  if (o.status !== 200) fail(`solo ${i}: HTTP ${o.status}`);
  solo.push(o.text);
}
console.log(`solo: ${TOPICS.length} prompts in ${((performance.now() - t0) / 1000).toFixed(1)} s`);
if (!gc) console.log('(run with node --expose-gc for a memory check)');
const base = await settle();

// 2. The load: valid and invalid requests interleaved, all at once.
const t1 = performance.now();
const jobs = Array.from({ length: benchOnly ? 0 : N }, (_, k) => {
  const invalidAt = INVALID > 0 ? Math.floor(N / INVALID) : Infinity;
  if (INVALID > 0 && k % invalidAt === invalidAt - 1 && Math.floor(k / invalidAt) < INVALID) {
    const [name, run, want] = INVALID_KINDS[Math.floor(k / invalidAt) % INVALID_KINDS.length]!;
    return run().then((o) => (o.status === want ? 'invalid-ok' : fail(`#${k} ${name}: HTTP ${o.status}, wanted ${want}`)));
  }
  return stream(valid(k)).then((o) => {
    if (o.status !== 200) return fail(`#${k}: HTTP ${o.status}`);
    if (o.text !== solo[k % TOPICS.length])
      return fail(
        `#${k}: output differs from its solo run:\n  solo ${JSON.stringify(solo[k % TOPICS.length])}\n  load ${JSON.stringify(o.text)}`,
      );
    return 'valid-ok';
  });
});
const results = await Promise.all(jobs);
const loadS = (performance.now() - t1) / 1000;
const count = (s: string) => results.filter((r) => r === s).length;
console.log(
  `load: ${count('valid-ok')} valid requests equal their solo output, ${count('invalid-ok')} invalid ones got their 4xx, ${count('bad')} failures, ${loadS.toFixed(1)} s`,
);
const health = await fetch(`${srv.url}/health`);
if (health.status !== 200) fail(`health after load: HTTP ${health.status}`);

// 3. Memory back to baseline.
const end = await settle();
const mib = (b: number) => (b / 1048576).toFixed(1);
console.log(`memory: heap ${mib(base.heap)} MiB before, ${mib(end.heap)} MiB after; KV bytes ${base.kv} before, ${end.kv} after`);
if (gc && end.heap > base.heap * 1.1 + 8 * 1048576) fail(`heap did not return to baseline (${mib(base.heap)} -> ${mib(end.heap)} MiB)`);
if (end.kv !== 0) fail(`KV caches still held after the load: ${end.kv} bytes`);

// 4. Aggregate throughput at 1, 4, 8 concurrent clients.
for (const c of BENCH) {
  engine.scheduler.clearPrefixCache();
  const tb = performance.now();
  const outs = await Promise.all(
    Array.from({ length: c }, (_, i) =>
      stream({ ...valid(i + 100, BENCH_TOKENS), messages: [{ role: 'user', content: `Story ${i}: ${prompt(i)}` }] }),
    ),
  );
  const s = (performance.now() - tb) / 1000;
  const toks = outs.reduce((a, o) => a + o.tokens, 0);
  console.log(
    `throughput: ${c} client(s): ${toks} tokens in ${s.toFixed(2)} s = ${(toks / s).toFixed(1)} tok/s aggregate (prefill included)`,
  );
}

await srv.close();
console.log(failures === 0 ? 'load test: PASS' : `load test: FAIL (${failures})`);
process.exit(failures === 0 ? 0 : 1);
