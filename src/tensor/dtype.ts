/**
 * Element types of stored tensors: plain floats and the GGML block-quantized formats.
 * A quantized tensor is stored row by row; each row of K elements is K / blockSize blocks of bytesPerBlock bytes,
 * exactly as in GGUF files (ggml-common.h), so file bytes can be used in place.
 */
export type DType =
  | 'f32'
  | 'f16'
  | 'bf16'
  | 'q4_0'
  | 'q4_1'
  | 'q5_0'
  | 'q5_1'
  | 'q8_0'
  | 'q2_k'
  | 'q3_k'
  | 'q4_k'
  | 'q5_k'
  | 'q6_k'
  | 'q8_k'
  | 'iq2_xxs'
  | 'iq2_xs'
  | 'iq2_s'
  | 'iq3_xxs'
  | 'iq3_s'
  | 'iq1_s'
  | 'iq1_m'
  | 'iq4_nl'
  | 'iq4_xs';

export interface DTypeInfo {
  /** Elements per block (1 for plain floats). */
  readonly blockSize: number;
  /** Bytes per block. */
  readonly bytesPerBlock: number;
  /** GGML type id as written in GGUF tensor infos. */
  readonly ggmlType: number;
}

export const DTYPES: Readonly<Record<DType, DTypeInfo>> = {
  f32: { blockSize: 1, bytesPerBlock: 4, ggmlType: 0 },
  f16: { blockSize: 1, bytesPerBlock: 2, ggmlType: 1 },
  q4_0: { blockSize: 32, bytesPerBlock: 18, ggmlType: 2 },
  q4_1: { blockSize: 32, bytesPerBlock: 20, ggmlType: 3 },
  q5_0: { blockSize: 32, bytesPerBlock: 22, ggmlType: 6 },
  q5_1: { blockSize: 32, bytesPerBlock: 24, ggmlType: 7 },
  q8_0: { blockSize: 32, bytesPerBlock: 34, ggmlType: 8 },
  q2_k: { blockSize: 256, bytesPerBlock: 84, ggmlType: 10 },
  q3_k: { blockSize: 256, bytesPerBlock: 110, ggmlType: 11 },
  q4_k: { blockSize: 256, bytesPerBlock: 144, ggmlType: 12 },
  q5_k: { blockSize: 256, bytesPerBlock: 176, ggmlType: 13 },
  q6_k: { blockSize: 256, bytesPerBlock: 210, ggmlType: 14 },
  q8_k: { blockSize: 256, bytesPerBlock: 292, ggmlType: 15 },
  bf16: { blockSize: 1, bytesPerBlock: 2, ggmlType: 30 },
  // i-quants (src/tensor/quant/iquants.ts)
  iq2_xxs: { blockSize: 256, bytesPerBlock: 66, ggmlType: 16 },
  iq2_xs: { blockSize: 256, bytesPerBlock: 74, ggmlType: 17 },
  iq3_xxs: { blockSize: 256, bytesPerBlock: 98, ggmlType: 18 },
  iq1_s: { blockSize: 256, bytesPerBlock: 50, ggmlType: 19 },
  iq4_nl: { blockSize: 32, bytesPerBlock: 18, ggmlType: 20 },
  iq3_s: { blockSize: 256, bytesPerBlock: 110, ggmlType: 21 },
  iq2_s: { blockSize: 256, bytesPerBlock: 82, ggmlType: 22 },
  iq4_xs: { blockSize: 256, bytesPerBlock: 136, ggmlType: 23 },
  iq1_m: { blockSize: 256, bytesPerBlock: 56, ggmlType: 29 },
};

export function isQuantized(dtype: DType): boolean {
  return DTYPES[dtype].blockSize > 1;
}

/** Bytes taken by `nElements` of `dtype`; nElements must be a whole number of blocks. */
export function byteSize(dtype: DType, nElements: number): number {
  const { blockSize, bytesPerBlock } = DTYPES[dtype];
  if (nElements % blockSize !== 0) throw new RangeError(`${nElements} elements is not a whole number of ${dtype} blocks of ${blockSize}`);
  return (nElements / blockSize) * bytesPerBlock;
}
