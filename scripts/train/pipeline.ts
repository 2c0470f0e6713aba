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
import { copyFileSync, existsSync, mkdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { BpeEncoder, toTokenizerJson, trainBpe } from '../../src/train/bpe.ts';
import { CHAT_TEMPLATE, randomChatExample, splitFortunes } from '../../src/train/data.ts';
import { arithmeticAccuracy, chatEvalSummary, evalFacts, toolCallAccuracy } from '../../src/train/eval.ts';
import {
  arithmeticExample,
  arithmeticFacts,
  FACTS,
  GREETINGS,
  isHeldOut,
  OPS,
  renderChat,
  toolExample,
  type ChatExample,
} from '../../src/train/data.ts';
import { loadCheckpoint, saveCheckpoint } from '../../src/train/checkpoint.ts';
import { snapshotDecode } from '../../src/train/decode.ts';
import { createBackend } from '../../src/load.ts';
import { dpoStep, type PrefPair } from '../../src/train/dpo.ts';
import { AdamW, lrAt } from '../../src/train/optim.ts';
import { DataSource, heldOutPerplexity, loadEncoder } from '../../src/train/trainer.ts';
import { Rng } from '../../src/train/rng.ts';
import type { TrainModel } from '../../src/train/model.ts';
import { train, type TrainRunConfig } from '../../src/train/trainer.ts';
import { SKILLS_CHAT_TEMPLATE } from '../../src/train/skills.ts';
import {
  evaluateFolder,
  folderExchanges,
  SKILLS_MODEL,
  skillsPrepare,
  skillsWordInitials,
  skillsReport,
  skillsRl,
  skillsRunConfig,
  skillsTrain,
  useNativeTraining,
} from './skills-stages.ts';

const { values, positionals } = parseArgs({
  allowPositionals: true,
  options: {
    work: { type: 'string' },
    seconds: { type: 'string' },
    steps: { type: 'string' },
    resume: { type: 'boolean' },
    prompts: { type: 'string' },
    // skills-sft: start from another checkpoint's weights (a tuning stage), its learning rate, its share of tool batches.
    from: { type: 'string' },
    lr: { type: 'string' },
    'long-share': { type: 'string' },
  },
});
const WORK = resolve(values.work ?? '/tmp/llama4-train');
const stage = positionals[0];
mkdirSync(WORK, { recursive: true });
const { backend: inferBackend } = await createBackend('auto');
const greedyKv = (m: TrainModel, p: readonly number[], n: number, stop: readonly number[]): number[] =>
  snapshotDecode(m, inferBackend)(p, n, stop);
const log = (s: string): void => console.log(`[${new Date().toISOString().slice(11, 19)}] ${s}`);

export const FORTUNE_FILES = [
  'fortunes',
  'literature',
  'wisdom',
  'people',
  'science',
  'education',
  'platitudes',
  'riddles',
  'kids',
  'tao',
  'work',
  'miscellaneous',
  'humorists',
  'love',
  'food',
  'pets',
  'sports',
  'magic',
  'medicine',
  'goedel',
  'paradoxum',
];

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
  for (let i = 0; i < 3000; i++) {
    const e = randomChatExample(rng, undefined, 0.1);
    chat += e.prompt.replace(/<\|[a-z_0-9]+\|>/g, ' ') + e.answer + '\n';
  }
  // 256 bytes + 736 merges + 32 special tokens = 1024 ids.
  const bpe = trainBpe(docs.join('\n') + '\n' + chat, 736);
  writeFileSync(join(WORK, 'tokenizer.json'), JSON.stringify(toTokenizerJson(bpe)));
  const enc = new BpeEncoder(bpe);
  log(
    `tokenizer: ${enc.vocabSize} ids, "What is 7 plus 5?" -> ${JSON.stringify(enc.encode('What is 7 plus 5?').map((i) => enc.decode([i])))}`,
  );
}

