/**
 * `llama4 train --config FILE [--resume]`: trains a Llama 4 text model from a JSON run config (see
 * src/train/trainer.ts TrainRunConfig). Prints a progress line (loss, tokens/s, ETA), held-out perplexity at
 * intervals, writes HF-layout checkpoints, and on Ctrl-C finishes the current step, saves and exits 0.
 */
import { existsSync, readFileSync } from 'node:fs';
import { dirname, isAbsolute, resolve } from 'node:path';
import { parseArgs } from '../args.ts';
import { createProgress } from '../progress.ts';
import { UsageError } from '../../util/errors.ts';
import { chatEvalSummary } from '../../train/eval.ts';
import { train, type TrainRunConfig } from '../../train/trainer.ts';
import type { Command } from '../command.ts';

const usage = `usage: llama4 train --config FILE [--resume] [--chat-eval]

Trains a Llama 4 text model (pure TypeScript, f32) and writes Hugging Face safetensors checkpoints.

  --config FILE   JSON run config: out, tokenizer, model (HF llama4_text fields) or init_from, data
                  {text_files, text_share, seq_len, heldout_share, tool_share, sft_file}, train {steps, batch,
                  accum, lr, warmup, min_lr_ratio, weight_decay, clip, aux_coef}, distill {teacher, alpha_start,
                  alpha_end, temperature}, eval_every, save_every, max_seconds. Relative paths are resolved
                  against the config file's folder.
  --resume        continue from the checkpoint in "out" (weights, optimizer moments, step, data RNG)
  --chat-eval     also report greedy arithmetic accuracy at eval points
Ctrl-C stops after the current step with a checkpoint.`;

function rel(base: string, p: string | undefined): string | undefined {
  return p === undefined || isAbsolute(p) ? p : resolve(base, p);
}

export const trainCommand: Command = {
  name: 'train',
  summary: 'train a small Llama 4 model (config file, checkpoints, resume)',
  usage,
  async run(argv) {
    const { values } = parseArgs({ args: argv, options: { config: { type: 'string' }, resume: { type: 'boolean' }, 'chat-eval': { type: 'boolean' } } });
    if (!values.config) throw new UsageError('--config FILE is required');
    if (!existsSync(values.config)) throw new UsageError(`config ${values.config} not found`);
    let cfg: TrainRunConfig;
    try { cfg = JSON.parse(readFileSync(values.config, 'utf8')) as TrainRunConfig; } catch (e) {
      throw new UsageError(`config ${values.config}: ${(e as Error).message}`);
    }
    if (typeof cfg !== 'object' || !cfg || typeof cfg.out !== 'string' || typeof cfg.tokenizer !== 'string' || typeof cfg.train !== 'object' || !cfg.data)
      throw new UsageError(`config ${values.config}: needs "out", "tokenizer", "data" and "train"`);
    const base = dirname(resolve(values.config));
    cfg.out = rel(base, cfg.out)!;
    cfg.tokenizer = rel(base, cfg.tokenizer)!;
    cfg.init_from = rel(base, cfg.init_from);
    cfg.data.text_files = cfg.data.text_files?.map((f) => rel(base, f)!);
    cfg.data.sft_file = rel(base, cfg.data.sft_file);
    if (cfg.distill) cfg.distill.teacher = rel(base, cfg.distill.teacher)!;
    let stop = false;
    const onSig = (): void => {
      if (stop) process.exit(130);
      stop = true;
      process.stderr.write('\nstopping after this step (Ctrl-C again to abort without saving)\n');
    };
    process.on('SIGINT', onSig);
    // On a terminal a bar under the log lines shows the step count; elsewhere the log lines alone (plain text).
    const progress = process.stdout.isTTY && process.stderr.isTTY ? createProgress('training') : null;
    const log = (line: string): void => {
      if (!progress) return void process.stdout.write(`${line}\n`);
      progress.log(line);
      const m = /^step (\d+)\/(\d+)/.exec(line);
      if (m) progress.update(Number(m[1]) / Number(m[2]), `step ${m[1]}/${m[2]}`);
    };
    try {
      const res = train(cfg, {
        log,
        shouldStop: () => stop,
        ...(values['chat-eval'] ? { evaluate: (m, enc) => chatEvalSummary(m, enc, 30, false) } : {}),
      }, values.resume ?? false);
      progress?.done();
      process.stdout.write(`trained ${res.steps} steps, ${res.tokens} tokens, ${res.tokPerSec.toFixed(0)} tok/s, ${(100 * res.matmulShare).toFixed(0)}% in matrix products; checkpoint ${cfg.out}\n`);
    } finally {
      process.off('SIGINT', onSig);
    }
    return 0;
  },
};
