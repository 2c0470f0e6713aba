/**
 * The clients people point at a local server, against `llama4 serve`'s engine with the real embedded default model
 * (models/default, in its worker thread): the Vercel AI SDK's default OpenAI provider (the Responses API:
 * generateText, streamText, a tool call, generateObject), the `openai` client (responses.create streaming and not,
 * embeddings.create), the `ollama` client (list, chat streaming and not, generate, embed), LangChain's ChatOpenAI
 * with tools, @anthropic-ai/sdk's countTokens. Also, on the real model: embeddings equal the mean-pooled final-norm
 * hidden states computed in-thread; JSON modes fit small objects into a 40-token budget; declared tools only.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import OpenAI from 'openai';
import Anthropic from '@anthropic-ai/sdk';
import { Ollama } from 'ollama';
import { createOpenAI } from '@ai-sdk/openai';
import { embed, generateObject, generateText, jsonSchema, streamText, tool } from 'ai';
import { ChatOpenAI } from '@langchain/openai';
import { DEFAULT_MODEL_DIR, loadModel } from '../src/load.ts';
import { startServer, type RunningServer } from '../src/server/app.ts';
import { loadServerEngine } from '../src/server/load-engine.ts';
import type { ServerEngine } from '../src/server/engine.ts';
import { meanPoolNormalized } from '../src/server/embeddings.ts';
import { spawn } from 'node:child_process';
import { join } from 'node:path';
import { PROJECT_ROOT } from './helpers/shared.ts';

const KEY = 'sk-clients';

describe('client libraries against the server with the default model', () => {
  let engine: ServerEngine;
  let srv: RunningServer;
  let openai: OpenAI;
  before(async () => {
    engine = await loadServerEngine(DEFAULT_MODEL_DIR, { parallel: 4 });
    srv = await startServer(engine, { port: 0, apiKey: KEY, log: () => undefined });
    openai = new OpenAI({ baseURL: `${srv.url}/v1`, apiKey: KEY, maxRetries: 0, timeout: 60_000 });
  });
  after(() => srv.close());
  const aiOpenai = () => createOpenAI({ baseURL: `${srv.url}/v1`, apiKey: KEY });

  test('AI SDK (Responses API): generateText and streamText', async () => {
    const model = aiOpenai()('gpt-4o-mini');
    const g = await generateText({ model, prompt: 'What is 7 plus 5?', temperature: 0, maxOutputTokens: 30, maxRetries: 0 });
    assert.ok(g.text.length > 0, 'some text');
    assert.equal(g.finishReason, 'stop');
    assert.ok((g.usage.inputTokens ?? 0) > 5 && (g.usage.outputTokens ?? 0) > 0, JSON.stringify(g.usage));
    // The same request streamed gives the same greedy text.
    const s = streamText({ model, prompt: 'What is 7 plus 5?', temperature: 0, maxOutputTokens: 30, maxRetries: 0 });
    let streamed = '';
    for await (const t of s.textStream) streamed += t;
    assert.equal(streamed, g.text);
    assert.equal(await s.finishReason, 'stop');
  });

  test('AI SDK: a tool call (and its result sent back) and generateObject', async () => {
    const model = aiOpenai()('gpt-4o-mini');
    const weather = tool({
      description: 'Get the weather in a city',
      inputSchema: jsonSchema<{ city: string }>({
        type: 'object',
        properties: { city: { type: 'string', maxLength: 20 } },
        required: ['city'],
        additionalProperties: false,
      }),
    });
    const r = await generateText({
      model,
      prompt: 'What is the weather in Paris?',
      tools: { get_weather: weather },
      toolChoice: 'required',
      temperature: 0,
      maxOutputTokens: 60,
      maxRetries: 0,
    });
    assert.equal(r.toolCalls.length, 1, JSON.stringify(r.content));
    assert.equal(r.toolCalls[0]!.toolName, 'get_weather');
    assert.equal(typeof (r.toolCalls[0]!.input as { city: unknown }).city, 'string');
    // Streamed, the call arrives through the function_call events.
    const st = streamText({
      model,
      prompt: 'What is the weather in Paris?',
      tools: { get_weather: weather },
      toolChoice: 'required',
      temperature: 0,
      maxOutputTokens: 60,
      maxRetries: 0,
    });
    const streamedCalls = await st.toolCalls;
    assert.deepEqual(
      streamedCalls.map((c) => [c.toolName, c.input]),
      r.toolCalls.map((c) => [c.toolName, c.input]),
    );
    // A tool with execute: the SDK runs it and sends the result back (function_call_output + item_reference).
    const calls: unknown[] = [];
    const withExec = tool({
      ...weather,
      execute: async (input: { city: string }) => {
        calls.push(input);
        return 'sunny';
      },
    });
    const two = await generateText({
      model,
      prompt: 'Weather in Paris?',
      tools: { get_weather: withExec },
      toolChoice: 'required',
      temperature: 0,
      maxOutputTokens: 40,
      maxRetries: 0,
      stopWhen: ({ steps }) => steps.length >= 2,
      prepareStep: ({ stepNumber }) => (stepNumber > 0 ? { toolChoice: 'none' } : {}),
    });
    assert.equal(calls.length, 1);
    assert.equal(two.steps.length, 2);
    assert.ok(two.steps[1]!.request.body, 'the second step went to the server');
    const obj = await generateObject({
      model,
      schema: jsonSchema<{ answer: number; ok: boolean }>({
        type: 'object',
        properties: { answer: { type: 'integer' }, ok: { type: 'boolean' } },
        required: ['answer', 'ok'],
        additionalProperties: false,
      }),
      prompt: 'What is 7 plus 5? Answer in JSON.',
      temperature: 0,
      maxOutputTokens: 40,
      maxRetries: 0,
    });
    assert.equal(typeof obj.object.answer, 'number');
    assert.equal(typeof obj.object.ok, 'boolean');
  });

  test('openai client: responses.create streaming and not, previous_response_id; embeddings.create', async () => {
    const r = await openai.responses.create({ model: 'default', input: 'What is 2 plus 3?', temperature: 0, max_output_tokens: 30 });
    assert.equal(r.status, 'completed');
    assert.ok(r.output_text.length > 0);
    const stream = await openai.responses.create({
      model: 'default',
      input: 'What is 2 plus 3?',
      temperature: 0,
      max_output_tokens: 30,
      stream: true,
    });
    let text = '';
    let final: OpenAI.Responses.Response | null = null;
    for await (const ev of stream) {
      if (ev.type === 'response.output_text.delta') text += ev.delta;
      if (ev.type === 'response.completed') final = ev.response;
    }
    assert.equal(text, r.output_text, 'streamed deltas equal the non-streamed text');
    assert.equal(final?.usage?.output_tokens, r.usage?.output_tokens);
    const next = await openai.responses.create({
      model: 'default',
      previous_response_id: r.id,
      input: 'And 4 plus 4?',
      temperature: 0,
      max_output_tokens: 20,
    });
    assert.ok(next.usage!.input_tokens > r.usage!.input_tokens + r.usage!.output_tokens, 'the earlier turn is in the prompt');
    // Embeddings: unit vectors of the hidden size, equal to the mean-pooled final-norm states computed in-thread.
    const e = await openai.embeddings.create({ model: 'text-embedding-3-small', input: ['The cat sat.', 'Seven plus five is twelve.'] });
    const H = engine.scheduler.model.info.hiddenSize;
    assert.equal(e.data.length, 2);
    assert.equal(e.data[0]!.embedding.length, H);
    const loaded = await loadModel(DEFAULT_MODEL_DIR);
    const ids = engine.encodeText('The cat sat.');
    const [hidden] = loaded.model.forward([{ seq: loaded.model.newSequence(), tokens: ids, logits: 'hidden' }]);
    const want = meanPoolNormalized(hidden!, ids.length, H);
    let worst = 0;
    for (let j = 0; j < H; j++) worst = Math.max(worst, Math.abs(want[j]! - e.data[0]!.embedding[j]!));
    assert.ok(worst < 1e-6, `worker embedding vs in-thread mean pool: max |Δ| = ${worst}`);
    assert.ok(Math.abs(Math.hypot(...e.data[1]!.embedding) - 1) < 1e-5);
    // The AI SDK's embedding model reads the same endpoint.
    const viaSdk = await embed({ model: aiOpenai().embedding('text-embedding-3-small'), value: 'The cat sat.', maxRetries: 0 });
    assert.deepEqual(viaSdk.embedding, e.data[0]!.embedding);
  });

  test('ollama client: list, chat streaming and not, generate, embed', async () => {
    const ollama = new Ollama({ host: srv.url, headers: { authorization: `Bearer ${KEY}` } });
    const list = await ollama.list();
    assert.equal(list.models.length, 1);
    const name = list.models[0]!.name;
    const c = await ollama.chat({
      model: name,
      messages: [{ role: 'user', content: 'What is 3 plus 4?' }],
      options: { temperature: 0, num_predict: 20 },
      stream: false,
    });
    assert.ok(c.message.content.length > 0 && c.done);
    let streamed = '';
    for await (const part of await ollama.chat({
      model: name,
      messages: [{ role: 'user', content: 'What is 3 plus 4?' }],
      options: { temperature: 0, num_predict: 20 },
      stream: true,
    }))
      streamed += part.message.content;
    assert.equal(streamed, c.message.content);
    const g = await ollama.generate({
      model: name,
      prompt: 'What is 3 plus 4?',
      options: { temperature: 0, num_predict: 20 },
      stream: false,
    });
    assert.equal(g.response, c.message.content, 'generate applies the chat template as chat does');
    const e = await ollama.embed({ model: name, input: ['one', 'two'] });
    assert.equal(e.embeddings.length, 2);
    assert.equal(e.embeddings[0]!.length, engine.scheduler.model.info.hiddenSize);
  });

  test('LangChain ChatOpenAI with tools; Anthropic countTokens', async () => {
    const llm = new ChatOpenAI({
      model: 'gpt-4o-mini',
      apiKey: KEY,
      configuration: { baseURL: `${srv.url}/v1` },
      temperature: 0,
      maxTokens: 60,
      maxRetries: 0,
    });
    const withTools = llm.bindTools(
      [
        {
          type: 'function',
          function: {
            name: 'get_weather',
            description: 'Weather in a city',
            parameters: {
              type: 'object',
              properties: { city: { type: 'string', maxLength: 20 } },
              required: ['city'],
              additionalProperties: false,
            },
          },
        },
      ],
      { tool_choice: 'required' },
    );
    const msg = await withTools.invoke('What is the weather in Paris?');
    assert.equal(msg.tool_calls?.length, 1, JSON.stringify(msg));
    assert.equal(msg.tool_calls![0]!.name, 'get_weather');
    assert.equal(typeof msg.tool_calls![0]!.args.city, 'string');
    const plain = await llm.invoke('What is 2 plus 2?');
    assert.ok(typeof plain.content === 'string' && plain.content.length > 0);

    const anthropic = new Anthropic({ baseURL: srv.url, apiKey: KEY, maxRetries: 0 });
    const messages: Anthropic.MessageParam[] = [{ role: 'user', content: 'What is 6 plus 1?' }];
    const count = await anthropic.messages.countTokens({ model: 'claude-x', messages, system: 'Be brief.' });
    const real = await anthropic.messages.create({ model: 'claude-x', max_tokens: 5, messages, system: 'Be brief.' });
    assert.equal(count.input_tokens, real.usage.input_tokens);
  });

  test('JSON modes fit a small object in a 40-token budget (20 sampled requests); tool calls name declared tools only', async () => {
    const schema = {
      type: 'object',
      properties: { answer: { type: 'integer' }, sure: { type: 'boolean' } },
      required: ['answer', 'sure'],
      additionalProperties: false,
    };
    const runs = await Promise.all(
      Array.from({ length: 20 }, (_, seed) =>
        openai.chat.completions.create({
          model: 'm',
          messages: [{ role: 'user', content: 'What is 7 plus 5? Reply in JSON.' }],
          response_format: { type: 'json_schema', json_schema: { name: 'a', schema } },
          max_tokens: 40,
          temperature: 1,
          seed,
        }),
      ),
    );
    for (const r of runs) {
      const text = r.choices[0]!.message.content!;
      assert.equal(r.choices[0]!.finish_reason, 'stop', `cut off: ${JSON.stringify(text)}`);
      assert.ok(!/^\s/.test(text) && !/\s\s/.test(text), `whitespace runs: ${JSON.stringify(text)}`);
      const v = JSON.parse(text) as { answer: number; sure: boolean };
      assert.ok(Number.isInteger(v.answer) && typeof v.sure === 'boolean');
    }
    // Tool calls under auto: whatever the model writes, a call names a declared tool.
    const tools: OpenAI.ChatCompletionTool[] = [
      {
        type: 'function',
        function: {
          name: 'lookup_city',
          description: 'Look up a city',
          parameters: {
            type: 'object',
            properties: { name: { type: 'string', maxLength: 16 } },
            required: ['name'],
            additionalProperties: false,
          },
        },
      },
    ];
    const auto = await Promise.all(
      Array.from({ length: 8 }, (_, seed) =>
        openai.chat.completions.create({
          model: 'm',
          messages: [{ role: 'user', content: 'What is the population of Paris?' }],
          tools,
          tool_choice: 'auto',
          max_tokens: 60,
          temperature: 1,
          seed,
        }),
      ),
    );
    for (const r of auto)
      for (const c of r.choices[0]!.message.tool_calls ?? []) assert.equal(c.type === 'function' && c.function.name, 'lookup_city');
  });
});

test('llama4 serve --alias NAME --cors ORIGINS', async () => {
  const p = spawn(
    process.execPath,
    [
      '--import',
      'tsx',
      join(PROJECT_ROOT, 'src/cli/main.ts'),
      'serve',
      '--port',
      '0',
      '--no-worker',
      '--alias',
      'my-llama',
      '--cors',
      'https://app.example',
    ],
    { stdio: ['ignore', 'ignore', 'pipe'] },
  );
  let stderr = '';
  try {
    const url = await new Promise<string>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`serve did not start: ${stderr}`)), 60_000);
      p.stderr.on('data', (d: Buffer) => {
        stderr += d.toString();
        const m = /listening on (http:\/\/\S+)/.exec(stderr);
        if (m) {
          clearTimeout(timer);
          resolve(m[1]!);
        }
      });
      p.on('exit', (code) => reject(new Error(`serve exited (${code}): ${stderr}`)));
    });
    const models = (await (await fetch(`${url}/v1/models`)).json()) as { data: { id: string }[] };
    assert.deepEqual(
      models.data.map((m) => m.id),
      ['my-llama'],
    );
    const allowed = await fetch(`${url}/v1/models`, { headers: { origin: 'https://app.example' } });
    assert.equal(allowed.headers.get('access-control-allow-origin'), 'https://app.example');
    assert.equal(
      (await fetch(`${url}/v1/models`, { headers: { origin: 'http://localhost:3000' } })).status,
      403,
      '--cors replaced the loopback default',
    );
  } finally {
    await new Promise<void>((resolve) => {
      if (p.exitCode !== null) return resolve();
      p.on('exit', () => resolve());
      p.kill('SIGTERM');
    });
  }
});
