/**
 * The server end to end with a fake engine and the official clients (openai, @anthropic-ai/sdk) on an ephemeral
 * 127.0.0.1 port: plain/streaming chat, tools round trip, JSON-schema output, images, n > 1, usage, logprobs,
 * stop strings, cancellation, bad inputs, /health under load, /metrics, batching and prefix reuse.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import OpenAI from 'openai';
import Anthropic from '@anthropic-ai/sdk';
import { startServer, type RunningServer } from '../src/server/app.ts';
import { fakeEngine, scriptFor, tokenize } from './server-fixtures.ts';

/** temperature 0 for the Anthropic client: the API takes it, but this SDK version's request types do not list it. */
const T0 = { temperature: 0 } as object;

const PNG = Buffer.from(
  'iVBORw0KGgoAAAANSUhEUgAAAAIAAAACCAIAAAD91JpzAAAAFklEQVR4nGP8z8DAwMDAxMDAwMDAAAANHQEDasKb6QAAAABJRU5ErkJggg==',
  'base64',
);
const dataUrl = (b: Buffer) => `data:image/png;base64,${b.toString('base64')}`;

/** fetch, with the low-level cause in the message when the connection fails. */
async function fetchOrCause(url: string, init: RequestInit): Promise<Response> {
  try {
    return await fetch(url, init);
  } catch (e) {
    throw new Error(`${(e as Error).message}: ${String((e as { cause?: unknown }).cause)} (${url})`);
  }
}

