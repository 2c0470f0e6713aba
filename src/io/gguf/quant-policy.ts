/**
 * Which element type each tensor gets in a GGUF of a given file type, following llama.cpp's llama-quantize:
 * 1-D tensors (norms), the MoE router (`ffn_gate_inp`) and `rope_freqs` stay F32; everything else takes the file
 * type. The `_m` / `_s` k-quant mixes follow llama.cpp's main rules for them: `output` is Q6_K, and in `_m` the
 * `attn_v` and `ffn_down*` tensors of the layers picked by use_more_bits (first and last eighth, every third in
 * between) are Q6_K. Rows that are not a whole number of 256-element super-blocks fall back to a 32-block type as
 * llama.cpp does (Q4_K -> Q5_0, Q5_K -> Q5_1, Q6_K -> Q8_0, Q2_K/Q3_K -> Q4_0).
 */
import type { DType } from '../../tensor/index.ts';
import { DTYPES } from '../../tensor/index.ts';
import { UsageError } from '../../util/index.ts';

export const FILE_TYPES = [
  'f32', 'f16', 'bf16', 'q8_0', 'q4_0', 'q4_1', 'q5_0', 'q5_1', 'q2_k', 'q3_k', 'q4_k', 'q5_k', 'q6_k',
  'q4_k_s', 'q4_k_m', 'q5_k_s', 'q5_k_m',
] as const;
export type FileType = (typeof FILE_TYPES)[number];

/** llama.cpp's LLAMA_FTYPE_* value written as general.file_type (plain q4_k/q5_k are the _m ids, as llama-quantize). */
export const LLAMA_FTYPE: Readonly<Record<FileType, number>> = {
  f32: 0, f16: 1, q4_0: 2, q4_1: 3, q8_0: 7, q5_0: 8, q5_1: 9, q2_k: 10, q3_k: 12, q4_k_s: 14, q4_k_m: 15, q4_k: 15,
  q5_k_s: 16, q5_k_m: 17, q5_k: 17, q6_k: 18, bf16: 32,
};

export function parseFileType(s: string): FileType {
  const t = s.toLowerCase() as FileType;
  if (!FILE_TYPES.includes(t)) throw new UsageError(`unknown --type '${s}' (one of: ${FILE_TYPES.join(', ')})`);
  return t;
}

/** use_more_bits(i, n) from llama-quant.cpp. */
function useMoreBits(i: number, n: number): boolean {
  return i < n / 8 || i >= (7 * n) / 8 || (i - Math.floor(n / 8)) % 3 === 2;
}

const FALLBACK: Partial<Record<DType, DType>> = { q2_k: 'q4_0', q3_k: 'q4_0', q4_k: 'q5_0', q5_k: 'q5_1', q6_k: 'q8_0' };

/**
 * The element type of tensor `name` (GGUF name without `.weight`) with torch-order `shape` in a file of `ftype`.
 * `nLayers` is the block count (for the use_more_bits layer choice of the _m mixes).
 */
export function tensorTypeFor(ftype: FileType, name: string, shape: readonly number[], nLayers: number): DType {
  if (shape.length < 2 || name.endsWith('ffn_gate_inp') || name === 'rope_freqs') return 'f32';
  const mix = ftype.endsWith('_m') || ftype.endsWith('_s') ? ftype.slice(-1) : '';
  let t = (mix ? ftype.slice(0, -2) : ftype) as DType;
  if (mix) {
    const layer = /^blk\.(\d+)\./.exec(name);
    const il = layer ? Number(layer[1]) : -1;
    if (name === 'output') t = 'q6_k';
    else if (mix === 'm' && il >= 0 && (name.endsWith('.attn_v') || /\.ffn_down(_exps|_shexp)?$/.test(name)) && useMoreBits(il, nLayers)) t = 'q6_k';
  }
  const row = shape[shape.length - 1]!;
  if (row % DTYPES[t].blockSize !== 0) {
    const fb = FALLBACK[t];
    t = fb && row % DTYPES[fb].blockSize === 0 ? fb : 'f16';
  }
  return t;
}
