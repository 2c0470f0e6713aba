/**
 * GGUF v3 writer (little-endian). Streaming: the header (metadata + tensor infos with offsets computed from the
 * declared shapes) is written first, then each tensor's bytes in declaration order, so a model of any size is
 * written holding one tensor at a time.
 *
 *   const w = new GgufWriter(path);
 *   w.set('general.architecture', 'llama4');          // type inferred, or w.set(key, value, GgufType.UINT32)
 *   w.addTensor('token_embd.weight', 'q8_0', [vocab, hidden]);   // torch-order shape
 *   w.writeHeader();
 *   w.writeTensor('token_embd.weight', bytes);         // in the order of addTensor
 *   w.close();
 */
import { closeSync, openSync, writeSync } from 'node:fs';
import type { DType } from '../../tensor/index.ts';
import { DTYPES, byteSize } from '../../tensor/index.ts';
import { UsageError } from '../../util/index.ts';
import type { GgufValue } from './types.ts';
import { GGUF_DEFAULT_ALIGNMENT, GGUF_MAGIC, GgufType } from './types.ts';

interface Entry {
  readonly value: GgufValue;
  readonly type: GgufType;
  readonly elemType?: GgufType;
}

interface PendingTensor {
  readonly name: string;
  readonly dtype: DType;
  readonly shape: readonly number[];
  readonly offset: number;
  readonly byteLength: number;
}

/** Infers the GGUF type of a JS value: integers uint32 (int32 if negative), other numbers float32. */
export function inferGgufType(v: GgufValue): { type: GgufType; elemType?: GgufType } {
  if (typeof v === 'string') return { type: GgufType.STRING };
  if (typeof v === 'boolean') return { type: GgufType.BOOL };
  if (typeof v === 'bigint') return { type: v < 0n ? GgufType.INT64 : GgufType.UINT64 };
  if (typeof v === 'number') {
    if (Number.isInteger(v)) return { type: v < 0 ? GgufType.INT32 : v > 0xffffffff ? GgufType.UINT64 : GgufType.UINT32 };
    return { type: GgufType.FLOAT32 };
  }
  return { type: GgufType.ARRAY, elemType: arrayElemType(v) };
}

function arrayElemType(v: GgufValue): GgufType {
  if (v instanceof Uint8Array) return GgufType.UINT8;
  if (v instanceof Int8Array) return GgufType.INT8;
  if (v instanceof Uint16Array) return GgufType.UINT16;
  if (v instanceof Int16Array) return GgufType.INT16;
  if (v instanceof Uint32Array) return GgufType.UINT32;
  if (v instanceof Int32Array) return GgufType.INT32;
  if (v instanceof Float32Array) return GgufType.FLOAT32;
  if (v instanceof Float64Array) return GgufType.FLOAT64;
  if (v instanceof BigUint64Array) return GgufType.UINT64;
  if (v instanceof BigInt64Array) return GgufType.INT64;
  if (Array.isArray(v)) {
    const first = v[0];
    if (first === undefined || typeof first === 'string') return GgufType.STRING;
    if (typeof first === 'boolean') return GgufType.BOOL;
    if (Array.isArray(first) || ArrayBuffer.isView(first)) return GgufType.ARRAY;
    if (typeof first === 'number') return Number.isInteger(first) ? GgufType.INT32 : GgufType.FLOAT32;
  }
  throw new UsageError(`cannot store ${Object.prototype.toString.call(v)} as a GGUF array`);
}

