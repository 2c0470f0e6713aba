import { parseArgs } from '../args.ts';
import type { Command } from '../command.ts';
import { loadModel, DEFAULT_MODEL_DIR } from '../../load.ts';
import { argmax } from '../../engine/index.ts';
import { readPixelValuesFile } from '../../image/index.ts';
import { UsageError } from '../../util/index.ts';
import { MODEL_OPTIONS, MODEL_USAGE, loadOptions, parseIds } from '../options.ts';

export const logitsCommand: Command = {
  name: 'logits',
  summary: 'print the logits of a token sequence (checkpoint verification)',
  usage: `usage: llama4 logits -m MODEL --ids 1,5,9 [--all] [--json] [--pixel-values FILE.json]
Runs one forward pass over the ids (no BOS is added) and prints the last position's logits, or every position's
with --all. --json prints {"logits": [[...]], "argmax": [...]}.
--pixel-values FILE.json ([tiles][3][H][W]) runs the vision tower on those pixels and writes the features into the
prompt's <|patch|> tokens (multimodal checkpoints).
${MODEL_USAGE}`,
  async run(argv) {
    const { values } = parseArgs({
      args: argv,
      options: {
        ...MODEL_OPTIONS,
        ids: { type: 'string' },
        all: { type: 'boolean' },
        json: { type: 'boolean' },
        'pixel-values': { type: 'string' },
      },
      strict: true,
    });
    const ids = parseIds(values.ids);
    const { model, config, vision } = await loadModel(values.model ?? DEFAULT_MODEL_DIR, loadOptions(values));
    let patchEmbeddings: Float32Array | undefined;
    if (values['pixel-values']) {
      if (!vision) throw new UsageError('--pixel-values needs a multimodal checkpoint (vision_config + vision_model.* tensors)');
      const pv = readPixelValuesFile(values['pixel-values'], vision.cfg.imageSize, vision.cfg.numChannels);
      patchEmbeddings = vision.encode(pv.pixels, pv.nTiles);
    }
    const [flat] = model.forward([
      { seq: model.newSequence(), tokens: ids, logits: values.all ? 'all' : 'last', ...(patchEmbeddings ? { patchEmbeddings } : {}) },
    ]);
    const V = config.vocabSize;
    const rows: Float32Array[] = [];
    for (let r = 0; r < flat!.length / V; r++) rows.push(flat!.subarray(r * V, (r + 1) * V));
    if (values.json) {
      process.stdout.write(JSON.stringify({ logits: rows.map((r) => Array.from(r)), argmax: rows.map((r) => argmax(r)) }) + '\n');
    } else {
      rows.forEach((r, i) => {
        const top = Array.from(r.keys())
          .sort((a, b) => r[b]! - r[a]!)
          .slice(0, 5);
        const p = values.all ? i : ids.length - 1;
        process.stdout.write(`position ${p}: argmax ${top[0]}  top5 ${top.map((t) => `${t}:${r[t]!.toFixed(4)}`).join(' ')}\n`);
      });
    }
    return 0;
  },
};
