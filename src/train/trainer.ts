/**
 * The training loop behind `llama4 train --config FILE`: data mixture (packed plain text + generated chat, or an
 * SFT file), AdamW with warmup + cosine, gradient accumulation, router aux loss, optional codistillation from a
 * teacher checkpoint, held-out perplexity at intervals, checkpoints with exact resume, clean stop on request.
 */
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { ConfigError, UsageError } from '../util/errors.ts';
import { BpeEncoder, fromTokenizerJson } from './bpe.ts';
import {
  decodeSafetensors,
  loadCheckpoint,
  loadModelTensors,
  loadTrainerState,
  resolveCheckpoint,
  saveCheckpoint,
  verifyCheckpoint,
} from './checkpoint.ts';
import { parseTrainConfig } from './config.ts';
import { arithmeticFacts, isHeldOut, OPS, randomChatExample, type ChatExample } from './data.ts';
import { matmulStats } from './kernels.ts';
import { randomSkillExampleOf, SKILL_SHARES, useTokenizerPieces } from './skills.ts';
import { distillLoss } from './loss.ts';
import { TrainModel } from './model.ts';
import { AdamW, lrAt } from './optim.ts';
import { Rng } from './rng.ts';

export interface TrainRunConfig {
  out: string;
  seed?: number;
  tokenizer: string;
  model?: Record<string, unknown>;
  init_from?: string | undefined;
  init?: { std?: number; base_width?: number };
  data: {
    text_files?: string[] | undefined;
    /** Share of micro-batches drawn from plain text (the rest: chat). */
    text_share?: number;
    seq_len?: number;
    heldout_share?: number;
    tool_share?: number;
    /** JSONL of {prompt, answer} chat examples; replaces the generated chat mixture (SFT). */
    sft_file?: string | undefined;
    /**
     * Share of micro-batches of packed arithmetic statements ("7 plus 5 is 12.", trained facts only) with the loss on
     * the result only: ~4x more result tokens per computed token than chat examples.
     */
    arith_share?: number;
    /**
     * The default model's curriculum (src/train/skills.ts) instead of the chat mixture: micro-batches of about
     * `tokens` tokens, all long examples (tool calls) or all short ones so padding stays small.
     */
    skills?: { tokens?: number; max_len?: number; long_share?: number };
  };
  train: {
    steps: number;
    batch: number;
    accum?: number;
    lr: number;
    warmup?: number;
    min_lr_ratio?: number;
    weight_decay?: number;
    clip?: number;
    aux_coef?: number;
    beta2?: number;
  };
  distill?: { teacher: string; alpha_start?: number; alpha_end?: number; temperature?: number };
  eval_every?: number;
  save_every?: number;
  /** Stop (with a checkpoint) after this many seconds of wall time. */
  max_seconds?: number;
}

export interface Batch {
  tokens: Int32Array;
  targets: Int32Array;
  B: number;
  T: number;
}

/** Tokenised corpus and chat source for one run. */
export class DataSource {
  readonly trainStream: Int32Array;
  readonly heldStream: Int32Array;
  private readonly sft: { prompt: number[]; answer: number[] }[] = [];
  private readonly sftPools: { prompt: number[]; answer: number[] }[][] = [[], []];
  constructor(
    readonly enc: BpeEncoder,
    readonly cfg: TrainRunConfig['data'],
  ) {
    const bos = enc.special('<|begin_of_text|>'),
      eot = enc.special('<|end_of_text|>');
    // The skills curriculum draws some made-up words from the tokenizer's own pieces.
    if (cfg.skills) useTokenizerPieces(enc.model.vocab);
    const docs: string[] = [];
    for (const f of cfg.text_files ?? []) {
      if (!existsSync(f)) throw new UsageError(`data.text_files: ${f} not found`);
      docs.push(
        ...readFileSync(f, 'utf8')
          .split(/\n\n\n+/)
          .filter((s) => s.trim().length > 0),
      );
    }
    // The last heldout_share of documents (in file order) is held out for perplexity.
    const nHeld = Math.floor(docs.length * (cfg.heldout_share ?? 0.05));
    const pack = (ds: string[]): Int32Array => {
      const out: number[] = [];
      for (const d of ds) out.push(bos, ...enc.encode(d, false), eot);
      return Int32Array.from(out);
    };
    this.trainStream = pack(docs.slice(0, docs.length - nHeld));
    this.heldStream = pack(docs.slice(docs.length - nHeld));
    if (cfg.sft_file) {
      if (!existsSync(cfg.sft_file)) throw new UsageError(`data.sft_file: ${cfg.sft_file} not found`);
      for (const line of readFileSync(cfg.sft_file, 'utf8').split('\n')) {
        if (!line.trim()) continue;
        const e = JSON.parse(line) as { prompt: string; answer: string };
        this.sft.push({ prompt: enc.encode(e.prompt), answer: [...enc.encode(e.answer, false), enc.special('<|eot|>')] });
      }
      if (this.sft.length === 0) throw new UsageError(`data.sft_file: ${cfg.sft_file} has no examples`);
      for (const e of this.sft) this.sftPools[e.prompt.length + e.answer.length > 96 ? 1 : 0]!.push(e);
    }
  }

