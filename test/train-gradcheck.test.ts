// Finite-difference checks of the hand-written backward, one parameter tensor (= one op's weights) at a time, on
// tiny models that turn on every Llama 4 feature: chunked masks shorter than the sequence, NoPE layers with
// temperature tuning that changes inside the sequence, qk-norm, GQA, MoE with the router-score gradient and the
// aux loss, shared expert, dense layers; loss = hard + soft (distillation) targets.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { parseTrainConfig } from '../src/train/config.ts';
import { TrainModel } from '../src/train/model.ts';
import { distillLoss } from '../src/train/loss.ts';
import { Rng } from '../src/train/rng.ts';
import { setTrainBackend } from '../src/train/kernels.ts';
import { TsTrainBackend } from '../src/kernels/ts/train-ops.ts';
import { type NativeTrainBackend, tryCreateNativeTrainBackend } from '../src/kernels/native/train-backend.ts';
import type { TrainBackend } from '../src/tensor/train-backend.ts';

// Every check runs on the TypeScript reference and, where the addon loads, on the native training core.
const backends: TrainBackend[] = [new TsTrainBackend()];
const nat = tryCreateNativeTrainBackend(2);
if (nat.backend) backends.push(nat.backend);
else console.log(`# native training backend skipped: ${nat.reason}`);

const base = {
  vocab_size: 23,
  hidden_size: 12,
  num_attention_heads: 4,
  num_key_value_heads: 2,
  head_dim: 6,
  num_hidden_layers: 4,
  intermediate_size: 8,
  intermediate_size_mlp: 10,
  num_local_experts: 3,
  attention_chunk_size: 3,
  floor_scale: 2,
  attn_scale: 0.5,
  rope_theta: 100,
  no_rope_layers: [1, 1, 0, 1],
  moe_layers: [0, 2, 3],
  use_qk_norm: true,
  attn_temperature_tuning: true,
  rope_scaling: { rope_type: 'llama3', factor: 4, low_freq_factor: 1, high_freq_factor: 2, original_max_position_embeddings: 8 },
};

function check(name: string, cfgRaw: Record<string, unknown>): void {
  for (const be of backends) checkOn(name, cfgRaw, be);
}
function checkOn(name: string, cfgRaw: Record<string, unknown>, be: TrainBackend): void {
  test(`gradient check (${name}) on ${be.name}`, (t) => {
    setTrainBackend(be);
    t.after(() => setTrainBackend(backends[0]!));
    const cfg = parseTrainConfig(cfgRaw);
    const model = new TrainModel(cfg, { seed: 3, initStd: 0.25 });
    const rng = new Rng(9);
    const B = 2,
      T = 7,
      N = B * T,
      V = cfg.vocabSize;
    const tokens = Int32Array.from({ length: N }, () => rng.int(V));
    const targets = Int32Array.from({ length: N }, (_, i) => (i % 5 === 0 ? -1 : rng.int(V)));
    const teacher = Float32Array.from({ length: N * V }, () => rng.normal());
    const aux = 0.05;
    const lossAt = (): number => {
      const lg = model.forward(tokens, B, T, false);
      return distillLoss(lg, targets, V, teacher, 0.6, 2).loss + aux * model.auxLoss;
    };
    model.zeroGrad();
    const lg = model.forward(tokens, B, T);
    const r = distillLoss(lg, targets, V, teacher, 0.6, 2);
    model.backward(r.dLogits, aux);
    let checked = 0;
    for (const p of model.params) {
      // Random unit direction u on this tensor: (L(w+εu) − L(w−εu))/2ε ≈ g·u. f64 accumulation of the loss keeps
      // the f32 forward's rounding well under the tolerance at ε = 1e-2.
      const u = Float32Array.from({ length: p.data.length }, () => rng.normal());
      let nu = 0;
      for (const x of u) nu += x * x;
      nu = Math.sqrt(nu);
      for (let i = 0; i < u.length; i++) u[i]! /= nu;
      let gu = 0;
      for (let i = 0; i < u.length; i++) gu += p.grad[i]! * u[i]!;
      const w0 = Float32Array.from(p.data),
        eps = 1e-2;
      for (let i = 0; i < u.length; i++) p.data[i] = w0[i]! + eps * u[i]!;
      const lp = lossAt();
      for (let i = 0; i < u.length; i++) p.data[i] = w0[i]! - eps * u[i]!;
      const lm = lossAt();
      p.data.set(w0);
      const fd = (lp - lm) / (2 * eps);
      const err = Math.abs(fd - gu);
      if (process.env.GC_DEBUG) console.log(p.name, fd, gu);
      assert.ok(err <= 1e-5 + 1e-2 * Math.abs(fd), `${p.name}: finite difference ${fd} vs backward ${gu}`);
      assert.ok(Math.abs(gu) > 0, `${p.name}: zero gradient`);
      checked++;
    }
    assert.equal(checked, model.params.length);
  });
}