describe('server with a fake engine', () => {
  let srv: RunningServer;
  let engine: ReturnType<typeof fakeEngine>;
  let openai: OpenAI;
  let anthropic: Anthropic;
  const logs: Record<string, unknown>[] = [];
  before(async () => {
    engine = fakeEngine({ parallel: 4, maxQueue: 8 });
    srv = await startServer(engine, { port: 0, apiKey: 'sk-test', log: (r) => logs.push(r), maxBodyBytes: 1024 * 1024 });
    openai = new OpenAI({ baseURL: `${srv.url}/v1`, apiKey: 'sk-test', maxRetries: 0 });
    anthropic = new Anthropic({ baseURL: srv.url, apiKey: 'sk-test', maxRetries: 0 });
  });
  after(async () => {
    await srv.close();
  });
  const post = (path: string, body: unknown, headers: Record<string, string> = {}) =>
    fetchOrCause(`${srv.url}${path}`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', authorization: 'Bearer sk-test', ...headers },
      body: typeof body === 'string' ? body : JSON.stringify(body),
    });

  test('models list', async () => {
    const list = await openai.models.list();
    assert.deepEqual(
      list.data.map((m) => m.id),
      ['fake-llama4'],
    );
  });

  test('plain chat: content, finish_reason and usage', async () => {
    const r = await openai.chat.completions.create({
      model: 'fake-llama4',
      messages: [{ role: 'user', content: 'hi there' }],
      temperature: 0,
    });
    const expected = 'Hello! You said: hi there';
    assert.equal(r.choices[0]!.message.content, expected);
    assert.equal(r.choices[0]!.finish_reason, 'stop');
    const promptTokens = tokenize('<|begin_of_text|><|header|>user\nhi there<|eot|><|header|>assistant\n', true).length;
    assert.equal(r.usage!.prompt_tokens, promptTokens);
    assert.equal(r.usage!.completion_tokens, tokenize(expected).length);
    assert.equal(r.usage!.total_tokens, promptTokens + tokenize(expected).length);
  });

  test('streaming chat equals non-streaming, with include_usage', async () => {
    const stream = await openai.chat.completions.create({
      model: 'fake-llama4',
      messages: [{ role: 'user', content: 'stream me' }],
      temperature: 0,
      stream: true,
      stream_options: { include_usage: true },
    });
    let text = '';
    let finish: string | null = null;
    let usage: OpenAI.CompletionUsage | null | undefined;
    let chunks = 0;
    for await (const ch of stream) {
      chunks++;
      if (ch.usage) usage = ch.usage;
      for (const c of ch.choices) {
        text += c.delta.content ?? '';
        finish = c.finish_reason ?? finish;
      }
    }
    assert.equal(text, 'Hello! You said: stream me');
    assert.equal(finish, 'stop');
    assert.ok(chunks > 5, `streamed in ${chunks} chunks`);
    assert.equal(usage!.completion_tokens, tokenize(text).length);
  });

  test('max_tokens ends with length; stop strings end with stop', async () => {
    const r = await openai.chat.completions.create({
      model: 'fake-llama4',
      messages: [{ role: 'user', content: 'abc' }],
      max_completion_tokens: 3,
    });
    assert.equal(r.choices[0]!.finish_reason, 'length');
    assert.equal(r.usage!.completion_tokens, 3);
    const s = await openai.chat.completions.create({
      model: 'fake-llama4',
      messages: [{ role: 'user', content: 'abc' }],
      stop: ['said'],
      temperature: 0,
    });
    assert.equal(s.choices[0]!.message.content, 'Hello! You ');
    assert.equal(s.choices[0]!.finish_reason, 'stop');
  });

  test('tool call round trip (OpenAI)', async () => {
    const tools: OpenAI.ChatCompletionTool[] = [
      {
        type: 'function',
        function: { name: 'get_weather', parameters: { type: 'object', properties: { city: { type: 'string' } }, required: ['city'] } },
      },
    ];
    const messages: OpenAI.ChatCompletionMessageParam[] = [{ role: 'user', content: 'Weather in Paris?' }];
    const r = await openai.chat.completions.create({ model: 'fake-llama4', messages, tools, temperature: 0 });
    const ch = r.choices[0]!;
    assert.equal(ch.finish_reason, 'tool_calls');
    assert.equal(ch.message.content, null);
    const call = ch.message.tool_calls![0]! as OpenAI.ChatCompletionMessageFunctionToolCall;
    assert.equal(call.function.name, 'get_weather');
    assert.deepEqual(JSON.parse(call.function.arguments), { city: 'Paris' });
    messages.push(ch.message, { role: 'tool', tool_call_id: call.id, content: 'sunny' });
    const r2 = await openai.chat.completions.create({ model: 'fake-llama4', messages, tools, temperature: 0 });
    assert.equal(r2.choices[0]!.message.content, 'The weather is sunny.');
    // Streaming: tool calls arrive as tool_calls deltas, never as raw content.
    const st = await openai.chat.completions.create({
      model: 'fake-llama4',
      messages: [{ role: 'user', content: 'again' }],
      tools,
      stream: true,
      temperature: 0,
    });
    let content = '';
    let args = '';
    let finish = '';
    for await (const c of st) {
      content += c.choices[0]?.delta.content ?? '';
      for (const t of c.choices[0]?.delta.tool_calls ?? []) args += t.function?.arguments ?? '';
      finish = c.choices[0]?.finish_reason ?? finish;
    }
    assert.equal(content, '');
    assert.deepEqual(JSON.parse(args), { city: 'Paris' });
    assert.equal(finish, 'tool_calls');
  });

  test('json_schema output parses and validates (constrained decoding)', async () => {
    const schema = {
      type: 'object',
      properties: {
        name: { type: 'string', maxLength: 6 },
        age: { type: 'integer' },
        ok: { type: 'boolean' },
        kind: { enum: ['cat', 'dog'] },
        tags: { type: 'array', items: { type: 'string', maxLength: 3 }, maxItems: 2 },
      },
      required: ['name', 'age', 'ok', 'kind', 'tags'],
      additionalProperties: false,
    };
    for (const seed of [1, 2, 3]) {
      const r = await openai.chat.completions.create({
        model: 'fake-llama4',
        messages: [{ role: 'user', content: 'give json' }],
        temperature: 1,
        seed,
        max_tokens: 200,
        response_format: { type: 'json_schema', json_schema: { name: 'person', schema, strict: true } },
      });
      const text = r.choices[0]!.message.content!;
      assert.equal(r.choices[0]!.finish_reason, 'stop', text);
      const v = JSON.parse(text) as Record<string, unknown>;
      assert.deepEqual(Object.keys(v).sort(), ['age', 'kind', 'name', 'ok', 'tags']);
      assert.equal(typeof v.name, 'string');
      assert.ok((v.name as string).length <= 6);
      assert.ok(Number.isInteger(v.age));
      assert.equal(typeof v.ok, 'boolean');
      assert.ok(['cat', 'dog'].includes(v.kind as string));
      assert.ok(Array.isArray(v.tags) && v.tags.length <= 2);
    }
    const o = await openai.chat.completions.create({
      model: 'fake-llama4',
      messages: [{ role: 'user', content: 'obj' }],
      seed: 5,
      max_tokens: 300,
      response_format: { type: 'json_object' },
    });
    if (o.choices[0]!.finish_reason === 'stop') assert.equal(typeof JSON.parse(o.choices[0]!.message.content!), 'object');
    else assert.equal(o.choices[0]!.finish_reason, 'length');
  });

  test('n > 1 and logprobs', async () => {
    const r = await openai.chat.completions.create({
      model: 'fake-llama4',
      messages: [{ role: 'user', content: 'many' }],
      n: 3,
      temperature: 2,
      seed: 7,
      logprobs: true,
      top_logprobs: 2,
      max_tokens: 8,
    });
    assert.equal(r.choices.length, 3);
    assert.deepEqual(
      r.choices.map((c) => c.index),
      [0, 1, 2],
    );
    assert.equal(
      r.usage!.completion_tokens,
      r.choices.reduce((s, c) => s + c.logprobs!.content!.length, 0),
    );
    for (const c of r.choices) {
      for (const e of c.logprobs!.content!) {
        assert.ok(e.logprob <= 0);
        assert.equal(e.top_logprobs.length, 2);
        assert.ok(e.top_logprobs[0]!.logprob >= e.top_logprobs[1]!.logprob);
      }
    }
    const texts = new Set(r.choices.map((c) => c.message.content));
    assert.ok(texts.size > 1, 'temperature 2 choices differ');
    const greedy = await openai.chat.completions.create({
      model: 'fake-llama4',
      messages: [{ role: 'user', content: 'many' }],
      n: 2,
      temperature: 0,
    });
    assert.equal(greedy.choices[0]!.message.content, 'Hello! You said: many');
    assert.equal(greedy.choices[1]!.message.content, 'Hello! You said: many');
  });

  test('images: data URL parts reach the model; bad images are 400', async () => {
    const r = await openai.chat.completions.create({
      model: 'fake-llama4',
      temperature: 0,
      messages: [
        {
          role: 'user',
          content: [
            { type: 'text', text: 'what is this?' },
            { type: 'image_url', image_url: { url: dataUrl(PNG) } },
          ],
        },
      ],
    });
    const mean = Math.round((PNG.reduce((s, b) => s + b, 0) / PNG.length / 255) * 255);
    assert.equal(r.choices[0]!.message.content, `I see 1 image(s), brightness ${mean}.`);
    const bad = await post('/v1/chat/completions', {
      model: 'fake-llama4',
      messages: [{ role: 'user', content: [{ type: 'image_url', image_url: { url: 'data:image/png;base64,aGVsbG8gd29ybGQgaGVsbG8=' } }] }],
    });
    assert.equal(bad.status, 400);
    const remote = await post('/v1/chat/completions', {
      model: 'fake-llama4',
      messages: [{ role: 'user', content: [{ type: 'image_url', image_url: { url: 'http://example.com/x.png' } }] }],
    });
    assert.equal(remote.status, 400);
    assert.match(((await remote.json()) as { error: { message: string } }).error.message, /remote image URLs are disabled/);
  });

  test('completions endpoint, plain and streaming', async () => {
    const r = await openai.completions.create({ model: 'fake-llama4', prompt: 'Once', max_tokens: 5, temperature: 0 });
    assert.equal(r.object, 'text_completion');
    assert.equal(r.choices[0]!.finish_reason, 'length');
    assert.equal(r.usage!.completion_tokens, 5);
    const st = await openai.completions.create({ model: 'fake-llama4', prompt: 'Once', max_tokens: 5, temperature: 0, stream: true });
    let t = '';
    for await (const c of st) t += c.choices[0]?.text ?? '';
    assert.equal(t, r.choices[0]!.text);
  });

  test('Anthropic messages: plain, streaming, tools with tool_result, image', async () => {
    const m = await anthropic.messages.create({
      model: 'fake-llama4',
      max_tokens: 100,
      system: 'be brief',
      messages: [{ role: 'user', content: 'hey' }],
      ...T0,
    });
    assert.deepEqual(m.content, [{ type: 'text', text: 'Hello! You said: hey' }]);
    assert.equal(m.stop_reason, 'end_turn');
    assert.equal(m.usage.output_tokens, tokenize('Hello! You said: hey').length);
    const stream = anthropic.messages.stream({
      model: 'fake-llama4',
      max_tokens: 100,
      messages: [{ role: 'user', content: 'hey' }],
      ...T0,
    });
    let deltas = 0;
    stream.on('text', () => deltas++);
    const final = await stream.finalMessage();
    assert.deepEqual(
      final.content.map((b) => (b.type === 'text' ? b.text : '')),
      ['Hello! You said: hey'],
    );
    assert.ok(deltas > 3);
    const tools: Anthropic.Tool[] = [
      { name: 'get_weather', description: 'weather', input_schema: { type: 'object', properties: { city: { type: 'string' } } } },
    ];
    const t1 = await anthropic.messages.create({
      model: 'fake-llama4',
      max_tokens: 100,
      tools,
      ...T0,
      messages: [{ role: 'user', content: 'Weather?' }],
    });
    assert.equal(t1.stop_reason, 'tool_use');
    const use = t1.content.find((b) => b.type === 'tool_use')! as Anthropic.ToolUseBlock;
    assert.deepEqual(use.input, { city: 'Paris' });
    const t2 = await anthropic.messages.create({
      model: 'fake-llama4',
      max_tokens: 100,
      tools,
      ...T0,
      messages: [
        { role: 'user', content: 'Weather?' },
        { role: 'assistant', content: t1.content },
        { role: 'user', content: [{ type: 'tool_result', tool_use_id: use.id, content: 'rainy' }] },
      ],
    });
    assert.deepEqual(t2.content, [{ type: 'text', text: 'The weather is rainy.' }]);
    const ts = anthropic.messages.stream({
      model: 'fake-llama4',
      max_tokens: 100,
      tools,
      ...T0,
      messages: [{ role: 'user', content: 'Weather?' }],
    });
    const tf = await ts.finalMessage();
    assert.equal(tf.stop_reason, 'tool_use');
    assert.deepEqual((tf.content[0] as Anthropic.ToolUseBlock).input, { city: 'Paris' });
    const img = await anthropic.messages.create({
      model: 'fake-llama4',
      max_tokens: 100,
      ...T0,
      messages: [
        {
          role: 'user',
          content: [
            { type: 'image', source: { type: 'base64', media_type: 'image/png', data: PNG.toString('base64') } },
            { type: 'text', text: 'describe' },
          ],
        },
      ],
    });
    assert.match((img.content[0] as Anthropic.TextBlock).text, /^I see 1 image\(s\)/);
  });

  test('bad inputs: each a 4xx in the API format, server keeps serving', async () => {
    const cases: [string, unknown, number, RegExp][] = [
      ['/v1/chat/completions', '{"model": "fake-llama4", "messages": [', 400, /not valid JSON/],
      ['/v1/chat/completions', [1, 2], 400, /JSON object/],
      ['/v1/chat/completions', { model: 'fake-llama4', messages: [] }, 400, /non-empty/],
      ['/v1/chat/completions', { messages: [{ role: 'user', content: 'x' }] }, 400, /'model' is required/],
      [
        '/v1/chat/completions',
        { model: 'fake-llama4', messages: [{ role: 'user', content: 'x' }], temperature: 'hot' },
        400,
        /temperature/,
      ],
      ['/v1/chat/completions', { model: 'fake-llama4', messages: [{ role: 'wizard', content: 'x' }] }, 400, /role/],
      ['/v1/chat/completions', { model: 'fake-llama4', messages: [{ role: 'user', content: 'x' }], n: 99 }, 400, /parallel/],
      ['/v1/chat/completions', { model: 'fake-llama4', messages: [{ role: 'user', content: 'x'.repeat(5000) }] }, 400, /context/],
      [
        '/v1/chat/completions',
        {
          model: 'fake-llama4',
          messages: [{ role: 'user', content: 'x' }],
          response_format: { type: 'json_schema', json_schema: { name: 'x', schema: { type: 'object', patternProperties: {} } } },
        },
        400,
        /patternProperties/,
      ],
      ['/v1/chat/completions', { model: 'fake-llama4', messages: [{ role: 'user', content: 'x' }], top_logprobs: 3 }, 400, /logprobs/],
      ['/v1/completions', { model: 'fake-llama4', prompt: 42 }, 400, /prompt/],
      ['/v1/completions', { model: 'fake-llama4', prompt: 'y'.repeat(4096 * 33) }, 400, /characters/],
      ['/v1/messages', { model: 'fake-llama4', messages: [{ role: 'user', content: 'x' }] }, 400, /max_tokens/],
      [
        '/v1/messages',
        {
          model: 'fake-llama4',
          max_tokens: 5,
          messages: [{ role: 'user', content: [{ type: 'image', source: { type: 'base64', media_type: 'image/png', data: '!!!' } }] }],
        },
        400,
        /base64/,
      ],
    ];
    for (const [path, body, status, msg] of cases) {
      const r = await post(path, body);
      assert.equal(r.status, status, `${path} ${JSON.stringify(body).slice(0, 80)}`);
      const j = (await r.json()) as { error: { message: string; type: string }; type?: string };
      assert.match(j.error.message, msg);
      if (path === '/v1/messages') assert.equal(j.type, 'error');
      else assert.ok(j.error.type);
    }
    const big = await post('/v1/chat/completions', {
      model: 'fake-llama4',
      messages: [{ role: 'user', content: 'x'.repeat(2 * 1024 * 1024) }],
    });
    assert.equal(big.status, 413);
    const noKey = await fetch(`${srv.url}/v1/models`);
    assert.equal(noKey.status, 401);
    const wrongKey = await fetch(`${srv.url}/v1/messages`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', 'x-api-key': 'nope' },
      body: JSON.stringify({ model: 'fake-llama4', max_tokens: 5, messages: [{ role: 'user', content: 'x' }] }),
    });
    assert.equal(wrongKey.status, 401);
    assert.equal(((await wrongKey.json()) as { error: { type: string } }).error.type, 'authentication_error');
    await assert.rejects(
      new OpenAI({ baseURL: `${srv.url}/v1`, apiKey: 'bad', maxRetries: 0 }).models.list(),
      (e: unknown) => e instanceof OpenAI.AuthenticationError,
    );
    const ok = await openai.chat.completions.create({
      model: 'fake-llama4',
      messages: [{ role: 'user', content: 'still there?' }],
      temperature: 0,
    });
    assert.equal(ok.choices[0]!.message.content, 'Hello! You said: still there?');
    // One model served: any model name is accepted (as llama-server) and echoed back.
    const other = await openai.chat.completions.create({
      model: 'gpt-4o-mini',
      messages: [{ role: 'user', content: 'any name' }],
      temperature: 0,
    });
    assert.equal(other.model, 'gpt-4o-mini');
    assert.equal(other.choices[0]!.message.content, 'Hello! You said: any name');
  });

  test('cancellation: a disconnected client frees its slot', async () => {
    const ac = new AbortController();
    const stream = await openai.chat.completions.create(
      { model: 'fake-llama4', messages: [{ role: 'user', content: 'long story' }], stream: true, max_tokens: 50000 },
      { signal: ac.signal },
    );
    let n = 0;
    try {
      for await (const _ of stream) if (++n === 5) ac.abort();
    } catch {
      /* the client reports the abort */
    }
    assert.equal(n, 5);
    const t0 = Date.now();
    while (engine.scheduler.stats().active > 0 && Date.now() - t0 < 10000) await new Promise((r) => setTimeout(r, 10));
    assert.equal(engine.scheduler.stats().active, 0);
    await new Promise((r) => setTimeout(r, 20));
    const rec = logs.find((l) => l.cancelled === true);
    assert.ok(rec, 'the request log marks the cancelled request');
    assert.ok((rec.completion_tokens as number) < 50000);
  });

  test('queue full answers 429 with Retry-After; /health answers while generating', async () => {
    engine.model.delayMs = 5;
    const ac = new AbortController();
    const load = Array.from({ length: 16 }, () =>
      post('/v1/completions', { model: 'fake-llama4', prompt: 'Once', max_tokens: 60, stream: true }).then(async (r) => {
        if (r.status === 200) {
          const reader = r.body!.getReader();
          while (!(await reader.read()).done) {
            /* drain */
          }
        } else await r.text();
        return r;
      }),
    );
    await new Promise((r) => setTimeout(r, 30));
    const t0 = performance.now();
    const h = await fetch(`${srv.url}/health`);
    const healthMs = performance.now() - t0;
    assert.equal(h.status, 200);
    const hj = (await h.json()) as { active: number };
    assert.ok(hj.active > 0, 'the model was generating');
    assert.ok(healthMs < 1500, `health took ${healthMs} ms`);
    const rs = await Promise.all(load);
    ac.abort();
    engine.model.delayMs = 0;
    const statuses = rs.map((r) => r.status);
    assert.ok(statuses.includes(429), `statuses ${statuses}`);
    // At most parallel 4 + queue 8 are held at once; a slow machine may free a slot before the last requests
    // arrive, so more than 12 can be served in total, never fewer.
    assert.ok(statuses.filter((s) => s === 200).length >= 12, `parallel 4 + queue 8 served: ${statuses}`);
    assert.ok(
      statuses.every((s) => s === 200 || s === 429),
      `statuses ${statuses}`,
    );
    const r429 = rs.find((r) => r.status === 429)!;
    assert.ok(Number(r429.headers.get('retry-after')) >= 1);
  });

  test('continuous batching: concurrent requests share forward calls and match their solo outputs', async () => {
    const prompts = ['alpha', 'bravo charlie', 'delta', 'echo foxtrot golf'];
    const before = engine.model.batchSizes.length;
    const outs = await Promise.all(
      prompts.map((p) =>
        openai.chat.completions.create({ model: 'fake-llama4', messages: [{ role: 'user', content: p }], temperature: 0 }),
      ),
    );
    const sizes = engine.model.batchSizes.slice(before);
    assert.ok(Math.max(...sizes) >= 2, `batch sizes ${sizes}`);
    outs.forEach((o, i) =>
      assert.equal(
        o.choices[0]!.message.content,
        scriptFor(tokenize(`<|header|>user\n${prompts[i]}<|eot|><|header|>assistant\n`, true), []),
      ),
    );
  });

  test('prefix reuse: a shared prompt prefix is not recomputed', async () => {
    const sys = 'You are a helpful assistant that answers briefly. '.repeat(3);
    await openai.chat.completions.create({
      model: 'fake-llama4',
      messages: [
        { role: 'system', content: sys },
        { role: 'user', content: 'one' },
      ],
      temperature: 0,
    });
    const r = await openai.chat.completions.create({
      model: 'fake-llama4',
      messages: [
        { role: 'system', content: sys },
        { role: 'user', content: 'two' },
      ],
      temperature: 0,
    });
    assert.equal(r.choices[0]!.message.content, 'Hello! You said: two');
    assert.ok(r.usage!.prompt_tokens_details!.cached_tokens! > 50, `cached ${r.usage!.prompt_tokens_details!.cached_tokens}`);
  });

  test('metrics in Prometheus text, structured logs', async () => {
    const m = await fetch(`${srv.url}/metrics`, { headers: { authorization: 'Bearer sk-test' } });
    const text = await m.text();
    assert.match(text, /# TYPE llama4_requests_total counter/);
    assert.match(text, /llama4_requests_total\{route="\/v1\/chat\/completions",status="200"\} \d+/);
    assert.match(text, /llama4_request_duration_seconds_bucket\{route="\/v1\/chat\/completions",le="\+Inf"\} \d+/);
    assert.match(text, /llama4_queue_depth 0/);
    assert.match(text, /llama4_generation_tokens_total \d+/);
    const rec = logs.find((l) => l.path === '/v1/chat/completions' && l.status === 200)!;
    assert.equal(typeof rec.ms, 'number');
    assert.equal(typeof rec.prompt_tokens, 'number');
  });
});

