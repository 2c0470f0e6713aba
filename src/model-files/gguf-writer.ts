/**
 * The llama4 GGUF writer shared by `convert` and the test models: config -> llama4 metadata (model/llama4/gguf-config),
 * tokenizer keys, per-tensor types from the file type (llama-quantize's mix or --pure), and tensors produced,
 * quantized and written one at a time, so a converted checkpoint is never held whole.
 */
import type { BulkQuantizer, DType } from '../tensor/index.ts';
import { GgufType, GgufWriter, QuantizePool } from '../io/gguf/index.ts';
import type { FileType } from '../io/gguf/quant-policy.ts';
import { LLAMA_FTYPE, tensorTypeFor } from '../io/gguf/quant-policy.ts';
import type { Llama4Config } from '../model/llama4/config.ts';
import { expectedShapes } from '../model/llama4/weights.ts';
import { ggufMetadataFromConfig, ropeFreqFactorsFor } from '../model/llama4/gguf-config.ts';

/** Tokenizer metadata (tokenizer.ggml.*) for a GGUF. */
export interface GgufTokenizer {
  readonly tokens: string[];
  /** 1 normal, 3 control, 5 unused (llama.cpp token types). */
  readonly types: Int32Array;
  readonly merges: string[];
  readonly bos: number | null;
  readonly eos: number | null;
  readonly eot: number | null;
  readonly eom: number | null;
  readonly pad: number | null;
  readonly chatTemplate: string | null;
  /** `tokenizer.ggml.pre`; default "llama4" (GGUF_PRE_WORD_INITIALS for a tokenizer.json with the word-initial split). */
  readonly pre?: string;
}

/** Supplies one tensor's float32 values (internal name, torch-order shape), at once or from other threads. */
export type TensorProducer = (name: string, shape: readonly number[]) => Float32Array | Promise<Float32Array>;

export interface WriteSummary {
  readonly bytes: number;
  readonly types: Map<DType, number>;
}

/**
 * Writes a llama4 GGUF: metadata from the config, tokenizer keys, then every tensor the config needs (plus
 * rope_freqs for llama3 scaling), each produced, converted to its type and written before the next is made.
 */
export interface WriteOptions {
  /** Progress callback before each tensor. */
  onTensor?: (name: string, i: number, n: number) => void;
  /** Worker threads for k-quants (default: all cores). */
  threads?: number;
  /** Every quantizable tensor in the file type (llama-quantize --pure), no per-tensor mix. */
  pure?: boolean;
  /**
   * A faster quantizer with the same bytes (the native core's, from load.ts createQuantizer): the types it supports
   * go to it, the rest to the TypeScript quantizers. The caller closes it.
   */
  quantizer?: BulkQuantizer | null;
}

/** Tensors below this many elements are produced while the previous one is quantized (two held at once). */
const OVERLAP_MAX = 1 << 28;

export async function writeLlama4Gguf(
  out: string,
  cfg: Llama4Config,
  ftype: FileType,
  produce: TensorProducer,
  tok: GgufTokenizer | null,
  name: string,
  opts: WriteOptions = {},
): Promise<WriteSummary> {
  const { onTensor, threads } = opts;
  const w = new GgufWriter(out);
  for (const [key, value, t] of ggufMetadataFromConfig(cfg, name)) {
    w.set(key, value, t === 'u32' ? GgufType.UINT32 : t === 'f32' ? GgufType.FLOAT32 : t === 'bool' ? GgufType.BOOL : GgufType.STRING);
  }
  w.set('general.file_type', LLAMA_FTYPE[ftype], GgufType.UINT32);
  w.set('general.quantization_version', 2, GgufType.UINT32);
  if (tok) {
    w.set('tokenizer.ggml.model', 'gpt2').set('tokenizer.ggml.pre', tok.pre ?? 'llama4');
    w.set('tokenizer.ggml.tokens', tok.tokens).set('tokenizer.ggml.token_type', tok.types).set('tokenizer.ggml.merges', tok.merges);
    const ids: [string, number | null][] = [
      ['bos', tok.bos],
      ['eos', tok.eos],
      ['eot', tok.eot],
      ['eom', tok.eom],
      ['padding', tok.pad],
    ];
    for (const [k, v] of ids) if (v !== null) w.set(`tokenizer.ggml.${k}_token_id`, v, GgufType.UINT32);
    w.set('tokenizer.ggml.add_bos_token', true);
    if (tok.chatTemplate) w.set('tokenizer.chat_template', tok.chatTemplate);
  }
  const plan: { name: string; shape: readonly number[]; dtype: DType }[] = [];
  for (const [n, shape] of expectedShapes(cfg))
    plan.push({
      name: n,
      shape,
      dtype: tensorTypeFor(ftype, n, shape, cfg.numLayers, { pure: opts.pure ?? false, nGqa: cfg.numHeads / cfg.numKvHeads }),
    });
  const ff = ropeFreqFactorsFor(cfg);
  if (ff) plan.push({ name: 'rope_freqs', shape: [ff.length], dtype: 'f32' });
  for (const t of plan) w.addTensor(`${t.name}.weight`, t.dtype, t.shape);
  const types = new Map<DType, number>();
  let bytes = 0;
  // k-quant scale searches are slow: spread big tensors' rows over worker threads or the native quantizer (same
  // bytes as one thread), and produce the next tensor while one is being quantized.
  const pool = new QuantizePool(threads, opts.quantizer ?? null);
  const make = async (t: (typeof plan)[number]) => (t.name === 'rope_freqs' ? ff! : produce(t.name, t.shape));
  const size = (t: (typeof plan)[number]) => t.shape.reduce((a, b) => a * b, 1);
  try {
    w.writeHeader();
    let made: Promise<Float32Array> | null = null;
    for (const [i, t] of plan.entries()) {
      onTensor?.(t.name, i, plan.length);
      const x = await (made ?? make(t));
      const pending = pool.quantize(t.dtype, x, t.shape[t.shape.length - 1]!);
      const next = plan[i + 1];
      made = next && size(t) < OVERLAP_MAX && size(next) < OVERLAP_MAX ? make(next) : null;
      // both are awaited; neither counts as unhandled while the other settles first
      pending.catch(() => undefined);
      made?.catch(() => undefined);
      const q = await pending;
      w.writeTensor(`${t.name}.weight`, q);
      types.set(t.dtype, (types.get(t.dtype) ?? 0) + 1);
      bytes += q.length;
    }
    w.close();
  } catch (e) {
    w.abort();
    throw e;
  } finally {
    await pool.close();
  }
  return { bytes, types };
}
