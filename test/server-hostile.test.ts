/**
 * Hostile input against the real HTTP server (fake engine): each case is a request that once hung, crashed, grew
 * memory without bound or answered 500, and must now be one clear 4xx while the server keeps answering.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { createServer, request as httpRequest, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { startServer, type RunningServer } from '../src/server/app.ts';
import { compileSchema } from '../src/engine/json-schema.ts';
import { SchemaCache } from '../src/engine/json-schema-cache.ts';
import { isPublicAddress } from '../src/server/remote-image.ts';
import { UsageError } from '../src/util/index.ts';
import { fakeEngine } from './server-fixtures.ts';

const PNG = Buffer.from(
  'iVBORw0KGgoAAAANSUhEUgAAAAIAAAACCAIAAAD91JpzAAAAFklEQVR4nGP8z8DAwMDAxMDAwMDAAAANHQEDasKb6QAAAABJRU5ErkJggg==',
  'base64',
);
const MODEL = 'fake-llama4';
const user = [{ role: 'user', content: 'hi' }];
const deepJson = (n: number) => '{"a":'.repeat(n) + '1' + '}'.repeat(n);

type Reply = { status: number; json: Record<string, any> };
async function postRaw(base: string, path: string, body: string, headers: Record<string, string> = {}): Promise<Reply> {
  const r = await fetch(base + path, { method: 'POST', headers: { 'content-type': 'application/json', ...headers }, body });
  const text = await r.text();
  return { status: r.status, json: text ? JSON.parse(text) : {} };
}
const errMessage = (r: Reply): string => r.json.error?.message ?? '';

/** GET with an arbitrary Host header (fetch does not let a caller set Host). */
function getWithHost(url: string, host: string): Promise<number> {
  return new Promise((resolve, reject) => {
    const req = httpRequest(url, { headers: { host } }, (res) => {
      res.resume();
      resolve(res.statusCode!);
    });
    req.on('error', reject);
    req.end();
  });
}

