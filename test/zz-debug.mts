import OpenAI from 'openai';
import Anthropic from '@anthropic-ai/sdk';
import { startServer } from '../src/server/app.ts';
import { loadGuard } from '../src/guard/index.ts';
import { fakeEngine } from './server-fixtures.ts';
import { writeControlledGuard } from './helpers/guard-model.ts';
await writeControlledGuard('/tmp/safe-dbg.gguf', { safe: 8, unsafe: 5, S: 5 });
await writeControlledGuard('/tmp/unsafe-dbg.gguf', { unsafe: 8, safe: 6, S: 9, '1': 7, '0': 6.5, '<|eot|>': 7.5 });
const g = await loadGuard('/tmp/safe-dbg.gguf');
const u = await loadGuard('/tmp/unsafe-dbg.gguf');
const skipFirst = process.argv[2] === 'skip';
if (!skipFirst) {
  const srv = await startServer(fakeEngine(), { port: 0, log: () => {}, guard: { guard: u, modelId: 'x', screenOutput: true } });
  const c = new OpenAI({ baseURL: `${srv.url}/v1`, apiKey: 'none', maxRetries: 0 });
  try { await c.chat.completions.create({ model: 'fake-llama4', messages: [{ role: 'user', content: 'hi there' }], temperature: 0 }); } catch (e) { console.log('refused', (e as Error).message.slice(0, 40)); }
  const a = new Anthropic({ baseURL: srv.url, apiKey: 'none', maxRetries: 0 });
  try { await a.messages.create({ model: 'fake-llama4', max_tokens: 50, messages: [{ role: 'user', content: 'hi there' }] }); } catch (e) { console.log('refused', (e as Error).message.slice(0, 40)); }
  await srv.close();
}
const srv = await startServer(fakeEngine(), { port: 0, log: () => {}, guard: { guard: g, modelId: 'x', screenInput: true, screenOutput: true } });
const c = new OpenAI({ baseURL: `${srv.url}/v1`, apiKey: 'none', maxRetries: 0 });
const r = await c.chat.completions.create({ model: 'fake-llama4', messages: [{ role: 'user', content: 'hi there' }], temperature: 0 });
console.log(r.choices[0]!.message.content);
await srv.close();
