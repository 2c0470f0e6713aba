/**
 * End-to-end batch invariance on the native backend: the OpenAI server batches concurrent requests (continuous
 * batching) and must give each greedy request exactly the output it gets alone. Llama 4's top-1 MoE routing turns
 * any rounding difference into a different expert and then different tokens, so the check is bit for bit: three
 * sequences run through one model in shared forward calls (staggered, as the scheduler does: two prefill together,
 * then the third prefills while the others decode, then all decode) must give the same logits as each sequence
 * run alone (its prefill, then one token per call).
 * Uses llama.cpp-made tiny Llama 4 GGUFs from ../shared (4 experts, top-1, MoE on every layer).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { loadModel } from '../src/load.ts';
import { tryCreateNativeBackend } from '../src/kernels/native/index.ts';
import { sharedPath } from './helpers/shared.ts';

const V = 512;
const STEPS = 6;
// three prompts of different lengths (ids < 480 are ordinary tokens; 480 is BOS)
function prompt(len: number, seed: number): number[] {
  const ids = [480];
  let s = seed;
  for (let i = 1; i < len; i++) {
    s = (s * 1103515245 + 12345) % 2147483648;
    ids.push(s % 480);
  }
  return ids;
}
const PROMPTS = [prompt(5, 1), prompt(13, 2), prompt(22, 3)];

function argmax(a: Float32Array, row: number): number {
  let b = 0;
  for (let i = 1; i < V; i++) if (a[row * V + i]! > a[row * V + b]!) b = i;
  return b;
}
function sameBits(got: Float32Array, want: Float32Array, what: string): void {
  assert.equal(got.length, want.length, `${what}: length`);
  const a = new Uint32Array(got.buffer, got.byteOffset, got.length),
    b = new Uint32Array(want.buffer, want.byteOffset, want.length);
  let first = -1,
    worst = 0;
  for (let i = 0; i < a.length; i++)
    if (a[i] !== b[i]) {
      if (first < 0) first = i;
      worst = Math.max(worst, Math.abs(got[i]! - want[i]!));
    }
  assert.equal(first, -1, `${what}: logits differ from the solo run (first at ${first}, max |Δ| ${worst})`);
}

for (const type of [
  'Q4_0',
  'Q4_1',
  'Q5_0',
  'Q8_0',
  'Q4_K',
  'Q5_K',
  'Q6_K',
  'F16',
  'IQ4_XS',
  'IQ4_NL',
  'IQ2_XXS',
  'IQ3_S',
  'IQ1_M',
  'IQ2_M',
]) {
  test(`native backend, ${type} tiny Llama 4: 3 sequences batched === each alone, bit for bit`, async (t) => {
    const file = sharedPath('gguf', `llama4-tiny-g1-${type}.gguf`);
    if (!file) return t.skip('../shared/gguf missing');
    const probe = tryCreateNativeBackend({ threads: 1 });
    if (!probe.backend) return t.skip(`native backend unavailable: ${probe.reason}`);
    probe.backend.dispose();
    const { model, backend } = await loadModel(file, { backend: 'native', threads: 2 });
    assert.match(backend.name, /^native/);

    // Solo runs: prefill, then greedy decode one token per call. solo[i] = logits rows in order (prompt rows, then
    // one row per decode step); tokens[i] = the greedy tokens fed back.
    const solo: Float32Array[][] = [],
      tokens: number[][] = [];
    for (const p of PROMPTS) {
      const seq = model.newSequence();
      const rows = [model.forward([{ seq, tokens: p, logits: 'all' }])[0]!.slice()];
      const toks: number[] = [];
      for (let s = 0; s < STEPS; s++) {
        const last = rows[rows.length - 1]!;
        toks.push(argmax(last, last.length / V - 1));
        rows.push(model.forward([{ seq, tokens: [toks[s]!], logits: 'all' }])[0]!.slice());
      }
      solo.push(rows);
      tokens.push(toks);
    }
    // the fed-back tokens must differ between sequences somewhere, or the batch could hide a mix-up
    assert.ok(new Set(tokens.map((x) => x.join(','))).size > 1 || new Set(PROMPTS.map((x) => x.join(','))).size === 3);

    // Batched, staggered like the server's scheduler.
    const seqs = PROMPTS.map(() => model.newSequence());
    const got: Float32Array[][] = [[], [], []];
    const step = (items: Array<[number, number[]]>): void => {
      const out = model.forward(items.map(([i, toks]) => ({ seq: seqs[i]!, tokens: toks, logits: 'all' as const })));
      items.forEach(([i], j) => got[i]!.push(out[j]!.slice()));
    };
    step([
      [0, PROMPTS[0]!],
      [1, PROMPTS[1]!],
    ]);
    step([
      [0, [tokens[0]![0]!]],
      [2, PROMPTS[2]!],
      [1, [tokens[1]![0]!]],
    ]);
    for (let s = 0; s < STEPS; s++) {
      const items: Array<[number, number[]]> = [];
      for (let i = 0; i < 3; i++) {
        const k = i === 2 ? s : s + 1; // sequence 2 started one call later
        if (k < STEPS) items.push([i, [tokens[i]![k]!]]);
      }
      if (items.length) step(items);
    }
    for (let i = 0; i < 3; i++) {
      assert.equal(got[i]!.length, solo[i]!.length, `sequence ${i}: calls`);
      for (let r = 0; r < solo[i]!.length; r++) sameBits(got[i]![r]!, solo[i]![r]!, `${type} sequence ${i} call ${r}`);
    }
  });
}

// Threads split rows (matmul) and keys (attention) differently with their number; the results may not change.
test('native backend: 1 and 3 threads give the same logits bit for bit (Q4_K tiny Llama 4, prefill + decode)', async (t) => {
  const file = sharedPath('gguf', 'llama4-tiny-g1-Q4_K.gguf');
  if (!file) return t.skip('../shared/gguf missing');
  const probe = tryCreateNativeBackend({ threads: 1 });
  if (!probe.backend) return t.skip(`native backend unavailable: ${probe.reason}`);
  probe.backend.dispose();
  const runs: Float32Array[][] = [];
  for (const threads of [1, 3]) {
    const { model } = await loadModel(file, { backend: 'native', threads });
    const seq = model.newSequence();
    const rows = [model.forward([{ seq, tokens: PROMPTS[2]!, logits: 'all' }])[0]!.slice()];
    for (let s = 0; s < 3; s++) rows.push(model.forward([{ seq, tokens: [PROMPTS[1]![s + 1]!], logits: 'all' }])[0]!.slice());
    runs.push(rows);
  }
  runs[0]!.forEach((r, i) => sameBits(runs[1]![i]!, r, `call ${i}`));
});
