import { parseArgs } from '../args.ts';
import { loadChatModel } from '../chat-model.ts';
import { CHAT_COMMANDS_HELP, parseChatCommand } from '../chat-commands.ts';
import { createInterface } from 'node:readline';
import type { Command } from '../command.ts';
import { ChatSession } from '../../engine/index.ts';
import { Llama4Error } from '../../util/index.ts';
import { MODEL_OPTIONS, MODEL_USAGE, SAMPLER_OPTIONS, SAMPLER_USAGE, parseNumber } from '../options.ts';

export const chatCommand: Command = {
  name: 'chat',
  summary: 'interactive chat in the terminal (streaming, history, /reset)',
  usage: `usage: llama4 chat [-m MODEL] [--system TEXT] [-n N] [-c N] [sampling options]
Type a message and press Enter.
${CHAT_COMMANDS_HELP}
  --system TEXT          system message for the whole conversation
  --tokenizer PATH       tokenizer file or folder when it is not beside the weights
  -n, --max-tokens N     per-answer length limit (default 512; --n-predict is an alias)
  -c, --ctx N            context length: the conversation + answer (default: the model's; --ctx-size is an alias)
${SAMPLER_USAGE}
${MODEL_USAGE}`,
  async run(argv) {
    const { values } = parseArgs({
      args: argv,
      options: {
        ...MODEL_OPTIONS,
        ...SAMPLER_OPTIONS,
        system: { type: 'string' },
        tokenizer: { type: 'string' },
        'max-tokens': { type: 'string', short: 'n' },
        ctx: { type: 'string' },
      },
      strict: true,
    });
    const maxTokens = parseNumber('max-tokens', values['max-tokens'], { int: true, min: 1 }) ?? 512;
    const contextLength = parseNumber('ctx', values.ctx, { int: true, min: 2 });
    const { loaded, sampler } = await loadChatModel(values);
    // The conversation is a ChatSession on the chat engine (one slot): history, and the KV cache reused across turns.
    const engine = loaded.createChatEngine({
      parallel: 1,
      stepTokens: 512,
      ...(contextLength !== undefined ? { contextLength } : {}),
      ...(values.tokenizer !== undefined ? { tokenizerPath: values.tokenizer } : {}),
    });
    const session = (system: string | undefined) =>
      new ChatSession(engine, { ...(system !== undefined ? { system } : {}), maxTokens, sampling: sampler });
    let system = values.system;
    let chat = session(system);
    const rl = createInterface({ input: process.stdin, output: process.stdout, prompt: '> ', terminal: process.stdin.isTTY ?? false });
    let answering: AbortController | null = null;
    rl.on('SIGINT', () => {
      if (answering) answering.abort();
      else rl.close();
    });
    process.stdout.write(
      `llama4 chat — ${loaded.path} (${loaded.backend.name}). /help lists commands, /bye leaves, Ctrl-C stops an answer.\n`,
    );
    rl.prompt();
    for await (const line of rl) {
      const text = line.trim();
      const command = parseChatCommand(text);
      if (command?.kind === 'exit') break;
      if (command) {
        if (command.kind === 'help') process.stdout.write(`${CHAT_COMMANDS_HELP}\n`);
        else if (command.kind === 'unknown') process.stdout.write(`${command.message}\n`);
        else if (command.kind === 'system' && !command.text)
          process.stdout.write(system !== undefined ? `system: ${system}\n` : '(no system message)\n');
        else if (command.kind === 'system') {
          // A new session opening with the new system message, carrying the turns so far (the engine reuses the
          // cached prefix where it still matches).
          system = command.text;
          const next = session(system);
          next.history.push(...chat.history.filter((m) => m.role !== 'system'));
          chat.dispose();
          chat = next;
          process.stdout.write('(system message set)\n');
        } else if (command.kind === 'reset') {
          chat.reset();
          process.stdout.write('(conversation cleared)\n');
        }
        rl.prompt();
        continue;
      }
      if (!text) {
        rl.prompt();
        continue;
      }
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