const MODEL_BASE = {
  vocab_size: 1024,
  num_hidden_layers: 4,
  num_attention_heads: 4,
  num_key_value_heads: 2,
  num_local_experts: 4,
  interleave_moe_layer_step: 1,
  no_rope_layer_interval: 4,
  attention_chunk_size: 64,
  use_qk_norm: true,
  attn_temperature_tuning: true,
  floor_scale: 8192,
  attn_scale: 0.1,
  rope_theta: 10000,
  max_position_embeddings: 2048,
  rms_norm_eps: 1e-5,
};
export const TEACHER_MODEL = { ...MODEL_BASE, hidden_size: 96, head_dim: 24, intermediate_size: 192, intermediate_size_mlp: 384 };
export const STUDENT_MODEL = { ...MODEL_BASE, hidden_size: 64, head_dim: 16, intermediate_size: 128, intermediate_size_mlp: 256 };

function runCfg(name: string, extra: Partial<TrainRunConfig> & { train: TrainRunConfig['train'] }): TrainRunConfig {
  const cfg: TrainRunConfig = {
    out: join(WORK, name),
    seed: 1,
    tokenizer: join(WORK, 'tokenizer.json'),
    init: { std: 0.02, base_width: 64 },
    data: { text_files: [join(WORK, 'corpus.txt')], text_share: 0.2, seq_len: 64, heldout_share: 0.05, tool_share: 0.05 },
    eval_every: 100,
    save_every: 50,
    ...extra,
  };
  writeFileSync(join(WORK, `${name}.config.json`), JSON.stringify(cfg, null, 2));
  return cfg;
}

function go(cfg: TrainRunConfig): void {
  const res = train(cfg, { log, evaluate: (m, enc) => chatEvalSummary(snapshotDecode(m, inferBackend), enc, 30, false) }, true);
  log(
    `done ${cfg.out}: ${res.steps} steps, ${res.tokens} tokens, ${res.tokPerSec.toFixed(0)} tok/s, matmul share ${(100 * res.matmulShare).toFixed(0)}%, held-out ppl ${res.heldOutPpl.toFixed(2)}`,
  );
}

