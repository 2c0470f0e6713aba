import { parseArgs } from 'node:util';
import { createInterface } from 'node:readline';
import type { Command } from '../command.ts';
import { DEFAULT_MODEL_DIR, loadModel } from '../../load.ts';
import { ChatSession } from '../../engine/index.ts';
import { Llama4Error } from '../../util/index.ts';
import { MODEL_OPTIONS, MODEL_USAGE, SAMPLER_OPTIONS, SAMPLER_USAGE, loadOptions, parseNumber, samplerOptions } from '../options.ts';

export const chatCommand: Command = {
  name: 'chat',
  summary: 'interactive chat in the terminal (streaming, history, /reset)',
  usage: `usage: llama4 chat [-m MODEL] [--system TEXT] [-n N] [sampling options]
Type a message and press Enter. Commands: /reset forgets the conversation, /exit (or Ctrl-D) leaves.
Ctrl-C stops the answer being written without leaving; Ctrl-C at an empty prompt leaves.
  --system TEXT          system message for the whole conversation
  --tokenizer PATH       tokenizer file or folder when it is not beside the weights
  -n, --max-tokens N     per-answer length limit (default 512)
${SAMPLER_USAGE}
${MODEL_USAGE}`,
  async run(argv) {
    const { values } = parseArgs({
      args: argv,
      options: { ...MODEL_OPTIONS, ...SAMPLER_OPTIONS, system: { type: 'string' }, tokenizer: { type: 'string' }, 'max-tokens': { type: 'string', short: 'n' } },
      strict: true,
    });
    const maxTokens = parseNumber('max-tokens', values['max-tokens'], { int: true, min: 1 }) ?? 512;
    const loaded = await loadModel(values.model ?? DEFAULT_MODEL_DIR, loadOptions(values));
    const sampler = { ...loaded.samplingDefaults, ...samplerOptions(values, loaded.samplingDefaults.temperature ?? 0.6) };
    // The conversation is a ChatSession on the chat engine (one slot): history, and the KV cache reused across turns.
    const engine = loaded.createChatEngine({ parallel: 1, stepTokens: 512, ...(values.tokenizer !== undefined ? { tokenizerPath: values.tokenizer } : {}) });
    const chat = new ChatSession(engine, { ...(values.system !== undefined ? { system: values.system } : {}), maxTokens, sampling: sampler });
    const rl = createInterface({ input: process.stdin, output: process.stdout, prompt: '> ', terminal: process.stdin.isTTY ?? false });
    let answering: AbortController | null = null;
    rl.on('SIGINT', () => {
      if (answering) answering.abort();
      else rl.close();
    });
    process.stdout.write(`llama4 chat — ${loaded.path} (${loaded.backend.name}). /reset, /exit, Ctrl-C stops an answer.\n`);
    rl.prompt();
    for await (const line of rl) {
      const text = line.trim();
      if (text === '/exit' || text === '/quit') break;
      if (text === '/reset') {
        chat.reset();
        process.stdout.write('(conversation cleared)\n');
        rl.prompt();
        continue;
      }
      if (!text) { rl.prompt(); continue; }
      answering = new AbortController();
      try {
        const reply = await chat.send(text, { signal: answering.signal, onText: (piece) => process.stdout.write(piece) });
        if (reply.finishReason === 'cancelled') process.stdout.write(' [stopped]');
      } catch (e) {
        if (!(e instanceof Llama4Error)) throw e;
        process.stdout.write(`error: ${e.message}`);
      } finally {
        answering = null;
      }
      process.stdout.write('\n');
      rl.prompt();
    }
    rl.close();
    return 0;
  },
};
