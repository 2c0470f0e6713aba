/**
 * The APIs beside chat completions, with the fake engine (its answers are scripts, so they are checkable exactly)
 * and the real clients where one exists: the Responses API (openai.responses: text, streaming events, instructions,
 * tools, function_call_output, previous_response_id, retrieve/delete, the store's bounds), the Ollama API (the
 * `ollama` client: list, show, chat streaming and not, generate, embed, options mapping, errors), embeddings
 * (openai.embeddings: float and base64, batches, token ids, dimensions refused), llama-server utilities, CORS,
 * --alias, logit_bias (map and list forms), tool calls limited to declared tools, parallel_tool_calls: false.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import OpenAI from 'openai';
import { Ollama } from 'ollama';
import { startServer, type RunningServer } from '../src/server/app.ts';
import { ResponseStore } from '../src/server/responses.ts';
import { DEFAULT_CORS_ORIGINS, originMatcher } from '../src/server/cors.ts';
import { fakeEngine, tokenize, VOCAB } from './server-fixtures.ts';

const KEY = 'sk-apis';
const PNG = Buffer.from(
  'iVBORw0KGgoAAAANSUhEUgAAAAIAAAACCAIAAAD91JpzAAAAFklEQVR4nGP8z8DAwMDAxMDAwMDAAAANHQEDasKb6QAAAABJRU5ErkJggg==',
  'base64',
);

describe('server APIs with a fake engine', () => {
  let srv: RunningServer;
  let openai: OpenAI;
  let ollama: Ollama;
  const engine = fakeEngine({ parallel: 4 });
  before(async () => {
    srv = await startServer(engine, { port: 0, apiKey: KEY, log: () => undefined, alias: 'my-model' });
    openai = new OpenAI({ baseURL: `${srv.url}/v1`, apiKey: KEY, maxRetries: 0 });
    ollama = new Ollama({ host: srv.url, headers: { authorization: `Bearer ${KEY}` } });
  });
  after(() => srv.close());
  const post = (path: string, body: unknown, headers: Record<string, string> = {}) =>
    fetch(`${srv.url}${path}`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', authorization: `Bearer ${KEY}`, ...headers },
      body: JSON.stringify(body),
    });
  const chat = async (body: Record<string, unknown>) => {
    const r = await post('/v1/chat/completions', { model: 'x', temperature: 0, ...body });
    assert.equal(r.status, 200, await r.clone().text());
    return (await r.json()) as {
      choices: {
        message: { content: string | null; tool_calls?: { function: { name: string; arguments: string } }[] };
        finish_reason: string;
      }[];
    };
  };

  test('Responses API: text, usage, instructions, any model name, retrieve and delete', async () => {
    const r = await openai.responses.create({ model: 'gpt-4o-mini', input: 'hi there', temperature: 0 });
    assert.equal(r.output_text, 'Hello! You said: hi there');
    assert.equal(r.status, 'completed');
    assert.equal(r.model, 'gpt-4o-mini');
    const prompt = tokenize('<|begin_of_text|><|header|>user\nhi there<|eot|><|header|>assistant\n', true).length;
    assert.equal(r.usage!.input_tokens, prompt);
    assert.equal(r.usage!.output_tokens, tokenize('Hello! You said: hi there').length);
    // instructions become the system turn: the prompt grows by exactly that message.
    const withSys = await openai.responses.create({
      model: 'm',
      input: [{ role: 'user', content: [{ type: 'input_text', text: 'hi there' }] }],
      instructions: 'Be nice',
      temperature: 0,
    });
    assert.equal(withSys.usage!.input_tokens, prompt + tokenize('<|header|>system\nBe nice<|eot|>', true).length);
    const got = await openai.responses.retrieve(r.id);
    assert.equal(got.id, r.id);
    assert.equal(
      (got as { output_text?: string }).output_text ??
        got.output
          .map((o) => (o.type === 'message' ? o.content.map((c) => (c.type === 'output_text' ? c.text : '')).join('') : ''))
          .join(''),
      'Hello! You said: hi there',
    );
    // item_reference: a stored output item stands for the assistant turn (the AI SDK sends these with store: true).
    const ref = await openai.responses.create({
      model: 'm',
      temperature: 0,
      input: [
        { role: 'user', content: 'hi there' },
        { type: 'item_reference', id: r.output[0]!.id! },
        { role: 'user', content: 'again' },
      ],
    });
    assert.equal(ref.output_text, 'Hello! You said: again');
    const full = await openai.responses.create({
      model: 'm',
      temperature: 0,
      input: [
        { role: 'user', content: 'hi there' },
        { role: 'assistant', content: 'Hello! You said: hi there' },
        { role: 'user', content: 'again' },
      ],
    });
    assert.equal(ref.usage!.input_tokens, full.usage!.input_tokens, 'the reference expands to the same turn');
    await openai.responses.delete(r.id);
    await assert.rejects(
      openai.responses.create({ model: 'm', input: [{ type: 'item_reference', id: r.output[0]!.id! }] }),
      OpenAI.NotFoundError,
      'deleted with its response',
    );
    for (let i = 0; i < 3; i++) await openai.responses.retrieve(`resp_random${i}`).catch(() => undefined);
    const metrics = await (await fetch(`${srv.url}/metrics`, { headers: { authorization: `Bearer ${KEY}` } })).text();
    assert.ok(
      metrics.includes('route="/v1/responses/:id"') && !metrics.includes('resp_random'),
      'metrics label the route pattern, not the id',
    );
    await assert.rejects(openai.responses.retrieve(r.id), (e: unknown) => e instanceof OpenAI.NotFoundError);
    const short = await openai.responses.create({ model: 'm', input: 'hi there', max_output_tokens: 3, temperature: 0 });
    assert.equal(short.status, 'incomplete');
    assert.equal(short.incomplete_details?.reason, 'max_output_tokens');
  });

  test('Responses API streaming: the semantic events in order, deltas add up to the text', async () => {
    const stream = await openai.responses.create({ model: 'm', input: 'stream me', temperature: 0, stream: true });
    const types: string[] = [];
    let text = '';
    let seq = -1;
    let completed: OpenAI.Responses.Response | null = null;
    for await (const ev of stream) {
      types.push(ev.type);
      assert.equal(ev.sequence_number, seq + 1, 'sequence numbers count up');
      seq = ev.sequence_number;
      if (ev.type === 'response.output_text.delta') text += ev.delta;
      if (ev.type === 'response.completed') completed = ev.response;
    }
    assert.equal(text, 'Hello! You said: stream me');
    const head = ['response.created', 'response.in_progress', 'response.output_item.added', 'response.content_part.added'];
    assert.deepEqual(types.slice(0, 4), head);
    assert.deepEqual(types.slice(-4), [
      'response.output_text.done',
      'response.content_part.done',
      'response.output_item.done',
      'response.completed',
    ]);
    assert.ok(completed);
    assert.equal(completed.usage!.output_tokens, tokenize(text).length);
  });

  test('Responses API: a function call, its output through previous_response_id, streaming calls', async () => {
    const tools: OpenAI.Responses.Tool[] = [
      {
        type: 'function',
        name: 'get_weather',
        description: 'Weather',
        parameters: { type: 'object', properties: { city: { type: 'string' } }, required: ['city'] },
        strict: false,
      },
    ];
    const r1 = await openai.responses.create({ model: 'm', input: 'weather in Paris?', tools, temperature: 0 });
    const call = r1.output.find((o) => o.type === 'function_call');
    assert.ok(call && call.type === 'function_call', JSON.stringify(r1.output));
    assert.equal(call.name, 'get_weather');
    assert.deepEqual(JSON.parse(call.arguments), { city: 'Paris' });
    const r2 = await openai.responses.create({
      model: 'm',
      previous_response_id: r1.id,
      input: [{ type: 'function_call_output', call_id: call.call_id, output: 'sunny' }],
      tools,
      temperature: 0,
    });
    assert.equal(r2.output_text, 'The weather is sunny.');
    // The same conversation sent in full (no stored response) gives the same answer.
    const r3 = await openai.responses.create({
      model: 'm',
      store: false,
      input: [
        { role: 'user', content: 'weather in Paris?' },
        { type: 'function_call', call_id: 'c1', name: 'get_weather', arguments: '{"city":"Paris"}' },
        { type: 'function_call_output', call_id: 'c1', output: 'rainy' },
      ],
      tools,
      temperature: 0,
    });
    assert.equal(r3.output_text, 'The weather is rainy.');
    await assert.rejects(openai.responses.retrieve(r3.id), (e: unknown) => e instanceof OpenAI.NotFoundError, 'store: false keeps nothing');
    // Streaming: the call arrives as output_item.added / arguments delta / done.
    const stream = await openai.responses.create({ model: 'm', input: 'weather?', tools, temperature: 0, stream: true });
    const evs: OpenAI.Responses.ResponseStreamEvent[] = [];
    for await (const ev of stream) evs.push(ev);
    const args = evs
      .filter((e) => e.type === 'response.function_call_arguments.delta')
      .map((e) => (e as { delta: string }).delta)
      .join('');
    assert.deepEqual(JSON.parse(args), { city: 'Paris' });
    const done = evs.find((e) => e.type === 'response.function_call_arguments.done') as { name?: string; arguments: string };
    assert.equal(done.arguments, args);
    assert.ok(evs.some((e) => e.type === 'response.output_item.added' && e.item.type === 'function_call' && e.item.name === 'get_weather'));
    assert.equal(evs[evs.length - 1]!.type, 'response.completed');
    // A missing previous response is a 404 in OpenAI's format.
    await assert.rejects(
      openai.responses.create({ model: 'm', previous_response_id: 'resp_nope', input: 'x' }),
      (e: unknown) => e instanceof OpenAI.NotFoundError && /not found/.test((e as Error).message),
    );
    // Wrong types are 400s naming the field; unknown fields are ignored.
    await assert.rejects(
      openai.responses.create({ model: 'm', input: 'x', temperature: 'hot' as unknown as number }),
      (e: unknown) => e instanceof OpenAI.BadRequestError && /temperature/.test((e as Error).message),
    );
    const unknown = await post('/v1/responses', { model: 'm', input: 'hi', temperature: 0, some_future_field: { a: 1 } });
    assert.equal(unknown.status, 200);
    const bad = await post('/v1/responses', { model: 'm', input: 'hi', tools: [{ type: 'web_search' }] });
    assert.equal(bad.status, 400);
    assert.match(((await bad.json()) as { error: { message: string } }).error.message, /only function tools/);
  });

  test('Responses API: json_schema text format, images', async () => {
    const r = await openai.responses.create({
      model: 'm',
      input: 'give json',
      temperature: 0,
      max_output_tokens: 60,
      text: {
        format: {
          type: 'json_schema',
          name: 'x',
          strict: true,
          schema: { type: 'object', properties: { ok: { type: 'boolean' } }, required: ['ok'], additionalProperties: false },
        },
      },
    });
    assert.equal(typeof (JSON.parse(r.output_text) as { ok: boolean }).ok, 'boolean');
    const img = await openai.responses.create({
      model: 'm',
      temperature: 0,
      input: [
        {
          role: 'user',
          content: [
            { type: 'input_image', image_url: `data:image/png;base64,${PNG.toString('base64')}`, detail: 'auto' },
            { type: 'input_text', text: 'what?' },
          ],
        },
      ],
    });
    assert.match(img.output_text, /^I see 1 image\(s\)/);
  });

  test('the response store is bounded in count and age', async () => {
    const s = new ResponseStore({ maxCount: 2, maxAgeS: 3600 });
    for (const id of ['a', 'b', 'c'])
      s.put(id, { id, output: [{ id: `item_${id}` }] }, [{ role: 'user', content: [{ type: 'text', text: id }] }]);
    assert.equal(s.size, 2);
    assert.equal(s.get('a'), undefined, 'the oldest went first');
    assert.equal(s.item('item_a'), undefined, 'with its items');
    assert.ok(s.get('c') && s.item('item_c'));
    const aged = new ResponseStore({ maxAgeS: 0 });
    aged.put('x', { id: 'x', output: [] }, []);
    await new Promise((r) => setTimeout(r, 5));
    assert.equal(aged.get('x'), undefined);
    const small = new ResponseStore({ maxBytes: 100 });
    small.put('big', { id: 'big', output: [] }, [{ role: 'user', content: [{ type: 'text', text: 'x'.repeat(200) }] }]);
    assert.equal(small.size, 0, 'over the byte bound');
  });

  test('Ollama API through the ollama client: list, show, ps, version, chat, generate, embed', async () => {
    const list = await ollama.list();
    assert.deepEqual(
      list.models.map((m) => m.name),
      ['my-model'],
    );
    const show = await ollama.show({ model: 'my-model' });
    assert.ok(show.capabilities.includes('tools'));
    assert.equal((show.model_info as unknown as Record<string, unknown>)['fake.context_length'], 4096);
    assert.equal((await ollama.ps()).models.length, 1);
    assert.ok((await ollama.version()).version);
    const c = await ollama.chat({
      model: 'llama3',
      messages: [{ role: 'user', content: 'hi ollama' }],
      options: { temperature: 0 },
      stream: false,
    });
    assert.equal(c.message.content, 'Hello! You said: hi ollama');
    assert.equal(c.done_reason, 'stop');
    assert.equal(c.eval_count, tokenize('Hello! You said: hi ollama').length);
    let streamed = '';
    let last: { done: boolean; done_reason?: string } | null = null;
    for await (const part of await ollama.chat({
      model: 'x',
      messages: [{ role: 'user', content: 'hi ollama' }],
      options: { temperature: 0 },
      stream: true,
    })) {
      streamed += part.message.content;
      last = part;
    }
    assert.equal(streamed, 'Hello! You said: hi ollama');
    assert.equal(last?.done, true);
    // options: num_predict and stop map onto the request.
    const short = await ollama.chat({
      model: 'x',
      messages: [{ role: 'user', content: 'hi ollama' }],
      options: { temperature: 0, num_predict: 3 },
      stream: false,
    });
    assert.equal(short.done_reason, 'length');
    assert.equal(short.eval_count, 3);
    const stopped = await ollama.chat({
      model: 'x',
      messages: [{ role: 'user', content: 'hi ollama' }],
      options: { temperature: 0, stop: ['said'] },
      stream: false,
    });
    assert.equal(stopped.message.content, 'Hello! You ');
    const g = await ollama.generate({ model: 'x', prompt: 'hi gen', system: 'sys', options: { temperature: 0 }, stream: false });
    assert.equal(g.response, 'Hello! You said: hi gen');
    let gs = '';
    for await (const part of await ollama.generate({ model: 'x', prompt: 'hi gen', options: { temperature: 0 }, stream: true }))
      gs += part.response;
    assert.equal(gs, 'Hello! You said: hi gen');
    // raw: a plain completion of the text, as /v1/completions gives it.
    const raw = await ollama.generate({
      model: 'x',
      prompt: 'Once',
      raw: true,
      options: { temperature: 0, num_predict: 5 },
      stream: false,
    });
    const viaOpenai = await openai.completions.create({ model: 'x', prompt: 'Once', max_tokens: 5, temperature: 0 });
    assert.equal(raw.response, viaOpenai.choices[0]!.text);
    assert.equal(raw.eval_count, 5);
    // tools: the call comes back with object arguments; images: base64 strings.
    const t = await ollama.chat({
      model: 'x',
      messages: [{ role: 'user', content: 'weather?' }],
      tools: [
        {
          type: 'function',
          function: {
            name: 'get_weather',
            description: 'w',
            parameters: { type: 'object', properties: { city: { type: 'string' } }, required: ['city'] },
          },
        },
      ],
      options: { temperature: 0 },
      stream: false,
    });
    assert.deepEqual(
      t.message.tool_calls?.map((x) => [x.function.name, x.function.arguments]),
      [['get_weather', { city: 'Paris' }]],
    );
    const streamedCalls: unknown[] = [];
    let streamedText = '';
    for await (const part of await ollama.chat({
      model: 'x',
      messages: [{ role: 'user', content: 'weather?' }],
      tools: [
        {
          type: 'function',
          function: {
            name: 'get_weather',
            description: 'w',
            parameters: { type: 'object', properties: { city: { type: 'string' } }, required: ['city'] },
          },
        },
      ],
      options: { temperature: 0 },
      stream: true,
    })) {
      streamedText += part.message.content;
      for (const tc of part.message.tool_calls ?? []) streamedCalls.push([tc.function.name, tc.function.arguments]);
    }
    assert.deepEqual(streamedCalls, [['get_weather', { city: 'Paris' }]]);
    assert.equal(streamedText, '', 'the call text is not streamed as content');
    const im = await ollama.chat({
      model: 'x',
      messages: [{ role: 'user', content: 'see', images: [PNG.toString('base64')] }],
      options: { temperature: 0 },
      stream: false,
    });
    assert.match(im.message.content, /^I see 1 image\(s\)/);
    // format: "json" gives parseable JSON (constrained decoding).
    const j = await ollama.chat({
      model: 'x',
      messages: [{ role: 'user', content: 'json' }],
      format: { type: 'object', properties: { ok: { type: 'boolean' } }, required: ['ok'], additionalProperties: false },
      options: { temperature: 0, num_predict: 40 },
      stream: false,
    });
    assert.equal(typeof (JSON.parse(j.message.content) as { ok: boolean }).ok, 'boolean');
    const e = await ollama.embed({ model: 'x', input: ['alpha', 'beta', 'alpha'] });
    assert.equal(e.embeddings.length, 3);
    assert.equal(e.embeddings[0]!.length, 8);
    assert.deepEqual(e.embeddings[0], e.embeddings[2]);
    assert.notDeepEqual(e.embeddings[0], e.embeddings[1]);
    assert.ok(Math.abs(Math.hypot(...e.embeddings[1]!) - 1) < 1e-6, 'unit length');
    // Ollama truncates inputs longer than the context by default; truncate: false refuses them.
    const long = 'ab '.repeat(3000);
    assert.equal((await ollama.embed({ model: 'x', input: long })).embeddings[0]!.length, 8);
    await assert.rejects(ollama.embed({ model: 'x', input: long, truncate: false }), /context holds 4096/);
    const legacy = await ollama.embeddings({ model: 'x', prompt: 'alpha' });
    assert.deepEqual(legacy.embedding, e.embeddings[0]);
    // Errors: Ollama's {"error"} with the field named.
    await assert.rejects(
      ollama.chat({ model: 'x', messages: [{ role: 'user', content: 'x' }], options: { temperature: 'hot' as unknown as number } }),
      /options\.temperature/,
    );
    const load = await post('/api/chat', { model: 'x', messages: [] });
    assert.equal(((await load.json()) as { done_reason: string }).done_reason, 'load', 'an empty chat loads the model, as Ollama');
    const r = await post('/api/chat', { model: 'x', messages: 'nope' });
    assert.equal(r.status, 400);
    assert.match(((await r.json()) as { error: string }).error, /messages/);
  });

  test('embeddings: float and base64 (the openai client default), batches, token ids, dimensions refused', async () => {
    const a = await openai.embeddings.create({ model: 'text-embedding-3-small', input: ['alpha', 'beta'] });
    assert.equal(a.data.length, 2);
    assert.equal(a.data[0]!.embedding.length, 8);
    assert.ok(Math.abs(Math.hypot(...a.data[0]!.embedding) - 1) < 1e-6);
    const f = await openai.embeddings.create({ model: 'm', input: 'alpha', encoding_format: 'float' });
    assert.deepEqual(f.data[0]!.embedding, a.data[0]!.embedding);
    const ollamaVec = (await ollama.embed({ model: 'x', input: 'alpha' })).embeddings[0]!;
    assert.deepEqual(f.data[0]!.embedding, ollamaVec);
    // Token ids: the same ids as the text (BOS + tokens) give the same vector.
    const ids = [0, ...tokenize('alpha')];
    const t = await openai.embeddings.create({ model: 'm', input: ids, encoding_format: 'float' });
    assert.deepEqual(t.data[0]!.embedding, f.data[0]!.embedding);
    const tt = await openai.embeddings.create({ model: 'm', input: [ids, ids], encoding_format: 'float' });
    assert.equal(tt.data.length, 2);
    assert.equal(a.usage.prompt_tokens, 2 + tokenize('alpha').length + tokenize('beta').length);
    await assert.rejects(
      openai.embeddings.create({ model: 'm', input: 'x', dimensions: 4 }),
      (e: unknown) => e instanceof OpenAI.BadRequestError && /dimensions/.test((e as Error).message),
    );
    await assert.rejects(
      openai.embeddings.create({ model: 'm', input: [99999] }),
      (e: unknown) => e instanceof OpenAI.BadRequestError && /vocabulary/.test((e as Error).message),
    );
    await assert.rejects(openai.embeddings.create({ model: 'm', input: [] as string[] }), OpenAI.BadRequestError);
  });

  test('llama-server utilities: tokenize, detokenize, apply-template, props, models with capabilities, alias', async () => {
    const tok = (await (await post('/tokenize', { content: 'Hello the' })).json()) as { tokens: number[] };
    assert.deepEqual(tok.tokens, tokenize('Hello the'));
    const pieces = (await (await post('/tokenize', { content: 'Hello the', with_pieces: true, add_special: true })).json()) as {
      tokens: { id: number; piece: string }[];
    };
    assert.deepEqual(
      pieces.tokens.map((p) => p.piece),
      ['<|begin_of_text|>', 'Hello', ' the'],
    );
    const det = (await (await post('/detokenize', { tokens: tok.tokens })).json()) as { content: string };
    assert.equal(det.content, 'Hello the');
    const tpl = (await (await post('/apply-template', { messages: [{ role: 'user', content: 'hi' }] })).json()) as { prompt: string };
    assert.equal(tpl.prompt, '<|begin_of_text|><|header|>user\nhi<|eot|><|header|>assistant\n');
    const props = (await (await fetch(`${srv.url}/props`, { headers: { authorization: `Bearer ${KEY}` } })).json()) as Record<
      string,
      unknown
    >;
    assert.equal(props.n_ctx, 4096);
    assert.equal(props.model_alias, 'my-model');
    assert.ok(String(props.build_info).startsWith('llama4-ts '));
    assert.equal(props.bos_token, '<|begin_of_text|>');
    const models = await openai.models.list();
    const m = models.data[0] as unknown as { id: string; context_length: number; capabilities: string[] };
    assert.equal(m.id, 'my-model');
    assert.equal(m.context_length, 4096);
    assert.deepEqual(m.capabilities.sort(), ['chat', 'completion', 'embeddings', 'tools', 'vision']);
    const bad = await post('/detokenize', { tokens: [1, 'x'] });
    assert.equal(bad.status, 400);
    assert.match(((await bad.json()) as { error: { message: string } }).error.message, /tokens\[1\]/);
    const noKey = await fetch(`${srv.url}/tokenize`, { method: 'POST', body: '{"content":"x"}' });
    assert.equal(noKey.status, 401, 'utility routes need the key too');
  });

  test('CORS: loopback origins allowed by default, others refused, preflight answered, key still required', async () => {
    const pre = await fetch(`${srv.url}/v1/chat/completions`, {
      method: 'OPTIONS',
      headers: {
        origin: 'http://localhost:3000',
        'access-control-request-method': 'POST',
        'access-control-request-headers': 'authorization, content-type',
      },
    });
    assert.equal(pre.status, 204);
    assert.equal(pre.headers.get('access-control-allow-origin'), 'http://localhost:3000');
    assert.match(pre.headers.get('access-control-allow-headers') ?? '', /authorization/);
    assert.match(pre.headers.get('access-control-allow-methods') ?? '', /POST/);
    const ok = await post(
      '/v1/chat/completions',
      { model: 'x', messages: [{ role: 'user', content: 'cors' }], temperature: 0 },
      { origin: 'http://127.0.0.1:5173' },
    );
    assert.equal(ok.status, 200);
    assert.equal(ok.headers.get('access-control-allow-origin'), 'http://127.0.0.1:5173');
    const noKey = await fetch(`${srv.url}/v1/models`, { headers: { origin: 'http://localhost:3000' } });
    assert.equal(noKey.status, 401, 'the API key is still required');
    assert.equal(noKey.headers.get('access-control-allow-origin'), 'http://localhost:3000', 'and the browser can read the 401');
    const evil = await post(
      '/v1/chat/completions',
      { model: 'x', messages: [{ role: 'user', content: 'x' }] },
      { origin: 'https://evil.example' },
    );
    assert.equal(evil.status, 403);
    assert.equal(evil.headers.get('access-control-allow-origin'), null);
    const evilPre = await fetch(`${srv.url}/v1/chat/completions`, {
      method: 'OPTIONS',
      headers: { origin: 'https://evil.example', 'access-control-request-method': 'POST' },
    });
    assert.equal(evilPre.status, 403);
    // --cors widens (or narrows) the list; '*' allows every origin.
    const open = await startServer(fakeEngine(), {
      port: 0,
      log: () => undefined,
      corsOrigins: ['https://app.example', 'https://*.corp.example'],
    });
    try {
      const h = async (origin: string) => (await fetch(`${open.url}/v1/models`, { headers: { origin } })).status;
      assert.equal(await h('https://app.example'), 200);
      assert.equal(await h('https://chat.corp.example'), 200);
      assert.equal(await h('http://localhost:3000'), 403, 'the list replaces the loopback default');
      assert.equal(await h(open.url), 200, "the page's own origin is always allowed");
    } finally {
      await open.close();
    }
  });

  test('CORS origin patterns: loopback with any port, nothing that only starts like it', () => {
    const loop = originMatcher(DEFAULT_CORS_ORIGINS);
    for (const o of ['http://localhost', 'http://localhost:3000', 'http://127.0.0.1:8080', 'http://[::1]:5173', 'https://localhost:443'])
      assert.ok(loop(o), o);
    for (const o of [
      'http://localhost.evil.com',
      'http://localhost:3000.evil.com',
      'http://127.0.0.1.nip.io',
      'http://evil.com',
      'null',
      'http://127.0.0.2:80',
      'file://',
    ])
      assert.ok(!loop(o), o);
    const wild = originMatcher(['https://*.corp.example']);
    assert.ok(wild('https://chat.corp.example'));
    assert.ok(!wild('https://corp.example.evil.com') && !wild('http://chat.corp.example'));
    assert.ok(originMatcher(['*'])('https://anything.example'));
  });

  test('logit_bias: the OpenAI map and the llama-server list change the greedy output', async () => {
    const plain = await chat({ messages: [{ role: 'user', content: 'bias' }], max_tokens: 5 });
    assert.equal(plain.choices[0]!.message.content, 'Hello! Yo');
    const hello = VOCAB.indexOf('Hello');
    const banned = await chat({ messages: [{ role: 'user', content: 'bias' }], max_tokens: 5, logit_bias: { [hello]: -100 } });
    assert.ok(!banned.choices[0]!.message.content!.startsWith('Hello'), banned.choices[0]!.message.content!);
    const z = VOCAB.indexOf('Z');
    const forced = await chat({ messages: [{ role: 'user', content: 'bias' }], max_tokens: 4, logit_bias: { [z]: 100 } });
    assert.equal(forced.choices[0]!.message.content, 'ZZZZ');
    const list = await chat({ messages: [{ role: 'user', content: 'bias' }], max_tokens: 5, logit_bias: [['Hello', false]] });
    assert.equal(list.choices[0]!.message.content, banned.choices[0]!.message.content);
    const comp = await post('/v1/completions', { model: 'x', prompt: 'Once', max_tokens: 3, temperature: 0, logit_bias: { [z]: 100 } });
    assert.equal(((await comp.json()) as { choices: { text: string }[] }).choices[0]!.text, 'ZZZ');
    for (const lb of [{ 99999: 1 }, { a: 1 }, { 5: 500 }, 'x']) {
      const r = await post('/v1/chat/completions', { model: 'x', messages: [{ role: 'user', content: 'x' }], logit_bias: lb });
      assert.equal(r.status, 400, JSON.stringify(lb));
      assert.match(((await r.json()) as { error: { message: string } }).error.message, /logit_bias/);
    }
  });

  test('wrong types are 400s naming the field; unknown fields are ignored', async () => {
    const base = { model: 'x', messages: [{ role: 'user', content: 'types' }], max_tokens: 3 };
    const cases: [string, unknown][] = [
      ['n', 'two'],
      ['stop', 5],
      ['tools', {}],
      ['tool_choice', 5],
      ['stream', 'yes'],
      ['seed', 'x'],
      ['response_format', 'json'],
      ['parallel_tool_calls', 'no'],
      ['max_tokens', -1],
      ['top_k', 'x'],
      ['min_p', 2],
      ['logprobs', 1],
      ['temperature', '0.5'],
      ['logit_bias', 7],
    ];
    for (const [k, v] of cases) {
      const r = await post('/v1/chat/completions', {
        ...base,
        [k]: v,
        ...(k === 'tool_choice' ? { tools: [{ type: 'function', function: { name: 'f' } }] } : {}),
      });
      assert.equal(r.status, 400, `${k}: ${JSON.stringify(v)}`);
      const e = ((await r.json()) as { error: { message: string } }).error.message;
      assert.ok(e.includes(k), `${k}: ${e}`);
    }
    const ok = await post('/v1/chat/completions', {
      ...base,
      temperature: 0,
      frobnicate: { deep: [1, 2] },
      user: 'u',
      metadata: { a: 'b' },
      store: true,
    });
    assert.equal(ok.status, 200);
    const r = await post('/v1/responses', { model: 'x', input: 'x', max_output_tokens: 'many' });
    assert.match(((await r.json()) as { error: { message: string } }).error.message, /max_output_tokens/);
  });

  test('tool calls: only declared tools under auto and required; parallel_tool_calls: false keeps one', async () => {
    // The fake model wants get_weather; only `lookup` is declared.
    const lookup = {
      type: 'function',
      function: { name: 'lookup', description: 'look up', parameters: { type: 'object', properties: {}, additionalProperties: false } },
    };
    for (const tool_choice of ['auto', 'required']) {
      const r = await chat({ messages: [{ role: 'user', content: 'weather?' }], tools: [lookup], tool_choice, max_tokens: 60 });
      const calls = r.choices[0]!.message.tool_calls ?? [];
      assert.deepEqual(
        calls.map((c) => c.function.name),
        ['lookup'],
        `${tool_choice}: ${JSON.stringify(r.choices[0]!.message)}`,
      );
    }
    const weather = {
      type: 'function',
      function: { name: 'get_weather', parameters: { type: 'object', properties: { city: { type: 'string' } } } },
    };
    const two = await chat({ messages: [{ role: 'user', content: 'weather twice' }], tools: [weather], max_tokens: 300 });
    assert.equal(two.choices[0]!.message.tool_calls?.length, 2, JSON.stringify(two.choices[0]));
    const one = await chat({
      messages: [{ role: 'user', content: 'weather twice' }],
      tools: [weather],
      parallel_tool_calls: false,
      max_tokens: 300,
    });
    assert.deepEqual(
      one.choices[0]!.message.tool_calls?.map((c) => JSON.parse(c.function.arguments) as unknown),
      [{ city: 'Paris' }],
    );
    const badType = await post('/v1/chat/completions', {
      model: 'x',
      messages: [{ role: 'user', content: 'x' }],
      tools: [weather],
      parallel_tool_calls: 'no',
    });
    assert.equal(badType.status, 400);
    assert.match(((await badType.json()) as { error: { message: string } }).error.message, /parallel_tool_calls/);
  });
});
