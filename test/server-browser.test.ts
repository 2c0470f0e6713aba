/**
 * The chat page in a real headless browser (Debian chromium driven by playwright-core) against the server with the
 * fake engine: streamed answers with an image, the demo tool, markdown and code blocks rendered safely, saved
 * conversations (switch, rename, delete, reload), system prompt and sampling settings from the model's defaults,
 * stop, regenerate, edit-and-resend, copy, images only for a model that takes them (attach, paste, drop), and a
 * failed request shown in place without breaking the next one. Screenshots go to test-output/ (gitignored).
 * Installs chromium through apt when missing; skips LOUDLY when it cannot.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdirSync, readFileSync } from 'node:fs';
import { spawnSync } from 'node:child_process';
import { chromium, type Browser, type Page } from 'playwright-core';
import { startServer, type RunningServer } from '../src/server/app.ts';
import { fakeEngine } from './server-fixtures.ts';
import { sharedPath } from './helpers/shared.ts';

/*
 * The browser globals the callbacks passed to page.evaluate / waitForFunction use: they run in the page, and the
 * tsconfig has no DOM lib (Node's globals would clash), so they are typed loosely here.
 */
type BrowserAny = any;
declare const document: BrowserAny;
declare const navigator: BrowserAny;
declare const DataTransfer: BrowserAny;
declare const ClipboardEvent: BrowserAny;
declare const DragEvent: BrowserAny;

const CHROMIUM = '/usr/bin/chromium';
function ensureChromium(): string | null {
  if (existsSync(CHROMIUM)) return null;
  const r = spawnSync('sh', ['-c', 'flock /tmp/apt.lock apt-get install -y chromium'], { stdio: 'ignore', timeout: 300_000 });
  return existsSync(CHROMIUM) ? null : `chromium could not be installed (apt-get exit ${r.status})`;
}
const why = ensureChromium();
const image = sharedPath('images', 'synthetic_50x50.png');
const OUT = new URL('../test-output/', import.meta.url);