describe('hostile requests', () => {
  let srv: RunningServer;
  let base: string;
  before(async () => {
    srv = await startServer(fakeEngine({ parallel: 2 }), { port: 0, log: () => undefined });
    base = srv.url;
  });
  after(async () => {
    await srv.close();
  });
  const post = (path: string, body: unknown, headers?: Record<string, string>) =>
    postRaw(base, path, typeof body === 'string' ? body : JSON.stringify(body), headers);
  const schemaRequest = (schema: unknown) =>
    post('/v1/chat/completions', {
      model: MODEL,
      messages: user,
      max_tokens: 40,
      response_format: { type: 'json_schema', json_schema: { name: 'x', schema } },
    });
  const healthy = async () => assert.equal((await fetch(`${base}/health`, { signal: AbortSignal.timeout(2000) })).status, 200);

  test('schema: a $ref cycle that reads nothing is a 400 and the server keeps answering', async () => {
    const t0 = performance.now();
    const r = await schemaRequest({ $defs: { a: { $ref: '#/$defs/a' } }, $ref: '#/$defs/a' });
    assert.equal(r.status, 400);
    assert.match(errMessage(r), /\$ref cycle that never reads a character: #\/\$defs\/a → #\/\$defs\/a/);
    assert.ok(performance.now() - t0 < 2000);
    await healthy();
  });

  test('schema: a left-recursive anyOf is a 400', async () => {
    const r = await schemaRequest({
      $defs: { e: { anyOf: [{ $ref: '#/$defs/e' }, { type: 'string' }] } },
      type: 'object',
      properties: { v: { $ref: '#/$defs/e' } },
    });
    assert.equal(r.status, 400);
    assert.match(errMessage(r), /\$ref cycle/);
    await healthy();
  });

  test('schema: 10k-deep nesting in response_format is a 400', async () => {
    let s = '{"type":"string"}';
    for (let i = 0; i < 10_000; i++) s = `{"type":"array","items":${s}}`;
    const r = await post(
      '/v1/chat/completions',
      `{"model":"${MODEL}","messages":[{"role":"user","content":"hi"}],"response_format":{"type":"json_schema","json_schema":{"name":"x","schema":${s}}}}`,
    );
    assert.equal(r.status, 400);
    assert.match(errMessage(r), /nested deeper than 128 levels/);
  });

  test('schema: a 1M-entry enum is refused quickly, nothing is cached', async () => {
    const t0 = performance.now();
    const r = await schemaRequest({ enum: Array.from({ length: 1_000_000 }, (_, i) => `v${i}`) });
    assert.equal(r.status, 400);
    assert.match(errMessage(r), /more than 5000 enum\/const values/);
    assert.ok(performance.now() - t0 < 10_000, `took ${performance.now() - t0} ms`);
    // Within the bounds, the largest schemas compile in milliseconds.
    const t1 = performance.now();
    compileSchema({ enum: Array.from({ length: 5000 }, (_, i) => `value number ${i}`) });
    compileSchema({
      type: 'object',
      properties: Object.fromEntries(Array.from({ length: 4000 }, (_, i) => [`p${i}`, { type: 'array', items: { type: 'integer' } }])),
    });
    assert.ok(performance.now() - t1 < 2000, `compiling took ${performance.now() - t1} ms`);
  });

  test('schema: nested anyOf alternatives that multiply fail the request with a 400, not a stall', async () => {
    const $defs: Record<string, unknown> = { l6: { type: 'string' } };
    for (let d = 5; d >= 0; d--)
      $defs[`l${d}`] = {
        anyOf: Array.from({ length: 30 }, (_, i) => ({ type: 'array', items: { $ref: `#/$defs/l${d + 1}` }, maxItems: 100 + i })),
      };
    const t0 = performance.now();
    const r = await schemaRequest({ $defs, $ref: '#/$defs/l0' });
    assert.equal(r.status, 400, JSON.stringify(r.json));
    assert.match(errMessage(r), /too ambiguous/);
    assert.ok(performance.now() - t0 < 5000);
    await healthy();
  });

  test('schema cache: distinct schemas stay within the byte budget', () => {
    const cache = new SchemaCache(4 * 1024 * 1024);
    for (let k = 0; k < 15; k++) {
      const schema = { enum: Array.from({ length: 5000 }, (_, i) => `schema ${k} value ${i} ${'x'.repeat(20)}`) };
      const key = JSON.stringify(schema);
      cache.schema(key, () => compileSchema(schema));
      const masks = cache.masks(key);
      for (let m = 0; m < 20; m++) masks.set(`state ${m}`, new Int32Array(10_000));
      assert.ok(cache.bytes <= cache.maxBytes, `${cache.bytes} bytes after schema ${k}`);
    }
    assert.ok(cache.size >= 1 && cache.size < 15, `${cache.size} schemas kept`);
  });

  test('deep bodies: assistant tool_calls arguments (object and text) and Anthropic tool_use.input are 400s', async () => {
    const head = `{"model":"${MODEL}","max_tokens":4,"messages":[{"role":"user","content":"hi"},`;
    const tail = `,{"role":"tool","tool_call_id":"c1","content":"x"}]}`;
    const asObject = await post(
      '/v1/chat/completions',
      `${head}{"role":"assistant","tool_calls":[{"id":"c1","type":"function","function":{"name":"f","arguments":${deepJson(10_000)}}}]}${tail}`,
    );
    assert.equal(asObject.status, 400);
    assert.match(errMessage(asObject), /nested deeper than 128 levels/);
    const anthropic = await post(
      '/v1/messages',
      `{"model":"${MODEL}","max_tokens":4,"messages":[{"role":"user","content":"hi"},{"role":"assistant","content":[{"type":"tool_use","id":"t1","name":"f","input":${deepJson(10_000)}}]},{"role":"user","content":[{"type":"tool_result","tool_use_id":"t1","content":"x"}]}]}`,
    );
    assert.equal(anthropic.status, 400);
    assert.equal(anthropic.json.error.type, 'invalid_request_error');
    // As JSON text the arguments are a string; the chat layer keeps such text as it is instead of parsing it.
    const asText = await post('/v1/chat/completions', {
      model: MODEL,
      max_tokens: 4,
      messages: [
        ...user,
        { role: 'assistant', tool_calls: [{ id: 'c1', type: 'function', function: { name: 'f', arguments: deepJson(200) } }] },
        { role: 'tool', tool_call_id: 'c1', content: 'x' },
      ],
    });
    assert.ok(asText.status === 200 || asText.status === 400, `status ${asText.status}: ${errMessage(asText)}`);
    await healthy();
  });

  test('top_p 0 is accepted (the most probable token only)', async () => {
    const r = await post('/v1/chat/completions', { model: MODEL, messages: user, max_tokens: 4, top_p: 0, temperature: 1 });
    assert.equal(r.status, 200, errMessage(r));
  });

  test('a $ref in tool parameters works with tool_choice required', async () => {
    const parameters = {
      $defs: { city: { type: 'string', maxLength: 6 } },
      type: 'object',
      properties: { city: { $ref: '#/$defs/city' } },
      required: ['city'],
      additionalProperties: false,
    };
    const r = await post('/v1/chat/completions', {
      model: MODEL,
      messages: user,
      max_tokens: 60,
      temperature: 0,
      tool_choice: 'required',
      tools: [{ type: 'function', function: { name: 'get_weather', parameters } }],
    });
    assert.equal(r.status, 200, errMessage(r));
    const call = r.json.choices[0].message.tool_calls[0];
    assert.equal(call.function.name, 'get_weather');
    const city = JSON.parse(call.function.arguments).city;
    assert.ok(typeof city === 'string' && city.length <= 6, call.function.arguments);
  });

  test('JSON APIs refuse the content types a web page can post without a preflight', async () => {
    const body = JSON.stringify({ model: MODEL, messages: user, max_tokens: 2 });
    for (const type of ['text/plain', 'text/plain;charset=UTF-8', 'multipart/form-data; boundary=x']) {
      const r = await post('/v1/chat/completions', body, { 'content-type': type });
      assert.equal(r.status, 415, type);
    }
    // A form post from a page: refused by its content type on an allowed origin (CORS refuses other origins first).
    assert.equal(
      (await post('/v1/chat/completions', body, { 'content-type': 'application/x-www-form-urlencoded', origin: 'http://localhost:3000' }))
        .status,
      415,
    );
    assert.equal((await post('/v1/chat/completions', body, { 'content-type': 'text/plain', origin: 'http://localhost:3000' })).status, 415);
    assert.equal(
      (await post('/v1/chat/completions', body, { 'content-type': 'application/x-www-form-urlencoded', origin: 'http://evil.example' }))
        .status,
      403,
    );
    // curl -d sends form-urlencoded without an Origin: still taken.
    assert.equal((await post('/v1/chat/completions', body, { 'content-type': 'application/x-www-form-urlencoded' })).status, 200);
  });

  test('without an API key only loopback Host values are answered', async () => {
    const url = `${base}/health`;
    const port = new URL(base).port;
    for (const h of [`127.0.0.1:${port}`, `localhost:${port}`, 'localhost', `[::1]:${port}`, `app.localhost:${port}`])
      assert.equal(await getWithHost(url, h), 200, h);
    for (const h of [`evil.example:${port}`, 'evil.example', `192.168.1.5:${port}`, `127.0.0.1.evil.example`])
      assert.equal(await getWithHost(url, h), 403, h);
    assert.equal(await getWithHost(`${base}/`, 'rebind.example'), 403);
  });
});

test('Host checks: --host adds its own name, an API key or 0.0.0.0 take any Host, and 0.0.0.0 without a key warns', async () => {
  const named = await startServer(fakeEngine(), { port: 0, host: '127.0.0.1', log: () => undefined });
  const keyed = await startServer(fakeEngine(), { port: 0, apiKey: 'k', log: () => undefined });
  const logs: Record<string, unknown>[] = [];
  const open = await startServer(fakeEngine(), { port: 0, host: '0.0.0.0', log: (r) => logs.push(r) });
  try {
    assert.equal(await getWithHost(`${named.url}/health`, 'my-box.lan'), 403);
    assert.equal(await getWithHost(`${keyed.url}/health`, 'my-box.lan'), 200);
    assert.equal(await getWithHost(`http://127.0.0.1:${open.port}/health`, 'my-box.lan'), 200);
    assert.ok(
      logs.some((r) => r.level === 'warn' && /without an API key/.test(String(r.msg))),
      JSON.stringify(logs),
    );
  } finally {
    await Promise.all([named.close(), keyed.close(), open.close()]);
  }
  const { hostPolicy } = await import('../src/server/host-check.ts');
  const byName = hostPolicy('my-box.lan', undefined)!;
  assert.ok(byName('my-box.lan:8080') && byName('localhost:8080') && !byName('other.lan'));
});

test('metrics: unauthenticated requests to made-up paths add no series', async () => {
  const srv = await startServer(fakeEngine(), { port: 0, apiKey: 'sk', log: () => undefined });
  try {
    for (let i = 0; i < 300; i++) assert.equal((await fetch(`${srv.url}/v1/made-up-${i}`)).status, 401);
    await fetch(`${srv.url}/v1/models/anything`);
    const text = await (await fetch(`${srv.url}/metrics`, { headers: { authorization: 'Bearer sk' } })).text();
    assert.doesNotMatch(text, /made-up/);
    const series = text.split('\n').filter((l) => l.startsWith('llama4_requests_total{'));
    assert.ok(series.length <= 3, series.join('\n'));
    assert.match(text, /route="unmatched",status="401"\} 300/);
    assert.match(text, /route="\/v1\/models\/:id",status="401"\} 1/);
  } finally {
    await srv.close();
  }
});

