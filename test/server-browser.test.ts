/**
 * The chat page in a real headless browser (Debian chromium driven by playwright-core): send a message with an
 * attached image and see the streamed answer; turn on the demo tool and see the tool call and the follow-up answer.
 * Installs chromium through apt when missing; skips LOUDLY when it cannot.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, readFileSync } from 'node:fs';
import { spawnSync } from 'node:child_process';
import { chromium, type Browser } from 'playwright-core';
import { startServer, type RunningServer } from '../src/server/app.ts';
import { fakeEngine } from './server-fixtures.ts';
import { sharedPath } from './helpers/shared.ts';

/** The page's DOM, as the callbacks passed to page.waitForFunction see it (they run in the browser; tsconfig has no DOM lib). */
declare const document: { getElementById(id: string): { textContent: string | null } | null };

const CHROMIUM = '/usr/bin/chromium';
function ensureChromium(): string | null {
  if (existsSync(CHROMIUM)) return null;
  const r = spawnSync('sh', ['-c', 'flock /tmp/apt.lock apt-get install -y chromium'], { stdio: 'ignore', timeout: 300_000 });
  return existsSync(CHROMIUM) ? null : `chromium could not be installed (apt-get exit ${r.status})`;
}
const why = ensureChromium();
const image = sharedPath('images', 'synthetic_50x50.png');

describe('chat page in headless chromium', { skip: why ? `SKIPPED LOUDLY: ${why}` : image ? false : 'SKIPPED LOUDLY: ../shared/images missing' }, () => {
  let srv: RunningServer;
  let browser: Browser;
  before(async () => {
    srv = await startServer(fakeEngine({ parallel: 2 }), { port: 0, log: () => undefined });
    browser = await chromium.launch({
      executablePath: CHROMIUM,
      // playwright makes a fresh empty profile itself (it refuses --user-data-dir here).
      args: ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync'],
    });
  });
  after(async () => {
    await browser?.close();
    await srv?.close();
  });

  test('sends a message with an image and shows the streamed answer', async () => {
    const page = await browser.newPage();
    const external: string[] = [];
    page.on('request', (r) => {
      if (!r.url().startsWith(srv.url) && !r.url().startsWith('data:')) external.push(r.url());
    });
    await page.goto(srv.url + '/');
    await page.waitForFunction(() => document.getElementById('model')?.textContent === 'fake-llama4');
    await page.fill('#temperature', '0');
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
    assert.match((await page.locator('.msg.assistant .meta').textContent()) ?? '', /stop · \d+ tokens/);
    assert.deepEqual(external, [], 'the page makes no outside requests');
    await page.close();
  });

  test('shows tool calls and the answer after the tool result', async () => {
    const page = await browser.newPage();
    await page.goto(srv.url + '/');
    await page.waitForFunction(() => document.getElementById('model')?.textContent === 'fake-llama4');
    await page.fill('#temperature', '0');
    await page.check('#tools');
    await page.fill('#input', 'Weather in Paris?');
    await page.press('#input', 'Enter');
    await page.locator('.tool-call').waitFor({ timeout: 15_000 });
    assert.equal(await page.locator('.tool-call').textContent(), '🔧 get_weather({"city":"Paris"})');
    const second = page.locator('.msg.assistant[data-done="true"]').nth(1);
    await second.waitFor({ timeout: 15_000 });
    assert.match((await second.locator('.text').textContent()) ?? '', /^The weather is sunny, 21/);
    await page.close();
  });
});
