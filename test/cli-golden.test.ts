/** The verification commands users debug checkpoints with, checked against the HF reference (../shared/golden). */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { spawnSync } from 'node:child_process';
import { PROJECT_ROOT, sharedPath, maxAbsDiff } from './helpers/shared.ts';

function cli(args: string[]) {
  const r = spawnSync(process.execPath, ['--import', 'tsx', join(PROJECT_ROOT, 'src/cli/main.ts'), ...args], {
    encoding: 'utf8',
    timeout: 120000,
    maxBuffer: 64 << 20,
  });
  return r;
}

for (const name of ['a_moe_all_chunked_temptuning', 'b_maverick_interleaved', 'c_scout_shaped', 'd_chunk_boundary_generation']) {
  test(`CLI golden ${name}: logits --all --json and generate --json`, (t) => {
    const dir = sharedPath('golden', name);
    if (!dir) return t.skip('../shared/golden missing');
    const exp = JSON.parse(readFileSync(join(dir, 'expected.json'), 'utf8'));
    const r = cli(['logits', '-m', dir, '--ids', exp.input_ids.join(','), '--all', '--json', '--backend', 'typescript']);
    assert.equal(r.status, 0, r.stderr);
    const out = JSON.parse(r.stdout) as { logits: number[][]; argmax: number[] };
    assert.equal(out.logits.length, exp.input_ids.length);
    out.logits.forEach((row, p) => assert.ok(maxAbsDiff(row, exp.logits[p]) < 1e-4, `position ${p}`));
    assert.deepEqual(out.argmax, exp.argmax_per_position);
    const last = cli(['logits', '-m', dir, '--ids', exp.input_ids.join(','), '--json']);
    assert.equal(JSON.parse(last.stdout).logits.length, 1);
    const g = exp.generation;
    const r2 = cli([
      'generate',
      '-m',
      dir,
      '--ids',
      g.prompt_ids.join(','),
      '-n',
      String(g.max_new_tokens),
      '--temperature',
      '0',
      '--json',
    ]);
    assert.equal(r2.status, 0, r2.stderr);
    assert.deepEqual(JSON.parse(r2.stdout).ids, g.generated_ids);
  });
}

test('CLI: user mistakes give one line and a non-zero exit', () => {
  for (const args of [
    ['logits', '--ids', '1,x'],
    ['generate', '-m', '/no/such/model', '--ids', '1'],
    ['logits', '--bogus'],
    ['nope'],
    ['logits', '--ids', '1', '--kv-type', 'q4_0'],
  ]) {
    const r = cli(args);
    assert.notEqual(r.status, 0, args.join(' '));
    assert.doesNotMatch(r.stderr, /\n\s+at /, `no stack trace for ${args.join(' ')}`);
  }
});

test('CLI golden e_multimodal: logits --pixel-values runs the vision tower and fuses the features', async (t) => {
  const dir = sharedPath('golden', 'e_multimodal');
  if (!dir) return t.skip('../shared/golden missing');
  const exp = JSON.parse(readFileSync(join(dir, 'expected.json'), 'utf8'));
  const side = exp.pixel_values_shape[2] as number;
  // expected.json stores pixel_values as [c][y*side+x]; the CLI takes [tiles][c][y][x].
  const pv = [exp.pixel_values.map((plane: number[]) => Array.from({ length: side }, (_, y) => plane.slice(y * side, (y + 1) * side)))];
  const { mkdtempSync, writeFileSync } = await import('node:fs');
  const { tmpdir } = await import('node:os');
  const file = join(mkdtempSync(join(tmpdir(), 'llama4-pv-')), 'pv.json');
  writeFileSync(file, JSON.stringify(pv));
  const r = cli(['logits', '-m', dir, '--ids', exp.input_ids.join(','), '--all', '--json', '--pixel-values', file]);
  assert.equal(r.status, 0, r.stderr);
  const out = JSON.parse(r.stdout) as { logits: number[][] };
  out.logits.forEach((row, p) => assert.ok(maxAbsDiff(row, exp.logits[p]) < 1e-4, `position ${p}`));
  const noVision = cli(['logits', '-m', sharedPath('golden', 'b_maverick_interleaved')!, '--ids', '1,2', '--pixel-values', file]);
  assert.equal(noVision.status, 1);
  assert.match(noVision.stderr, /needs a multimodal checkpoint/);
});
