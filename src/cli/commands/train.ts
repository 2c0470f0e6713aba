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
import { trainAsync, type TrainProgress, type TrainRunConfig } from '../../train/trainer.ts';
import { setTrainBackend } from '../../train/kernels.ts';
import { createBackend, createTrainBackend } from '../../load.ts';
import { snapshotDecode } from '../../train/decode.ts';
import { yieldToEventLoop } from '../../engine/index.ts';
import type { Command } from '../command.ts';

const usage = `usage: llama4 train --config FILE [--resume] [--chat-eval] [--backend auto|native|typescript] [--threads N]
                    [--products f32|bf16]

Trains a Llama 4 text model (f32; every op of a step on the native core when it is built) and writes
Hugging Face safetensors checkpoints.

  --config FILE   JSON run config: out, tokenizer, model (HF llama4_text fields) or init_from, data
                  {text_files, text_share, seq_len, heldout_share, tool_share, sft_file}, train {steps, batch,
                  accum, lr, warmup, min_lr_ratio, weight_decay, clip, aux_coef}, distill {teacher, alpha_start,
                  alpha_end, temperature}, eval_every, save_every, max_seconds. Relative paths are resolved
                  against the config file's folder.
  --resume        continue from the checkpoint in "out" (weights, optimizer moments, step, data RNG)
  --chat-eval     also report greedy arithmetic accuracy at eval points
  --backend B     training backend (default auto: native when available)
  --threads N     native threads (default 2)
  --products P    f32 (default) or bf16: forward and input-gradient matrix products with bf16 operands and f32 sums
                  (native core on a CPU with AVX-512 BF16 or AMX-BF16; weight gradients and all else stay f32)
Progress: a bar with loss, tokens/s and ETA on a terminal, a plain line every 10 steps otherwise.
Ctrl-C stops after the current step with a checkpoint. A checkpoint is a new folder in OUT.ckpt/ made current
by one atomic rename of the OUT link, with a manifest of checksums that --resume verifies.`;

function fmtEta(s: number): string {
  if (!Number.isFinite(s)) return '?';
  const m = Math.floor(s / 60);
  return m > 0 ? `${m}m${String(Math.round(s % 60)).padStart(2, '0')}s` : `${Math.round(s)}s`;
}

function rel(base: string, p: string | undefined): string | undefined {
  return p === undefined || isAbsolute(p) ? p : resolve(base, p);
}

export const trainCommand: Command = {
  name: 'train',
  summary: 'train a small Llama 4 model (config file, checkpoints, resume)',
  usage,
  async run(argv) {
    const { values } = parseArgs({
      args: argv,
      options: {
        config: { type: 'string' },
        resume: { type: 'boolean' },
        'chat-eval': { type: 'boolean' },
        backend: { type: 'string' },
        threads: { type: 'string' },
        products: { type: 'string' },
      },
    });
    const choice = values.backend ?? 'auto';
    if (choice !== 'auto' && choice !== 'native' && choice !== 'typescript')
      throw new UsageError(`--backend must be auto, native or typescript (got ${choice})`);
    const threads = values.threads === undefined ? 2 : Number(values.threads);
    if (!Number.isInteger(threads) || threads < 1 || threads > 256)
      throw new UsageError(`--threads must be an integer 1..256 (got ${values.threads})`);
    const products = values.products ?? 'f32';
    if (products !== 'f32' && products !== 'bf16') throw new UsageError(`--products must be f32 or bf16 (got ${products})`);
    if (!values.config) throw new UsageError('--config FILE is required');
    if (!existsSync(values.config)) throw new UsageError(`config ${values.config} not found`);
    let cfg: TrainRunConfig;
    try {
      cfg = JSON.parse(readFileSync(values.config, 'utf8')) as TrainRunConfig;
    } catch (e) {
      throw new UsageError(`config ${values.config}: ${(e as Error).message}`);
    }
    if (
      typeof cfg !== 'object' ||
      !cfg ||
      typeof cfg.out !== 'string' ||
      typeof cfg.tokenizer !== 'string' ||
      typeof cfg.train !== 'object' ||
      !cfg.data
    )
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
    const { backend, note } = createTrainBackend(choice, threads, products);
    if (note) process.stderr.write(`${note}\n`);
    setTrainBackend(backend);
    // Evaluation decodes through the inference model (Llama4TextModel) on the compute backend llama4 run uses.
    const { backend: inferBackend } = await createBackend(choice === 'typescript' ? 'typescript' : 'auto', threads);
    // On a terminal a bar (loss, tokens/s, ETA) under the log lines; elsewhere a plain progress line every 10 steps.
    const bar = process.stdout.isTTY && process.stderr.isTTY ? createProgress('training') : null;
    const log = (line: string): void => {
      if (!bar) return void process.stdout.write(`${line}\n`);
      bar.log(line);
    };
    const progress = (p: TrainProgress): void => {
      if (bar)
        bar.update(
          p.step / p.steps,
          `step ${p.step}/${p.steps} loss ${p.emaLoss.toFixed(4)} ${p.tokPerSec.toFixed(0)} tok/s ETA ${fmtEta(p.etaSeconds)}`,
        );
      else if (p.step % 10 === 0 || p.step === p.steps) {
        process.stdout.write(
          `step ${p.step}/${p.steps} loss ${p.loss.toFixed(4)} (ema ${p.emaLoss.toFixed(4)}) tok/s ${p.tokPerSec.toFixed(0)} ETA ${fmtEta(p.etaSeconds)}\n`,
        );
      }
    };
    try {
      const res = await trainAsync(
        cfg,
        {
          log,
          progress,
          shouldStop: () => stop,
          ...(values['chat-eval'] ? { evaluate: (m, enc) => chatEvalSummary(snapshotDecode(m, inferBackend), enc, 30, false) } : {}),
        },
        values.resume ?? false,
        yieldToEventLoop,
      );
      bar?.done();
      process.stdout.write(
        `trained ${res.steps} steps, ${res.tokens} tokens, ${res.tokPerSec.toFixed(0)} tok/s, ${(100 * res.matmulShare).toFixed(0)}% in matrix products; checkpoint ${cfg.out}\n`,
      );
    } finally {
      process.off('SIGINT', onSig);
    }
    return 0;
  },
};
