/**
 * GGUF reader (versions 2 and 3, little-endian), following ggml/docs/gguf.md:
 *   magic "GGUF" | u32 version | u64 tensor_count | u64 kv_count | kv_count × (string key, u32 type, value)
 *   | tensor_count × (string name, u32 n_dims, n_dims × u64 ne, u32 ggml_type, u64 offset) | pad to alignment | data
 * Strings are u64 length + UTF-8 bytes; arrays are u32 element type + u64 count + elements (arrays may nest).
 *
 * Every count, length and offset is checked against the bytes left in the file before anything is allocated, so
 * a corrupt or hostile file ends in one ModelFileError naming what is wrong. Tensor data is read by offset into
 * one buffer per tensor; the header is read through a small sliding window.
 */
import { closeSync, fstatSync, openSync, readSync } from 'node:fs';
import type { DType, RawTensor } from '../../tensor/index.ts';
import { DTYPES } from '../../tensor/index.ts';
import { ModelFileError } from '../../util/index.ts';
import type { GgufValue } from './types.ts';
import {
  GGUF_DEFAULT_ALIGNMENT,
  GGUF_MAGIC,
  GGUF_MAX_DIMS,
  GgufType,
  MIN_ELEMENT_SIZE,
  OTHER_GGML_TYPES,
  dtypeOfGgmlType,
} from './types.ts';

export interface GgufTensorInfo {
  readonly name: string;
  readonly dtype: DType;
  /** Torch order: outermost first (ggml `ne` reversed). */
  readonly shape: readonly number[];
  /** ggml `ne`: innermost (contiguous) first. */
  readonly ne: readonly number[];
  /** Absolute byte offset of the tensor's data in the file. */
  readonly fileOffset: number;
  readonly byteLength: number;
}

export interface GgufHeader {
  readonly path: string;
  readonly version: number;
  readonly fileSize: number;
  readonly alignment: number;
  /** Absolute offset of the data section. */
  readonly dataOffset: number;
  readonly metadata: Map<string, GgufValue>;
  /** The GGUF type of every metadata value (for arrays: ARRAY; see arrayTypes), so a writer can round-trip it. */
  readonly types: Map<string, GgufType>;
  /** Element type of every array-valued key. */
  readonly arrayTypes: Map<string, GgufType>;
  /** Tensor infos in file order. */
  readonly tensors: Map<string, GgufTensorInfo>;
}

export interface GgufFile extends GgufHeader {
  /** Every tensor with its bytes read into memory, torch-order shapes. */
  readonly tensorData: Map<string, RawTensor>;
}

const MAX_DEPTH = 8;
const WINDOW = 1 << 20;
const decoder = new TextDecoder('utf-8');

/** A bounds-checked little-endian cursor over the header part of a file, reading through a sliding window. */
class HeaderCursor {
  private buf = Buffer.alloc(0);
  private bufStart = 0;
  private bufLen = 0;
  pos = 0;
  constructor(
    private readonly fd: number,
    readonly path: string,
    readonly fileSize: number,
  ) {}

  fail(detail: string): never {
    throw new ModelFileError(this.path, detail);
  }

  get remaining(): number {
    return this.fileSize - this.pos;
  }

  /** Makes n bytes at pos available in the window and returns their index in `buf`. */
  private take(n: number, what: string): number {
    if (n > this.remaining) this.fail(`truncated: ${what} needs ${n} bytes at offset ${this.pos} but the file is ${this.fileSize} bytes`);
    if (this.pos < this.bufStart || this.pos + n > this.bufStart + this.bufLen) {
      const len = Math.min(Math.max(n, WINDOW), this.fileSize - this.pos);
      if (this.buf.length < len) this.buf = Buffer.alloc(len);
      let got = 0;
      while (got < len) {
        const r = readSync(this.fd, this.buf, got, len - got, this.pos + got);
        if (r === 0) this.fail(`short read at offset ${this.pos + got}`);
        got += r;
      }
      this.bufStart = this.pos;
      this.bufLen = len;
    }
    const i = this.pos - this.bufStart;
    this.pos += n;
    return i;
  }

