/**
 * The CLI's ecosystem conventions, through the real command (spawned): llama.cpp flag aliases, --version naming the
 * backend, `help CMD`, "did you mean" for commands and flags, prompts from stdin, chat slash commands, serve's early
 * port check and progress output without escape codes when stderr is not a terminal.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { spawn, spawnSync } from 'node:child_process';
import { createServer } from 'node:net';
import { readFileSync } from 'node:fs';
import { PROJECT_ROOT } from './helpers/shared.ts';
import { createProgress } from '../src/cli/progress.ts';
import { applyAliases, suggest } from '../src/cli/args.ts';

const MAIN = join(PROJECT_ROOT, 'src/cli/main.ts');
const cli = (args: string[], o: { input?: string; env?: NodeJS.ProcessEnv } = {}) =>
  spawnSync(process.execPath, ['--import', 'tsx', MAIN, ...args], {
    encoding: 'utf8',
    timeout: 120000,
    ...(o.input !== undefined ? { input: o.input } : {}),
    ...(o.env ? { env: { ...process.env, ...o.env } } : {}),
  });
const Q = 'What is 2 plus 3?';

test('--version: the package version and the backend this machine would use', () => {
  const pkg = JSON.parse(readFileSync(join(PROJECT_ROOT, 'package.json'), 'utf8')) as { version: string };
  const r = cli(['--version']);
  assert.equal(r.status, 0, r.stderr);
  assert.match(r.stdout, new RegExp(`^llama4-ts ${pkg.version.replace(/\./g, '\\.')}\n`));
  assert.match(r.stdout, /^backend: (native-(avx512|avx2-vnni|avx2|scalar) \(\S+\.node; kernel sets [a-z0-9, -]+\)|typescript \(.+\))$/m);
  const ts = cli(['--version'], { env: { LLAMA4_NATIVE: '0' } });
  assert.match(ts.stdout, /^backend: typescript \(native core disabled by LLAMA4_NATIVE=0\)$/m);
});

test('run without a loadable native core says so in one line and answers on the TypeScript backend', () => {
  const r = cli(['run', '--temp', '0', '-n', '8', Q], { env: { LLAMA4_NATIVE: '0' } });
  assert.equal(r.status, 0, r.stderr);
  assert.equal(r.stderr, 'llama4: native backend unavailable (native core disabled by LLAMA4_NATIVE=0); using the TypeScript backend\n');
  assert.equal(r.stdout, cli(['run', '--temp', '0', '-n', '8', Q]).stdout);
});

test("help CMD prints that command's usage; unknown commands get a suggestion", () => {
  const a = cli(['help', 'run']);
  const b = cli(['run', '--help']);
  assert.equal(a.status, 0);
  assert.equal(a.stdout, b.stdout);
  assert.match(a.stdout, /^usage: llama4 run/);
  const c = cli(['rnu']);
  assert.equal(c.status, 2);
  assert.equal(c.stderr.trim().split('\n').length, 1, c.stderr);
  assert.match(c.stderr, /unknown command 'rnu' \(did you mean 'run'\?\)/);
  assert.match(cli(['help', 'serv']).stderr, /did you mean 'serve'/);
});

test("unknown flags: one line with a suggestion instead of Node's parseArgs message", () => {
  const r = cli(['run', '--tmep', '0', 'hi']);
  assert.equal(r.status, 1);
  assert.equal(r.stderr.trim(), "llama4 run: unknown option '--tmep' (did you mean --temp?)");
  const s = cli(['tokenize', '--jsnol', 'x']);
  assert.match(s.stderr, /unknown option '--jsnol' \(did you mean --jsonl\?\)/);
  const t = cli(['run', '--zzzzzz', 'hi']);
  assert.match(t.stderr, /unknown option '--zzzzzz' \(--help lists the options\)/);
  assert.doesNotMatch(r.stderr + s.stderr + t.stderr, /ERR_PARSE_ARGS|To specify a positional/);
});

test('llama.cpp aliases: run --temp 0 -c 512 -n 8 equals the long spellings; -c limits the context', () => {
  const a = cli(['run', '--temp', '0', '-c', '512', '-n', '8', Q]);
  assert.equal(a.status, 0, a.stderr);
  assert.ok(a.stdout.trim().length > 0);
  const b = cli(['run', '--temperature', '0', '--ctx', '512', '--max-tokens', '8', Q]);
  assert.equal(a.stdout, b.stdout);
  const c = cli(['run', '--temp=0', '--ctx-size', '512', '--n-predict', '8', Q]);
  assert.equal(a.stdout, c.stdout);
  const d = cli(['run', '--temp', '0', '-c', '10', Q]);
  assert.equal(d.status, 1);
  assert.match(d.stderr, /the prompt has \d+ tokens, but the context holds 10/);
  // -c leaves room for just 2 answer tokens here: a shorter answer than with -n 8.
  const short = cli(['run', '--temp', '0', '-c', String(promptTokens() + 2), '-n', '8', Q]);
  assert.equal(short.status, 0, short.stderr);
  assert.ok(short.stdout.trim().length < a.stdout.trim().length, `${JSON.stringify(short.stdout)} vs ${JSON.stringify(a.stdout)}`);
});

/** Tokens of the rendered chat prompt for Q on the default model, read from the -c error message. */
function promptTokens(): number {
  const r = cli(['run', '-c', '2', Q]);
  return Number(/the prompt has (\d+) tokens/.exec(r.stderr)?.[1]);
}