const seconds = values.seconds ? Number(values.seconds) : undefined;
const steps = values.steps ? Number(values.steps) : undefined;
switch (stage) {
  case 'prepare':
    prepare();
    break;
  case 'teacher':
    go(
      runCfg('teacher', {
        model: TEACHER_MODEL,
        max_seconds: seconds ?? 1800,
        train: { steps: steps ?? 300, batch: 16, lr: 4e-3, warmup: 50, aux_coef: 0.01 },
      }),
    );
    break;
  case 'student':
    // Chat-heavy: the student is the shipped model, its job is answering; text keeps it English.
    go(
      runCfg('student', {
        model: STUDENT_MODEL,
        max_seconds: seconds ?? 1800,
        train: { steps: steps ?? 500, batch: 16, lr: 4e-3, warmup: 30, aux_coef: 0.01 },
        data: { text_files: [join(WORK, 'corpus.txt')], text_share: 0.1, seq_len: 64, heldout_share: 0.05, tool_share: 0.04 },
      }),
    );
    break;
  case 'distill': {
    // Continue the student on teacher soft targets + hard labels; the hard-label weight rises 0.3 → 0.8.
    go(
      runCfg('distilled', {
        init_from: join(WORK, 'student'),
        max_seconds: seconds ?? 900,
        train: { steps: steps ?? 200, batch: 16, lr: 1.5e-3, warmup: 10, aux_coef: 0.01 },
        data: { text_files: [join(WORK, 'corpus.txt')], text_share: 0.3, seq_len: 64, heldout_share: 0.05, tool_share: 0.04 },
        distill: { teacher: join(WORK, 'teacher'), alpha_start: 0.3, alpha_end: 0.8, temperature: 2 },
      }),
    );
    break;
  }
  case 'sft':
    sft();
    break;
  case 'tools':
    // Extra tool-call practice (half the batches are tool prompts) on top of the polished model.
    go(
      runCfg('tools', {
        init_from: join(WORK, 'polish'),
        max_seconds: seconds ?? 420,
        train: { steps: steps ?? 120, batch: 16, lr: 1e-3, warmup: 5, aux_coef: 0.01, weight_decay: 0 },
        data: {
          text_files: [join(WORK, 'corpus.txt')],
          text_share: 0.05,
          arith_share: 0.2,
          tool_share: 0.5,
          seq_len: 64,
          heldout_share: 0.05,
        },
        eval_every: 1000,
        save_every: 20,
      }),
    );
    break;
  case 'polish':
    // After DPO: a short replay of the full generated chat mixture (facts, greetings, tools) plus arithmetic
    // statements, because SFT on arithmetic mistakes makes the model forget the rest.
    go(
      runCfg('polish', {
        init_from: join(WORK, 'dpo'),
        max_seconds: seconds ?? 420,
        train: { steps: steps ?? 250, batch: 16, lr: 1e-3, warmup: 5, aux_coef: 0.01, weight_decay: 0 },
        data: {
          text_files: [join(WORK, 'corpus.txt')],
          text_share: 0.05,
          arith_share: 0.3,
          tool_share: 0.1,
          seq_len: 64,
          heldout_share: 0.05,
        },
        eval_every: 50,
        save_every: 25,
      }),
    );
    break;
  case 'arith':
    // Continue SFT with half the batches being packed arithmetic statements (loss on results only).
    // Optional: pipeline.ts arith OUT FROM (a second round continues from the first).
    go(
      runCfg(positionals[1] ?? 'arith', {
        init_from: join(WORK, positionals[2] ?? 'sft'),
        max_seconds: seconds ?? 900,
        train: { steps: steps ?? 400, batch: 16, lr: positionals[1] ? 2e-3 : 1.5e-3, warmup: 5, aux_coef: 0.01, weight_decay: 0 },
        data: { sft_file: join(WORK, 'sft.jsonl'), text_share: 0, tool_share: 0, arith_share: 0.5, seq_len: 64 },
        eval_every: 50,
        save_every: 25,
      }),
    );
    break;
  case 'dpo':
    dpo();
    break;
  case 'ship':
    ship(positionals[1] ?? latest());
    break;
  case 'report':
    report();
    break;
  // The default model (skills curriculum, native backend): skills-prepare, skills-sft [--resume], skills-report NAMES.
  case 'skills-prepare':
    skillsPrepare(join(WORK, 'skills'), log);
    break;
  case 'skills-word-initials':
    // The same vocabulary and merges, with pre-tokens also split at word-initial letters (fine-tune after this).
    skillsWordInitials(join(WORK, 'skills'), log);
    break;
  case 'skills-sft': {
    useNativeTraining(log);
    let stop = false;
    process.on('SIGINT', () => {
      if (stop) process.exit(130);
      stop = true;
      log('stopping after this step');
    });
    process.on('SIGTERM', () => {
      stop = true;
    });
    await skillsTrain(
      skillsRunConfig(WORK, positionals[1] ?? 'skills-sft', {
        ...(values.from ? { init_from: resolve(WORK, values.from), seed: 2 } : { model: SKILLS_MODEL }),
        ...(values['long-share']
          ? { data: { skills: { tokens: 1024, max_len: 640, long_share: Number(values['long-share']) }, heldout_share: 0 } }
          : {}),
        max_seconds: seconds ?? 3600,
        train: {
          steps: steps ?? 4000,
          batch: 0,
          lr: values.lr ? Number(values.lr) : 3e-3,
          warmup: 100,
          aux_coef: 0.01,
          weight_decay: 0.05,
          min_lr_ratio: 0.05,
        },
      }),
      log,
      values.resume ?? false,
      () => stop,
    );
    break;
  }
  case 'skills-rl':
    // pipeline.ts skills-rl [FROM] [OUT]: GRPO from the SFT checkpoint.
    await skillsRl(WORK, positionals[1] ?? 'skills-sft', positionals[2] ?? 'skills-rl', log, {
      steps: steps ?? 60,
      seconds: seconds ?? 900,
      ...(values.prompts ? { prompts: Number(values.prompts) } : {}),
    });
    break;
  case 'skills-ship':
    ship(join(WORK, positionals[1] ?? 'skills-rl'), join(WORK, 'skills', 'tokenizer.json'), SKILLS_CHAT_TEMPLATE);
    break;
  case 'skills-folder': {
    // pipeline.ts skills-folder DIR...: score model folders (e.g. models/default) through loadModel + their own template.
    for (const d of positionals.slice(1)) {
      const r = await evaluateFolder(resolve(d));
      log(`${d}: ${r.line}`);
      for (const s of r.samples) log(`  ${s}`);
    }
    break;
  }
  case 'skills-chat':
    // pipeline.ts skills-chat DIR: ten verbatim exchanges with a model folder.
    await folderExchanges(resolve(positionals[1] ?? 'models/default'), log);
    break;
  case 'skills-report': {
    const rows = await skillsReport(WORK, positionals.slice(1), log);
    writeFileSync(join(WORK, `skills-report-${positionals.slice(1).join('-')}.txt`), rows.join('\n') + '\n');
    break;
  }
  default:
    console.error('usage: pipeline.ts prepare|teacher|student|distill|sft|dpo|ship|report [--work DIR]');
    process.exit(2);
}

