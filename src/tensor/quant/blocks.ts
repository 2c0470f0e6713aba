/**
 * The GGML block formats' row codecs, gathered for registration by ./index.ts (which imports this module, so
 * this one must not import index.ts back: the registry would not exist yet while this file is evaluated).
 * Legacy 32-element formats live in ./legacy.ts, k-quants in ./kquants.ts, i-quants in ./iquants.ts.
 */
import type { DType } from '../dtype.ts';
import type { RowDequantizer, RowQuantizer } from './index.ts';
import {
  dequantQ4_0,
  dequantQ4_1,
  dequantQ5_0,
  dequantQ5_1,
  dequantQ8_0,
  quantQ4_0,
  quantQ4_1,
  quantQ5_0,
  quantQ5_1,
  quantQ8_0,
} from './legacy.ts';
import {
  dequantIq1M,
  dequantIq1S,
  dequantIq2S,
  dequantIq2Xs,
  dequantIq2Xxs,
  dequantIq3S,
  dequantIq3Xxs,
  dequantIq4Nl,
  dequantIq4Xs,
  quantIq4Nl,
  quantIq4Xs,
} from './iquants.ts';
import {
  dequantQ2K,
  dequantQ3K,
  dequantQ4K,
  dequantQ5K,
  dequantQ6K,
  dequantQ8K,
  quantQ2K,
  quantQ3K,
  quantQ4K,
  quantQ5K,
  quantQ6K,
  quantQ8K,
} from './kquants.ts';

export const BLOCK_CODECS: ReadonlyArray<readonly [DType, RowDequantizer, RowQuantizer?]> = [
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
  // i-quants (./iquants.ts): only IQ4_NL / IQ4_XS are written (the others need an importance matrix)
  ['iq4_nl', dequantIq4Nl, quantIq4Nl],
  ['iq4_xs', dequantIq4Xs, quantIq4Xs],
  ['iq2_xxs', dequantIq2Xxs],
  ['iq2_xs', dequantIq2Xs],
  ['iq2_s', dequantIq2S],
  ['iq3_xxs', dequantIq3Xxs],
  ['iq3_s', dequantIq3S],
  ['iq1_s', dequantIq1S],
  ['iq1_m', dequantIq1M],
];
