/**
 * Online RL between SFT and DPO, as in Llama 4's post-training recipe: GRPO-style group-relative policy gradient
 * with verifiable rewards and a KL penalty to the frozen SFT policy.
 *
 * Each step: P prompts, G on-policy samples each (temperature τ, decoded by the inference model on a snapshot of
 * the current weights, src/train/decode.ts); each sample gets a reward r from a checker; advantages are
 * A = (r − mean_group) / (std_group + ε) (groups where every sample scored the same teach nothing and are skipped);
 * the loss over sampled tokens is
 *   L = (1/S) Σ_samples [ −A · mean_t log π(y_t) + β · mean_t k3_t ],   k3 = exp(ref − lp) − (ref − lp) − 1
 * (the unbiased, non-negative KL(π‖π_ref) estimator), one update per batch (fully on-policy, so no ratio clipping).
 */
import type { BpeEncoder } from './bpe.ts';
import { logSoftmaxRow } from './loss.ts';
import type { TrainModel } from './model.ts';
import type { AdamW } from './optim.ts';
import type { Rng } from './rng.ts';
import { packChat } from './trainer.ts';

export interface RlTask {
  /** Prompt ids (rendered chat, ending with the assistant header). */
  prompt: number[];
  /** Reward in [0, 1] of a decoded reply. */
  reward: (reply: string) => number;
  kind: string;
}

/** Samples `n` completions (ids, stop token excluded) and whether each ended with a stop token. */
export type Sampler = (prompt: readonly number[], n: number, rng: Rng) => { ids: number[]; stopped: boolean }[];

export interface GrpoStats {
  reward: number;
  rewardByKind: Record<string, number>;
  kl: number;
  activeGroups: number;
  samples: number;
}

export function grpoStep(
  policy: TrainModel,
  ref: TrainModel,
  tasks: readonly RlTask[],
  sample: Sampler,
  enc: BpeEncoder,
  opt: AdamW,
  lr: number,
  rng: Rng,
  o: { group: number; beta: number },
): GrpoStats {
  const eot = enc.special('<|eot|>'),
    pad = enc.special('<|finetune_right_pad|>');
  const rows: { prompt: number[]; answer: number[]; adv: number }[] = [];
  let rSum = 0,
    n = 0,
    active = 0;
  const byKind: Record<string, [number, number]> = {};
  for (const t of tasks) {
    const outs = sample(t.prompt, o.group, rng);
    const r = outs.map((x) => t.reward(enc.decode(x.ids.filter((i) => i < enc.model.vocab.length))));
    const mean = r.reduce((a, b) => a + b, 0) / r.length;
    const std = Math.sqrt(r.reduce((a, b) => a + (b - mean) ** 2, 0) / r.length);
    rSum += r.reduce((a, b) => a + b, 0);
    n += r.length;
    const k = (byKind[t.kind] ??= [0, 0]);
    k[0] += r.reduce((a, b) => a + b, 0);
    k[1] += r.length;
    if (std < 1e-6) continue;
    active++;
    outs.forEach((x, i) =>
      rows.push({
        prompt: t.prompt,
        answer: x.stopped ? [...x.ids, eot] : x.ids.length ? x.ids : [eot],
        adv: (r[i]! - mean) / (std + 1e-4),
      }),
    );
  }
  const stats: GrpoStats = { reward: rSum / Math.max(1, n), rewardByKind: {}, kl: 0, activeGroups: active, samples: n };
  for (const [k, [s, c]] of Object.entries(byKind)) stats.rewardByKind[k] = s / c;
  if (rows.length === 0) return stats;
  const b = packChat(rows, 4096, pad);
  policy.zeroGrad();
  const logits = policy.forward(b.tokens, b.B, b.T);
  const refLogits = ref.forward(b.tokens, b.B, b.T, false);
  const { dLogits, kl } = grpoLoss(
    logits,
    refLogits,
    b.targets,
    b.B,
    b.T,
    policy.cfg.vocabSize,
    rows.map((r) => r.adv),
    o.beta,
  );
  policy.backward(dLogits, 0);
  opt.update(lr);
  stats.kl = kl;
  return stats;
}

/**
 * The GRPO loss on a packed batch (targets ≥ 0 mark sampled tokens): its value, dLogits and the mean k3 KL.
 * Pure so the gradient can be checked against finite differences.
 */
export function grpoLoss(
  logits: Float32Array,
  refLogits: Float32Array,
  targets: Int32Array,
  B: number,
  T: number,
  V: number,
  adv: readonly number[],
  beta: number,
): { loss: number; dLogits: Float32Array; kl: number } {
  const dLogits = new Float32Array(logits.length);
  const lp = new Float32Array(V),
    rl = new Float32Array(V);
  let loss = 0,
    klSum = 0,
    klN = 0;
  for (let s = 0; s < B; s++) {
    let len = 0;
    for (let t = 0; t < T; t++) if (targets[s * T + t]! >= 0) len++;
    if (len === 0) continue;
    for (let t = 0; t < T; t++) {
      const i = s * T + t,
        y = targets[i]!;
      if (y < 0) continue;
      const off = i * V;
      logSoftmaxRow(lp, logits.subarray(off, off + V), 0, V);
      logSoftmaxRow(rl, refLogits.subarray(off, off + V), 0, V);
      const d = rl[y]! - lp[y]!,
        ratio = Math.exp(d),
        k3 = ratio - d - 1;
      klSum += k3;
      klN++;
      loss += ((-adv[s]! * lp[y]!) / len + (beta * k3) / len) / B;
      // ∂L/∂lp_y for this token; ∂lp_y/∂logit_v = 1[v = y] − p_v.
      const g = (-adv[s]! + beta * (1 - ratio)) / len / B;
      for (let v = 0; v < V; v++) dLogits[off + v] = -g * Math.exp(lp[v]!);
      dLogits[off + y] = dLogits[off + y]! + g;
    }
  }
  return { loss, dLogits, kl: klSum / Math.max(1, klN) };
}
