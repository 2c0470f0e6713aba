/**
 * Image moderation end to end on a real vision path: the e_multimodal golden checkpoint (vision tower, projector,
 * early fusion; its weights are random, so its verdicts mean nothing, but their arithmetic must hold) used as a guard.
 * guard.check() with an image must equal the verdict computed here by hand — the built-in prompt with `<|image|>`
 * in the user turn, expanded by the image encoder, then teacher-forced P(safe) / P(unsafe) on fresh sequences — the
 * image must change it, S14 must be left out, and /v1/moderations with an image_url part through the `openai`
 * client must return the same scores.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import OpenAI from 'openai';
import { loadModel } from '../src/load.ts';
import { Guard, renderGuardPrompt, LLAMA_GUARD_4_CATEGORIES, type GuardMessage } from '../src/guard/index.ts';
import { imagePromptEncoder, imageTokenIdsFor } from '../src/model/llama4/vision-prompt.ts';
import { startServer, type RunningServer } from '../src/server/app.ts';
import { fakeEngine } from './server-fixtures.ts';
import { sharedPath } from './helpers/shared.ts';
import { tinyVisionTokenizer } from './helpers/tiny-vision-tokenizer.ts';

const dir = sharedPath('golden', 'e_multimodal');
const png = sharedPath('images', 'synthetic_50x50.png');
const jpg = sharedPath('images', 'real_joy_sddm-preview.jpg');

function logSoftmaxAt(row: Float32Array, id: number): number {
  let m = -Infinity;
  for (const x of row) m = Math.max(m, x);
  let z = 0;
  for (const x of row) z += Math.exp(x - m);
  return row[id]! - m - Math.log(z);
}

describe('image moderation on a real vision model (e_multimodal as a guard)', {
  skip: dir && png && jpg ? false : 'SKIPPED LOUDLY: ../shared/golden/e_multimodal or ../shared/images missing',
}, () => {
  let loaded: Awaited<ReturnType<typeof loadModel>>;
  let guard: Guard;
  let images: ReturnType<typeof imagePromptEncoder>;
  let srv: RunningServer;
  const tokenizer = tinyVisionTokenizer();
  before(async () => {
    loaded = await loadModel(dir!, { backend: 'typescript' });
    images = imagePromptEncoder(loaded.vision!, { ids: imageTokenIdsFor(loaded.vision!.cfg, { image: 251, tileX: 252, tileY: 253 }) });
    guard = new Guard({ model: loaded.model, images }, tokenizer, null);
    srv = await startServer(fakeEngine(), { port: 0, log: () => undefined, guard: { guard, modelId: 'e-guard' } });
  });
  after(async () => {
    await srv?.close();
  });

  const withImage = (bytes: Uint8Array): GuardMessage[] => [
    {
      role: 'user',
      content: [
        { type: 'image', image: bytes },
        { type: 'text', text: 'Is this safe?' },
      ],
    },
  ];

  test('guard.check with an image equals the verdict computed by hand; the image matters; S14 is left out', async () => {
    const bytes = new Uint8Array(readFileSync(png!));
    const v = await guard.check(withImage(bytes));
    // By hand: the built-in prompt, its one <|image|> expanded by the encoder, then each label teacher-forced.
    const prompt = renderGuardPrompt(withImage(bytes));
    assert.match(prompt, /User: <\|image\|>Is this safe\?\n\n<END CONVERSATION>/);
    assert.doesNotMatch(prompt, /S14/);
    const enc = await images(tokenizer.encode(prompt, { allowSpecial: true }), [bytes]);
    assert.ok(enc.tokens.filter((t) => t === 250).length > 0, 'the image became <|patch|> tokens');
    assert.equal(v.promptTokens, enc.tokens.length);
    const label = async (text: string) => {
      const ids = tokenizer.encode(text);
      const seq = loaded.model.newSequence();
      const [rows] = await loaded.model.forward([
        { seq, tokens: [...enc.tokens, ...ids.slice(0, -1)], logits: 'all', patchEmbeddings: enc.patchEmbeddings },
      ]);
      const V = loaded.model.info.vocabSize;
      const first = enc.tokens.length - 1;
      return ids.reduce((s, t, i) => s + logSoftmaxAt(rows!.subarray((first + i) * V, (first + i + 1) * V), t), 0);
    };
    const [ls, lu] = [await label('safe'), await label('unsafe')];
    const pUnsafe = 1 / (1 + Math.exp(ls - lu));
    assert.ok(Math.abs(v.unsafeProbability - pUnsafe) < 1e-4, `pUnsafe ${v.unsafeProbability} vs ${pUnsafe} by hand`);
    assert.deepEqual(
      Object.keys(v.scores).sort(),
      LLAMA_GUARD_4_CATEGORIES.slice(0, 13)
        .map((c) => c.code)
        .sort(),
    );
    const other = await guard.check(withImage(new Uint8Array(readFileSync(jpg!))));
    assert.notEqual(other.unsafeProbability, v.unsafeProbability, 'another image gives another probability');
  });

  test('/v1/moderations with an image_url part (openai client) returns the same scores as guard.check', async () => {
    const bytes = new Uint8Array(readFileSync(png!));
    const direct = await guard.check(withImage(bytes));
    const openai = new OpenAI({ baseURL: `${srv.url}/v1`, apiKey: 'none', maxRetries: 0 });
    const r = await openai.moderations.create({
      model: 'e-guard',
      input: [
        { type: 'image_url', image_url: { url: `data:image/png;base64,${Buffer.from(bytes).toString('base64')}` } },
        { type: 'text', text: 'Is this safe?' },
      ],
    });
    const res = r.results[0]!;
    assert.equal(res.flagged, !direct.safe);
    const scores = res.category_scores as unknown as Record<string, number>;
    for (const c of LLAMA_GUARD_4_CATEGORIES.slice(0, 13))
      assert.ok(Math.abs(scores[c.name]! - direct.scores[c.code]!) < 1e-6, `${c.name}: ${scores[c.name]} vs ${direct.scores[c.code]}`);
    const applied = res.category_applied_input_types as unknown as Record<string, string[]>;
    assert.deepEqual([...applied[LLAMA_GUARD_4_CATEGORIES[0]!.name]!].sort(), ['image', 'text']);
  });
});