test('engines without a streaming tool-call parser buffer the output and still answer with tool_calls', async () => {
  const srv = await startServer(fakeEngine({ streamToolCalls: false }), { port: 0, log: () => undefined });
  try {
    const openai = new OpenAI({ baseURL: `${srv.url}/v1`, apiKey: 'none', maxRetries: 0 });
    const tools: OpenAI.ChatCompletionTool[] = [{ type: 'function', function: { name: 'get_weather', parameters: { type: 'object' } } }];
    const st = await openai.chat.completions.create({
      model: 'fake-llama4',
      messages: [{ role: 'user', content: 'w?' }],
      tools,
      stream: true,
      temperature: 0,
    });
    let content = '';
    const calls: string[] = [];
    for await (const c of st) {
      content += c.choices[0]?.delta.content ?? '';
      for (const t of c.choices[0]?.delta.tool_calls ?? []) calls.push(`${t.function?.name}:${t.function?.arguments}`);
    }
    assert.equal(content, '');
    assert.deepEqual(calls, ['get_weather:{"city":"Paris"}']);
    // Prose with tools offered (the fake model answers a tool result in prose): buffered, then sent whole.
    const plain = await openai.chat.completions.create({
      model: 'fake-llama4',
      tools,
      stream: true,
      temperature: 0,
      messages: [
        { role: 'user', content: 'w?' },
        { role: 'assistant', tool_calls: [{ id: 'c1', type: 'function', function: { name: 'get_weather', arguments: '{}' } }] },
        { role: 'tool', tool_call_id: 'c1', content: 'cold' },
      ],
    });
    let text = '';
    for await (const c of plain) text += c.choices[0]?.delta.content ?? '';
    assert.equal(text, 'The weather is cold.');
  } finally {
    await srv.close();
  }
});