/** The most advanced student checkpoint present. */
function latest(): string {
  const have = ['polish', 'dpo', 'arith2', 'arith', 'sft', 'distilled', 'student']
    .map((n) => join(WORK, n, 'model.safetensors'))
    .filter((f) => existsSync(f));
  if (!have.length) throw new Error('no student checkpoint yet');
  have.sort((a, b) => statSync(b).mtimeMs - statSync(a).mtimeMs);
  return dirname(have[0]!);
}

function stopIds(enc: ReturnType<typeof loadEncoder>): number[] {
  return [enc.special('<|eot|>'), enc.special('<|eom|>'), enc.special('<|end_of_text|>')];
}

/** Every trained chat question (arithmetic, tools with training cities) with the model's greedy answer. */
function candidates(): ChatExample[] {
  const out: ChatExample[] = arithmeticFacts()
    .filter((f) => !isHeldOut(f))
    .map((f) => arithmeticExample(f.op, f.a, f.b));
  const rng = new Rng(99);
  for (let i = 0; i < 24; i++) out.push(toolExample(rng, false));
  return out;
}

function sft(): void {
  const src = latest();
  const enc = loadEncoder(join(WORK, 'tokenizer.json'));
  const model = loadCheckpoint(src);
  const cands = candidates();
  const wrong: ChatExample[] = [],
    right: ChatExample[] = [];
  const t0 = Date.now();
  for (const e of cands) {
    const out = greedyKv(model, enc.encode(e.prompt), e.kind === 'tool' ? 40 : 16, stopIds(enc));
    const text = enc.decode(out.filter((t) => t < enc.model.vocab.length));
    (text === e.answer ? right : wrong).push(e);
  }
  log(
    `sft: ${src} gets ${right.length}/${cands.length} trained chat examples exactly right (${((Date.now() - t0) / 1000).toFixed(0)}s); training on the ${wrong.length} wrong ones + replay`,
  );
  // Wrong examples 2x (4x when both numbers are at most 10: what users ask first), plus replay of right ones so
  // the rest is not forgotten.
  const rng = new Rng(5);
  const small = (e: ChatExample): boolean => e.kind !== 'tool' && (e.question.match(/\d+/g) ?? []).every((x) => Number(x) <= 10);
  const rows = [
    ...wrong,
    ...wrong,
    ...wrong.filter(small),
    ...wrong.filter(small),
    ...rng.shuffle(right).slice(0, Math.max(50, Math.floor(wrong.length / 2))),
  ];
  writeFileSync(join(WORK, 'sft.jsonl'), rows.map((e) => JSON.stringify({ prompt: e.prompt, answer: e.answer })).join('\n') + '\n');
  go(
    runCfg('sft', {
      init_from: src,
      max_seconds: seconds ?? 1800,
      train: {
        steps: steps ?? Math.min(600, Math.ceil((rows.length * 4) / 16)),
        batch: 16,
        lr: 2e-3,
        warmup: 5,
        aux_coef: 0.01,
        weight_decay: 0,
      },
      data: { sft_file: join(WORK, 'sft.jsonl'), text_share: 0, tool_share: 0 },
      eval_every: 50,
      save_every: 25,
    }),
  );
}