  /** T+1-token windows of the training text: inputs are the first T, targets the last T. */
  textBatch(rng: Rng, B: number, T: number, stream = this.trainStream): Batch {
    if (stream.length < T + 2) throw new ConfigError('text corpus is shorter than one sequence');
    const tokens = new Int32Array(B * T),
      targets = new Int32Array(B * T);
    for (let b = 0; b < B; b++) {
      const o = rng.int(stream.length - T - 1);
      tokens.set(stream.subarray(o, o + T), b * T);
      targets.set(stream.subarray(o + 1, o + T + 1), b * T);
    }
    return { tokens, targets, B, T };
  }

  /** Packed "A op B is C." lines (small numbers favoured like the chat data); targets only predict C. */
  arithBatch(rng: Rng, B: number, T: number): Batch {
    const facts = arithmeticFacts().filter((f) => !isHeldOut(f));
    const tokens = new Int32Array(B * T),
      targets = new Int32Array(B * T).fill(-1);
    for (let b = 0; b < B; b++) {
      const row: number[] = [this.enc.special('<|begin_of_text|>')],
        tgt: number[] = [-1];
      while (row.length < T + 1) {
        let f = rng.pick(facts);
        if (rng.next() < 0.5) for (let i = 0; i < 20 && (f.a > 10 || f.b > 10); i++) f = rng.pick(facts);
        const pre = this.enc.encode(`${f.a} ${f.op} ${f.b} is `, false),
          res = this.enc.encode(String(OPS[f.op](f.a, f.b)), false);
        const suf = this.enc.encode('.\n', false);
        for (const t of pre) {
          row.push(t);
          tgt.push(-1);
        }
        tgt[tgt.length - 1] = res[0]!;
        for (let i = 0; i < res.length; i++) {
          row.push(res[i]!);
          tgt.push(i + 1 < res.length ? res[i + 1]! : -1);
        }
        for (const t of suf) {
          row.push(t);
          tgt.push(-1);
        }
      }
      // tgt[i] is the token that should follow row[i].
      tokens.set(row.slice(0, T), b * T);
      targets.set(tgt.slice(0, T), b * T);
    }
    return { tokens, targets, B, T };
  }

  /** Skills curriculum: examples until B·T reaches the token budget; loss on answers only. */
  skillsBatch(rng: Rng): Batch {
    const sk = this.cfg.skills!,
      budget = sk.tokens ?? 2048,
      maxLen = sk.max_len ?? 512;
    const eot = this.enc.special('<|eot|>'),
      pad = this.enc.special('<|finetune_right_pad|>');
    const long = rng.next() < (sk.long_share ?? SKILL_SHARES.tool + SKILL_SHARES.followup);
    const ex: { prompt: number[]; answer: number[] }[] = [];
    let T = 0;
    for (;;) {
      const e = randomSkillExampleOf(rng, long);
      const row = { prompt: this.enc.encode(e.prompt), answer: [...this.enc.encode(e.answer, false), eot] };
      const len = row.prompt.length + row.answer.length - 1;
      if (len > maxLen) continue;
      if (ex.length > 0 && Math.max(T, len) * (ex.length + 1) > budget) break;
      ex.push(row);
      T = Math.max(T, len);
    }
    return packChat(ex, maxLen, pad);
  }