  u8(what: string): number {
    const i = this.take(1, what);
    return this.buf[i]!;
  }
  i8(what: string): number {
    const i = this.take(1, what);
    return this.buf.readInt8(i);
  }
  u16(what: string): number {
    const i = this.take(2, what);
    return this.buf.readUInt16LE(i);
  }
  i16(what: string): number {
    const i = this.take(2, what);
    return this.buf.readInt16LE(i);
  }
  u32(what: string): number {
    const i = this.take(4, what);
    return this.buf.readUInt32LE(i);
  }
  i32(what: string): number {
    const i = this.take(4, what);
    return this.buf.readInt32LE(i);
  }
  f32(what: string): number {
    const i = this.take(4, what);
    return this.buf.readFloatLE(i);
  }
  f64(what: string): number {
    const i = this.take(8, what);
    return this.buf.readDoubleLE(i);
  }
  u64big(what: string): bigint {
    const i = this.take(8, what);
    return this.buf.readBigUInt64LE(i);
  }
  i64big(what: string): bigint {
    const i = this.take(8, what);
    return this.buf.readBigInt64LE(i);
  }

  /** A u64 that must fit in a JS number and, as a count of `elemSize`-byte items, in the rest of the file. */
  count(what: string, elemSize: number): number {
    const v = this.u64big(what);
    if (v > BigInt(Math.floor(this.remaining / Math.max(elemSize, 1)))) {
      this.fail(`${what} is ${v}, more than the ${this.remaining} bytes left in the file can hold (truncated or corrupt file)`);
    }
    return Number(v);
  }

  /** Copies n bytes (already checked against the file size) into a fresh buffer. */
  bytes(n: number, what: string): Uint8Array {
    const out = new Uint8Array(n);
    let done = 0;
    while (done < n) {
      const chunk = Math.min(n - done, WINDOW);
      const i = this.take(chunk, what);
      out.set(this.buf.subarray(i, i + chunk), done);
      done += chunk;
    }
    return out;
  }

  string(what: string): string {
    const n = this.count(`length of ${what}`, 1);
    if (n <= WINDOW) {
      const i = this.take(n, what);
      return decoder.decode(this.buf.subarray(i, i + n));
    }
    return decoder.decode(this.bytes(n, what));
  }
}

function toNumber(v: bigint): number | bigint {
  return v <= BigInt(Number.MAX_SAFE_INTEGER) && v >= BigInt(Number.MIN_SAFE_INTEGER) ? Number(v) : v;
}

function readScalar(c: HeaderCursor, type: number, what: string): GgufValue {
  switch (type) {
    case GgufType.UINT8:
      return c.u8(what);
    case GgufType.INT8:
      return c.i8(what);
    case GgufType.UINT16:
      return c.u16(what);
    case GgufType.INT16:
      return c.i16(what);
    case GgufType.UINT32:
      return c.u32(what);
    case GgufType.INT32:
      return c.i32(what);
    case GgufType.FLOAT32:
      return c.f32(what);
    case GgufType.BOOL: {
      const b = c.u8(what);
      if (b > 1) c.fail(`${what}: bool value ${b} is neither 0 nor 1`);
      return b === 1;
    }
    case GgufType.STRING:
      return c.string(what);
    case GgufType.UINT64:
      return toNumber(c.u64big(what));
    case GgufType.INT64:
      return toNumber(c.i64big(what));
    case GgufType.FLOAT64:
      return c.f64(what);
    default:
      return c.fail(`${what}: unknown metadata value type ${type}`);
  }
}

const TYPED: Record<number, new (n: number) => { [i: number]: number | bigint }> = {
  [GgufType.UINT8]: Uint8Array,
  [GgufType.INT8]: Int8Array,
  [GgufType.UINT16]: Uint16Array,
  [GgufType.INT16]: Int16Array,
  [GgufType.UINT32]: Uint32Array,
  [GgufType.INT32]: Int32Array,
  [GgufType.FLOAT32]: Float32Array,
  [GgufType.FLOAT64]: Float64Array,
  [GgufType.UINT64]: BigUint64Array,
  [GgufType.INT64]: BigInt64Array,
};