describe('remote images (--allow-remote-images)', () => {
  let internal: Server;
  let publicSide: Server;
  let internalHits = 0;
  let internalPort = 0;
  let publicPort = 0;
  before(async () => {
    internal = createServer((_req, res) => {
      internalHits++;
      res.writeHead(200, { 'content-type': 'image/png' });
      res.end(PNG);
    });
    await new Promise<void>((r) => internal.listen(0, '127.0.0.1', r));
    internalPort = (internal.address() as AddressInfo).port;
    // 127.0.0.2 plays a public host: the test policy below allows exactly that address.
    publicSide = createServer((req, res) => {
      if (req.url === '/ok.png') {
        res.writeHead(200, { 'content-type': 'image/png' });
        res.end(PNG);
      } else if (req.url === '/hop.png') {
        res.writeHead(302, { location: `http://127.0.0.2:${publicPort}/ok.png` });
        res.end();
      } else {
        res.writeHead(302, { location: `http://127.0.0.1:${internalPort}/secret.png` });
        res.end();
      }
    });
    await new Promise<void>((r) => publicSide.listen(0, '127.0.0.2', r));
    publicPort = (publicSide.address() as AddressInfo).port;
  });
  after(() => {
    internal.close();
    publicSide.close();
  });
  const imageRequest = (url: string) => ({
    model: MODEL,
    max_tokens: 30,
    temperature: 0,
    messages: [{ role: 'user', content: [{ type: 'image_url', image_url: { url } }] }],
  });

  test('loopback, private, link-local and numeric forms are refused after resolution, with one message', async () => {
    const srv = await startServer(fakeEngine(), {
      port: 0,
      log: () => undefined,
      images: { allowRemote: true, maxBytes: 1 << 20, timeoutMs: 2000 },
    });
    try {
      const urls = [
        `http://127.0.0.1:${internalPort}/x.png`,
        `http://localhost:${internalPort}/x.png`,
        `http://2130706433:${internalPort}/x.png`,
        `http://0x7f.1:${internalPort}/x.png`,
        `http://0.0.0.0:${internalPort}/x.png`,
        `http://[::1]:${internalPort}/x.png`,
        `http://[::ffff:127.0.0.1]:${internalPort}/x.png`,
        'http://169.254.169.254/latest/meta-data',
        'http://10.0.0.1/x.png',
        'http://192.168.0.1/x.png',
        `http://127.0.0.1:1/closed-port.png`,
      ];
      const messages = new Set<string>();
      for (const u of urls) {
        const r = await postRaw(srv.url, '/v1/chat/completions', JSON.stringify(imageRequest(u)));
        assert.equal(r.status, 400, u);
        messages.add(errMessage(r));
      }
      assert.deepEqual([...messages], ["'messages[0].content[0].image_url.url': the image could not be fetched from that URL"]);
      assert.equal(internalHits, 0, 'the internal server was never reached');
    } finally {
      await srv.close();
    }
  });

  test('every redirect hop is checked; allowed hosts still work', async () => {
    const srv = await startServer(fakeEngine(), {
      port: 0,
      log: () => undefined,
      images: { allowRemote: true, maxBytes: 1 << 20, timeoutMs: 2000, allowAddress: (ip) => ip === '127.0.0.2' },
    });
    try {
      const ok = await postRaw(srv.url, '/v1/chat/completions', JSON.stringify(imageRequest(`http://127.0.0.2:${publicPort}/hop.png`)));
      assert.equal(ok.status, 200, errMessage(ok));
      assert.match(ok.json.choices[0].message.content, /^I see 1 image/);
      const redirected = await postRaw(
        srv.url,
        '/v1/chat/completions',
        JSON.stringify(imageRequest(`http://127.0.0.2:${publicPort}/to-internal.png`)),
      );
      assert.equal(redirected.status, 400);
      assert.match(errMessage(redirected), /could not be fetched from that URL/);
      assert.equal(internalHits, 0);
    } finally {
      await srv.close();
    }
  });

  test('address classes', () => {
    for (const ip of [
      '127.0.0.1',
      '10.1.2.3',
      '172.16.0.1',
      '192.168.1.1',
      '169.254.169.254',
      '0.0.0.0',
      '100.64.0.1',
      '::1',
      '::',
      'fe80::1',
      'fd00::1',
      '::ffff:127.0.0.1',
      '::ffff:7f00:1',
      '::ffff:10.0.0.1',
      '224.0.0.1',
    ])
      assert.equal(isPublicAddress(ip), false, ip);
    for (const ip of ['8.8.8.8', '1.1.1.1', '2606:4700:4700::1111', '::ffff:8.8.8.8']) assert.equal(isPublicAddress(ip), true, ip);
  });
});

