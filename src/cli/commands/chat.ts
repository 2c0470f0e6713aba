import { parseArgs } from 'node:util';
import { createInterface } from 'node:readline';
import type { Command } from '../command.ts';
import { DEFAULT_MODEL_DIR, loadChatAssets, loadModel } from '../../load.ts';
import type { ChatMessage } from '../../chat/index.ts';
import { Llama4Error } from '../../util/index.ts';
import { MODEL_OPTIONS, MODEL_USAGE, SAMPLER_OPTIONS, SAMPLER_USAGE, loadOptions, parseNumber, samplerOptions } from '../options.ts';
import { assistantTurn, newChatContext } from '../chat-turn.ts';

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
    const ctx = newChatContext(loaded, loadChatAssets(loaded, values.tokenizer));
    const sampler = { ...loaded.samplingDefaults, ...samplerOptions(values, loaded.samplingDefaults.temperature ?? 0.6) };
    const system: ChatMessage[] = values.system !== undefined ? [{ role: 'system', content: values.system }] : [];
    let history: ChatMessage[] = [];
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
        history = [];
        ctx.seq = null;
        ctx.cached = [];
        process.stdout.write('(conversation cleared)\n');
        rl.prompt();
        continue;
      }
      if (!text) { rl.prompt(); continue; }
      history.push({ role: 'user', content: text });
      answering = new AbortController();
      let answer = '';
      try {
        const turn = assistantTurn(ctx, [...system, ...history], { maxTokens, sampler, signal: answering.signal });
        for (;;) {
          const r = await turn.next();
          if (r.done) { if (r.value.finishReason === 'abort') process.stdout.write(' [stopped]'); break; }
          answer += r.value;
          process.stdout.write(r.value);
        }
        history.push({ role: 'assistant', content: answer });
      } catch (e) {
        if (!(e instanceof Llama4Error)) throw e;
        history.pop();
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