describe('chat page in headless chromium', {
  skip: why ? `SKIPPED LOUDLY: ${why}` : image ? false : 'SKIPPED LOUDLY: ../shared/images missing',
}, () => {
  let vision: RunningServer;
  let textOnly: RunningServer;
  let slow: RunningServer;
  let browser: Browser;
  before(async () => {
    mkdirSync(OUT, { recursive: true });
    vision = await startServer(
      { ...fakeEngine({ parallel: 2 }), samplingDefaults: { temperature: 0.6, topP: 0.9 } },
      { port: 0, log: () => undefined },
    );
    textOnly = await startServer({ ...fakeEngine({ parallel: 2 }), supportsImages: false }, { port: 0, log: () => undefined });
    slow = await startServer(fakeEngine({ parallel: 2, delayMs: 15 }), { port: 0, log: () => undefined });
    browser = await chromium.launch({
      executablePath: CHROMIUM,
      // playwright makes a fresh empty profile itself (it refuses --user-data-dir here).
      args: [
        '--no-sandbox',
        '--disable-gpu',
        '--disable-quic',
        '--no-first-run',
        '--disable-background-networking',
        '--disable-component-update',
        '--disable-sync',
      ],
    });
  });
  after(async () => {
    await browser?.close();
    await Promise.all([vision?.close(), textOnly?.close(), slow?.close()]);
  });

  /** A fresh page (its own storage) on `srv`, with every request outside the server recorded. */
  async function open(srv: RunningServer): Promise<{ page: Page; external: string[]; bodies: Record<string, any>[] }> {
    const context = await browser.newContext({ viewport: { width: 1100, height: 760 } });
    await context.grantPermissions(['clipboard-read', 'clipboard-write'], { origin: srv.url });
    const page = await context.newPage();
    const external: string[] = [];
    const bodies: Record<string, any>[] = [];
    page.on('request', (r) => {
      if (!r.url().startsWith(srv.url) && !r.url().startsWith('data:') && !r.url().startsWith('blob:')) external.push(r.url());
      if (r.url().endsWith('/v1/chat/completions')) bodies.push(JSON.parse(r.postData() ?? '{}'));
    });
    await page.goto(srv.url + '/');
    await page.waitForFunction(() => document.getElementById('model')?.textContent === 'fake-llama4');
    return { page, external, bodies };
  }
  const answers = (page: Page) => page.locator('.msg.assistant[data-done="true"]');
  async function send(page: Page, text: string, nth: number) {
    await page.fill('#input', text);
    await page.press('#input', 'Enter');
    await answers(page).nth(nth).waitFor({ timeout: 15_000 });
    await page.waitForSelector('#send:not([hidden])');
  }

  test('sends a message with an image and shows the streamed answer', async () => {
    const { page, external } = await open(vision);
    await page.click('#settings-btn');
    await page.fill('#temperature', '0');
    assert.equal(await page.isVisible('#attach-btn'), true);
    await page.setInputFiles('#attach', image!);
    await page.waitForSelector('#preview img');
    await page.fill('#input', 'What is in this picture?');
    await page.click('#send');
    const answer = page.locator('.msg.assistant[data-done="true"] .text');
    await answer.waitFor({ timeout: 15_000 });
    const bytes = readFileSync(image!);
    const mean = Math.round(bytes.reduce((s, b) => s + b, 0) / bytes.length);
    assert.equal(await answer.textContent(), `I see 1 image(s), brightness ${mean}.`);
    assert.equal(await page.locator('.msg.user img').count(), 1);
    assert.match((await page.locator('.msg.assistant .meta').textContent()) ?? '', /stop · \d+ tokens · [\d.]+ tok\/s/);
    assert.deepEqual(external, [], 'the page makes no outside requests');
    await page.context().close();
  });

  test('shows tool calls and the answer after the tool result', async () => {
    const { page } = await open(vision);
    await page.click('#settings-btn');
    await page.fill('#temperature', '0');
    await page.check('#tools');
    await page.fill('#input', 'Weather in Paris?');
    await page.press('#input', 'Enter');
    await page.locator('.tool-call').waitFor({ timeout: 15_000 });
    assert.equal(await page.locator('.tool-call').textContent(), '🔧 get_weather({"city":"Paris"})');
    const second = answers(page).nth(1);
    await second.waitFor({ timeout: 15_000 });
    assert.match((await second.locator('.text').textContent()) ?? '', /^The weather is sunny, 21/);
    await page.context().close();
  });

  test('markdown and code blocks are rendered; links to scripts and remote images are not', async () => {
    const { page, external } = await open(vision);
    await send(page, 'x **bold** `tick`\n```js\nlet a = 1;\n```', 0);
    const last = answers(page).nth(0).locator('.text');
    assert.equal(await last.locator('strong').textContent(), 'bold');
    assert.equal(await last.locator('pre code').textContent(), 'let a = 1;\n');
    await send(page, '[click](javascript:alert(1))', 1);
    await send(page, '![t](http://evil.example/t.png)', 2);
    assert.equal(await page.locator('.msg.assistant a').count(), 1);
    assert.equal(await page.locator('.msg.assistant a').getAttribute('href'), null, 'javascript: link removed');
    assert.equal(await page.locator('.msg.assistant img').count(), 0);
    assert.deepEqual(external, []);
    await page.screenshot({ path: new URL('chat-markdown.png', OUT).pathname, fullPage: true });
    await page.context().close();
  });

  test('conversations are saved: switch, rename, delete, and they survive a reload', async () => {
    const { page } = await open(vision);
    await send(page, 'first chat', 0);
    await page.click('#new-chat');
    await send(page, 'second chat', 0);
    assert.deepEqual(await page.locator('.chat-item .title').allTextContents(), ['second chat', 'first chat']);
    await page.locator('.chat-item .title', { hasText: 'first chat' }).click();
    assert.equal(await answers(page).nth(0).locator('.text').textContent(), 'Hello! You said: first chat');
    await page.locator('.chat-item.active .rename').click();
    await page.fill('.rename-input', 'Renamed');
    await page.press('.rename-input', 'Enter');
    await page.reload();
    await page.waitForFunction(() => document.getElementById('model')?.textContent === 'fake-llama4');
    assert.deepEqual(await page.locator('.chat-item .title').allTextContents(), ['second chat', 'Renamed']);
    assert.equal(await page.locator('.chat-item.active .title').textContent(), 'Renamed', 'the open conversation is remembered');
    assert.equal(await answers(page).nth(0).locator('.text').textContent(), 'Hello! You said: first chat');
    await page.locator('.chat-item', { hasText: 'second chat' }).locator('.delete').click();
    assert.deepEqual(await page.locator('.chat-item .title').allTextContents(), ['Renamed']);
    await page.context().close();
  });

  test('system prompt and sampling settings start from the model defaults and are sent', async () => {
    const { page, bodies } = await open(vision);
    await page.click('#settings-btn');
    assert.equal(await page.inputValue('#temperature'), '0.6');
    assert.equal(await page.inputValue('#top_p'), '0.9');
    assert.equal(await page.inputValue('#top_k'), '0');
    assert.equal(await page.inputValue('#seed'), '');
    await page.fill('#system', 'You are terse.');
    await page.fill('#top_k', '40');
    await page.fill('#min_p', '0.05');
    await page.fill('#max', '64');
    await page.fill('#seed', '7');
    await page.dispatchEvent('#seed', 'change');
    await send(page, 'settings check', 0);
    const b = bodies.at(-1)!;
    assert.deepEqual(b.messages[0], { role: 'system', content: 'You are terse.' });
    assert.deepEqual([b.temperature, b.top_p, b.top_k, b.min_p, b.max_tokens, b.seed], [0.6, 0.9, 40, 0.05, 64, 7]);
    await page.click('#reset-settings');
    assert.equal(await page.inputValue('#top_k'), '0');
    await page.screenshot({ path: new URL('chat-settings.png', OUT).pathname, fullPage: true });
    await page.context().close();
  });

  test('stop, regenerate, edit-and-resend and copy', async () => {
    const { page, bodies } = await open(slow);
    // Greedy: the fake engine samples at the page's default temperature (1), and the edited answer is checked verbatim.
    await page.click('#settings-btn');
    await page.fill('#temperature', '0');
    await page.fill('#input', 'long answer please');
    await page.press('#input', 'Enter');
    await page.waitForSelector('#stop:not([hidden])');
    await page.waitForFunction(() => (document.querySelector('.msg.assistant .text')?.textContent ?? '').length > 5);
    await page.click('#stop');
    await answers(page).nth(0).waitFor({ timeout: 15_000 });
    assert.match((await answers(page).nth(0).locator('.meta').textContent()) ?? '', /^stopped/);
    const n = bodies.length;
    await page.click('.msg.assistant .regenerate');
    await page.waitForFunction(() => document.querySelector('#stop')?.hasAttribute('hidden') === false);
    await page.click('#stop');
    await page.waitForSelector('#send:not([hidden])');
    assert.equal(bodies.length, n + 1);
    assert.deepEqual(bodies.at(-1)!.messages, bodies.at(-2)!.messages, 'regenerate resends the same conversation');
    assert.equal(await page.locator('.msg.assistant').count(), 1, 'the regenerated answer replaces the old one');
    await page.click('.msg.user .edit');
    await page.fill('.edit-box textarea', 'edited question');
    await page.click('.edit-box .edit-send');
    await page.waitForFunction(
      () => document.querySelector('.msg.assistant[data-done="true"] .text')?.textContent === 'Hello! You said: edited question',
      null,
      { timeout: 40_000 },
    );
    assert.deepEqual(await page.locator('.msg.user .text').allTextContents(), ['edited question']);
    await page.click('.msg.assistant .copy');
    assert.equal(await page.evaluate(() => navigator.clipboard.readText()), 'Hello! You said: edited question');
    await page.context().close();
  });

  test('images only when the model takes them; paste and drop attach them', async () => {
    const text = await open(textOnly);
    assert.equal(await text.page.isVisible('#attach-btn'), false, 'no attach button for a text-only model');
    const png = readFileSync(image!).toString('base64');
    const pasteAndDrop = (p: Page) =>
      p.evaluate(async (b64) => {
        const bytes = Uint8Array.from(atob(b64), (c) => c.charCodeAt(0));
        const dt = new DataTransfer();
        dt.items.add(new File([bytes], 'pasted.png', { type: 'image/png' }));
        document
          .getElementById('input')!
          .dispatchEvent(new ClipboardEvent('paste', { clipboardData: dt, bubbles: true, cancelable: true }));
        const dt2 = new DataTransfer();
        dt2.items.add(new File([bytes], 'dropped.png', { type: 'image/png' }));
        document.getElementById('form')!.dispatchEvent(new DragEvent('drop', { dataTransfer: dt2, bubbles: true, cancelable: true }));
        await new Promise((r) => setTimeout(r, 300));
      }, png);
    await pasteAndDrop(text.page);
    assert.equal(await text.page.locator('#preview img').count(), 0);
    assert.equal(await text.page.textContent('#status'), 'this model does not take images');
    await text.page.context().close();
    const vis = await open(vision);
    await pasteAndDrop(vis.page);
    assert.equal(await vis.page.locator('#preview img').count(), 2);
    await send(vis.page, 'two pictures', 0);
    assert.match((await answers(vis.page).nth(0).locator('.text').textContent()) ?? '', /^I see 2 image\(s\)/);
    await vis.page.context().close();
  });

  test('a failed request shows its error in place and the next message works', async () => {
    const { page, bodies } = await open(vision);
    await page.setInputFiles('#attach', { name: 'bad.png', mimeType: 'image/png', buffer: Buffer.from('this is not an image at all') });
    await page.waitForSelector('#preview img');
    await page.fill('#input', 'look at this');
    await page.press('#input', 'Enter');
    await page.locator('.msg.error').waitFor({ timeout: 15_000 });
    assert.match((await page.locator('.msg.error').textContent()) ?? '', /\[error\] .*is not a PNG, JPEG, GIF or WebP image/);
    assert.equal(await page.locator('.msg.user.failed').count(), 1);
    await send(page, 'hello again', 0);
    assert.equal(await answers(page).nth(0).locator('.text').textContent(), 'Hello! You said: hello again');
    const sent = bodies.at(-1)!.messages as { role: string; content: unknown }[];
    assert.deepEqual(sent, [{ role: 'user', content: 'hello again' }], 'the failed turn is not sent again');
    await page.screenshot({ path: new URL('chat-error.png', OUT).pathname, fullPage: true });
    await page.context().close();
  });
});
