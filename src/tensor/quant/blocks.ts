/**
 * The GGML block formats' row codecs, gathered for registration by ./index.ts (which imports this module, so
 * this one must not import index.ts back: the registry would not exist yet while this file is evaluated).
 * Legacy 32-element formats live in ./legacy.ts, k-quants in ./kquants.ts.
 */
import type { DType } from '../dtype.ts';
import type { RowDequantizer, RowQuantizer } from './index.ts';
import { dequantQ4_0, dequantQ4_1, dequantQ5_0, dequantQ5_1, dequantQ8_0, quantQ4_0, quantQ4_1, quantQ5_0, quantQ5_1, quantQ8_0 } from './legacy.ts';
import { dequantQ2K, dequantQ3K, dequantQ4K, dequantQ5K, dequantQ6K, dequantQ8K, quantQ2K, quantQ3K, quantQ4K, quantQ5K, quantQ6K, quantQ8K } from './kquants.ts';

export const BLOCK_CODECS: ReadonlyArray<readonly [DType, RowDequantizer, RowQuantizer]> = [
  ['q4_0', dequantQ4_0, quantQ4_0],
  ['q4_1', dequantQ4_1, quantQ4_1],
  ['q5_0', dequantQ5_0, quantQ5_0],
  ['q5_1', dequantQ5_1, quantQ5_1],
  ['q8_0', dequantQ8_0, quantQ8_0],
  ['q2_k', dequantQ2K, quantQ2K],
  ['q3_k', dequantQ3K, quantQ3K],
  ['q4_k', dequantQ4K, quantQ4K],
  ['q5_k', dequantQ5K, quantQ5K],
  ['q6_k', dequantQ6K, quantQ6K],
  ['q8_k', dequantQ8K, quantQ8K],
];
