// End-to-end smoke test of the training pipeline at toy scale (seconds): BPE tokenizer → `llama4 train --config`
// (text + generated chat mixture) → HF checkpoint; resume reproduces an uninterrupted run bit for bit; a stop
// request (Ctrl-C) saves a checkpoint; codistillation from a teacher and SFT files run; bad configs give one error.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync, writeFileSync, existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { toTokenizerJson, trainBpe } from '../src/train/bpe.ts';
import { loadCheckpoint } from '../src/train/checkpoint.ts';
import { train, type TrainRunConfig } from '../src/train/trainer.ts';
import { trainCommand } from '../src/cli/commands/train.ts';
import { Llama4Error } from '../src/util/errors.ts';

const dir = mkdtempSync(join(tmpdir(), 'llama4-train-e2e-'));
process.on('exit', () => rmSync(dir, { recursive: true, force: true }));
const corpus = Array.from(
  { length: 40 },
  (_, i) => `Proverb ${i}: a stitch in time saves ${i % 9} more. What is ${i} plus 1? It is ${i + 1}.`,
).join('\n\n\n');
writeFileSync(join(dir, 'corpus.txt'), corpus);
writeFileSync(join(dir, 'tokenizer.json'), JSON.stringify(toTokenizerJson(trainBpe(corpus, 60))));
const model = {
  hidden_size: 16,
  num_attention_heads: 2,
  num_key_value_heads: 1,
  head_dim: 8,
  num_hidden_layers: 4,
  intermediate_size: 16,
  intermediate_size_mlp: 24,
  num_local_experts: 2,
  moe_layers: [0, 1, 3],
  attention_chunk_size: 8,
  rope_theta: 1000,
};
const base = (out: string, steps: number): TrainRunConfig => ({
  out: join(dir, out),
  seed: 7,
  tokenizer: join(dir, 'tokenizer.json'),
  model,
  data: { text_files: [join(dir, 'corpus.txt')], text_share: 0.5, seq_len: 16, heldout_share: 0.1, tool_share: 0 },
  train: { steps, batch: 2, accum: 2, lr: 3e-3, warmup: 2 },
  eval_every: 3,
  save_every: 3,
});
const quiet = { log: () => {} };

test('train, resume = uninterrupted run, checkpoint reloads', () => {
  const full = train(base('full', 6), quiet);
  assert.equal(full.steps, 6);
  assert.ok(Number.isFinite(full.heldOutPpl) && full.heldOutPpl > 1, `held-out perplexity ${full.heldOutPpl}`);
  // Stop after 3 steps (as Ctrl-C would), then resume to 6.
  let n = 0;
  const half = train(base('resumed', 6), { ...quiet, shouldStop: () => ++n >= 3 });
  assert.equal(half.steps, 3);
  assert.ok(existsSync(join(dir, 'resumed', 'trainer_state.json')));
  const rest = train(base('resumed', 6), quiet, true);
  assert.equal(rest.steps, 6);
  const a = loadCheckpoint(join(dir, 'full')),
    b = loadCheckpoint(join(dir, 'resumed'));
  a.params.forEach((p, i) => assert.deepEqual(p.data, b.params[i]!.data, `${p.name} differs after resume`));
  const cfg = JSON.parse(readFileSync(join(dir, 'full', 'config.json'), 'utf8'));
  assert.equal(cfg.model_type, 'llama4_text');
  assert.deepEqual(cfg.no_rope_layers, [1, 1, 1, 0]);
});

test('codistillation from a teacher and SFT from a file run', () => {
  train(base('teacher', 3), quiet);
  const sft = join(dir, 'sft.jsonl');
  writeFileSync(
    sft,
    JSON.stringify({
      prompt: '<|begin_of_text|><|header_start|>user<|header_end|>\n\nWhat is 2 plus 1?<|eot|><|header_start|>assistant<|header_end|>\n\n',
      answer: 'It is 3.',
    }) + '\n',
  );
  const d = train(
    { ...base('student', 3), distill: { teacher: join(dir, 'teacher'), alpha_start: 0.2, alpha_end: 0.8, temperature: 2 } },
    quiet,
  );
  assert.ok(Number.isFinite(d.lastLoss));
  const s = train({ ...base('sft', 2), init_from: join(dir, 'student'), data: { sft_file: sft, text_share: 0 } }, quiet);
  assert.ok(Number.isFinite(s.lastLoss) && s.lastLoss > 0);
});

test('llama4 train --config runs and reports; bad configs give one clear error', async () => {
  const cfgFile = join(dir, 'run.json');
  writeFileSync(
    cfgFile,
    JSON.stringify({
      ...base('cli', 2),
      out: 'cli',
      tokenizer: 'tokenizer.json',
      data: { ...base('cli', 2).data, text_files: ['corpus.txt'] },
    }),
  );
  const chunks: string[] = [];
  const orig = process.stdout.write.bind(process.stdout);
  process.stdout.write = ((s: string) => {
    chunks.push(String(s));
    return true;
  }) as typeof process.stdout.write;
  try {
    assert.equal(await trainCommand.run(['--config', cfgFile]), 0);
  } finally {
    process.stdout.write = orig;
  }
  const out = chunks.join('');
  assert.match(out, /step 2\/2 loss \d+\.\d+ .*tok\/s \d+ .*ETA/);
  assert.match(out, /held-out perplexity \d/);
  assert.ok(existsSync(join(dir, 'cli', 'model.safetensors')));
  await assert.rejects(trainCommand.run([]), Llama4Error);
  await assert.rejects(trainCommand.run(['--config', join(dir, 'nope.json')]), Llama4Error);
  writeFileSync(join(dir, 'bad.json'), '{"out": 3}');
  await assert.rejects(trainCommand.run(['--config', join(dir, 'bad.json')]), Llama4Error);
  writeFileSync(
    join(dir, 'bad2.json'),
    JSON.stringify({ ...base('x', 1), model: { ...model, num_attention_heads: 3, num_key_value_heads: 2 } }),
  );
  await assert.rejects(trainCommand.run(['--config', join(dir, 'bad2.json')]), Llama4Error);
});
