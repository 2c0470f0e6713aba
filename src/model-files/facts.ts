/**
 * What a model is and whether it fits, from headers only: architecture, total and active parameters, tensor types,
 * and the memory for weights plus KV cache at a context length (`llama4 info` prints it).
 *
 * KV cache: every layer stores K and V rows of nkv·d values (float32, or f16 / q8_0), chunked-attention layers keep
 * at most one chunk (they never look further back), global (NoPE) layers keep the whole context.
 * Active parameters: those one token's forward pass multiplies with — all weights except the experts a token is
 * not routed to (E-1 of E per MoE layer) and the embedding table (a row lookup, not a product).
 */
import { existsSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import type { DType, KvType } from '../tensor/index.ts';
import { DTYPES, kvBytesPerValue } from '../tensor/index.ts';
import { readGgufHeader } from '../io/gguf/index.ts';
import { openSafetensors } from '../io/safetensors.ts';
import type { Llama4Config } from '../model/llama4/config.ts';
import { parseHfConfig } from '../model/llama4/config.ts';
import { configFromGguf } from '../model/llama4/gguf-config.ts';
import { expectedShapes, hfPrefixes } from '../model/llama4/weights.ts';
import { ModelFileError } from '../util/index.ts';

interface TensorFact {
  name: string;
  dtype: DType;
  shape: readonly number[];
}

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
  const f = facts(
    '',
    'gguf',
    cfg,
    [...expectedShapes(cfg)].map(([name, shape]) => ({ name, dtype: 'f32' as DType, shape })),
    [],
    1,
    'f32',
  );
  return { total: f.totalParams, active: f.activeParams };
}

/** Facts from headers only (no tensor data is read). `text` tensors use internal (GGUF) names. */
function facts(
  path: string,
  format: 'gguf' | 'safetensors',
  config: Llama4Config,
  text: TensorFact[],
  other: TensorFact[],
  ctx: number,
  kvType: KvType,
): ModelFacts {
  let total = 0,
    inactive = 0,
    weightBytes = 0;
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
  for (const t of other) {
    otherParams += count(t.shape);
    weightBytes += bytesOf(t);
  }
  return {
    path,
    format,
    config,
    totalParams: total,
    activeParams: total - inactive,
    otherParams,
    weightBytes,
    tensorTypes,
    ctx,
    kvType,
    kvBytes: kvCacheBytes(config, ctx, kvType),
  };
}

export function modelFacts(path: string, ctx?: number, kvType: KvType = 'f32'): ModelFacts {
  if (!existsSync(path)) throw new ModelFileError(path, 'no such file or folder');
  if (!statSync(path).isDirectory()) {
    const h = readGgufHeader(path);
    const text: TensorFact[] = [],
      other: TensorFact[] = [];
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
  try {
    json = JSON.parse(readFileSync(cfgFile, 'utf8'));
  } catch (e) {
    throw new ModelFileError(cfgFile, `not valid JSON (${(e as Error).message})`);
  }
  const cfg = parseHfConfig(json);
  const src = openSafetensors(path);
  const { model, head } = hfPrefixes(cfg);
  const text: TensorFact[] = [],
    other: TensorFact[] = [];
  for (const [name, info] of src.infos) {
    const isText = name.startsWith(model) || name === head;
    // Name the ones the active-parameter rule needs in internal terms; the rest only count.
    const internal = name.endsWith('embed_tokens.weight')
      ? 'token_embd'
      : /experts\.(gate_up|down)_proj$/.test(name)
        ? `${name}_exps`
        : name;
    (isText ? text : other).push({ name: internal, dtype: info.dtype, shape: info.shape });
  }
  return facts(path, 'safetensors', cfg, text, other, ctx ?? cfg.maxPositionEmbeddings, kvType);
}
