/**
 * The guard in the server, through the real clients: POST /v1/moderations with the `openai` client (text, lists,
 * image parts and errors), and `serve --guard-input` / `--guard-output` refusals through both `openai` and
 * `@anthropic-ai/sdk`, with the refusal metric. The chat model is the fake engine (server-fixtures.ts); the guards are
 * real GGUF guards whose answers are set by hand (helpers/guard-model.ts): one always unsafe (S1), one always safe.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { spawn } from 'node:child_process';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import OpenAI from 'openai';
import Anthropic from '@anthropic-ai/sdk';
import { startServer } from '../src/server/app.ts';
import { loadGuard, LLAMA_GUARD_4_CATEGORIES, type Guard } from '../src/guard/index.ts';
import type { GuardServerOptions } from '../src/server/moderations.ts';
import { loadServeGuard } from '../src/server/load-guard.ts';
import { fakeEngine } from './server-fixtures.ts';
import { writeControlledGuard } from './helpers/guard-model.ts';
import { PROJECT_ROOT } from './helpers/shared.ts';

const tmp = mkdtempSync(join(tmpdir(), 'guard-server-'));
process.on('exit', () => rmSync(tmp, { recursive: true, force: true }));
let unsafeGuard: Guard, safeGuard: Guard;

before(async () => {
  await writeControlledGuard(join(tmp, 'unsafe.gguf'), { unsafe: 8, safe: 6, S: 9, '1': 7, '0': 6.5, '<|eot|>': 7.5 });
  await writeControlledGuard(join(tmp, 'safe.gguf'), { safe: 8, unsafe: 5, S: 5 });
  unsafeGuard = await loadGuard(join(tmp, 'unsafe.gguf'));
  safeGuard = await loadGuard(join(tmp, 'safe.gguf'));
});

async function serverWith(guard: Partial<GuardServerOptions> & { guard: Guard }) {
  const srv = await startServer(fakeEngine(), { port: 0, log: () => {}, guard: { modelId: 'llama-guard-test', ...guard } });
  return {
    srv,
    openai: new OpenAI({ baseURL: `${srv.url}/v1`, apiKey: 'none', maxRetries: 0 }),
    anthropic: new Anthropic({ baseURL: srv.url, apiKey: 'none', maxRetries: 0 }),
  };
}

describe('/v1/moderations', () => {
  let s: Awaited<ReturnType<typeof serverWith>>;
  before(async () => {
    s = await serverWith({ guard: unsafeGuard });
  });
  after(async () => {
    await s.srv.close();
  });

  test('text input: OpenAI shape keyed by the 14 category names, scores from the guard', async () => {
    const r = await s.openai.moderations.create({ model: 'llama-guard-test', input: 'How do I hurt someone?' });
    assert.match(r.id, /^modr-/);
    assert.equal(r.model, 'llama-guard-test');
    assert.equal(r.results.length, 1);
    const res = r.results[0]!;
    assert.equal(res.flagged, true);
    const names = LLAMA_GUARD_4_CATEGORIES.map((c) => c.name);
    assert.deepEqual(Object.keys(res.categories), names);
    assert.deepEqual(Object.keys(res.category_scores), names);
    const cats = res.categories as unknown as Record<string, boolean>,
      scores = res.category_scores as unknown as Record<string, number>;
    assert.deepEqual(
      names.filter((n) => cats[n]),
      ['Violent Crimes'],
    );
    const direct = await unsafeGuard.check('How do I hurt someone?');
    for (const c of LLAMA_GUARD_4_CATEGORIES) assert.ok(Math.abs(scores[c.name]! - direct.scores[c.code]!) < 1e-9, c.name);
    assert.deepEqual(
      (res as unknown as { category_applied_input_types: Record<string, string[]> }).category_applied_input_types['Violent Crimes'],
      ['text'],
    );
  });

  test('a list of strings gives one result each; model may be omitted', async () => {
    const r = await s.openai.moderations.create({ input: ['one', 'two', 'three'] } as OpenAI.ModerationCreateParams);
    assert.equal(r.results.length, 3);
    assert.ok(r.results.every((x) => x.flagged));
  });

  test('image parts reach the guard (this guard has no vision tower: one clear 400); bad inputs are OpenAI errors', async () => {
    const png =
      'data:image/png;base64,' + readFileSync(join(PROJECT_ROOT, '..', 'shared', 'images', 'synthetic_50x50.png')).toString('base64');
    await assert.rejects(
      s.openai.moderations.create({
        model: 'llama-guard-test',
        input: [
          { type: 'text', text: 'look' },
          { type: 'image_url', image_url: { url: png } },
        ],
      }),
      (e: unknown) => e instanceof OpenAI.BadRequestError && /no vision tower/.test(e.message),
    );
    await assert.rejects(
      s.openai.moderations.create({ model: 'llama-guard-test', input: [] as unknown as string }),
      (e: unknown) => e instanceof OpenAI.BadRequestError && /'input'/.test(e.message),
    );
    await assert.rejects(
      s.openai.moderations.create({ model: 'omni-moderation-latest', input: 'x' }),
      (e: unknown) => e instanceof OpenAI.NotFoundError,
    );
  });

  test('a safe guard: flagged false, every category false', async () => {
    const t = await serverWith({ guard: safeGuard });
    try {
      const r = await t.openai.moderations.create({ model: 'llama-guard-test', input: 'Good morning' });
      assert.equal(r.results[0]!.flagged, false);
      assert.ok(Object.values(r.results[0]!.categories).every((v) => v === false));
    } finally {
      await t.srv.close();
    }
  });
});

describe('serve --guard-input / --guard-output', () => {
  test('input screening refuses before the model runs: OpenAI and Anthropic error bodies, streaming too, and a metric', async () => {
    const s = await serverWith({ guard: unsafeGuard, screenInput: true });
    try {
      await assert.rejects(
        s.openai.chat.completions.create({
          model: 'fake-llama4',
          messages: [
            { role: 'system', content: 'be nice' },
            { role: 'user', content: 'How do I hurt someone?' },
          ],
        }),
        (e: unknown) =>
          e instanceof OpenAI.BadRequestError &&
          e.status === 400 &&
          /refused by the safety guard.*S1 \(Violent Crimes\)/.test(e.message) &&
          (e.error as { type?: string }).type === 'invalid_request_error' &&
          e.param === 'messages',
      );
      await assert.rejects(
        s.openai.chat.completions.create({ model: 'fake-llama4', messages: [{ role: 'user', content: 'x' }], stream: true }),
        (e: unknown) => e instanceof OpenAI.BadRequestError && /refused by the safety guard/.test(e.message),
      );
      await assert.rejects(
        s.anthropic.messages.create({
          model: 'fake-llama4',
          max_tokens: 20,
          messages: [{ role: 'user', content: 'How do I hurt someone?' }],
        }),
        (e: unknown) =>
          e instanceof Anthropic.BadRequestError &&
          (e.error as { error?: { type?: string; message?: string } }).error?.type === 'invalid_request_error' &&
          /refused by the safety guard/.test((e.error as { error: { message: string } }).error.message),
      );
      // Raw prompts are screened too: /v1/completions (the prompt judged as one user message) and Ollama's raw generate.
      await assert.rejects(
        s.openai.completions.create({ model: 'fake-llama4', prompt: 'How do I hurt someone?', max_tokens: 4 }),
        (e: unknown) => e instanceof OpenAI.BadRequestError && /refused by the safety guard/.test(e.message) && e.param === 'prompt',
      );
      const og = await fetch(`${s.srv.url}/api/generate`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ model: 'fake-llama4', prompt: 'How do I hurt someone?', raw: true, stream: false }),
      });
      assert.equal(og.status, 400);
      assert.match(((await og.json()) as { error: string }).error, /refused by the safety guard/);
      const m = await (await fetch(`${s.srv.url}/metrics`)).text();
      assert.match(m, /llama4_guard_refusals_total\{stage="input"\} 5/);
      assert.match(m, /llama4_guard_refusals_total\{stage="output"\} 0/);
    } finally {
      await s.srv.close();
    }
  });

  test('output screening withholds an unsafe answer (both APIs); a safe guard lets answers through unchanged, streamed or not', async () => {
    const s = await serverWith({ guard: unsafeGuard, screenOutput: true });
    try {
      await assert.rejects(
        s.openai.chat.completions.create({ model: 'fake-llama4', messages: [{ role: 'user', content: 'hi there' }], temperature: 0 }),
        (e: unknown) =>
          e instanceof OpenAI.BadRequestError && /Response withheld by the safety guard.*S1 \(Violent Crimes\)/.test(e.message),
      );
      await assert.rejects(
        s.anthropic.messages.create({ model: 'fake-llama4', max_tokens: 50, messages: [{ role: 'user', content: 'hi there' }] }),
        (e: unknown) => e instanceof Anthropic.BadRequestError && /Response withheld/.test(e.message),
      );
      await assert.rejects(
        s.openai.completions.create({ model: 'fake-llama4', prompt: 'hi there', max_tokens: 8, temperature: 0 }),
        (e: unknown) => e instanceof OpenAI.BadRequestError && /Response withheld/.test(e.message),
      );
      assert.match(await (await fetch(`${s.srv.url}/metrics`)).text(), /llama4_guard_refusals_total\{stage="output"\} 3/);
    } finally {
      await s.srv.close();
    }
    const ok = await serverWith({ guard: safeGuard, screenInput: true, screenOutput: true });
    try {
      const r = await ok.openai.chat.completions.create({
        model: 'fake-llama4',
        messages: [{ role: 'user', content: 'hi there' }],
        temperature: 0,
      });
      assert.equal(r.choices[0]!.message.content, 'Hello! You said: hi there');
      const stream = await ok.openai.chat.completions.create({
        model: 'fake-llama4',
        messages: [{ role: 'user', content: 'stream me' }],
        temperature: 0,
        stream: true,
      });
      let text = '';
      for await (const ch of stream) text += ch.choices[0]?.delta.content ?? '';
      assert.equal(text, 'Hello! You said: stream me');
      // temperature 0 (the fake engine samples otherwise); this SDK version's request types do not list it.
      const a = await ok.anthropic.messages.create({
        model: 'fake-llama4',
        max_tokens: 50,
        messages: [{ role: 'user', content: 'hi there' }],
        ...({ temperature: 0 } as object),
      });
      assert.equal((a.content[0] as { text: string }).text, 'Hello! You said: hi there');
      const c = await ok.openai.completions.create({ model: 'fake-llama4', prompt: 'hi there', max_tokens: 8, temperature: 0 });
      assert.equal(typeof c.choices[0]!.text, 'string');
      // Input and output checks of the three chats and of the completion.
      assert.match(await (await fetch(`${ok.srv.url}/metrics`)).text(), /llama4_guard_checks_total 8/);
    } finally {
      await ok.srv.close();
    }
  });
});

test('`llama4 serve --guard GUARD --guard-input` (the guard alone): moderations and a refused chat through the CLI', async () => {
  const child = spawn(
    process.execPath,
    [
      '--import',
      'tsx',
      join(PROJECT_ROOT, 'src', 'cli', 'main.ts'),
      'serve',
      '--guard',
      join(tmp, 'unsafe.gguf'),
      '--guard-input',
      '--port',
      '0',
    ],
    { cwd: PROJECT_ROOT, stdio: ['ignore', 'ignore', 'pipe'] },
  );
  try {
    const url = await new Promise<string>((resolve, reject) => {
      let err = '';
      child.stderr!.on('data', (d: Buffer) => {
        err += d.toString();
        const m = /listening on (http:\/\/\S+)/.exec(err);
        if (m) resolve(m[1]!);
      });
      child.once('exit', (code) => reject(new Error(`serve exited ${code}: ${err}`)));
    });
    const openai = new OpenAI({ baseURL: `${url}/v1`, apiKey: 'none', maxRetries: 0 });
    const r = await openai.moderations.create({ model: 'unsafe', input: 'How do I hurt someone?' });
    assert.equal(r.results[0]!.flagged, true);
    await assert.rejects(
      openai.chat.completions.create({ model: 'unsafe', messages: [{ role: 'user', content: 'hi' }] }),
      /refused by the safety guard/,
    );
  } finally {
    child.kill('SIGINT');
    await new Promise((r) => child.once('exit', r));
  }
});

test('serve loads the guard in its own model worker: the same verdicts as in-thread, off the event loop', async () => {
  const served = await loadServeGuard(join(tmp, 'unsafe.gguf'));
  try {
    assert.equal(served.where, 'worker thread');
    assert.equal(served.guard.loaded, undefined, 'a worker-backed guard holds no weights in this thread');
    const conv = [{ role: 'user' as const, content: 'How do I hurt someone?' }];
    const [a, b] = await Promise.all([served.guard.check(conv), unsafeGuard.check(conv)]);
    assert.equal(a.safe, b.safe);
    assert.deepEqual(a.categories, b.categories);
    assert.ok(Math.abs(a.unsafeProbability - b.unsafeProbability) < 1e-6);
    for (const c of Object.keys(b.scores)) assert.ok(Math.abs(a.scores[c]! - b.scores[c]!) < 1e-6, c);
    // While the worker computes, this thread keeps running timers (a check in-thread would hold them off).
    let ticks = 0;
    const timer = setInterval(() => ticks++, 0);
    await served.guard.check([{ role: 'user', content: 'another request' }]);
    clearInterval(timer);
    assert.ok(ticks > 0, 'timers ran during the check');
  } finally {
    await served.close();
  }
});

test('`llama4 serve -m MODEL --guard GUARD --guard-input`: the guard computes in a worker thread beside the model', async () => {
  const child = spawn(
    process.execPath,
    [
      '--import',
      'tsx',
      join(PROJECT_ROOT, 'src', 'cli', 'main.ts'),
      'serve',
      '-m',
      join(tmp, 'safe.gguf'),
      '--guard',
      join(tmp, 'unsafe.gguf'),
      '--guard-input',
      '--port',
      '0',
    ],
    { cwd: PROJECT_ROOT, stdio: ['ignore', 'ignore', 'pipe'] },
  );
  try {
    let err = '';
    const url = await new Promise<string>((resolve, reject) => {
      child.stderr!.on('data', (d: Buffer) => {
        err += d.toString();
        const m = /listening on (http:\/\/\S+)/.exec(err);
        if (m) resolve(m[1]!);
      });
      child.once('exit', (code) => reject(new Error(`serve exited ${code}: ${err}`)));
    });
    assert.match(err, /guard 'unsafe' on \/v1\/moderations \(worker thread\), screening input/);
    const openai = new OpenAI({ baseURL: `${url}/v1`, apiKey: 'none', maxRetries: 0 });
    const r = await openai.moderations.create({ model: 'unsafe', input: 'How do I hurt someone?' });
    assert.equal(r.results[0]!.flagged, true);
    await assert.rejects(
      openai.chat.completions.create({ model: 'safe', messages: [{ role: 'user', content: 'hi' }] }),
      /refused by the safety guard/,
    );
  } finally {
    child.kill('SIGINT');
    await new Promise((r) => child.once('exit', r));
  }
});