/** Near-miss answers: the right sentence with a wrong number (±1, ±2, ±10) or the model's own wrong output. */
function dpo(): void {
  const src = ['arith2', 'arith', 'sft'].map((n) => join(WORK, n)).find((d) => existsSync(join(d, 'model.safetensors'))) ?? latest();
  const enc = loadEncoder(join(WORK, 'tokenizer.json'));
  const policy = loadCheckpoint(src),
    ref = loadCheckpoint(src);
  const eot = enc.special('<|eot|>'),
    pad = enc.special('<|finetune_right_pad|>');
  const rng = new Rng(11);
  const pairs: PrefPair[] = [];
  const facts = arithmeticFacts().filter((f) => !isHeldOut(f));
  let own = 0;
  for (const f of facts) {
    const e = arithmeticExample(f.op, f.a, f.b);
    const prompt = enc.encode(e.prompt);
    const got = greedyKv(policy, prompt, 16, stopIds(enc));
    const gotText = enc.decode(got.filter((t) => t < enc.model.vocab.length));
    const want = OPS[f.op](f.a, f.b);
    let rej: number[];
    if (gotText !== e.answer) {
      rej = got[got.length - 1] === eot ? got : [...got, eot];
      own++;
    } else {
      const d = rng.pick([-2, -1, 1, 2, 10]);
      rej = [...enc.encode(`${f.a} ${f.op} ${f.b} is ${Math.max(0, want + d) === want ? want + 1 : Math.max(0, want + d)}.`, false), eot];
    }
    pairs.push({ prompt, chosen: [...enc.encode(e.answer, false), eot], rejected: rej });
  }
  for (let i = 0; i < 40; i++) {
    const e = toolExample(rng, false);
    const bad =
      rng.next() < 0.5 ? e.answer.slice(0, -2) : e.answer.replace(/"city": "[^"]+"/, `"city": "${rng.pick(['Paris', 'Rome', 'Tokyo'])}x"`);
    pairs.push({ prompt: enc.encode(e.prompt), chosen: [...enc.encode(e.answer, false), eot], rejected: [...enc.encode(bad, false), eot] });
  }
  // Facts and greetings: chosen = the reference reply, rejected = the model's own different reply (SFT on
  // arithmetic can make it answer everything with numbers or tool calls).
  const nArith = pairs.length;
  for (const [q, a] of [...FACTS, ...GREETINGS]) {
    const prompt = enc.encode(renderChat([{ role: 'user', content: q }], null, true));
    const got = greedyKv(policy, prompt, 40, stopIds(enc));
    const chosen = [...enc.encode(a, false), eot];
    if (enc.decode(got) === enc.decode(chosen)) continue;
    pairs.push({ prompt, chosen, rejected: got[got.length - 1] === eot ? got : [...got, eot] });
  }
  const nOther = pairs.length - nArith;
  log(`dpo: ${pairs.length} pairs (${own} rejected answers are the model's own mistakes) from ${src}`);
  const opt = new AdamW(policy.params, { lr: 5e-4, weightDecay: 0 });
  log(`dpo: ${nOther} fact/greeting pairs where the model strays`);
  const total = steps ?? 60,
    beta = 0.2,
    t0 = Date.now();
  for (let s = 0; s < total; s++) {
    policy.zeroGrad();
    // 5 arithmetic pairs, 3 others (tool calls, facts, greetings) per batch; tool pairs go in separate batches
    // (their prompts are long).
    const arith = pairs.slice(0, facts.length),
      tools = pairs.slice(facts.length, nArith),
      other = pairs.slice(nArith);
    const batch =
      s % 4 === 3
        ? Array.from({ length: 4 }, () => rng.pick(tools))
        : [...Array.from({ length: 5 }, () => rng.pick(arith)), ...Array.from({ length: other.length ? 3 : 0 }, () => rng.pick(other))];
    const r = dpoStep(policy, ref, batch, beta, pad, 0.5);
    opt.update(lrAt(s, 5e-4, 5, total, 0.1));
    if ((s + 1) % 10 === 0)
      log(
        `dpo step ${s + 1}/${total} loss ${r.loss.toFixed(4)} reward-acc ${r.acc.toFixed(2)} (${((Date.now() - t0) / 1000).toFixed(0)}s)`,
      );
    if (seconds && (Date.now() - t0) / 1000 > seconds) break;
  }
  saveCheckpoint(join(WORK, 'dpo'), policy, undefined, undefined, JSON.parse(readFileSync(join(src, 'config.json'), 'utf8')));
  log(`dpo: saved ${join(WORK, 'dpo')}; ${chatEvalSummary(snapshotDecode(policy, inferBackend), enc, 60, true)}`);
}