function readArray(c: HeaderCursor, what: string, depth: number): { value: GgufValue; elemType: number } {
  if (depth > MAX_DEPTH) c.fail(`${what}: arrays nested deeper than ${MAX_DEPTH}`);
  const elemType = c.u32(`element type of ${what}`);
  const minSize = MIN_ELEMENT_SIZE[elemType];
  if (minSize === undefined) c.fail(`${what}: unknown array element type ${elemType}`);
  const n = c.count(`element count of ${what}`, minSize);
  const Ctor = TYPED[elemType];
  if (Ctor) {
    const arr = new Ctor(n);
    const big = elemType === GgufType.UINT64 || elemType === GgufType.INT64;
    for (let i = 0; i < n; i++) {
      arr[i] = big ? (elemType === GgufType.UINT64 ? c.u64big(what) : c.i64big(what)) : (readScalar(c, elemType, what) as number);
    }
    return { value: arr as unknown as GgufValue, elemType };
  }
  if (elemType === GgufType.BOOL || elemType === GgufType.STRING) {
    const arr: (boolean | string)[] = [];
    for (let i = 0; i < n; i++) arr.push(readScalar(c, elemType, `${what}[${i}]`) as boolean | string);
    return { value: arr as GgufValue, elemType };
  }
  const arr: GgufValue[][] = [];
  for (let i = 0; i < n; i++) arr.push(readArray(c, `${what}[${i}]`, depth + 1).value as GgufValue[]);
  return { value: arr, elemType };
}

function ggmlTypeError(c: HeaderCursor, name: string, id: number): never {
  const known = OTHER_GGML_TYPES[id];
  return c.fail(
    known ? `tensor '${name}' has type ${known}, which this engine does not support` : `tensor '${name}' has unknown ggml type id ${id}`,
  );
}

function parseHeader(c: HeaderCursor): GgufHeader {
  if (c.fileSize < 24) c.fail(`file is ${c.fileSize} bytes, too short for a GGUF header`);
  const magic = c.u32('magic');
  if (magic !== GGUF_MAGIC) c.fail(`not a GGUF file (magic 0x${magic.toString(16).padStart(8, '0')})`);
  const version = c.u32('version');
  if (version === 1) c.fail('GGUF version 1 is not supported (re-convert the model with a current llama.cpp)');
  if (version !== 2 && version !== 3) {
    c.fail(
      (version & 0xffff) === 0
        ? `big-endian GGUF (version bytes ${version.toString(16)}) is not supported`
        : `unsupported GGUF version ${version}`,
    );
  }
  // A tensor info takes at least 8 (name length) + 4 (n_dims) + 8 (one ne) + 4 (type) + 8 (offset) bytes.
  const nTensors = c.count('tensor count', 32);
  const nKv = c.count('metadata count', 13);
  const metadata = new Map<string, GgufValue>();
  const types = new Map<string, GgufType>();
  const arrayTypes = new Map<string, GgufType>();
  for (let k = 0; k < nKv; k++) {
    const key = c.string(`metadata key #${k}`);
    if (metadata.has(key)) c.fail(`duplicate metadata key '${key}'`);
    const type = c.u32(`type of '${key}'`);
    if (type === GgufType.ARRAY) {
      const { value, elemType } = readArray(c, `'${key}'`, 0);
      metadata.set(key, value);
      arrayTypes.set(key, elemType as GgufType);
    } else {
      metadata.set(key, readScalar(c, type, `'${key}'`));
    }
    types.set(key, type as GgufType);
  }
  let alignment = GGUF_DEFAULT_ALIGNMENT;
  if (metadata.has('general.alignment')) {
    const a = metadata.get('general.alignment');
    if (types.get('general.alignment') !== GgufType.UINT32 || typeof a !== 'number' || a === 0 || (a & (a - 1)) !== 0) {
      c.fail(`general.alignment must be a non-zero power of two uint32, got ${String(a)}`);
    }
    alignment = a;
  }
  const infos: { name: string; dtype: DType; ne: number[]; offset: bigint }[] = [];
  const seen = new Set<string>();
  for (let t = 0; t < nTensors; t++) {
    const name = c.string(`name of tensor #${t}`);
    if (seen.has(name)) c.fail(`duplicate tensor name '${name}'`);
    seen.add(name);
    const nDims = c.u32(`dimension count of '${name}'`);
    if (nDims < 1 || nDims > GGUF_MAX_DIMS) c.fail(`tensor '${name}' has ${nDims} dimensions (1..${GGUF_MAX_DIMS} allowed)`);
    const ne: number[] = [];
    for (let d = 0; d < nDims; d++) {
      const v = c.u64big(`dimension ${d} of '${name}'`);
      if (v > BigInt(Number.MAX_SAFE_INTEGER)) c.fail(`tensor '${name}' dimension ${d} is ${v}, too large`);
      ne.push(Number(v));
    }
    const typeId = c.u32(`type of '${name}'`);
    const dtype = dtypeOfGgmlType(typeId) ?? ggmlTypeError(c, name, typeId);
    const offset = c.u64big(`offset of '${name}'`);
    infos.push({ name, dtype, ne, offset });
  }
  const dataOffset = Math.ceil(c.pos / alignment) * alignment;
  if (dataOffset > c.fileSize) c.fail(`truncated: data section would start at ${dataOffset} but the file is ${c.fileSize} bytes`);
  const dataSize = c.fileSize - dataOffset;
  const tensors = new Map<string, GgufTensorInfo>();
  for (const { name, dtype, ne, offset } of infos) {
    const { blockSize, bytesPerBlock } = DTYPES[dtype];
    if (ne[0]! % blockSize !== 0)
      c.fail(`tensor '${name}' has rows of ${ne[0]} elements, not a multiple of the ${dtype} block size ${blockSize}`);
    // Multiply in bigint: four u64 dimensions can overflow a double's exact range long before the size check.
    let bytes = BigInt(ne[0]! / blockSize) * BigInt(bytesPerBlock);
    for (let d = 1; d < ne.length; d++) bytes *= BigInt(ne[d]!);
    if (offset % BigInt(alignment) !== 0n) c.fail(`tensor '${name}' offset ${offset} is not a multiple of the alignment ${alignment}`);
    if (offset + bytes > BigInt(dataSize)) {
      c.fail(
        `truncated: tensor '${name}' (${dtype} [${[...ne].reverse().join(', ')}], ${bytes} bytes at data offset ${offset}) ends past the end of the file`,
      );
    }
    tensors.set(name, {
      name,
      dtype,
      ne,
      shape: [...ne].reverse(),
      fileOffset: dataOffset + Number(offset),
      byteLength: Number(bytes),
    });
  }
  // Tensors must not overlap: otherwise a small file could make the loader allocate many times its own size.
  const sorted = [...tensors.values()].sort((a, b) => a.fileOffset - b.fileOffset);
  for (let i = 1; i < sorted.length; i++) {
    const prev = sorted[i - 1]!,
      cur = sorted[i]!;
    if (prev.fileOffset + prev.byteLength > cur.fileOffset) c.fail(`tensors '${prev.name}' and '${cur.name}' overlap`);
  }
  return { path: c.path, version, fileSize: c.fileSize, alignment, dataOffset, metadata, types, arrayTypes, tensors };
}

