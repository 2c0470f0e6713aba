/**
 * `llama4 guard -m GUARD [--image F] [--role user|agent] [--prompt TEXT] [--categories S1,S2] [--json] TEXT`:
 * classify one message with a Llama Guard checkpoint. Prints Llama Guard's own answer ("safe", or "unsafe" and the
 * category line) or, with --json, {"safe", "categories", "scores", "unsafe_probability"}. Exit status like grep's:
 * 0 safe, 1 unsafe, 2 error.
 */
import { parseArgs } from '../args.ts';
import type { Command } from '../command.ts';
import { loadGuard, type GuardContentPart, type GuardMessage } from '../../guard/index.ts';
import { Llama4Error, UsageError } from '../../util/index.ts';
import { MODEL_OPTIONS, MODEL_USAGE, loadOptions, parseNumber } from '../options.ts';

export const guardCommand: Command = {
  name: 'guard',
  summary: 'classify a message as safe/unsafe with a Llama Guard 4 checkpoint (categories S1–S14, scores)',
  usage: `usage: llama4 guard -m GUARD [--image F]… [--role user|agent] [--prompt TEXT] [--categories S1,S2] [--json] TEXT
Checks TEXT with a Llama Guard checkpoint, without free generation: safe vs unsafe from the probabilities of the
two answers, then (when unsafe) the category line decoded greedily. Prompt: the checkpoint's own guard chat
template, else the built-in Llama Guard 4 format.
  --role user|agent      whose message TEXT is (default user); agent: TEXT is the assistant's answer to --prompt
  --prompt TEXT          the user message the agent answered (--role agent)
  --image F              an image in the user message (repeatable; needs a checkpoint with a vision tower)
  --categories S1,S2     categories to check (default all 14; the others are left out of the prompt)
  --threshold X          unsafe when P(unsafe)/(P(safe)+P(unsafe)) > X (default 0.5)
  --json                 {"safe": bool, "categories": ["S1"…], "scores": {"S1": p…}, "unsafe_probability": p}
${MODEL_USAGE}
Exit status: 0 safe, 1 unsafe, 2 error.`,
  async run(argv) {
    try {
      const { values, positionals } = parseArgs({
        args: argv,
        allowPositionals: true,
        strict: true,
        options: {
          ...MODEL_OPTIONS,
          image: { type: 'string', multiple: true },
          role: { type: 'string' },
          prompt: { type: 'string' },
          categories: { type: 'string' },
          threshold: { type: 'string' },
          json: { type: 'boolean' },
        },
      });
      if (!values.model) throw new UsageError('give the guard checkpoint with -m GUARD');
      if (positionals.length !== 1) throw new UsageError('give exactly one TEXT to check (quote it)');
      const role = values.role ?? 'user';
      if (role !== 'user' && role !== 'agent') throw new UsageError(`--role must be user or agent, got '${role}'`);
      if (values.prompt !== undefined && role !== 'agent')
        throw new UsageError('--prompt is the user message an agent answered: use it with --role agent');
      const images: GuardContentPart[] = (values.image ?? []).map((f) => ({ type: 'image', image: f }));
      const text = positionals[0]!;
      const messages: GuardMessage[] =
        role === 'user'
          ? [{ role: 'user', content: [...images, { type: 'text', text }] }]
          : [
              { role: 'user', content: [...images, { type: 'text', text: values.prompt ?? '' }] },
              { role: 'assistant', content: text },
            ];
      const threshold = parseNumber('threshold', values.threshold, { min: 0 });
      const guard = await loadGuard(values.model, loadOptions(values));
      const v = await guard.check(messages, {
        ...(values.categories !== undefined ? { categories: values.categories } : {}),
        ...(threshold !== undefined ? { threshold } : {}),
      });
      if (values.json) {
        process.stdout.write(
          JSON.stringify({ safe: v.safe, categories: v.categories, scores: v.scores, unsafe_probability: v.unsafeProbability }) + '\n',
        );
      } else {
        process.stdout.write(v.safe ? 'safe\n' : `unsafe\n${v.categories.join(',')}\n`);
      }
      return v.safe ? 0 : 1;
    } catch (e) {
      if (e instanceof Llama4Error || (e instanceof TypeError && (e as { code?: string }).code?.startsWith('ERR_PARSE_ARGS'))) {
        process.stderr.write(`llama4 guard: ${(e as Error).message}\n`);
        return 2;
      }
      throw e;
    }
  },
};