check('MoE + dense, chunked, NoPE temperature, qk-norm, llama3 scaling', base);
check('qk-norm off, nkv = 1, all MoE, no temperature tuning', {
  ...base,
  use_qk_norm: false,
  num_key_value_heads: 1,
  moe_layers: [0, 1, 2, 3],
  attn_temperature_tuning: false,
  rope_scaling: null,
});
check('dense only, nkv = nh, global attention', {
  ...base,
  num_key_value_heads: 4,
  moe_layers: [],
  attention_chunk_size: 100,
  no_rope_layers: [1, 0, 1, 0],
});

test('DPO gradient matches finite differences and a few steps raise the reward margin', async () => {
  const { dpoStep } = await import('../src/train/dpo.ts');
  const { AdamW } = await import('../src/train/optim.ts');
  const cfg = parseTrainConfig({ ...base, moe_layers: [0, 3] });
  const policy = new TrainModel(cfg, { seed: 4, initStd: 0.25 }),
    ref = new TrainModel(cfg, { seed: 4, initStd: 0.25 });
  const rng = new Rng(2);
  const pairs = Array.from({ length: 3 }, () => ({
    prompt: Array.from({ length: 4 }, () => rng.int(23)),
    chosen: Array.from({ length: 3 }, () => rng.int(23)),
    rejected: Array.from({ length: 2 }, () => rng.int(23)),
  }));
  // Move the policy off the reference so the margin is not zero.
  for (const p of policy.params) for (let i = 0; i < p.data.length; i++) p.data[i] = p.data[i]! + 0.05 * rng.normal();
  policy.zeroGrad();
  dpoStep(policy, ref, pairs, 0.5, 0, 0.3, 0);
  const p = policy.params.find((x) => x.name.endsWith('layers.1.self_attn.v_proj.weight'))!;
  const u = Float32Array.from({ length: p.data.length }, () => rng.normal());
  let gu = 0;
  for (let i = 0; i < u.length; i++) gu += p.grad[i]! * u[i]!;
  const w0 = Float32Array.from(p.data),
    eps = 1e-3;
  const lossAt = (sgn: number): number => {
    for (let i = 0; i < u.length; i++) p.data[i] = w0[i]! + sgn * eps * u[i]!;
    // The NLL term is part of the objective: loss + 0.3·mean-per-token NLL of chosen answers.
    const r = dpoStep(policy, ref, pairs, 0.5, 0, 0.3, 0);
    return r.loss + r.nll;
  };
  const fd = (lossAt(1) - lossAt(-1)) / (2 * eps);
  p.data.set(w0);
  assert.ok(Math.abs(fd - gu) <= 1e-5 + 1e-2 * Math.abs(fd), `DPO: finite difference ${fd} vs backward ${gu}`);
  const opt = new AdamW(policy.params, { lr: 3e-3, weightDecay: 0 });
  policy.zeroGrad();
  const first = dpoStep(policy, ref, pairs, 0.5, 0);
  opt.update(3e-3);
  let last = first;
  for (let s = 0; s < 10; s++) {
    policy.zeroGrad();
    last = dpoStep(policy, ref, pairs, 0.5, 0);
    opt.update(3e-3);
  }
  assert.ok(last.loss < first.loss, `DPO loss ${first.loss} -> ${last.loss}`);
});

test('BF16 products (mixed precision): 15 AdamW steps follow the f32 loss curve', async (t) => {
  const f32 = backends[1] as NativeTrainBackend | undefined;
  const { backend: bf } = tryCreateNativeTrainBackend(2, undefined, 'bf16');
  if (!f32 || !bf) return t.skip('native BF16 products unavailable');
  const { AdamW } = await import('../src/train/optim.ts');
  const curve = (be: TrainBackend): number[] => {
    setTrainBackend(be);
    const cfg = parseTrainConfig({
      ...base,
      vocab_size: 64,
      hidden_size: 32,
      head_dim: 8,
      intermediate_size: 32,
      intermediate_size_mlp: 48,
    });
    const model = new TrainModel(cfg, { seed: 5 });
    const opt = new AdamW(model.params, { lr: 3e-3 });
    const rng = new Rng(6);
    const B = 4,
      T = 16,
      tokens = Int32Array.from({ length: B * T }, () => rng.int(64)),
      targets = Int32Array.from({ length: B * T }, () => rng.int(64));
    const out: number[] = [];
    for (let s = 0; s < 15; s++) {
      model.zeroGrad();
      const r = distillLoss(model.forward(tokens, B, T), targets, 64);
      model.backward(r.dLogits, 0.01);
      opt.update(3e-3);
      out.push(r.loss);
    }
    return out;
  };
  try {
    const a = curve(f32),
      b = curve(bf);
    for (let s = 0; s < a.length; s++) assert.ok(Math.abs(a[s]! - b[s]!) < 0.02 * a[s]!, `step ${s}: f32 ${a[s]} vs bf16 ${b[s]}`);
    assert.ok(b[b.length - 1]! < b[0]! - 0.5, `bf16 loss ${b[0]} → ${b[b.length - 1]}`);
  } finally {
    setTrainBackend(backends[0]!);
    bf.dispose();
  }
});
