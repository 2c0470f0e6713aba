import { parseArgs } from '../args.ts';
import type { Command } from '../command.ts';
import { loadModel, DEFAULT_MODEL_DIR } from '../../load.ts';
import { generate } from '../../engine/index.ts';
import {
  MODEL_OPTIONS,
  MODEL_USAGE,
  SAMPLER_OPTIONS,
  SAMPLER_USAGE,
  loadOptions,
  parseIds,
  parseNumber,
  samplerOptions,
} from '../options.ts';

export const generateCommand: Command = {
  name: 'generate',
  summary: 'continue a token sequence and print the generated ids (checkpoint verification)',
  usage: `usage: llama4 generate -m MODEL --ids 1,5,9 [-n 20] [--temperature 0] [--ignore-eos] [--json]
Generates up to -n tokens after the ids (greedy by default) and prints the generated ids only; stops after an eos id
of the model unless --ignore-eos. --json prints {"ids": [...]}.
  -n, --max-tokens N     tokens to generate (default 20)
  --ignore-eos           do not stop at the model's eos ids
${SAMPLER_USAGE}
${MODEL_USAGE}`,
  async run(argv) {
    const { values } = parseArgs({
      args: argv,
      options: {
        ...MODEL_OPTIONS,
        ...SAMPLER_OPTIONS,
        ids: { type: 'string' },
        'max-tokens': { type: 'string', short: 'n' },
        'ignore-eos': { type: 'boolean' },
        json: { type: 'boolean' },
      },
      strict: true,
    });
    const ids = parseIds(values.ids);
    const maxTokens = parseNumber('max-tokens', values['max-tokens'], { int: true, min: 0 }) ?? 20;
    const { model } = await loadModel(values.model ?? DEFAULT_MODEL_DIR, loadOptions(values));
    const out: number[] = [];
    const ac = new AbortController();
    process.once('SIGINT', () => ac.abort());
    for await (const step of generate(model, ids, {
      maxTokens,
      sampler: samplerOptions(values, 0),
      signal: ac.signal,
      ...(values['ignore-eos'] ? { stopTokens: [] } : {}),
    })) {
      out.push(step.token);
      if (!values.json) process.stdout.write(`${step.token}\n`);
    }
    if (values.json) process.stdout.write(JSON.stringify({ ids: out }) + '\n');
    return 0;
  },
};
