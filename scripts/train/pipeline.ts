#!/usr/bin/env -S npx tsx
/**
 * The small-scale Llama 4 training pipeline, stage by stage, no network:
 *   prepare  corpus from Debian's `fortunes` package (BSD-licensed quotation collection, /usr/share/games/fortunes;
 *            install with `apt-get install fortunes`) + a byte-level BPE tokenizer (1024 ids) trained on it and on
 *            generated chat data
 *   teacher  pretrain a larger teacher (text + chat mixture)
 *   student  pretrain the smaller student on hard labels (the early default model)
 *   distill  codistillation: the student continues on the teacher's soft targets + hard labels, dynamic weight
 *   sft      SFT on the chat examples the student still gets wrong (plus replay)
 *   dpo      DPO on preference pairs (right answer vs the model's own wrong answer / a near-miss number)
 *   ship     copy the final student + tokenizer + chat template into models/default
 *   report   perplexity, arithmetic accuracy, tool-call well-formedness of teacher and student
 * Usage: npx tsx scripts/train/pipeline.ts STAGE [--work DIR] [--seconds N]
 * Logs go to stdout; run under `nice` and tee to /tmp.
 */
import { copyFileSync, existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { BpeEncoder, toTokenizerJson, trainBpe } from '../../src/train/bpe.ts';
import { CHAT_TEMPLATE, randomChatExample, splitFortunes } from '../../src/train/data.ts';
import { chatEvalSummary } from '../../src/train/eval.ts';
import { Rng } from '../../src/train/rng.ts';
import { train, type TrainRunConfig } from '../../src/train/trainer.ts';

const { values, positionals } = parseArgs({ allowPositionals: true, options: { work: { type: 'string' }, seconds: { type: 'string' }, steps: { type: 'string' } } });
const WORK = resolve(values.work ?? '/tmp/llama4-train');
const stage = positionals[0];
mkdirSync(WORK, { recursive: true });
const log = (s: string): void => console.log(`[${new Date().toISOString().slice(11, 19)}] ${s}`);

export const FORTUNE_FILES = ['fortunes', 'literature', 'wisdom', 'people', 'science', 'education', 'platitudes', 'riddles', 'kids', 'tao',
  'work', 'miscellaneous', 'humorists', 'love', 'food', 'pets', 'sports', 'magic', 'medicine', 'goedel', 'paradoxum'];

function prepare(): void {
  const dir = '/usr/share/games/fortunes';
  if (!existsSync(join(dir, 'fortunes'))) throw new Error(`${dir} missing: apt-get install fortunes`);
  const docs: string[] = [];
  for (const f of FORTUNE_FILES) docs.push(...splitFortunes(readFileSync(join(dir, f), 'utf8')));
  // Deterministic shuffle so the held-out tail mixes all files.
  new Rng(2024).shuffle(docs);
  writeFileSync(join(WORK, 'corpus.txt'), docs.join('\n\n\n') + '\n');
  log(`corpus: ${docs.length} documents, ${docs.reduce((a, d) => a + d.length, 0)} chars`);
  const rng = new Rng(1);
  let chat = '';
  for (let i = 0; i < 3000; i++) { const e = randomChatExample(rng, undefined, 0.1); chat += e.prompt.replace(/<\|[a-z_0-9]+\|>/g, ' ') + e.answer + '\n'; }
  // 256 bytes + 736 merges + 32 special tokens = 1024 ids.
  const bpe = trainBpe(docs.join('\n') + '\n' + chat, 736);
  writeFileSync(join(WORK, 'tokenizer.json'), JSON.stringify(toTokenizerJson(bpe)));
  const enc = new BpeEncoder(bpe);
  log(`tokenizer: ${enc.vocabSize} ids, "What is 7 plus 5?" -> ${JSON.stringify(enc.encode('What is 7 plus 5?').map((i) => enc.decode([i])))}`);
}

const MODEL_BASE = {
  vocab_size: 1024, num_hidden_layers: 4, num_attention_heads: 4, num_key_value_heads: 2, num_local_experts: 4,
  interleave_moe_layer_step: 1, no_rope_layer_interval: 4, attention_chunk_size: 64, use_qk_norm: true,
  attn_temperature_tuning: true, floor_scale: 8192, attn_scale: 0.1, rope_theta: 10000, max_position_embeddings: 2048, rms_norm_eps: 1e-5,
};
export const TEACHER_MODEL = { ...MODEL_BASE, hidden_size: 96, head_dim: 24, intermediate_size: 192, intermediate_size_mlp: 384 };
export const STUDENT_MODEL = { ...MODEL_BASE, hidden_size: 64, head_dim: 16, intermediate_size: 128, intermediate_size_mlp: 256 };

function runCfg(name: string, extra: Partial<TrainRunConfig> & { train: TrainRunConfig['train'] }): TrainRunConfig {
  const cfg: TrainRunConfig = {
    out: join(WORK, name), seed: 1, tokenizer: join(WORK, 'tokenizer.json'),
    init: { std: 0.02, base_width: 64 },
    data: { text_files: [join(WORK, 'corpus.txt')], text_share: 0.2, seq_len: 64, heldout_share: 0.05, tool_share: 0.05 },
    eval_every: 100, save_every: 50, ...extra,
  };
  writeFileSync(join(WORK, `${name}.config.json`), JSON.stringify(cfg, null, 2));
  return cfg;
}

function go(cfg: TrainRunConfig): void {
  const res = train(cfg, { log, evaluate: (m, enc) => chatEvalSummary(m, enc, 30, false) }, true);
  log(`done ${cfg.out}: ${res.steps} steps, ${res.tokens} tokens, ${res.tokPerSec.toFixed(0)} tok/s, matmul share ${(100 * res.matmulShare).toFixed(0)}%, held-out ppl ${res.heldOutPpl.toFixed(2)}`);
}

const seconds = values.seconds ? Number(values.seconds) : undefined;
const steps = values.steps ? Number(values.steps) : undefined;
switch (stage) {
  case 'prepare': prepare(); break;
  case 'teacher':
    go(runCfg('teacher', { model: TEACHER_MODEL, max_seconds: seconds ?? 1800, train: { steps: steps ?? 300, batch: 16, lr: 4e-3, warmup: 50, aux_coef: 0.01 } }));
    break;
  case 'student':
    // Chat-heavy: the student is the shipped model, its job is answering; text keeps it English.
    go(runCfg('student', {
      model: STUDENT_MODEL, max_seconds: seconds ?? 1800, train: { steps: steps ?? 500, batch: 16, lr: 4e-3, warmup: 30, aux_coef: 0.01 },
      data: { text_files: [join(WORK, 'corpus.txt')], text_share: 0.1, seq_len: 64, heldout_share: 0.05, tool_share: 0.04 },
    }));
    break;
  default:
    console.error('usage: pipeline.ts prepare|teacher|student|distill|sft|dpo|ship|report [--work DIR]');
    process.exit(2);
}
export { CHAT_TEMPLATE, copyFileSync };
