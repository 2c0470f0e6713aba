import { parseArgs } from '../args.ts';
import { createProgress } from '../progress.ts';
import { createInterface } from 'node:readline';
import type { Command } from '../command.ts';
import { DEFAULT_MODEL_DIR, loadChatAssets, loadModel } from '../../load.ts';
import type { ChatMessage } from '../../chat/index.ts';
import { Llama4Error } from '../../util/index.ts';
import { MODEL_OPTIONS, MODEL_USAGE, SAMPLER_OPTIONS, SAMPLER_USAGE, loadOptions, parseNumber, samplerOptions } from '../options.ts';
import { assistantTurn, newChatContext } from '../chat-turn.ts';
import { CHAT_COMMANDS_HELP, parseChatCommand } from '../chat-commands.ts';

export const chatCommand: Command = {
  name: 'chat',
  summary: 'interactive chat in the terminal (streaming, history, /reset)',
  usage: `usage: llama4 chat [-m MODEL] [--system TEXT] [-n N] [-c N] [sampling options]
Type a message and press Enter.
${CHAT_COMMANDS_HELP}
  --system TEXT          system message for the whole conversation
  --tokenizer PATH       tokenizer file or folder when it is not beside the weights
  -n, --max-tokens N     per-answer length limit (default 512; --n-predict is an alias)
  -c, --ctx N            context length: each prompt + answer (default: unlimited up to the model's; --ctx-size)
${SAMPLER_USAGE}
${MODEL_USAGE}`,
  async run(argv) {
    const { values } = parseArgs({
      args: argv,
      options: { ...MODEL_OPTIONS, ...SAMPLER_OPTIONS, system: { type: 'string' }, tokenizer: { type: 'string' }, 'max-tokens': { type: 'string', short: 'n' }, ctx: { type: 'string' } },
      strict: true,
    });
    const maxTokens = parseNumber('max-tokens', values['max-tokens'], { int: true, min: 1 }) ?? 512;
    const contextLength = parseNumber('ctx', values.ctx, { int: true, min: 2 });
    // A terminal sees a loading bar (erased once loaded); pipes and logs get nothing, so the answer stays clean.
    const progress = createProgress(`loading ${values.model ?? 'the embedded model'}`, { quiet: !process.stderr.isTTY });
    const loaded = await loadModel(values.model ?? DEFAULT_MODEL_DIR, { ...loadOptions(values), onProgress: (f, what) => progress.update(f, what) });
    progress.done();
    if (loaded.backendNote) process.stderr.write(`llama4: ${loaded.backendNote}\n`);
    const ctx = newChatContext(loaded, loadChatAssets(loaded, values.tokenizer));
    const sampler = { ...loaded.samplingDefaults, ...samplerOptions(values, loaded.samplingDefaults.temperature ?? 0.6) };
    let system: ChatMessage[] = values.system !== undefined ? [{ role: 'system', content: values.system }] : [];
    let history: ChatMessage[] = [];
    const rl = createInterface({ input: process.stdin, output: process.stdout, prompt: '> ', terminal: process.stdin.isTTY ?? false });
    let answering: AbortController | null = null;
    rl.on('SIGINT', () => {
      if (answering) answering.abort();
      else rl.close();
    });
    process.stdout.write(`llama4 chat — ${loaded.path} (${loaded.backend.name}). /help lists commands, /bye leaves, Ctrl-C stops an answer.\n`);
    rl.prompt();
    for await (const line of rl) {
      const text = line.trim();
      const command = parseChatCommand(text);
      if (command?.kind === 'exit') break;
      if (command) {
        if (command.kind === 'help') process.stdout.write(`${CHAT_COMMANDS_HELP}\n`);
        else if (command.kind === 'unknown') process.stdout.write(`${command.message}\n`);
        else if (command.kind === 'system' && !command.text) {
          const current = system[0]?.content;
          process.stdout.write(typeof current === 'string' ? `system: ${current}\n` : '(no system message)\n');
        } else if (command.kind === 'system') {
          system = [{ role: 'system', content: command.text }];
          process.stdout.write('(system message set)\n');
        } else if (command.kind === 'reset') {
          history = [];
          ctx.seq = null;
          ctx.cached = [];
          process.stdout.write('(conversation cleared)\n');
        }
        rl.prompt();
        continue;
      }
      if (!text) { rl.prompt(); continue; }
      history.push({ role: 'user', content: text });
      answering = new AbortController();
      let answer = '';
      try {
        const turn = assistantTurn(ctx, [...system, ...history], { maxTokens, sampler, signal: answering.signal, ...(contextLength !== undefined ? { contextLength } : {}) });
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
