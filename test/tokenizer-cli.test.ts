/** `llama4 tokenize` and `llama4 template` end to end (spawned CLI), against the shared references. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';

const SHARED = resolve(process.cwd(), '../shared');
const MODEL = join(SHARED, 'tokenizer/llama4-tokenizer.model');
const GGUF = join(SHARED, 'gguf/llama4-tiny-g1-F16.gguf');
const CHAT = join(SHARED, 'chat');
const SKIP = existsSync(MODEL) && existsSync(CHAT) ? false : `SKIPPED: ${SHARED} tokenizer/chat references are absent`;
if (SKIP) console.warn(`\n*** ${SKIP} ***\n`);

function cli(args: string[], input?: string): { code: number; out: string; err: string } {
  const r = spawnSync(process.execPath, ['--import', 'tsx', 'src/cli/main.ts', ...args], {
    encoding: 'utf8',
    input: input ?? '',
    maxBuffer: 64 << 20,
  });
  return { code: r.status ?? -1, out: r.stdout, err: r.stderr };
}

test('tokenize: TEXT, --special, --json and --jsonl agree with cases.jsonl', { skip: SKIP }, () => {
  const cases = readFileSync(join(SHARED, 'tokenizer/cases.jsonl'), 'utf8')
    .trim()
    .split('\n')
    .map((l) => JSON.parse(l) as { text: string; ids: number[]; ids_with_special: number[]; has_special_text: boolean });
  const withSpecial = cases.find((c) => c.has_special_text)!;
  let r = cli(['tokenize', '--tokenizer', MODEL, withSpecial.text, '--special', '--json']);
  assert.equal(r.code, 0, r.err);
  assert.deepEqual((JSON.parse(r.out) as { ids: number[] }).ids, withSpecial.ids_with_special);
  r = cli(['tokenize', '--tokenizer', MODEL, withSpecial.text]);
  assert.equal(r.out.trim(), withSpecial.ids.join(' '));
  // --jsonl: the whole corpus in one process.
  r = cli(['tokenize', '--tokenizer', MODEL, '--jsonl'], cases.map((c) => JSON.stringify({ text: c.text })).join('\n') + '\n');
  assert.equal(r.code, 0, r.err);
  const lines = r.out
    .trim()
    .split('\n')
    .map((l) => (JSON.parse(l) as { ids: number[] }).ids);
  assert.equal(lines.length, cases.length);
  lines.forEach((ids, i) => assert.deepEqual(ids, cases[i]!.ids, `line ${i + 1}`));
  // One clear error, exit code 1.
  r = cli(['tokenize', '--tokenizer', MODEL, '--jsonl'], '{"text": 1}\n');
  assert.equal(r.code, 1);
  assert.match(r.err, /line 1: expected \{"text": string\}/);
});

test('tokenize -m GGUF reads tokenizer.ggml.* (byte-level merges, control tokens)', { skip: SKIP || !existsSync(GGUF) }, () => {
  const r = cli(['tokenize', '-m', GGUF, '<|begin_of_text|>hello world', '--special', '--json']);
  assert.equal(r.code, 0, r.err);
  const { ids, tokens } = JSON.parse(r.out) as { ids: number[]; tokens: string[] };
  assert.equal(ids[0], 480); // BOS of the tiny vocabulary
  assert.equal(tokens.join('').replace(/Ġ/g, ' '), '<|begin_of_text|>hello world');
});

test('template: the HF template via --template, tools and --context, prints {"prompt"}', { skip: SKIP }, () => {
  const cases = JSON.parse(readFileSync(join(CHAT, 'chat-cases.json'), 'utf8')) as {
    template: string;
    messages: unknown;
    tools: unknown;
    extra_context: unknown;
    add_generation_prompt: boolean;
    rendered_python_jinja2: string;
  }[];
  const c = cases.find((x) => x.tools && x.extra_context && x.template.startsWith('vllm-tool_chat_template_llama4_json'))!;
  const dir = mkdtempSync(join(tmpdir(), 'llama4-tpl-'));
  try {
    writeFileSync(join(dir, 'm.json'), JSON.stringify(c.messages));
    writeFileSync(join(dir, 't.json'), JSON.stringify(c.tools));
    const args = [
      'template',
      '--template',
      join(CHAT, 'templates', c.template),
      '--messages',
      join(dir, 'm.json'),
      '--tools',
      join(dir, 't.json'),
      '--context',
      JSON.stringify(c.extra_context),
      '--json',
    ];
    if (c.add_generation_prompt) args.push('--generation-prompt');
    const r = cli(args);
    assert.equal(r.code, 0, r.err);
    assert.equal((JSON.parse(r.out) as { prompt: string }).prompt, c.rendered_python_jinja2);
    const bad = cli(['template', '--messages', join(dir, 'missing.json')]);
    assert.equal(bad.code, 1);
    assert.match(bad.err, /no such file/);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
