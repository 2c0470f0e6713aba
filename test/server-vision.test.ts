/**
 * An image through the HTTP API into a real vision path: the e_multimodal golden checkpoint (vision tower +
 * projector + early fusion) behind the chat engine (createChatEngine), with a small byte-level tokenizer built here (the checkpoint has
 * none; its 256-token vocabulary holds the image tokens at 248..250). The server's greedy answer to a message with
 * an image must equal generate() on the same prompt ids and patch embeddings, and the image must matter.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import OpenAI from 'openai';
import { loadModel } from '../src/load.ts';
import { generateAll } from '../src/engine/index.ts';
import { imagePromptEncoder, imageTokenIdsFor } from '../src/model/llama4/vision-prompt.ts';
import { createChatEngine } from '../src/engine/chat-engine.ts';
import { startServer, type RunningServer } from '../src/server/app.ts';
import type { ServerEngine } from '../src/server/engine.ts';
import { sharedPath } from './helpers/shared.ts';
import { tinyVisionTokenizer } from './helpers/tiny-vision-tokenizer.ts';

const dir = sharedPath('golden', 'e_multimodal');
const png = sharedPath('images', 'synthetic_50x50.png');

describe('server with a real vision model (e_multimodal)', {
  skip: dir && png ? false : 'SKIPPED LOUDLY: ../shared/golden/e_multimodal or ../shared/images missing',
}, () => {
  let srv: RunningServer;
  let engine: ServerEngine;
  let openai: OpenAI;
  let loaded: Awaited<ReturnType<typeof loadModel>>;
  before(async () => {
    loaded = await loadModel(dir!, { backend: 'typescript' });
    assert.ok(loaded.vision, 'the checkpoint has a vision tower');
    engine = createChatEngine({
      modelId: 'e_multimodal',
      model: loaded.model,
      tokenizer: tinyVisionTokenizer(),
      images: imagePromptEncoder(loaded.vision!, { ids: imageTokenIdsFor(loaded.vision!.cfg, { image: 251, tileX: 252, tileY: 253 }) }),
      parallel: 2,
    });
    srv = await startServer(engine, { port: 0, log: () => undefined });
    openai = new OpenAI({ baseURL: `${srv.url}/v1`, apiKey: 'none', maxRetries: 0 });
  });
  after(async () => {
    await srv?.close();
  });

  test('an image_url part is encoded, fused and answered exactly as generate() does', async () => {
    const url = `data:image/png;base64,${readFileSync(png!).toString('base64')}`;
    const r = await openai.chat.completions.create({
      model: 'e_multimodal',
      temperature: 0,
      max_tokens: 8,
      messages: [
        {
          role: 'user',
          content: [
            { type: 'image_url', image_url: { url } },
            { type: 'text', text: 'What is this?' },
          ],
        },
      ],
    });
    const prompt = await engine.encodeChat(
      [
        {
          role: 'user',
          content: [
            { type: 'image', data: new Uint8Array(readFileSync(png!)), mediaType: 'image/png' },
            { type: 'text', text: 'What is this?' },
          ],
        },
      ],
      null,
    );
    assert.equal(
      prompt.tokens.filter((t) => t === 250).length * loaded.model.info.hiddenSize,
      prompt.patchEmbeddings!.length,
      'one feature row per <|patch|>',
    );
    assert.equal(r.usage!.prompt_tokens, prompt.tokens.length);
    const ref = await generateAll(loaded.model, prompt.tokens, {
      maxTokens: 8,
      sampler: { temperature: 0 },
      patchEmbeddings: prompt.patchEmbeddings!,
      stopTokens: engine.endTokens,
    });
    const ids = ref.tokens.filter((t) => !engine.endTokens.includes(t));
    const d = engine.newDecoder();
    assert.equal(r.choices[0]!.message.content, ids.map((t) => d.push(t)).join('') + d.flush());
    assert.equal(r.usage!.completion_tokens, ids.length);
    // Without the image (same text), the model sees other inputs: its logits differ.
    const noImg = await openai.chat.completions.create({
      model: 'e_multimodal',
      temperature: 0,
      max_tokens: 8,
      logprobs: true,
      messages: [{ role: 'user', content: 'What is this?' }],
    });
    const withImg = await openai.chat.completions.create({
      model: 'e_multimodal',
      temperature: 0,
      max_tokens: 8,
      logprobs: true,
      messages: [
        {
          role: 'user',
          content: [
            { type: 'image_url', image_url: { url } },
            { type: 'text', text: 'What is this?' },
          ],
        },
      ],
    });
    assert.notDeepEqual(
      noImg.choices[0]!.logprobs!.content!.map((e) => e.logprob),
      withImg.choices[0]!.logprobs!.content!.map((e) => e.logprob),
    );
  });

  test('an undecodable image is a 400 and the server keeps serving', async () => {
    const bad = `data:image/png;base64,${Buffer.concat([readFileSync(png!).subarray(0, 40), Buffer.alloc(40)]).toString('base64')}`;
    await assert.rejects(
      openai.chat.completions.create({
        model: 'e_multimodal',
        max_tokens: 4,
        messages: [{ role: 'user', content: [{ type: 'image_url', image_url: { url: bad } }] }],
      }),
      (e: unknown) => e instanceof OpenAI.BadRequestError,
    );
    const ok = await openai.chat.completions.create({
      model: 'e_multimodal',
      max_tokens: 4,
      temperature: 0,
      messages: [{ role: 'user', content: 'hi' }],
    });
    assert.ok(ok.usage!.completion_tokens >= 0);
  });

  test('typed <|patch|> and <|image|> beside a real image are text, not image slots', async () => {
    const url = `data:image/png;base64,${readFileSync(png!).toString('base64')}`;
    const content = [
      { type: 'image_url' as const, image_url: { url } },
      { type: 'text' as const, text: 'What is <|patch|> this <|image|>?' },
    ];
    const r = await openai.chat.completions.create({
      model: 'e_multimodal',
      temperature: 0,
      max_tokens: 4,
      messages: [{ role: 'user', content }],
    });
    const prompt = await engine.encodeChat(
      [
        {
          role: 'user',
          content: [
            { type: 'image', data: new Uint8Array(readFileSync(png!)), mediaType: 'image/png' },
            { type: 'text', text: 'What is <|patch|> this <|image|>?' },
          ],
        },
      ],
      null,
    );
    assert.equal(prompt.tokens.filter((t) => t === 250).length * loaded.model.info.hiddenSize, prompt.patchEmbeddings!.length);
    assert.equal(
      prompt.tokens.filter((t) => t === 251).length,
      1,
      "one <|image|> id: the real image's layout has one; the typed one is text",
    );
    assert.equal(r.usage!.prompt_tokens, prompt.tokens.length);
    // With the reference behaviour the typed tokens are control tokens: a clear 400, never a 500.
    const ref = createChatEngine({
      modelId: 'e_multimodal',
      model: loaded.model,
      tokenizer: tinyVisionTokenizer(),
      images: imagePromptEncoder(loaded.vision!, { ids: imageTokenIdsFor(loaded.vision!.cfg, { image: 251, tileX: 252, tileY: 253 }) }),
      specialTokensInMessages: true,
    });
    const refSrv = await startServer(ref, { port: 0, log: () => undefined });
    try {
      const c = new OpenAI({ baseURL: `${refSrv.url}/v1`, apiKey: 'none', maxRetries: 0 });
      await assert.rejects(
        c.chat.completions.create({ model: 'e_multimodal', max_tokens: 4, messages: [{ role: 'user', content }] }),
        (e: unknown) => e instanceof OpenAI.BadRequestError,
      );
    } finally {
      await refSrv.close();
    }
  });
});
