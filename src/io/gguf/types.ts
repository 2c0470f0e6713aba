/**
 * GGUF metadata value types and the JS shapes this project uses for them.
 *
 * Scalars: integers and floats are numbers (64-bit integers become bigint only beyond 2^53), bool is boolean,
 * string is string. Arrays: numeric arrays are typed arrays (the array class carries the GGUF element type),
 * bool arrays boolean[], string arrays string[], arrays of arrays GgufValue[][].
 */
import type { DType } from '../../tensor/index.ts';
import { DTYPES } from '../../tensor/index.ts';

export const GgufType = {
  UINT8: 0,
  INT8: 1,
  UINT16: 2,
  INT16: 3,
  UINT32: 4,
  INT32: 5,
  FLOAT32: 6,
  BOOL: 7,
  STRING: 8,
  ARRAY: 9,
  UINT64: 10,
  INT64: 11,
  FLOAT64: 12,
} as const;
/** A GGUF value type id (0..12). */
export type GgufType = (typeof GgufType)[keyof typeof GgufType];

export const GGUF_TYPE_NAMES: readonly string[] = [
  'uint8',
  'int8',
  'uint16',
  'int16',
  'uint32',
  'int32',
  'float32',
  'bool',
  'string',
  'array',
  'uint64',
  'int64',
  'float64',
];

export type GgufTypedArray =
  | Uint8Array
  | Int8Array
  | Uint16Array
  | Int16Array
  | Uint32Array
  | Int32Array
  | Float32Array
  | Float64Array
  | BigUint64Array
  | BigInt64Array;

export type GgufValue = number | bigint | boolean | string | GgufTypedArray | boolean[] | string[] | GgufValue[][];

/** Bytes per element of the fixed-size scalar types (0 for string/array). */
export const SCALAR_SIZE: readonly number[] = [1, 1, 2, 2, 4, 4, 4, 1, 0, 0, 8, 8, 8];

/** Smallest encoding of one element of each type: a string is at least its u64 length, an array its header. */
export const MIN_ELEMENT_SIZE: readonly number[] = [1, 1, 2, 2, 4, 4, 4, 1, 8, 12, 8, 8, 8];

export const GGUF_MAGIC = 0x46554747; // "GGUF" read as little-endian u32
export const GGUF_DEFAULT_ALIGNMENT = 32;
/** GGML_MAX_DIMS. */
export const GGUF_MAX_DIMS = 4;

const BY_GGML_TYPE = new Map<number, DType>(Object.entries(DTYPES).map(([k, v]) => [v.ggmlType, k as DType]));

/** The DType of a GGML type id, or undefined for types this project does not implement (TQ*, MXFP4 …). */
export function dtypeOfGgmlType(id: number): DType | undefined {
  return BY_GGML_TYPE.get(id);
}

/** GGML type names of ids this project cannot decode, for clear error messages. */
export const OTHER_GGML_TYPES: Readonly<Record<number, string>> = {
  4: 'Q4_2 (removed)',
  5: 'Q4_3 (removed)',
  9: 'Q8_1',
  24: 'I8',
  25: 'I16',
  26: 'I32',
  27: 'I64',
  28: 'F64',
  34: 'TQ1_0',
  35: 'TQ2_0',
  39: 'MXFP4',
};