  /** Chat examples padded to the longest; loss only on the answer and its <|eot|>. */
  chatBatch(rng: Rng, B: number, maxT: number): Batch {
    const eot = this.enc.special('<|eot|>'),
      pad = this.enc.special('<|finetune_right_pad|>');
    const ex: { prompt: number[]; answer: number[] }[] = [];
    // Tool prompts are ~8x longer than the others: whole batches are tool-only or tool-free so padding stays small.
    const toolBatch = rng.next() < (this.cfg.tool_share ?? 0.05);
    const longShare = this.sftPools[1]!.length / Math.max(1, this.sft.length);
    const toolBatchSft = this.sftPools[0]!.length === 0 || (this.sftPools[1]!.length > 0 && rng.next() < longShare);
    for (let b = 0; b < B; b++) {
      if (this.sft.length) {
        // Long (tool) and short examples are drawn in separate batches, in proportion to their counts.
        const pool = this.sftPools[toolBatchSft ? 1 : 0]!;
        ex.push(pool[rng.int(pool.length)]!);
      } else {
        const e: ChatExample = randomChatExample(rng, undefined, toolBatch ? 1 : 0);
        ex.push({ prompt: this.enc.encode(e.prompt), answer: [...this.enc.encode(e.answer, false), eot] });
      }
    }
    return packChat(ex, maxT, pad);
  }
}

/** [prompt | answer] rows, right-padded; targets −1 except where the next token is an answer token. */
export function packChat(ex: readonly { prompt: number[]; answer: number[] }[], maxT: number, pad: number): Batch {
  const T = Math.min(maxT, Math.max(...ex.map((e) => e.prompt.length + e.answer.length - 1)));
  const B = ex.length;
  const tokens = new Int32Array(B * T).fill(pad),
    targets = new Int32Array(B * T).fill(-1);
  ex.forEach((e, b) => {
    const seq = [...e.prompt, ...e.answer];
    for (let t = 0; t < T && t < seq.length; t++) tokens[b * T + t] = seq[t]!;
    for (let t = e.prompt.length - 1; t < seq.length - 1 && t < T; t++) targets[b * T + t] = seq[t + 1]!;
  });
  return { tokens, targets, B, T };
}

export function loadEncoder(path: string): BpeEncoder {
  if (!existsSync(path)) throw new UsageError(`tokenizer ${path} not found`);
  return new BpeEncoder(fromTokenizerJson(JSON.parse(readFileSync(path, 'utf8')) as Record<string, unknown>));
}

/** Mean next-token loss over fixed windows of the held-out stream → perplexity exp(loss). */
export function heldOutPerplexity(model: TrainModel, stream: Int32Array, T: number, maxWindows = 24): number {
  let loss = 0,
    n = 0;
  const V = model.cfg.vocabSize;
  const windows = Math.min(maxWindows, Math.floor((stream.length - 1) / T));
  for (let w = 0; w < windows; w += 8) {
    const B = Math.min(8, windows - w);
    const tokens = new Int32Array(B * T),
      targets = new Int32Array(B * T);
    for (let b = 0; b < B; b++) {
      const o = (w + b) * T;
      tokens.set(stream.subarray(o, o + T), b * T);
      targets.set(stream.subarray(o + 1, o + T + 1), b * T);
    }
    const r = distillLoss(model.forward(tokens, B, T, false), targets, V);
    loss += r.loss * r.count;
    n += r.count;
  }
  return n ? Math.exp(loss / n) : NaN;
}

export interface TrainHooks {
  log?: (line: string) => void;
  /** Polled between steps; true = save and stop (Ctrl-C). */
  shouldStop?: () => boolean;
  /** Extra evaluation at eval points (e.g. arithmetic accuracy); returns a short summary. */
  evaluate?: (model: TrainModel, enc: BpeEncoder) => string;
  /** Called after every step; when set, the trainer's own every-10-steps progress line is left out. */
  progress?: (p: TrainProgress) => void;
}

export interface TrainResult {
  model: TrainModel;
  steps: number;
  tokens: number;
  seconds: number;
  tokPerSec: number;
  matmulShare: number;
  lastLoss: number;
  heldOutPpl: number;
}

function fmtTime(s: number): string {
  const m = Math.floor(s / 60);
  return m > 0 ? `${m}m${String(Math.round(s % 60)).padStart(2, '0')}s` : `${s.toFixed(0)}s`;
}

/** Runs training to the end synchronously (tests, scripts). Signals are not seen while it runs: use trainAsync. */
export function train(cfg: TrainRunConfig, hooks: TrainHooks = {}, resume = false): TrainResult {
  const it = trainSteps(cfg, hooks, resume);
  for (;;) {
    const r = it.next();
    if (r.done) return r.value;
  }
}