/** A growable little-endian byte buffer for the header. */
class Bytes {
  private buf = Buffer.alloc(1 << 16);
  length = 0;
  private grow(n: number): number {
    if (this.length + n > this.buf.length) {
      const next = Buffer.alloc(Math.max(this.buf.length * 2, this.length + n));
      this.buf.copy(next, 0, 0, this.length);
      this.buf = next;
    }
    const at = this.length;
    this.length += n;
    return at;
  }
  u8(v: number): void {
    const at = this.grow(1);
    this.buf.writeUInt8(v, at);
  }
  i8(v: number): void {
    const at = this.grow(1);
    this.buf.writeInt8(v, at);
  }
  u16(v: number): void {
    const at = this.grow(2);
    this.buf.writeUInt16LE(v, at);
  }
  i16(v: number): void {
    const at = this.grow(2);
    this.buf.writeInt16LE(v, at);
  }
  u32(v: number): void {
    const at = this.grow(4);
    this.buf.writeUInt32LE(v, at);
  }
  i32(v: number): void {
    const at = this.grow(4);
    this.buf.writeInt32LE(v, at);
  }
  f32(v: number): void {
    const at = this.grow(4);
    this.buf.writeFloatLE(v, at);
  }
  f64(v: number): void {
    const at = this.grow(8);
    this.buf.writeDoubleLE(v, at);
  }
  u64(v: number | bigint): void {
    const at = this.grow(8);
    this.buf.writeBigUInt64LE(BigInt(v), at);
  }
  i64(v: number | bigint): void {
    const at = this.grow(8);
    this.buf.writeBigInt64LE(BigInt(v), at);
  }
  str(s: string): void {
    const b = Buffer.from(s, 'utf8');
    this.u64(b.length);
    const at = this.grow(b.length); // grow() may replace this.buf: take the index first
    b.copy(this.buf, at);
  }
  pad(alignment: number): void {
    const n = (alignment - (this.length % alignment)) % alignment;
    const at = this.grow(n);
    this.buf.fill(0, at, this.length);
  }
  view(): Buffer {
    return this.buf.subarray(0, this.length);
  }
}

function writeScalar(b: Bytes, type: GgufType, v: unknown, key: string): void {
  const num = (): number => {
    if (typeof v !== 'number' && typeof v !== 'bigint') throw new UsageError(`GGUF key '${key}': ${String(v)} is not a number`);
    return Number(v);
  };
  switch (type) {
    case GgufType.UINT8:
      return b.u8(num());
    case GgufType.INT8:
      return b.i8(num());
    case GgufType.UINT16:
      return b.u16(num());
    case GgufType.INT16:
      return b.i16(num());
    case GgufType.UINT32:
      return b.u32(num());
    case GgufType.INT32:
      return b.i32(num());
    case GgufType.FLOAT32:
      return b.f32(num());
    case GgufType.FLOAT64:
      return b.f64(num());
    case GgufType.UINT64:
      return b.u64(typeof v === 'bigint' ? v : num());
    case GgufType.INT64:
      return b.i64(typeof v === 'bigint' ? v : num());
    case GgufType.BOOL:
      return b.u8(v ? 1 : 0);
    case GgufType.STRING:
      return b.str(String(v));
    default:
      throw new UsageError(`GGUF key '${key}': cannot write value type ${type} as a scalar`);
  }
}

function writeArray(b: Bytes, elemType: GgufType, v: GgufValue, key: string): void {
  const items = v as ArrayLike<unknown>;
  b.u32(elemType);
  b.u64(items.length);
  for (let i = 0; i < items.length; i++) {
    if (elemType === GgufType.ARRAY) {
      const inner = items[i] as GgufValue;
      writeArray(b, arrayElemType(inner), inner, key);
    } else {
      writeScalar(b, elemType, items[i], key);
    }
  }
}

export class GgufWriter {
  private readonly kv = new Map<string, Entry>();
  private readonly pending: PendingTensor[] = [];
  private dataSize = 0;
  private fd: number | null = null;
  private next = 0;
  private written = 0;

  constructor(
    readonly path: string,
    readonly alignment = GGUF_DEFAULT_ALIGNMENT,
  ) {
    if (alignment <= 0 || (alignment & (alignment - 1)) !== 0) throw new UsageError(`alignment ${alignment} is not a power of two`);
  }

