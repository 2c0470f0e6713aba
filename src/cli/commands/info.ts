/**
 * `llama4 info -m MODEL [--ctx N] [--json]`: what a model is and whether it fits — architecture, total and active
 * parameters, tensor types, and the memory for weights plus KV cache at a context length (src/model-files/facts.ts
 * computes them from headers only; this command prints them).
 */
import { parseArgs } from '../args.ts';
import type { Command } from '../command.ts';
import { isKvType } from '../../tensor/index.ts';
import { DEFAULT_MODEL_DIR } from '../../load.ts';
import { modelFacts, type ModelFacts } from '../../model-files/index.ts';
import { UsageError } from '../../util/index.ts';

function human(n: number): string {
  return n >= 1e9 ? `${(n / 1e9).toFixed(2)} B` : n >= 1e6 ? `${(n / 1e6).toFixed(1)} M` : `${(n / 1e3).toFixed(1)} K`;
}

function gib(b: number): string {
  return b >= 2 ** 30 ? `${(b / 2 ** 30).toFixed(2)} GiB` : `${(b / 2 ** 20).toFixed(1)} MiB`;
}

export function formatFacts(f: ModelFacts): string {
  const c = f.config;
  const moe = c.layers.filter((l) => l.isMoe).length;
  const chunked = c.layers.filter((l) => l.chunkSize > 0).length;
  const nope = c.layers.filter((l) => !l.usesRope).length;
  const types = Object.entries(f.tensorTypes)
    .sort((a, b) => b[1] - a[1])
    .map(([t, n]) => `${n} ${t}`)
    .join(', ');
  return [
    `model         ${f.path} (${f.format})`,
    `architecture  llama4 text: ${c.numLayers} layers, hidden ${c.hiddenSize}, ${c.numHeads} heads / ${c.numKvHeads} KV heads × ${c.headDim}, vocab ${c.vocabSize}`,
    `feed-forward  ${moe ? `${moe} MoE layers: ${c.numExperts} routed experts (top-1) + shared expert, width ${c.intermediateSize}` : 'no MoE'}${moe < c.numLayers ? `; ${c.numLayers - moe} dense layers, width ${c.intermediateSizeMlp}` : ''}`,
    `attention     ${c.attentionChunkSize === null ? 'no chunking (attention_chunk_size null)' : `${chunked} chunked layers (chunk ${c.attentionChunkSize})`}, ${c.numLayers - chunked} global (${nope} NoPE); qk-norm ${c.useQkNorm ? 'on' : 'off'}; rope theta ${c.ropeTheta}${c.ropeScaling || c.ropeFreqFactors ? ' (llama3 scaling)' : ''}; context ${c.maxPositionEmbeddings}`,
    `parameters    ${human(f.totalParams)} total, ${human(f.activeParams)} active per token${f.otherParams ? ` (+ ${human(f.otherParams)} outside the text model)` : ''}`,
    `tensor types  ${types}`,
    `memory        weights ${gib(f.weightBytes)} + KV cache ${gib(f.kvBytes)} at ctx ${f.ctx} (${f.kvType === 'f32' ? 'float32' : f.kvType}) = ${gib(f.weightBytes + f.kvBytes)}`,
  ].join('\n');
}

export const infoCommand: Command = {
  name: 'info',
  summary: "show a model's architecture, parameters, tensor types and memory at a context length",
  usage: `usage: llama4 info -m MODEL [--ctx N] [--json]
Reads only headers. Active parameters exclude the experts a token is not routed to and the embedding table.
KV cache memory counts K and V per layer; chunked layers hold at most one chunk (8192 tokens).
  -m, --model PATH   model folder (config.json + safetensors) or .gguf file (default: the embedded model)
  --ctx N            context length for the KV cache (default: the model's context length)
  --kv-type T        KV cache storage to count: f32 (default) | f16 | q8_0
  --json             print the facts as JSON`,
  async run(argv) {
    const { values } = parseArgs({
      args: argv,
      strict: true,
      options: { model: { type: 'string', short: 'm' }, ctx: { type: 'string' }, 'kv-type': { type: 'string' }, json: { type: 'boolean' } },
    });
    const kv = values['kv-type'] ?? 'f32';
    if (!isKvType(kv)) throw new UsageError(`--kv-type must be f32, f16 or q8_0, got '${kv}'`);
    let ctx: number | undefined;
    if (values.ctx !== undefined) {
      ctx = Number(values.ctx);
      if (!Number.isInteger(ctx) || ctx <= 0) throw new UsageError(`--ctx must be a positive integer, got '${values.ctx}'`);
    }
    const f = modelFacts(values.model ?? DEFAULT_MODEL_DIR, ctx, kv);
    if (values.json) {
      const { config, ...rest } = f;
      process.stdout.write(
        JSON.stringify({ ...rest, layers: config.numLayers, hiddenSize: config.hiddenSize, experts: config.numExperts }) + '\n',
      );
    } else {
      process.stdout.write(formatFacts(f) + '\n');
    }
    return 0;
  },
};
