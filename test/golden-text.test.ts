/**
 * The Hugging Face reference's logits, hidden states and greedy runs for the text golden cases (../shared/golden
 * a–d), through the library: full forward, step-by-step decode through the KV cache, and prefill in pieces.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { sharedPath, maxAbsDiff } from './helpers/shared.ts';
import { parseHfConfig } from '../src/model/llama4/config.ts';
import { ropeInvFreq } from '../src/model/llama4/config.ts';
import { loadHfTextTensors } from '../src/model/llama4/weights.ts';
import { Llama4TextModel } from '../src/model/llama4/text-model.ts';
import { openSafetensors } from '../src/io/safetensors.ts';
import { TsBackend } from '../src/kernels/ts/index.ts';
import { tryCreateNativeBackend } from '../src/kernels/native/index.ts';
import type { Backend } from '../src/tensor/index.ts';

// Every case runs on the TypeScript reference and, when its addon is built, on the native backend.
const native = tryCreateNativeBackend();
if (!native.backend) process.stderr.write(`\n*** golden-text: native backend SKIPPED: ${native.reason} ***\n`);
const BACKENDS: [string, Backend][] = [
  ['typescript', new TsBackend()],
  ...(native.backend ? [['native', native.backend] as [string, Backend]] : []),
];

const CASES = ['a_moe_all_chunked_temptuning', 'b_maverick_interleaved', 'c_scout_shaped', 'd_chunk_boundary_generation'];

interface Expected {
  input_ids: number[];
  logits: number[][];
  argmax_per_position: number[];
  hidden_states?: { embeddings: number[][]; layer_outputs: number[][][]; final_norm: number[][] };
  generation: {
    prompt_ids: number[];
    generated_ids: number[];
    max_new_tokens: number;
    step_logits_last4?: number[][];
    step_logits_checksum?: { sum: number; abs_sum: number; sq_sum: number; weighted_sum: number };
  };
  derived: Record<string, unknown>;
}

function load(name: string, backend: Backend) {
  const dir = sharedPath('golden', name);
  if (!dir) return null;
  const cfg = parseHfConfig(JSON.parse(readFileSync(join(dir, 'config.json'), 'utf8')));
  const tensors = loadHfTextTensors(cfg, openSafetensors(dir), dir);
  const model = new Llama4TextModel(cfg, tensors, backend, dir);
  const exp = JSON.parse(readFileSync(join(dir, 'expected.json'), 'utf8')) as Expected;
  return { cfg, model, exp };
}

for (const [bname, backend] of BACKENDS)
  for (const name of CASES) {
    test(`golden ${name} [${bname}]: derived per-layer facts and rope frequencies`, (t) => {
      const c = load(name, backend);
      if (!c) return t.skip('../shared/golden missing');
      const d = c.exp.derived;
      assert.deepEqual(
        c.cfg.layers.map((f) => (f.usesRope ? 1 : 0)),
        d['no_rope_layers(1=rope,0=NoPE)'],
      );
      assert.deepEqual(
        c.cfg.layers.flatMap((f, l) => (f.isMoe ? [l] : [])),
        d['moe_layers'],
      );
      assert.deepEqual(
        c.cfg.layers.flatMap((f, l) => (f.chunkSize > 0 ? [l] : [])),
        d['chunked_attention_layers'],
      );
      assert.deepEqual(
        c.cfg.layers.flatMap((f, l) => (f.qkNorm ? [l] : [])),
        d['qk_norm_layers'],
      );
      assert.deepEqual(
        c.cfg.layers.flatMap((f, l) => (f.temperatureTuning ? [l] : [])),
        d['temperature_tuned_layers'],
      );
      const inv = ropeInvFreq(c.cfg);
      const want = d['inv_freq'] as number[];
      for (let j = 0; j < want.length; j++)
        assert.ok(Math.abs(inv[j]! - want[j]!) <= 1e-6 * Math.max(1, want[j]!), `inv_freq[${j}] ${inv[j]} vs ${want[j]}`);
    });

    test(`golden ${name} [${bname}]: full-sequence logits within 1e-4`, (t) => {
      const c = load(name, backend);
      if (!c) return t.skip('../shared/golden missing');
      const { model, exp, cfg } = c;
      const hidden: Float32Array[] = [];
      model.observer = (_l, h) => hidden.push(h.slice());
      const [logits] = model.forward([{ seq: model.newSequence(), tokens: exp.input_ids, logits: 'all' }]);
      const V = cfg.vocabSize;
      assert.equal(logits!.length, exp.input_ids.length * V);
      let worst = 0;
      exp.logits.forEach((row, p) => {
        worst = Math.max(worst, maxAbsDiff(logits!.subarray(p * V, (p + 1) * V), row));
      });
      assert.ok(worst < 1e-4, `max |Δlogit| = ${worst}`);
      const argmax = exp.logits.map((_, p) => {
        let b = 0;
        for (let v = 1; v < V; v++) if (logits![p * V + v]! > logits![p * V + b]!) b = v;
        return b;
      });
      assert.deepEqual(argmax, exp.argmax_per_position);
      if (exp.hidden_states) {
        const H = cfg.hiddenSize;
        exp.hidden_states.layer_outputs.forEach((layer, l) => {
          assert.ok(maxAbsDiff(hidden[l]!, layer.flat()) < 1e-4, `layer ${l} hidden state`);
        });
        const fin = model.finalNorm(hidden[hidden.length - 1]!, exp.input_ids.length);
        assert.ok(maxAbsDiff(fin, exp.hidden_states.final_norm.flat()) < 1e-4, 'final norm');
        assert.equal(fin.length, exp.input_ids.length * H);
        // forward's 'hidden' output (what the server's embeddings pool) is the same reference tensor, from a fresh pass.
        const [viaForward] = model.forward([{ seq: model.newSequence(), tokens: exp.input_ids, logits: 'hidden' }]);
        assert.equal(viaForward!.length, exp.input_ids.length * H);
        assert.ok(
          maxAbsDiff(viaForward!, exp.hidden_states.final_norm.flat()) < 1e-4,
          "forward's hidden output vs the reference final norm",
        );
      }
    });

    test(`golden ${name} [${bname}]: greedy generation through the KV cache matches the reference`, (t) => {
      const c = load(name, backend);
      if (!c) return t.skip('../shared/golden missing');
      const { model, exp, cfg } = c;
      const g = exp.generation;
      const seq = model.newSequence();
      let [logits] = model.forward([{ seq, tokens: g.prompt_ids, logits: 'last' }]);
      const out: number[] = [];
      const steps: Float32Array[] = [];
      for (let i = 0; i < g.max_new_tokens; i++) {
        steps.push(logits!);
        let b = 0;
        for (let v = 1; v < cfg.vocabSize; v++) if (logits![v]! > logits![b]!) b = v;
        out.push(b);
        if (i + 1 < g.max_new_tokens) [logits] = model.forward([{ seq, tokens: [b], logits: 'last' }]);
      }
      assert.deepEqual(out, g.generated_ids);
      // step_logits_last4 = the full logits of the last four decode steps; the checksum covers all steps.
      const last4 = g.step_logits_last4 ?? [];
      last4.forEach((row, i) => {
        const s = steps[steps.length - last4.length + i]!;
        assert.ok(maxAbsDiff(s, row) < 1e-4, `step ${steps.length - last4.length + i} logits`);
      });
      const sum = g.step_logits_checksum;
      if (sum) {
        const flat = new Float64Array(steps.length * cfg.vocabSize);
        steps.forEach((s, i) => flat.set(s, i * cfg.vocabSize));
        let a = 0,
          abs = 0,
          sq = 0,
          w = 0;
        flat.forEach((x, i) => {
          a += x;
          abs += Math.abs(x);
          sq += x * x;
          w += x * Math.cos(i);
        });
        assert.ok(Math.abs(abs - sum.abs_sum) < 1e-4 * flat.length, `abs_sum ${abs} vs ${sum.abs_sum}`);
        assert.ok(Math.abs(w - sum.weighted_sum) < 1e-3, `weighted_sum ${w} vs ${sum.weighted_sum}`);
        assert.ok(Math.abs(sq - sum.sq_sum) < 1e-3 * Math.max(1, sum.sq_sum), `sq_sum ${sq} vs ${sum.sq_sum}`);
        assert.ok(Math.abs(a - sum.sum) < 1e-4 * flat.length, `sum ${a} vs ${sum.sum}`);
      }
    });

    test(`golden ${name} [${bname}]: prefill in pieces and token-by-token decode equal one full forward`, (t) => {
      const c = load(name, backend);
      if (!c) return t.skip('../shared/golden missing');
      const { model, exp, cfg } = c;
      const V = cfg.vocabSize;
      const ids = exp.input_ids;
      const seq = model.newSequence();
      const rows: Float32Array[] = [];
      for (let i = 0; i < ids.length; i += 5) {
        const [l] = model.forward([{ seq, tokens: ids.slice(i, i + 5), logits: 'all' }]);
        for (let r = 0; r < l!.length / V; r++) rows.push(l!.subarray(r * V, (r + 1) * V));
      }
      ids.forEach((_, p) => assert.ok(maxAbsDiff(rows[p]!, exp.logits[p]!) < 1e-4, `position ${p}`));
    });
  }
