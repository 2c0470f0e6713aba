/**
 * AdamW with per-parameter LR multipliers (MetaP-style), global-norm gradient clipping and a warmup + cosine
 * schedule. State is plain typed arrays so checkpoints can save and resume it exactly.
 */
import type { Param } from './model.ts';
import { adamwStep, sumSquares } from './kernels.ts';

export interface AdamWOptions {
  lr: number;
  beta1?: number;
  beta2?: number;
  eps?: number;
  weightDecay?: number;
  /** Clip the global gradient L2 norm to this (0 = off). */
  clip?: number;
}

export class AdamW {
  readonly m: Float32Array[];
  readonly v: Float32Array[];
  step = 0;
  constructor(
    readonly params: readonly Param[],
    readonly opts: AdamWOptions,
  ) {
    this.m = params.map((p) => new Float32Array(p.data.length));
    this.v = params.map((p) => new Float32Array(p.data.length));
  }

  /** Global L2 norm of all gradients. */
  gradNorm(): number {
    let s = 0;
    for (const p of this.params) s += sumSquares(p.grad, 1);
    return Math.sqrt(s);
  }

  /**
   * One update at learning rate `lr` (the schedule's value). `gradScale` divides gradients first (gradient
   * accumulation over k micro-batches passes k). Returns the pre-clip gradient norm.
   */
  update(lr: number, gradScale = 1): number {
    const { beta1 = 0.9, beta2 = 0.95, eps = 1e-8, weightDecay = 0.1, clip = 1 } = this.opts;
    let ss = 0;
    for (const p of this.params) ss += sumSquares(p.grad, gradScale);
    const norm = Math.sqrt(ss);
    const gmul = clip > 0 && norm > clip ? clip / norm : 1;
    this.step++;
    const bc1 = 1 - Math.pow(beta1, this.step),
      bc2 = 1 - Math.pow(beta2, this.step);
    for (let k = 0; k < this.params.length; k++) {
      const p = this.params[k]!;
      // Decoupled weight decay (AdamW): w ← w − lr·(m̂/(√v̂+ε) + wd·w), on the training backend.
      adamwStep(p.data, p.grad, this.m[k]!, this.v[k]!, {
        lr: lr * p.lrMult,
        beta1,
        beta2,
        eps,
        wd: p.decay ? weightDecay : 0,
        bc1,
        bc2,
        gmul,
      });
    }
    return norm;
  }
}

/** Linear warmup to `peak`, cosine decay to `peak·minRatio` at `total` steps. */
export function lrAt(step: number, peak: number, warmup: number, total: number, minRatio = 0.1): number {
  if (warmup > 0 && step < warmup) return (peak * (step + 1)) / warmup;
  const t = Math.min(1, (step - warmup) / Math.max(1, total - warmup));
  return peak * (minRatio + (1 - minRatio) * 0.5 * (1 + Math.cos(Math.PI * t)));
}