function ship(src: string, tokenizer = join(WORK, 'tokenizer.json'), template = CHAT_TEMPLATE): void {
  const dest = resolve(import.meta.dirname, '../../models/default');
  mkdirSync(dest, { recursive: true });
  const enc = loadEncoder(tokenizer);
  const cfg = JSON.parse(readFileSync(join(src, 'config.json'), 'utf8')) as Record<string, unknown>;
  const ids = {
    bos: enc.special('<|begin_of_text|>'),
    eot: enc.special('<|eot|>'),
    eom: enc.special('<|eom|>'),
    end: enc.special('<|end_of_text|>'),
    pad: enc.special('<|finetune_right_pad|>'),
  };
  Object.assign(cfg, { bos_token_id: ids.bos, eos_token_id: [ids.end, ids.eom, ids.eot], pad_token_id: ids.pad });
  writeFileSync(join(dest, 'config.json'), JSON.stringify(cfg, null, 2) + '\n');
  copyFileSync(join(src, 'model.safetensors'), join(dest, 'model.safetensors'));
  copyFileSync(tokenizer, join(dest, 'tokenizer.json'));
  writeFileSync(
    join(dest, 'tokenizer_config.json'),
    JSON.stringify(
      {
        tokenizer_class: 'PreTrainedTokenizerFast',
        bos_token: '<|begin_of_text|>',
        eos_token: '<|eot|>',
        pad_token: '<|finetune_right_pad|>',
        model_max_length: cfg.max_position_embeddings,
        add_bos_token: false,
        chat_template: template,
      },
      null,
      2,
    ) + '\n',
  );
  writeFileSync(
    join(dest, 'generation_config.json'),
    JSON.stringify(
      {
        bos_token_id: ids.bos,
        eos_token_id: [ids.end, ids.eom, ids.eot],
        pad_token_id: ids.pad,
        do_sample: false,
      },
      null,
      2,
    ) + '\n',
  );
  log(`shipped ${src} -> ${dest}`);
}

function report(): void {
  const enc = loadEncoder(join(WORK, 'tokenizer.json'));
  const data = new DataSource(enc, { text_files: [join(WORK, 'corpus.txt')], heldout_share: 0.05 });
  const { heldOut } = evalFacts();
  const small = arithmeticFacts().filter((f) => f.a <= 10 && f.b <= 10);
  const rows: string[] = [];
  const names = positionals.length > 1 ? positionals.slice(1) : ['teacher', 'student', 'distilled', 'sft', 'arith', 'arith2', 'dpo'];
  for (const n of names) {
    const d = join(WORK, n);
    if (!existsSync(join(d, 'model.safetensors'))) continue;
    const m = loadCheckpoint(d);
    const ppl = heldOutPerplexity(m, data.heldStream, 64, 64);
    const dec = snapshotDecode(m, inferBackend);
    const a = arithmeticAccuracy(dec, enc, small),
      h = arithmeticAccuracy(dec, enc, heldOut),
      t = toolCallAccuracy(dec, enc, 24);
    const line =
      `${n}: params ${m.paramCount()}, held-out ppl ${ppl.toFixed(2)} (${data.heldStream.length} tokens, first 64x64 scored), ` +
      `arithmetic <=10 right number ${a.rightNumber}/${a.n} exact ${a.exact}/${a.n}, held-out facts right number ${h.rightNumber}/${h.n}, ` +
      `tool calls well-formed ${t.wellFormed}/${t.n} correct ${t.correct}/${t.n}`;
    log(line);
    rows.push(line);
  }
  writeFileSync(join(WORK, `report-${names.join('-')}.txt`), rows.join('\n') + '\n');
}
