// Checkpoint safety: a training run killed (SIGKILL) at random points inside checkpoint saves, many times, always
// resumes from a whole checkpoint (the manifest verifies) and ends bit-identical to an uninterrupted run.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync, readdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { toTokenizerJson, trainBpe } from '../src/train/bpe.ts';
import { loadCheckpoint, resolveCheckpoint, verifyCheckpoint } from '../src/train/checkpoint.ts';
import { Rng } from '../src/train/rng.ts';
import { train, type TrainRunConfig } from '../src/train/trainer.ts';
import { PROJECT_ROOT } from './helpers/shared.ts';

const dir = mkdtempSync(join(tmpdir(), 'llama4-train-kill-'));
process.on('exit', () => rmSync(dir, { recursive: true, force: true }));
const corpus = Array.from({ length: 30 }, (_, i) => `Line ${i}: the quick brown fox jumps over ${i % 7} lazy dogs.`).join('\n\n\n');
writeFileSync(join(dir, 'corpus.txt'), corpus);
writeFileSync(join(dir, 'tokenizer.json'), JSON.stringify(toTokenizerJson(trainBpe(corpus, 40))));
const STEPS = 12;
const cfg = (out: string): TrainRunConfig => ({
  out: join(dir, out),
  seed: 3,
  tokenizer: join(dir, 'tokenizer.json'),
  model: {
    hidden_size: 16,
    num_attention_heads: 2,
    num_key_value_heads: 1,
    head_dim: 8,
    num_hidden_layers: 2,
    intermediate_size: 16,
    intermediate_size_mlp: 24,
    num_local_experts: 2,
    attention_chunk_size: 8,
    rope_theta: 1000,
  },
  data: { text_files: [join(dir, 'corpus.txt')], text_share: 1, seq_len: 16, heldout_share: 0 },
  train: { steps: STEPS, batch: 2, lr: 3e-3, warmup: 2 },
  save_every: 1,
});

test('SIGKILL inside checkpoint saves, 25+ times: every resume finds a whole checkpoint and the run ends bit-exact', () => {
  const full = train(cfg('full'), { log: () => {} });
  assert.equal(full.steps, STEPS);
  const cfgPath = join(dir, 'killed.json');
  writeFileSync(cfgPath, JSON.stringify(cfg('killed')));
  const rng = new Rng(11);
  let kills = 0,
    finished = false;
  const child = join(PROJECT_ROOT, 'test', 'fixtures', 'train-kill-child.ts');
  for (let round = 0; round < 200 && !finished; round++) {
    // Kill at a random file-system call among the next ~2 saves (each save makes ~30 such calls); every 4th round
    // runs without a kill budget so the run keeps moving forward.
    const killAt = kills >= 25 ? 0 : 1 + rng.int(60);
    const r = spawnSync(process.execPath, ['--import', 'tsx', child, cfgPath, String(killAt)], { cwd: PROJECT_ROOT, encoding: 'utf8' });
    if (r.signal === 'SIGKILL') kills++;
    else {
      assert.equal(r.status, 0, `child failed: ${r.stderr}`);
      finished = true;
    }
    // Whatever the kill interrupted, the current checkpoint (if any) is whole.
    const cur = resolveCheckpoint(join(dir, 'killed'));
    if (cur) {
      verifyCheckpoint(cur);
      loadCheckpoint(cur);
    }
  }
  assert.ok(finished, 'the run never finished');
  assert.ok(kills >= 25, `only ${kills} kills`);
  const a = loadCheckpoint(join(dir, 'full')),
    b = loadCheckpoint(join(dir, 'killed'));
  a.params.forEach((p, i) => assert.deepEqual(p.data, b.params[i]!.data, `${p.name} differs after ${kills} kills`));
  // Old folders are pruned: the store holds the current checkpoint and at most one before it (plus partial folders of killed saves).
  const done = readdirSync(join(dir, 'killed.ckpt')).filter((n) => !n.endsWith('.partial'));
  assert.ok(done.length <= 2, `store has ${done.join(', ')}`);
});

test('llama4 train: SIGINT (Ctrl-C) finishes the step, saves a whole checkpoint and exits 0', async () => {
  const cfgPath = join(dir, 'sigint.json');
  writeFileSync(cfgPath, JSON.stringify({ ...cfg('sigint'), train: { steps: 100000, batch: 2, lr: 3e-3, warmup: 2 }, save_every: 1000 }));
  const script = `import { main } from ${JSON.stringify(join(PROJECT_ROOT, 'src/cli/main.ts'))}; process.exitCode = await main(['train', '--config', ${JSON.stringify(cfgPath)}, '--backend', 'typescript']);`;
  const { spawn } = await import('node:child_process');
  const child = spawn(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', script], { cwd: PROJECT_ROOT });
  let out = '',
    sent = false;
  child.stdout.on('data', (d: Buffer) => {
    out += d.toString();
    // Interrupt once (a second Ctrl-C aborts), when training is clearly under way (a few progress lines printed).
    if (!sent && (out.match(/^step \d+/gm) ?? []).length >= 3) {
      sent = true;
      child.kill('SIGINT');
    }
  });
  child.stderr.on('data', (d: Buffer) => {
    out += d.toString();
  });
  const code = await new Promise<number | null>((res) => child.on('exit', (c) => res(c)));
  assert.equal(code, 0, out);
  assert.match(out, /stopped at step \d+/);
  const step = Number(out.match(/stopped at step (\d+)/)![1]);
  const cur = resolveCheckpoint(join(dir, 'sigint'))!;
  verifyCheckpoint(cur);
  const state = JSON.parse((await import('node:fs')).readFileSync(join(cur, 'trainer_state.json'), 'utf8')) as { step: number };
  assert.equal(state.step, step);
});