test('the prompt from stdin: a pipe, or -', () => {
  const a = cli(['run', '--temp', '0', '-n', '8', Q]);
  const piped = cli(['run', '--temp', '0', '-n', '8'], { input: `${Q}\n` });
  assert.equal(piped.status, 0, piped.stderr);
  assert.equal(piped.stdout, a.stdout);
  const dash = cli(['run', '--temp', '0', '-n', '8', '-'], { input: Q });
  assert.equal(dash.stdout, a.stdout);
  const empty = cli(['run', '-'], { input: '' });
  assert.equal(empty.status, 1);
  assert.match(empty.stderr, /the prompt from stdin \(-\) is empty/);
  assert.match(cli(['run'], { input: '' }).stderr, /give a prompt/);
  const tpl = cli(['template', '--messages', '-', '--generation-prompt'], { input: JSON.stringify([{ role: 'user', content: 'hi' }]) });
  assert.equal(tpl.status, 0, tpl.stderr);
  assert.match(tpl.stdout, /<\|header_start\|>user<\|header_end\|>\n\nhi<\|eot\|><\|header_start\|>assistant<\|header_end\|>/);
});

test('chat: /help, /system, unknown commands and /bye are handled by the CLI, not sent to the model', () => {
  const r = cli(['chat', '-n', '4', '--temp', '0'], {
    input: '/help\n/system\n/system Answer briefly.\n/system\n/sytem x\n/bye\nnot reached\n',
  });
  assert.equal(r.status, 0, r.stderr);
  assert.match(r.stdout, /\/bye, \/exit, \/quit {5}leave/);
  assert.match(r.stdout, /\(no system message\)/);
  assert.match(r.stdout, /\(system message set\)/);
  assert.match(r.stdout, /system: Answer briefly\./);
  assert.match(r.stdout, /unknown command \/sytem \(did you mean \/system\?\); \/help lists the commands/);
  // Only the banner, prompts and the CLI's own replies: no model text (the model would answer every line it saw).
  const own =
    /^(llama4 chat —.*|commands \(not sent.*| {2}\/.*|Ctrl-C while.*|\(no system message\)|\(system message set\)|system: Answer briefly\.|unknown command .*)$/;
  const lines = r.stdout
    .split('\n')
    .map((l) => l.replace(/^(> )+/, ''))
    .filter((l) => l.length > 0);
  for (const l of lines) assert.match(l, own);
});

test('bench runs on the embedded model without -m, as its help says', () => {
  const h = cli(['bench', '--help']);
  assert.match(h.stdout, /^usage: llama4 bench \[-m MODEL\]/);
  const r = cli(['bench', '-p', '8', '-n', '4', '-r', '1', '--json']);
  assert.equal(r.status, 0, r.stderr);
  assert.ok(JSON.parse(r.stdout).decode_tps > 0);
});

test('run --help states the real temperature default', () => {
  const r = cli(['run', '--help']);
  assert.match(r.stdout, /generation_config\.json, else 0\.6/);
  assert.doesNotMatch(r.stdout, /0\.7/);
});

test('serve: a taken port is one line before the model loads', async () => {
  const blocker = createServer();
  await new Promise<void>((res) => blocker.listen(0, '127.0.0.1', res));
  const port = (blocker.address() as { port: number }).port;
  try {
    const r = cli(['serve', '--port', String(port)]);
    assert.equal(r.status, 1);
    assert.equal(
      r.stderr.trim(),
      `llama4 serve: port ${port} on 127.0.0.1 is already in use (another server?); choose another with --port`,
    );
  } finally {
    blocker.close();
  }
});

test('serve: loading progress in a log (stderr not a terminal) is plain lines without escapes', async () => {
  const child = spawn(process.execPath, ['--import', 'tsx', MAIN, 'serve', '--port', '0', '--alias', 'tiny-chat'], {
    stdio: ['ignore', 'ignore', 'pipe'],
  });
  let err = '';
  child.stderr.setEncoding('utf8');
  await new Promise<void>((resolve, reject) => {
    const t = setTimeout(() => reject(new Error(`serve did not start: ${err}`)), 60000);
    child.stderr.on('data', (d: string) => {
      err += d;
      if (/listening on /.test(err)) {
        clearTimeout(t);
        resolve();
      }
    });
    child.once('exit', (code) => reject(new Error(`serve exited ${code}: ${err}`)));
  });
  child.kill('SIGTERM');
  await new Promise((res) => child.once('exit', res));
  assert.doesNotMatch(err, /[\r\x1b]/, JSON.stringify(err));
  assert.match(err, /^loading .*: 0% reading weights$/m);
  assert.match(err, /^loaded tiny-chat in [\d.]+ s$/m);
  assert.match(err, /model 'tiny-chat'/);
});

test('progress: a bar redrawn in place on a terminal, plain lines at tenths otherwise', () => {
  const sink = (tty: boolean) => {
    let out = '';
    return {
      stream: {
        isTTY: tty,
        columns: 80,
        write: (s: string) => {
          out += s;
          return true;
        },
      } as unknown as NodeJS.WritableStream,
      text: () => out,
    };
  };
  const plain = sink(false);
  const p = createProgress('writing x', { stream: plain.stream });
  for (let i = 0; i <= 100; i++) p.update(i / 100, `[${i}/100]`);
  p.done('wrote x');
  assert.doesNotMatch(plain.text(), /[\r\x1b]/);
  assert.equal(plain.text().split('\n').filter(Boolean).length, 12); // 0%, 10%, …, 100% and the final line
  const tty = sink(true);
  const q = createProgress('writing x', { stream: tty.stream });
  q.update(0.5, 'half');
  q.done();
  assert.match(tty.text(), /^\rwriting x \[#{12}\.{12}\] {2}50% half\x1b\[K\r\x1b\[K$/);
});

test('aliases apply only where the command has the target flag and no flag of that name', () => {
  const opts = { temperature: { type: 'string' }, ctx: { type: 'string' } } as const;
  assert.deepEqual(applyAliases(['--temp', '0', '-c', '5', '--', '--temp'], opts), ['--temperature', '0', '--ctx', '5', '--', '--temp']);
  assert.deepEqual(applyAliases(['-c', '5'], { count: { type: 'string', short: 'c' }, ctx: { type: 'string' } }), ['-c', '5']);
  assert.deepEqual(applyAliases(['--temp', '1'], { seed: { type: 'string' } }), ['--temp', '1']);
  assert.equal(suggest('--tempreature', ['--temperature', '--top-k']), '--temperature');
  assert.equal(suggest('--xyz', ['--temperature', '--top-k']), null);
});
