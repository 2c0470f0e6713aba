/**
 * Which element type each tensor gets in a GGUF of a given file type, following llama.cpp's llama-quantize
 * (llama-quant.cpp llama_tensor_get_type, without an importance matrix): 1-D tensors (norms), the MoE router
 * (`ffn_gate_inp`) and `rope_freqs` stay F32; with `pure` every other tensor takes the file type (llama-quantize
 * --pure). Otherwise llama.cpp's per-tensor rules for these types apply: `output` is Q6_K (Q8_0 files keep Q8_0);
 * Q4_K_M / Q5_K_M give `attn_v` and `ffn_down*` Q6_K on the layers use_more_bits picks (first and last eighth, every
 * third in between); Q4_K_S gives the first attn_v (4) and ffn_down (1/8 of layers) Q5_K; Q3_K (= Q3_K_M) and
 * Q2_K raise attn_v / ffn_down / attn_output; IQ4_NL / IQ4_XS give attn_v Q5_K when n_gqa ≥ 4 and the first eighth
 * of ffn_down Q5_K (llama.cpp's rule without an imatrix). Plain q4_k / q5_k mean Q4_K_M / Q5_K_M as in llama-quantize.
 * Rows that are not a whole number of blocks fall back as llama.cpp does (Q4_K -> Q5_0, Q5_K -> Q5_1,
 * Q6_K -> Q8_0, IQ4_XS -> IQ4_NL; Q2_K/Q3_K -> Q4_0).
 */
import type { DType } from '../../tensor/index.ts';
import { DTYPES } from '../../tensor/index.ts';
import { UsageError } from '../../util/index.ts';

export const FILE_TYPES = [
  'f32',
  'f16',
  'bf16',
  'q8_0',
  'q4_0',
  'q4_1',
  'q5_0',
  'q5_1',
  'q2_k',
  'q3_k',
  'q4_k',
  'q5_k',
  'q6_k',
  'q4_k_s',
  'q4_k_m',
  'q5_k_s',
  'q5_k_m',
  'iq4_nl',
  'iq4_xs',
] as const;
export type FileType = (typeof FILE_TYPES)[number];

/** llama.cpp's LLAMA_FTYPE_* value written as general.file_type (plain q4_k/q5_k are the _m ids, as llama-quantize). */
export const LLAMA_FTYPE: Readonly<Record<FileType, number>> = {
  f32: 0,
  f16: 1,
  q4_0: 2,
  q4_1: 3,
  q8_0: 7,
  q5_0: 8,
  q5_1: 9,
  q2_k: 10,
  q3_k: 12,
  q4_k_s: 14,
  q4_k_m: 15,
  q4_k: 15,
  q5_k_s: 16,
  q5_k_m: 17,
  q5_k: 17,
  q6_k: 18,
  bf16: 32,
  iq4_nl: 25,
  iq4_xs: 30,
};

export function parseFileType(s: string): FileType {
  const t = s.toLowerCase() as FileType;
  if (!FILE_TYPES.includes(t)) throw new UsageError(`unknown --type '${s}' (one of: ${FILE_TYPES.join(', ')})`);
  return t;
}

/** use_more_bits(i, n) from llama-quant.cpp. */
function useMoreBits(i: number, n: number): boolean {
  // C integer division: n/8 and 7*n/8 truncate.
  return i < Math.floor(n / 8) || i >= Math.floor((7 * n) / 8) || (i - Math.floor(n / 8)) % 3 === 2;
}

const FALLBACK: Partial<Record<DType, DType>> = { q2_k: 'q4_0', q3_k: 'q4_0', q4_k: 'q5_0', q5_k: 'q5_1', q6_k: 'q8_0', iq4_xs: 'iq4_nl' };

/**
 * The element type of tensor `name` (GGUF name without `.weight`) with torch-order `shape` in a file of `ftype`.
 * `nLayers` is the block count and `nGqa` = query heads / KV heads (both used by llama.cpp's rules).
 */
export function tensorTypeFor(
  ftype: FileType,
  name: string,
  shape: readonly number[],
  nLayers: number,
  opts: { pure?: boolean; nGqa?: number } = {},
): DType {
  if (shape.length < 2 || name.endsWith('ffn_gate_inp') || name === 'rope_freqs') return 'f32';
  const base = (ftype.endsWith('_m') || ftype.endsWith('_s') ? ftype.slice(0, -2) : ftype) as DType;
  let t = base;
  const row = shape[shape.length - 1]!;
  const quantized = DTYPES[base].blockSize > 1;
  if (quantized && !opts.pure) {
    const layer = /^blk\.(\d+)\./.exec(name);
    const il = layer ? Number(layer[1]) : 0;
    const n = nLayers;
    const kind = ftype === 'q4_k' ? 'q4_k_m' : ftype === 'q5_k' ? 'q5_k_m' : ftype === 'q3_k' ? 'q3_k_m' : ftype;
    if (name === 'output') {
      t = row % DTYPES[base].blockSize !== 0 ? 'q8_0' : base === 'q8_0' ? 'q8_0' : 'q6_k';
    } else if (name.endsWith('.attn_v')) {
      if (kind === 'q2_k') t = (opts.nGqa ?? 1) >= 4 ? 'q4_k' : 'q3_k';
      else if (kind === 'q3_k_m') t = il < 2 ? 'q5_k' : 'q4_k';
      else if ((kind === 'q4_k_m' || kind === 'q5_k_m') && useMoreBits(il, n)) t = 'q6_k';
      else if (kind === 'q4_k_s' && il < 4) t = 'q5_k';
      else if ((kind === 'iq4_nl' || kind === 'iq4_xs') && (opts.nGqa ?? 1) >= 4) t = 'q5_k';
    } else if (name.includes('ffn_down')) {
      if (kind === 'q2_k') t = 'q3_k';
      else if (kind === 'q3_k_m') t = il < Math.floor(n / 16) ? 'q5_k' : 'q4_k';
      else if ((kind === 'q4_k_m' || kind === 'q5_k_m') && useMoreBits(il, n)) t = 'q6_k';
      else if (kind === 'q4_k_s' && il < Math.floor(n / 8)) t = 'q5_k';
      else if ((kind === 'iq4_nl' || kind === 'iq4_xs') && il < Math.floor(n / 8)) t = 'q5_k'; // (without an imatrix)
    } else if (name.endsWith('.attn_output')) {
      if (kind === 'q2_k') t = 'q3_k';
      else if (kind === 'q3_k_m') t = 'q4_k';
    }
  }
  if (row % DTYPES[t].blockSize !== 0) {
    const fb = FALLBACK[t];
    t = fb && row % DTYPES[fb].blockSize === 0 ? fb : 'f16';
  }
  return t;
}
