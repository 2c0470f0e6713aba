/**
 * `llama4 info -m MODEL [--ctx N] [--json]`: what a model is and whether it fits — architecture, total and active
 * parameters, tensor types, and the memory for weights plus KV cache at a context length. Reads headers only.
 *
 * KV cache: every layer stores K and V rows of nkv·d values (float32, or f16 / q8_0 with --kv-type); chunked-attention layers
 * keep at most one chunk (they never look further back), global (NoPE) layers keep the whole context.
 * Active parameters: those one token's forward pass multiplies with — all weights except the experts a token is
 * not routed to (E-1 of E per MoE layer) and the embedding table (a row lookup, not a product).
 */
import { existsSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { parseArgs } from '../args.ts';
import type { Command } from '../command.ts';
import type { DType, KvType } from '../../tensor/index.ts';
import { DTYPES, isKvType, kvBytesPerValue } from '../../tensor/index.ts';
import { readGgufHeader } from '../../io/gguf/index.ts';
import { openSafetensors } from '../../io/safetensors.ts';
import type { Llama4Config } from '../../model/llama4/config.ts';
import { parseHfConfig } from '../../model/llama4/config.ts';
import { configFromGguf } from '../../model/llama4/gguf-config.ts';
import { expectedShapes, hfPrefixes } from '../../model/llama4/weights.ts';
import { DEFAULT_MODEL_DIR } from '../../load.ts';
import { ModelFileError, UsageError } from '../../util/index.ts';

interface TensorFact { name: string; dtype: DType; shape: readonly number[] }

export interface ModelFacts {
  readonly path: string;
  readonly format: 'gguf' | 'safetensors';
  readonly config: Llama4Config;
  readonly totalParams: number;
  readonly activeParams: number;
  readonly otherParams: number;
  readonly weightBytes: number;
  readonly tensorTypes: Record<string, number>;
  readonly ctx: number;
  readonly kvType: KvType;
  readonly kvBytes: number;
}

const count = (shape: readonly number[]): number => shape.reduce((a, b) => a * b, 1);
const bytesOf = (t: TensorFact): number => (count(t.shape) / DTYPES[t.dtype].blockSize) * DTYPES[t.dtype].bytesPerBlock;

/** Bytes of the KV cache at `ctx` tokens (K and V stored as kvType; chunked layers hold at most one chunk). */
export function kvCacheBytes(cfg: Llama4Config, ctx: number, kvType: KvType = 'f32'): number {
  const row = cfg.numKvHeads * cfg.headDim * kvBytesPerValue(kvType) * 2;
  return cfg.layers.reduce((s, f) => s + row * (f.chunkSize > 0 ? Math.min(ctx, f.chunkSize) : ctx), 0);
}

/** Total and active parameters of the text model a config describes (same rule as `info`). */
export function paramsOfConfig(cfg: Llama4Config): { total: number; active: number } {
  const f = facts('', 'gguf', cfg, [...expectedShapes(cfg)].map(([name, shape]) => ({ name, dtype: 'f32' as DType, shape })), [], 1, 'f32');
  return { total: f.totalParams, active: f.activeParams };
}

/** Facts from headers only (no tensor data is read). `text` tensors use internal (GGUF) names. */
function facts(path: string, format: 'gguf' | 'safetensors', config: Llama4Config, text: TensorFact[], other: TensorFact[], ctx: number, kvType: KvType): ModelFacts {
  let total = 0, inactive = 0, weightBytes = 0;
  const tensorTypes: Record<string, number> = {};
  for (const t of text) {
    const n = count(t.shape);
    total += n;
    weightBytes += bytesOf(t);
    tensorTypes[t.dtype] = (tensorTypes[t.dtype] ?? 0) + 1;
    if (/_exps$/.test(t.name)) inactive += (n * (config.numExperts - 1)) / config.numExperts;
    if (t.name === 'token_embd') inactive += n;
  }
  let otherParams = 0;
  for (const t of other) { otherParams += count(t.shape); weightBytes += bytesOf(t); }
  return {
    path, format, config, totalParams: total, activeParams: total - inactive, otherParams, weightBytes, tensorTypes, ctx, kvType,
    kvBytes: kvCacheBytes(config, ctx, kvType),
  };
}

export function modelFacts(path: string, ctx?: number, kvType: KvType = 'f32'): ModelFacts {
  if (!existsSync(path)) throw new ModelFileError(path, 'no such file or folder');
  if (!statSync(path).isDirectory()) {
    const h = readGgufHeader(path);
    const text: TensorFact[] = [], other: TensorFact[] = [];
    for (const t of h.tensors.values()) {
      const internal = t.name.replace(/\.weight$/, '');
      const isText = internal === 'token_embd' || internal === 'output_norm' || internal === 'output' || internal.startsWith('blk.');
      (isText ? text : other).push({ name: isText ? internal : t.name, dtype: t.dtype, shape: t.shape });
    }
    const cfg = configFromGguf(h.metadata, new Map(text.map((t) => [t.name, t])), path);
    return facts(path, 'gguf', cfg, text, other, ctx ?? cfg.maxPositionEmbeddings, kvType);
  }
  const cfgFile = join(path, 'config.json');
  if (!existsSync(cfgFile)) throw new ModelFileError(path, 'not a model folder: config.json is missing');
  let json: unknown;
  try { json = JSON.parse(readFileSync(cfgFile, 'utf8')); } catch (e) { throw new ModelFileError(cfgFile, `not valid JSON (${(e as Error).message})`); }
  const cfg = parseHfConfig(json);
  const src = openSafetensors(path);
  const { model, head } = hfPrefixes(cfg);
  const text: TensorFact[] = [], other: TensorFact[] = [];
  for (const [name, info] of src.infos) {
    const isText = name.startsWith(model) || name === head;
    // Name the ones the active-parameter rule needs in internal terms; the rest only count.
    const internal = name.endsWith('embed_tokens.weight') ? 'token_embd' : /experts\.(gate_up|down)_proj$/.test(name) ? `${name}_exps` : name;
    (isText ? text : other).push({ name: internal, dtype: info.dtype, shape: info.shape });
  }
  return facts(path, 'safetensors', cfg, text, other, ctx ?? cfg.maxPositionEmbeddings, kvType);
}

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
  const types = Object.entries(f.tensorTypes).sort((a, b) => b[1] - a[1]).map(([t, n]) => `${n} ${t}`).join(', ');
  return [
    `model         ${f.path} (${f.format})`,
    `architecture  llama4 text: ${c.numLayers} layers, hidden ${c.hiddenSize}, ${c.numHeads} heads / ${c.numKvHeads} KV heads × ${c.headDim}, vocab ${c.vocabSize}`,
    `feed-forward  ${moe ? `${moe} MoE layers: ${c.numExperts} routed experts (top-1) + shared expert, width ${c.intermediateSize}` : 'no MoE'}${moe < c.numLayers ? `; ${c.numLayers - moe} dense layers, width ${c.intermediateSizeMlp}` : ''}`,
    `attention     ${chunked} chunked layers (chunk ${c.attentionChunkSize}), ${c.numLayers - chunked} global (${nope} NoPE); qk-norm ${c.useQkNorm ? 'on' : 'off'}; rope theta ${c.ropeTheta}${c.ropeScaling || c.ropeFreqFactors ? ' (llama3 scaling)' : ''}; context ${c.maxPositionEmbeddings}`,
    `parameters    ${human(f.totalParams)} total, ${human(f.activeParams)} active per token${f.otherParams ? ` (+ ${human(f.otherParams)} outside the text model)` : ''}`,
    `tensor types  ${types}`,
    `memory        weights ${gib(f.weightBytes)} + KV cache ${gib(f.kvBytes)} at ctx ${f.ctx} (${f.kvType === 'f32' ? 'float32' : f.kvType}) = ${gib(f.weightBytes + f.kvBytes)}`,
  ].join('\n');
}

export const infoCommand: Command = {
  name: 'info',
  summary: 'show a model\'s architecture, parameters, tensor types and memory at a context length',
  usage: `usage: llama4 info -m MODEL [--ctx N] [--json]
Reads only headers. Active parameters exclude the experts a token is not routed to and the embedding table.
KV cache memory counts K and V per layer; chunked layers hold at most one chunk (8192 tokens).
  -m, --model PATH   model folder (config.json + safetensors) or .gguf file (default: the embedded model)
  --ctx N            context length for the KV cache (default: the model's context length)
  --kv-type T        KV cache storage to count: f32 (default) | f16 | q8_0
  --json             print the facts as JSON`,
  async run(argv) {
    const { values } = parseArgs({ args: argv, strict: true, options: { model: { type: 'string', short: 'm' }, ctx: { type: 'string' }, 'kv-type': { type: 'string' }, json: { type: 'boolean' } } });
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
      process.stdout.write(JSON.stringify({ ...rest, layers: config.numLayers, hiddenSize: config.hiddenSize, experts: config.numExperts }) + '\n');
    } else {
      process.stdout.write(formatFacts(f) + '\n');
    }
    return 0;
  },
};