  /** Sets a metadata key; the type is inferred unless given (for arrays, `type` is the element type). */
  set(key: string, value: GgufValue, type?: GgufType): this {
    if (this.fd !== null) throw new UsageError('GGUF metadata must be set before writeHeader()');
    const inferred = inferGgufType(value);
    if (type === undefined) this.kv.set(key, { value, ...inferred });
    else if (inferred.type === GgufType.ARRAY) this.kv.set(key, { value, type: GgufType.ARRAY, elemType: type });
    else this.kv.set(key, { value, type });
    return this;
  }

  /** Declares a tensor (torch-order shape); its bytes are written later with writeTensor, in this order. */
  addTensor(name: string, dtype: DType, shape: readonly number[]): this {
    if (this.fd !== null) throw new UsageError('tensors must be declared before writeHeader()');
    if (shape.length < 1 || shape.length > 4) throw new UsageError(`tensor '${name}': ${shape.length} dimensions (1..4 allowed)`);
    const n = shape.reduce((a, b) => a * b, 1);
    if (shape[shape.length - 1]! % DTYPES[dtype].blockSize !== 0) {
      throw new UsageError(`tensor '${name}': row length ${shape[shape.length - 1]} is not a multiple of the ${dtype} block size`);
    }
    const byteLength = byteSize(dtype, n);
    this.pending.push({ name, dtype, shape, offset: this.dataSize, byteLength });
    this.dataSize += Math.ceil(byteLength / this.alignment) * this.alignment;
    return this;
  }

  writeHeader(): void {
    const b = new Bytes();
    b.u32(GGUF_MAGIC);
    b.u32(3);
    b.u64(this.pending.length);
    const kv = new Map(this.kv);
    if (this.alignment !== GGUF_DEFAULT_ALIGNMENT) kv.set('general.alignment', { value: this.alignment, type: GgufType.UINT32 });
    b.u64(kv.size);
    for (const [key, e] of kv) {
      b.str(key);
      b.u32(e.type);
      if (e.type === GgufType.ARRAY) writeArray(b, e.elemType!, e.value, key);
      else writeScalar(b, e.type, e.value, key);
    }
    for (const t of this.pending) {
      b.str(t.name);
      b.u32(t.shape.length);
      for (let d = t.shape.length - 1; d >= 0; d--) b.u64(t.shape[d]!);
      b.u32(DTYPES[t.dtype].ggmlType);
      b.u64(t.offset);
    }
    b.pad(this.alignment);
    this.fd = openSync(this.path, 'w');
    this.put(b.view());
  }

  private put(data: Uint8Array): void {
    let done = 0;
    while (done < data.length) done += writeSync(this.fd!, data, done, data.length - done);
    this.written += data.length;
  }

  /** Writes the next declared tensor's bytes (must match its declared name and size). */
  writeTensor(name: string, bytes: Uint8Array): void {
    if (this.fd === null) throw new UsageError('writeHeader() must come before writeTensor()');
    const t = this.pending[this.next];
    if (!t || t.name !== name) throw new UsageError(`expected tensor '${t?.name ?? '(none)'}' next, got '${name}'`);
    if (bytes.length !== t.byteLength) throw new UsageError(`tensor '${name}': ${bytes.length} bytes, expected ${t.byteLength}`);
    this.put(bytes);
    const pad = Math.ceil(t.byteLength / this.alignment) * this.alignment - t.byteLength;
    if (pad) this.put(new Uint8Array(pad));
    this.next++;
  }

  /** Closes the file; every declared tensor must have been written. */
  close(): void {
    if (this.fd === null) return;
    const fd = this.fd;
    this.fd = null;
    closeSync(fd);
    if (this.next !== this.pending.length) throw new UsageError(`GGUF closed after ${this.next} of ${this.pending.length} tensors`);
  }

  /** Closes without checks (after an error). */
  abort(): void {
    if (this.fd !== null) closeSync(this.fd);
    this.fd = null;
  }
}