test('remote image URLs only with the flag, with size limits', async () => {
  const { createServer } = await import('node:http');
  const big = Buffer.concat([PNG, Buffer.alloc(4096)]);
  const files = createServer((req, res) => {
    res.writeHead(200, { 'content-type': 'image/png' });
    res.end(req.url === '/big.png' ? big : PNG);
  });
  await new Promise<void>((r) => files.listen(0, '127.0.0.1', r));
  const base = `http://127.0.0.1:${(files.address() as { port: number }).port}`;
  const srv = await startServer(fakeEngine(), {
    port: 0,
    log: () => undefined,
    images: { allowRemote: true, maxBytes: 1024, timeoutMs: 2000, allowAddress: (ip) => ip === '127.0.0.1' },
  }); // loopback stands in for a public host (test/server-hostile.test.ts: it is refused by default)
  try {
    const openai = new OpenAI({ baseURL: `${srv.url}/v1`, apiKey: 'none', maxRetries: 0 });
    const r = await openai.chat.completions.create({
      model: 'fake-llama4',
      temperature: 0,
      messages: [{ role: 'user', content: [{ type: 'image_url', image_url: { url: `${base}/x.png` } }] }],
    });
    assert.match(r.choices[0]!.message.content!, /^I see 1 image\(s\)/);
    await assert.rejects(
      openai.chat.completions.create({
        model: 'fake-llama4',
        messages: [{ role: 'user', content: [{ type: 'image_url', image_url: { url: `${base}/big.png` } }] }],
      }),
      (e: unknown) => e instanceof OpenAI.APIError && e.status === 413,
    );
  } finally {
    await srv.close();
    files.close();
  }
});

