import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { CausalLM, ForwardItem, SequenceState } from '../model/types.ts';
import { generate, generateAll, prefill } from './generate.ts';

/** A fake model whose next token is always (last token + 1) mod V; it records the forward calls. */
function fakeModel(V = 10) {
  const calls: number[][] = [];
  class Seq implements SequenceState {
    tokens: number[] = [];
    get length() {
      return this.tokens.length;
    }
    truncate(n: number) {
      this.tokens.length = n;
      return true;
    }
    clone() {
      const s = new Seq();
      s.tokens = [...this.tokens];
      return s;
    }
    cacheBytes() {
      return 0;
    }
  }
  const model: CausalLM = {
    info: { architecture: 'fake', vocabSize: V, hiddenSize: 2, contextLength: 64, bosTokenId: null, eosTokenIds: [9], imageTokenId: 7 },
    newSequence: () => new Seq(),
    forward(items: readonly ForwardItem[]) {
      return items.map((it) => {
        const s = it.seq as Seq;
        calls.push(Array.from(it.tokens));
        s.tokens.push(...Array.from(it.tokens));
        const rows = it.logits === 'none' ? 0 : it.logits === 'all' ? it.tokens.length : 1;
        const out = new Float32Array(rows * V);
        for (let r = 0; r < rows; r++) out[r * V + ((s.tokens[s.tokens.length - rows + r]! + 1) % V)] = 5;
        return out;
      });
    },
  };
  return { model, calls };
}

test('greedy generation streams tokens and stops at an eos id', async () => {
  const { model } = fakeModel();
  const steps = [];
  for await (const s of generate(model, [3], { maxTokens: 20, sampler: { temperature: 0 } })) steps.push(s);
  assert.deepEqual(
    steps.map((s) => s.token),
    [4, 5, 6, 7, 8, 9],
  );
  assert.equal(steps.at(-1)!.isStop, true);
  const all = await generateAll(model, [3], { maxTokens: 20, sampler: { temperature: 0 } });
  assert.deepEqual(all, { tokens: [4, 5, 6, 7, 8], finishReason: 'stop' });
});

test('maxTokens ends with "length"; empty stop list runs past eos', async () => {
  const { model } = fakeModel();
  assert.deepEqual(await generateAll(model, [3], { maxTokens: 3, sampler: { temperature: 0 } }), {
    tokens: [4, 5, 6],
    finishReason: 'length',
  });
  const r = await generateAll(model, [7], { maxTokens: 4, sampler: { temperature: 0 }, stopTokens: [] });
  assert.deepEqual(r.tokens, [8, 9, 0, 1]);
});

test('an AbortSignal stops generation between tokens', async () => {
  const { model } = fakeModel();
  const ac = new AbortController();
  const got: number[] = [];
  const it = generate(model, [0], { maxTokens: 50, sampler: { temperature: 0 }, stopTokens: [], signal: ac.signal });
  for (;;) {
    const r = await it.next();
    if (r.done) {
      assert.equal(r.value, 'cancelled');
      break;
    }
    got.push(r.value.token);
    if (got.length === 3) ac.abort();
  }
  assert.deepEqual(got, [1, 2, 3]);
});

test('prefill runs long prompts in bounded pieces and splits image features by <|patch|> count', async () => {
  const { model, calls } = fakeModel();
  const seq = model.newSequence();
  const prompt = [1, 7, 7, 2, 3, 7, 4, 5];
  const feats = Float32Array.from([1, 1, 2, 2, 3, 3]); // 3 patch rows of hidden 2
  await prefill(model, seq, prompt, 3, feats);
  assert.deepEqual(calls, [
    [1, 7, 7],
    [2, 3, 7],
    [4, 5],
  ]);
  assert.equal(seq.length, 8);
  await assert.rejects(prefill(model, model.newSequence(), [7, 1], 3, feats), /<\|patch\|> tokens/);
});

test('continuing a sequence prefills only the new tokens', async () => {
  const { model, calls } = fakeModel();
  const seq = model.newSequence();
  await generateAll(model, [1, 2], { maxTokens: 1, sampler: { temperature: 0 }, seq });
  calls.length = 0;
  await generateAll(model, [1, 2, 5], { maxTokens: 1, sampler: { temperature: 0 }, seq });
  assert.deepEqual(calls[0], [5]);
});
