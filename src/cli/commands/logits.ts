import { parseArgs } from 'node:util';
import type { Command } from '../command.ts';
import { loadModel, DEFAULT_MODEL_DIR } from '../../load.ts';
import { argmax } from '../../engine/index.ts';
import { MODEL_OPTIONS, MODEL_USAGE, loadOptions, parseIds } from '../options.ts';

export const logitsCommand: Command = {
  name: 'logits',
  summary: 'print the logits of a token sequence (checkpoint verification)',
  usage: `usage: llama4 logits -m MODEL --ids 1,5,9 [--all] [--json]
Runs one forward pass over the ids (no BOS is added) and prints the last position's logits, or every position's
with --all. --json prints {"logits": [[...]], "argmax": [...]}.
${MODEL_USAGE}`,
  async run(argv) {
    const { values } = parseArgs({ args: argv, options: { ...MODEL_OPTIONS, ids: { type: 'string' }, all: { type: 'boolean' }, json: { type: 'boolean' } }, strict: true });
    const ids = parseIds(values.ids);
    const { model, config } = await loadModel(values.model ?? DEFAULT_MODEL_DIR, loadOptions(values));
    const [flat] = model.forward([{ seq: model.newSequence(), tokens: ids, logits: values.all ? 'all' : 'last' }]);
    const V = config.vocabSize;
    const rows: Float32Array[] = [];
    for (let r = 0; r < flat!.length / V; r++) rows.push(flat!.subarray(r * V, (r + 1) * V));
    if (values.json) {
      process.stdout.write(JSON.stringify({ logits: rows.map((r) => Array.from(r)), argmax: rows.map((r) => argmax(r)) }) + '\n');
    } else {
      rows.forEach((r, i) => {
        const top = Array.from(r.keys()).sort((a, b) => r[b]! - r[a]!).slice(0, 5);
        const p = values.all ? i : ids.length - 1;
        process.stdout.write(`position ${p}: argmax ${top[0]}  top5 ${top.map((t) => `${t}:${r[t]!.toFixed(4)}`).join(' ')}\n`);
      });
    }
    return 0;
  },
};
