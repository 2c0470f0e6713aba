/**
 * The library's chat surface on the embedded default model: ChatSession (history, KV-cache reuse across turns,
 * streaming, tools, AbortSignal, images refused by a text-only model), dispose() (threads, file mappings and memory
 * released, checked over many loads), and the README's Library example run as it stands.
 */
import { describe, test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { spawnSync } from 'node:child_process';
import { PROJECT_ROOT } from './helpers/shared.ts';
import { loadModel, loadChatAssets, generateAll, renderChat, chatPromptIds, UsageError, type LoadedModel } from '../src/index.ts';

const WEATHER = {
  name: 'get_weather',
  description: 'Get the weather in a city',
  parameters: { type: 'object', properties: { city: { type: 'string' } }, required: ['city'] },
};

describe('ChatSession on the default model', () => {
  let model: LoadedModel;
  before(async () => {
    model = await loadModel();
  });
  after(() => model.dispose());

  test('a greedy answer equals generating from the rendered prompt with the low-level API', async () => {
    const chat = model.createChat();
    const reply = await chat.send('What is 7 plus 5?', { maxTokens: 24 });
    const { tokenizer, chatTemplate } = loadChatAssets(model);
    const ids = chatPromptIds(
      tokenizer,
      renderChat({
        messages: [{ role: 'user', content: 'What is 7 plus 5?' }],
        addGenerationPrompt: true,
        template: chatTemplate ?? undefined,
      }),
    );
    const low = await generateAll(model.model, ids, { maxTokens: 24, sampler: { temperature: 0 }, stopTokens: [...tokenizer.stopIds] });
    assert.equal(reply.text, tokenizer.decode(low.tokens, { skipSpecial: true }));
    assert.equal(reply.finishReason, low.finishReason);
    assert.equal(String(reply), reply.text);
    assert.deepEqual(
      chat.history.map((m) => m.role),
      ['user', 'assistant'],
    );
  });

  test("the second turn reuses the first turn's KV cache; stream() yields what send() returns", async () => {
    const chat = model.createChat({ system: 'You are helpful.' });
    const first = await chat.send('What is 7 plus 5?');
    // (Sessions share the model's engine: another session's kept prefix may cover the first few template tokens.)
    assert.ok(first.usage.cachedTokens < first.usage.promptTokens / 2);
    const pieces: string[] = [];
    const it = chat.stream('What is 2 plus 3?');
    let r = await it.next();
    while (!r.done) {
      pieces.push(r.value);
      r = await it.next();
    }
    assert.ok(
      r.value.usage.cachedTokens > first.usage.promptTokens / 2,
      `cached ${r.value.usage.cachedTokens} of ${r.value.usage.promptTokens}`,
    );
    assert.equal(pieces.join(''), r.value.text);
    assert.deepEqual(
      chat.history.map((m) => m.role),
      ['system', 'user', 'assistant', 'user', 'assistant'],
    );
    // The same conversation from scratch (no cache to reuse) gives the same answer: reuse changes nothing.
    const fresh = model.createChat({ system: 'You are helpful.' });
    fresh.history.push(...chat.history.slice(1, 3));
    assert.equal((await fresh.send('What is 2 plus 3?')).text, r.value.text);
    chat.reset();
    assert.deepEqual(
      chat.history.map((m) => m.role),
      ['system'],
    );
  });

  test('tools: calls come back parsed, a tool result continues the conversation', async () => {
    const chat = model.createChat({ tools: [WEATHER] });
    const r = await chat.send('What is the weather in Paris?');
    assert.equal(r.finishReason, 'tool_calls');
    assert.ok(r.toolCalls.length >= 1);
    for (const c of r.toolCalls) {
      assert.match(c.id, /^call_/);
      assert.equal(typeof JSON.parse(c.arguments), 'object', 'arguments are JSON text');
    }
    assert.deepEqual(chat.history.at(-1)?.toolCalls, r.toolCalls);
    const next = await chat.send({ role: 'tool', toolCallId: r.toolCalls[0]!.id, content: '{"temperature": 20}' });
    assert.ok(next.usage.cachedTokens > 0);
    assert.equal(chat.history.length, 4);
  });

  test("tools in the OpenAI SDK's shape work as ToolSpecs; a nameless tool is one clear error", async () => {
    const openai = { type: 'function' as const, function: WEATHER };
    const a = await model.createChat({ tools: [openai], sampling: { temperature: 0 } }).send('What is the weather in Paris?');
    const b = await model.createChat({ tools: [WEATHER], sampling: { temperature: 0 } }).send('What is the weather in Paris?');
    assert.deepEqual(
      a.toolCalls.map((c) => [c.name, c.arguments]),
      b.toolCalls.map((c) => [c.name, c.arguments]),
    );
    assert.throws(() => model.createChat({ tools: [{ description: 'no name' } as never] }), /tools\[0\] needs a name/);
  });

  test('an AbortSignal stops a turn; the partial answer stays; one turn at a time', async () => {
    const chat = model.createChat();
    const busy = chat.send('What is 7 plus 5?');
    await assert.rejects(chat.send('And 2 plus 3?'), (e: Error) => e instanceof UsageError && /already answering/.test(e.message));
    await busy;
    chat.reset();
    const ac = new AbortController();
    const r = await chat.send('Tell me a story', {
      maxTokens: 400,
      sampling: { temperature: 1, seed: 1 },
      signal: ac.signal,
      onText: () => ac.abort(),
    });
    assert.equal(r.finishReason, 'cancelled');
    assert.ok(r.usage.completionTokens < 400);
    assert.equal(chat.history.length, 2);
    // Leaving a stream early stops its turn too.
    for await (const _ of chat.stream('Tell me another one', { maxTokens: 400, sampling: { temperature: 1, seed: 2 } })) break;
    assert.equal(chat.history.length, 4);
  });

  test('images on a text-only model and turns on a disposed model are one clear error; history is unchanged', async () => {
    const chat = model.createChat();
    await assert.rejects(
      chat.send('What is this?', { images: [new Uint8Array([1, 2, 3])] }),
      (e: Error) => e instanceof UsageError && /images/.test(e.message),
    );
    assert.equal(chat.history.length, 0);
    const other = await loadModel();
    const c = other.createChat();
    // dispose() during a turn cancels it; the session refuses further turns.
    const cut = await c.send('Tell me a story', { maxTokens: 400, sampling: { temperature: 1, seed: 3 }, onText: () => other.dispose() });
    assert.equal(cut.finishReason, 'cancelled');
    await assert.rejects(c.send('hi'), UsageError);
    assert.throws(() => other.createChat(), UsageError);
    assert.throws(() => other.model.newSequence(), UsageError);
    other.dispose(); // twice is fine
  });
});

test('dispose(): 60 loads keep no threads, no file mappings and bounded memory', {
  skip: process.platform !== 'linux' && 'needs /proc',
}, () => {
  const r = spawnSync(process.execPath, ['--expose-gc', '--import', 'tsx', join(PROJECT_ROOT, 'test/helpers/dispose-loop.ts'), '60'], {
    encoding: 'utf8',
    timeout: 300000,
    cwd: PROJECT_ROOT,
  });
  assert.equal(r.status, 0, r.stderr);
  const f = JSON.parse(r.stdout.trim().split('\n').at(-1)!) as {
    [k in 'liveMappings' | 'maxThreads' | 'maxMappings' | 'mappings' | 'rssGrowth']: number;
  } & { base: { threads: number; mappings: number; rss: number } };
  const facts = JSON.stringify(f);
  // While loaded, a native-backend model holds a pool thread and its mapping (else the check below means little).
  if (f.liveMappings === 0) process.stderr.write(`\n*** dispose test: no mapping while loaded (native core not built?): ${facts} ***\n`);
  assert.ok(f.maxThreads <= f.base.threads, `threads are back to the baseline right after each dispose: ${facts}`);
  assert.equal(f.maxMappings, 0, `no mapping of the model file survives a dispose: ${facts}`);
  assert.equal(f.mappings, 0, facts);
  // Before dispose(), each load kept ~5.6 MB for good; what remains now is allocator slack (measured ~0.1-0.5 MB/load).
  assert.ok(f.rssGrowth < 60 * 0.75 * 2 ** 20, `resident memory grew ${(f.rssGrowth / 2 ** 20).toFixed(1)} MB over 60 loads: ${facts}`);
});

test("the README's Library example runs as it stands on the embedded default model", () => {
  const readme = readFileSync(join(PROJECT_ROOT, 'README.md'), 'utf8');
  const section = readme.slice(readme.indexOf('\n## Library'));
  const block = /```(?:js|ts|javascript|typescript)\n([\s\S]*?)```/.exec(section)?.[1];
  assert.ok(block, 'the Library section starts with a code block');
  assert.match(block, /from 'llama4-ts'/);
  // The package's own name resolves to its entry point; here that is the source (dist/ may be older than src/).
  const code = block.replaceAll("from 'llama4-ts'", `from ${JSON.stringify(pathToFileURL(join(PROJECT_ROOT, 'src/index.ts')).href)}`);
  const dir = mkdtempSync(join(tmpdir(), 'llama4-readme-'));
  try {
    const file = join(dir, 'example.mts');
    writeFileSync(file, code);
    const r = spawnSync(process.execPath, ['--import', 'tsx', file], { encoding: 'utf8', timeout: 120000, cwd: PROJECT_ROOT });
    assert.equal(r.status, 0, r.stderr);
    assert.match(r.stdout, /^7 plus 5 is 12\.\n/, r.stdout);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