/**
 * Runs training and yields to the event loop after every step (with the engine's yieldToEventLoop, which the
 * caller passes: train and engine are siblings), so a SIGINT handler (the CLI's Ctrl-C) runs
 * and `shouldStop` sees it before the next step: the step finishes, a checkpoint is saved, and training returns.
 */
export async function trainAsync(
  cfg: TrainRunConfig,
  hooks: TrainHooks,
  resume: boolean,
  yieldToEventLoop: () => Promise<void>,
): Promise<TrainResult> {
  const it = trainSteps(cfg, hooks, resume);
  for (;;) {
    const r = it.next();
    if (r.done) return r.value;
    await yieldToEventLoop();
  }
}

/** Progress after each step (the CLI draws its bar from this). */
export interface TrainProgress {
  step: number;
  steps: number;
  loss: number;
  emaLoss: number;
  tokPerSec: number;
  etaSeconds: number;
  lr: number;
}

function* trainSteps(cfg: TrainRunConfig, hooks: TrainHooks, resume: boolean): Generator<void, TrainResult, void> {
  const log = hooks.log ?? ((s: string) => console.log(s));
  const enc = loadEncoder(cfg.tokenizer);
  let model: TrainModel;
  if (cfg.init_from) {
    const src = loadCheckpoint(cfg.init_from);
    model = new TrainModel(src.cfg, { seed: cfg.seed ?? 1, initStd: cfg.init?.std, baseWidth: cfg.init?.base_width });
    model.params.forEach((p, i) => p.data.set(src.params[i]!.data));
  } else {
    if (!cfg.model) throw new UsageError('config needs "model" (an HF llama4_text config) or "init_from"');
    const mc = parseTrainConfig({ vocab_size: enc.vocabSize, ...cfg.model });
    model = new TrainModel(mc, { seed: cfg.seed ?? 1, initStd: cfg.init?.std, baseWidth: cfg.init?.base_width });
  }
  if (model.cfg.vocabSize < enc.vocabSize)
    throw new ConfigError(`model vocab_size ${model.cfg.vocabSize} < tokenizer size ${enc.vocabSize}`);
  const tr = cfg.train;
  const opt = new AdamW(model.params, { lr: tr.lr, weightDecay: tr.weight_decay ?? 0.1, clip: tr.clip ?? 1, beta2: tr.beta2 ?? 0.95 });
  const rng = new Rng(cfg.seed ?? 1);
  let step = 0,
    tokens = 0;
  const from = resume ? resolveCheckpoint(cfg.out) : null;
  if (from && existsSync(join(from, 'trainer_state.json'))) {
    verifyCheckpoint(from);
    const st = loadTrainerState(from, opt);
    if (st) {
      const w = decodeSafetensors(join(from, 'model.safetensors'), readFileSync(join(from, 'model.safetensors')));
      loadModelTensors(model, w);
      step = st.step;
      tokens = st.tokens;
      rng.state = st.rng;
      log(`resumed from ${cfg.out} at step ${step}`);
    }
  }
  const data = new DataSource(enc, cfg.data);
  const teacher = cfg.distill ? loadCheckpoint(cfg.distill.teacher) : null;
  if (teacher && teacher.cfg.vocabSize !== model.cfg.vocabSize) throw new ConfigError('teacher and student vocab sizes differ');
  const T = cfg.data.seq_len ?? 64,
    accum = tr.accum ?? 1,
    V = model.cfg.vocabSize;
  const textShare = data.trainStream.length > T + 2 ? (cfg.data.text_share ?? 0.3) : 0;
  const save = (): void =>
    saveCheckpoint(
      cfg.out,
      model,
      opt,
      { step, tokens, rng: rng.state },
      {
        bos_token_id: enc.special('<|begin_of_text|>'),
        eos_token_id: [enc.special('<|eot|>'), enc.special('<|eom|>'), enc.special('<|end_of_text|>')],
        pad_token_id: enc.special('<|finetune_right_pad|>'),
      },
    );
  const t0 = performance.now();
  const mm0 = matmulStats.ms;
  let runTokens = 0,
    ema = NaN,
    lastLoss = NaN,
    ppl = NaN;
  const startStep = step;
  while (step < tr.steps) {
    model.zeroGrad();
    let lossSum = 0;
    for (let a = 0; a < accum; a++) {
      const r0 = rng.next(),
        arithShare = cfg.data.arith_share ?? 0;
      const batch = cfg.data.skills
        ? data.skillsBatch(rng)
        : r0 < textShare
          ? data.textBatch(rng, tr.batch, T)
          : r0 < textShare + arithShare
            ? data.arithBatch(rng, tr.batch, T)
            : data.chatBatch(rng, tr.batch, 512);
      const logits = model.forward(batch.tokens, batch.B, batch.T);
      let r: ReturnType<typeof distillLoss>;
      if (teacher) {
        // Codistillation: α (hard-label weight) moves from alpha_start to alpha_end over training; the soft part is
        // further scaled by min(1, exp(CE_student − CE_teacher)) so a teacher no better than the student on this
        // batch weighs less (dynamic soft/hard weighting).
        const tl = teacher.forward(batch.tokens, batch.B, batch.T, false);
        const frac = step / Math.max(1, tr.steps - 1);
        const aSched = (cfg.distill!.alpha_start ?? 0.3) + frac * ((cfg.distill!.alpha_end ?? 0.7) - (cfg.distill!.alpha_start ?? 0.3));
        const ceS = distillLoss(logits, batch.targets, V).loss,
          ceT = distillLoss(tl, batch.targets, V).loss;
        const soft = (1 - aSched) * Math.min(1, Math.exp(ceS - ceT));
        r = distillLoss(logits, batch.targets, V, tl, 1 - soft, cfg.distill!.temperature ?? 1);
        r.loss = ceS; // report the hard loss so runs compare
      } else r = distillLoss(logits, batch.targets, V);
      for (let i = 0; i < r.dLogits.length; i++) r.dLogits[i] = r.dLogits[i]! / accum;
      model.backward(r.dLogits, (tr.aux_coef ?? 0.01) / accum);
      lossSum += r.loss / accum;
      runTokens += batch.B * batch.T;
      tokens += batch.B * batch.T;
    }
    const lr = lrAt(step, tr.lr, tr.warmup ?? 0, tr.steps, tr.min_lr_ratio ?? 0.1);
    const gn = opt.update(lr);
    step++;
    lastLoss = lossSum;
    ema = Number.isNaN(ema) ? lossSum : 0.95 * ema + 0.05 * lossSum;
    const el = (performance.now() - t0) / 1000;
    const tps = runTokens / el;
    const eta = ((tr.steps - step) * el) / (step - startStep);
    hooks.progress?.({ step, steps: tr.steps, loss: lossSum, emaLoss: ema, tokPerSec: tps, etaSeconds: eta, lr });
    if (!hooks.progress && (step % 10 === 0 || step === tr.steps)) {
      log(
        `step ${step}/${tr.steps} loss ${lossSum.toFixed(4)} (ema ${ema.toFixed(4)}) aux ${model.auxLoss.toFixed(3)} lr ${lr.toExponential(2)} gnorm ${gn.toFixed(2)} tok/s ${tps.toFixed(0)} matmul ${((100 * (matmulStats.ms - mm0)) / (el * 1000)).toFixed(0)}% ETA ${fmtTime(eta)}`,
      );
    }
    // Ctrl-C: save and go (no evaluation); the time limit ends like the last step (evaluated).
    const interrupted = hooks.shouldStop?.() ?? false;
    const stop = interrupted || (cfg.max_seconds !== undefined && el > cfg.max_seconds);
    if ((cfg.eval_every && step % cfg.eval_every === 0) || step === tr.steps || (stop && !interrupted)) {
      if (data.heldStream.length > T + 1) {
        ppl = heldOutPerplexity(model, data.heldStream, T);
        log(`eval step ${step}: held-out perplexity ${ppl.toFixed(2)}`);
      }
      if (hooks.evaluate) log(`eval step ${step}: ${hooks.evaluate(model, enc)}`);
    }
    if ((cfg.save_every && step % cfg.save_every === 0) || step === tr.steps || stop) {
      save();
      log(`saved ${cfg.out} at step ${step}`);
    }
    if (stop) {
      log(`stopped at step ${step}`);
      break;
    }
    yield;
  }
  const seconds = (performance.now() - t0) / 1000;
  return {
    model,
    steps: step,
    tokens,
    seconds,
    tokPerSec: runTokens / seconds,
    matmulShare: (matmulStats.ms - mm0) / (seconds * 1000),
    lastLoss,
    heldOutPpl: ppl,
  };
}