function openFile(path: string): number {
  try {
    return openSync(path, 'r');
  } catch (e) {
    throw new ModelFileError(path, `cannot open (${(e as NodeJS.ErrnoException).code ?? (e as Error).message})`);
  }
}

/** Reads and validates the header and tensor infos of a GGUF file, without reading tensor data. */
export function readGgufHeader(path: string): GgufHeader {
  const fd = openFile(path);
  try {
    return parseHeader(new HeaderCursor(fd, path, fstatSync(fd).size));
  } finally {
    closeSync(fd);
  }
}

/** Reads one tensor's bytes (validated by readGgufHeader) from an open file descriptor. */
export function readTensorBytes(fd: number, info: GgufTensorInfo, path = ''): Uint8Array {
  const out = new Uint8Array(info.byteLength);
  let done = 0;
  while (done < info.byteLength) {
    const r = readSync(fd, out, done, Math.min(info.byteLength - done, 1 << 30), info.fileOffset + done);
    if (r === 0) throw new ModelFileError(path, `short read in tensor '${info.name}'`);
    done += r;
  }
  return out;
}

/**
 * Reads a whole GGUF file: metadata, tensor infos and every tensor's bytes (one buffer per tensor).
 * `filter` (by tensor name) skips tensors the caller does not need.
 */
export function readGguf(path: string, filter?: (name: string) => boolean): GgufFile {
  const fd = openFile(path);
  try {
    const header = parseHeader(new HeaderCursor(fd, path, fstatSync(fd).size));
    const tensorData = new Map<string, RawTensor>();
    for (const info of header.tensors.values()) {
      if (filter && !filter(info.name)) continue;
      tensorData.set(info.name, { name: info.name, dtype: info.dtype, shape: info.shape, bytes: readTensorBytes(fd, info, path) });
    }
    return { ...header, tensorData };
  } finally {
    closeSync(fd);
  }
}

/** True when the first four bytes of the file are "GGUF". */
export function isGgufFile(path: string): boolean {
  let fd: number;
  try {
    fd = openSync(path, 'r');
  } catch {
    return false;
  }
  try {
    const b = Buffer.alloc(4);
    return readSync(fd, b, 0, 4, 0) === 4 && b.readUInt32LE(0) === GGUF_MAGIC;
  } finally {
    closeSync(fd);
  }
}