test('tool_choice required / a named tool / Anthropic any are enforced by constrained decoding', async () => {
  const srv = await startServer(fakeEngine(), { port: 0, log: () => undefined });
  try {
    const openai = new OpenAI({ baseURL: `${srv.url}/v1`, apiKey: 'none', maxRetries: 0 });
    const params = {
      type: 'object',
      properties: { city: { type: 'string', maxLength: 8 } },
      required: ['city'],
      additionalProperties: false,
    };
    const tools: OpenAI.ChatCompletionTool[] = [
      { type: 'function', function: { name: 'get_weather', parameters: params } },
      { type: 'function', function: { name: 'get_time', parameters: { type: 'object', properties: {} } } },
    ];
    // This conversation makes the fake model answer in prose; a required call must come out anyway.
    const messages: OpenAI.ChatCompletionMessageParam[] = [
      { role: 'user', content: 'w?' },
      { role: 'assistant', tool_calls: [{ id: 'c1', type: 'function', function: { name: 'get_weather', arguments: '{}' } }] },
      { role: 'tool', tool_call_id: 'c1', content: 'cold' },
    ];
    const free = await openai.chat.completions.create({ model: 'fake-llama4', messages, tools, temperature: 0 });
    assert.equal(free.choices[0]!.message.content, 'The weather is cold.');
    for (const tool_choice of ['required', { type: 'function', function: { name: 'get_time' } }] as const) {
      const r = await openai.chat.completions.create({
        model: 'fake-llama4',
        messages,
        tools,
        tool_choice,
        temperature: 0,
        max_tokens: 80,
      });
      const ch = r.choices[0]!;
      assert.equal(ch.finish_reason, 'tool_calls', JSON.stringify(ch.message));
      const call = ch.message.tool_calls![0]! as OpenAI.ChatCompletionMessageFunctionToolCall;
      if (typeof tool_choice === 'object') assert.equal(call.function.name, 'get_time');
      else assert.ok(['get_weather', 'get_time'].includes(call.function.name));
      const args = JSON.parse(call.function.arguments) as Record<string, unknown>;
      if (call.function.name === 'get_weather') assert.ok(typeof args.city === 'string' && args.city.length <= 8);
    }
    const anthropic = new Anthropic({ baseURL: srv.url, apiKey: 'none', maxRetries: 0 });
    const m = await anthropic.messages.create({
      model: 'fake-llama4',
      max_tokens: 80,
      ...T0,
      tool_choice: { type: 'any' },
      tools: [{ name: 'get_weather', input_schema: params as Anthropic.Tool.InputSchema }],
      messages: [
        { role: 'user', content: 'w?' },
        { role: 'assistant', content: [{ type: 'tool_use', id: 'toolu_1', name: 'get_weather', input: {} }] },
        { role: 'user', content: [{ type: 'tool_result', tool_use_id: 'toolu_1', content: 'cold' }] },
      ],
    });
    assert.equal(m.stop_reason, 'tool_use');
    assert.equal((m.content.find((b) => b.type === 'tool_use') as Anthropic.ToolUseBlock).name, 'get_weather');
  } finally {
    await srv.close();
  }
});
