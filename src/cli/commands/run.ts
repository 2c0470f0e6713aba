import { parseArgs, readStdin } from '../args.ts';
import { loadChatModel } from '../chat-model.ts';
import type { Command } from '../command.ts';
import { loadChatAssets } from '../../load.ts';
import { ChatSession, generate } from '../../engine/index.ts';
import { UsageError } from '../../util/index.ts';
import { MODEL_OPTIONS, MODEL_USAGE, SAMPLER_OPTIONS, SAMPLER_USAGE, parseIds, parseNumber } from '../options.ts';

export const runCommand: Command = {
  name: 'run',
  summary: 'answer one prompt as a chat (streams the answer)',
  usage: `usage: llama4 run [-m MODEL] [-p] TEXT [--system TEXT] [--image FILE]... [-n N] [-c N] [sampling options]
       echo TEXT | llama4 run [options]              (the prompt from stdin: a pipe, or -p - / -)
       llama4 run [-m MODEL] --ids 1,5,9 [-n N]      (raw token ids, no chat template)
Formats TEXT as a user message with the model's chat template, streams the answer and stops at <|eot|>/<|eom|>.
Each --image adds an <|image|> part before the text (multimodal checkpoints). Without -m it runs the embedded
default model. Sampling defaults come from the model's generation_config.json.
  -p, --prompt TEXT      the user message (or give it as the first argument; - reads it from stdin)
  --system TEXT          a system message
  --image FILE           an image file (JPEG, PNG, WebP, GIF); repeatable
  --tokenizer PATH       tokenizer file or folder when it is not beside the weights
  -n, --max-tokens N     answer length limit (default 256; --n-predict is an alias)
  -c, --ctx N            context length: prompt + answer (default: the model's; --ctx-size is an alias)
${SAMPLER_USAGE}
${MODEL_USAGE}`,
  async run(argv) {
    const { values, positionals } = parseArgs({
      args: argv,
      allowPositionals: true,
      options: {
        ...MODEL_OPTIONS,
        ...SAMPLER_OPTIONS,
        prompt: { type: 'string', short: 'p' },
        system: { type: 'string' },
        image: { type: 'string', multiple: true },
        ids: { type: 'string' },
        tokenizer: { type: 'string' },
        'max-tokens': { type: 'string', short: 'n' },
        ctx: { type: 'string' },
      },
      strict: true,
    });
    let text = values.prompt ?? (positionals.length ? positionals.join(' ') : undefined);
    // The prompt from stdin: `-` / `-p -`, or nothing given and stdin is a pipe or file.
    const explicit = text === '-';
    if (explicit || (text === undefined && values.ids === undefined && !process.stdin.isTTY)) {
      const piped = (await readStdin()).replace(/\r?\n$/, '');
      if (piped.trim()) text = piped;
      else if (explicit) throw new UsageError('the prompt from stdin (-) is empty: echo "What is 7 plus 5?" | llama4 run -');
      else text = undefined;
    }
    if (text === undefined && values.ids === undefined)
      throw new UsageError('give a prompt: llama4 run "What is 7 plus 5?" (or -p TEXT, a pipe, or --ids)');
    const maxTokens = parseNumber('max-tokens', values['max-tokens'], { int: true, min: 1 }) ?? 256;
    const contextLength = parseNumber('ctx', values.ctx, { int: true, min: 2 });
    const { loaded, sampler } = await loadChatModel(values);
    const ac = new AbortController();
    const onSigint = () => ac.abort();
    process.once('SIGINT', onSigint);
    try {
      if (values.ids !== undefined) {
        const assets = safeAssets(loaded, values.tokenizer);
        const decoder = assets?.tokenizer.createStreamDecoder();
        const ids = parseIds(values.ids);
        if (contextLength !== undefined && ids.length >= contextLength)
          throw new UsageError(`--ids has ${ids.length} tokens, but the context (-c) holds ${contextLength}`);
        const limit = contextLength !== undefined ? Math.min(maxTokens, contextLength - ids.length) : maxTokens;
        for await (const step of generate(loaded.model, ids, { maxTokens: limit, sampler, signal: ac.signal })) {
          process.stdout.write(decoder ? decoder.push(step.token) : `${step.token} `);
        }
        process.stdout.write((decoder?.flush() ?? '') + '\n');
        return 0;
      }
      // One chat turn through the chat engine (one slot), as the server and the library run theirs.
      const images = values.image ?? [];
      if (images.length && !loaded.vision) throw new UsageError('this model has no vision tower: --image needs a multimodal checkpoint');
      const engine = loaded.createChatEngine({
        parallel: 1,
        stepTokens: 512,
        ...(contextLength !== undefined ? { contextLength } : {}),
        ...(values.tokenizer !== undefined ? { tokenizerPath: values.tokenizer } : {}),
      });
      const chat = new ChatSession(engine, {
        ...(values.system !== undefined ? { system: values.system } : {}),
        maxTokens,
        sampling: sampler,
      });
      await chat.send(text!, { images, signal: ac.signal, onText: (piece) => process.stdout.write(piece) });
      process.stdout.write('\n');
      return 0;
    } finally {
      process.off('SIGINT', onSigint);
    }
  },
};

/** The tokenizer for decoding raw-id runs, when the model has one. */
function safeAssets(loaded: Parameters<typeof loadChatAssets>[0], tokenizer?: string) {
  try {
    return loadChatAssets(loaded, tokenizer);
  } catch {
    return null;
  }
}