test('schema limits are UsageErrors naming the bound', () => {
  assert.throws(
    () => compileSchema({ $defs: { a: { $ref: '#/$defs/b' }, b: { allOf: [{ $ref: '#/$defs/a' }] } }, $ref: '#/$defs/a' }),
    (e: unknown) => e instanceof UsageError && /#\/\$defs\/a → #\/\$defs\/b → #\/\$defs\/a/.test((e as Error).message),
  );
  // Recursion through an object or array reads a character each turn: allowed.
  assert.doesNotThrow(() =>
    compileSchema({ $defs: { t: { type: 'array', items: { anyOf: [{ $ref: '#/$defs/t' }, { type: 'integer' }] } } }, $ref: '#/$defs/t' }),
  );
});

test('token masks: a maxLength string takes the plain tokens that fit; enum prefixes', async () => {
  const { allowedTokens } = await import('../src/engine/json-schema-mask.ts');
  const { advance, initialState } = await import('../src/engine/json-schema.ts');
  const { VOCAB, SPECIALS } = await import('./server-fixtures.ts');
  const vocab = { size: VOCAB.length, text: (id: number) => (id < SPECIALS.length ? null : (VOCAB[id] ?? null)) };
  const names = (ids: Int32Array) => [...ids].map((i) => VOCAB[i]!).sort();
  // Room for 3 more characters: exactly the plain tokens of at most 3 characters, plus '"' to close.
  const s = compileSchema({ type: 'string', maxLength: 5 });
  const st = advance(initialState(s), '"ab');
  const expected = VOCAB.filter((t, i) => i >= SPECIALS.length && t.length <= 3 && !/["\\\n]/.test(t)).concat(['"', '\\', '{"']); // '{"': a brace, then the closing quote
  assert.deepEqual(names(allowedTokens(vocab, st)), expected.sort());
  // enum options are matched by prefix (sorted options): 'Hello' and 'He' both start "He".
  const e = compileSchema({ enum: ['Hello', 'He', 'x'] });
  assert.deepEqual(names(allowedTokens(vocab, advance(initialState(e), '"H'))), ['e']);
  assert.deepEqual(names(allowedTokens(vocab, advance(initialState(e), '"He'))), ['"', 'l']);
});
