/**
 * KV caches, one implementation per kind of Llama 4 attention layer (as mlx-lm's ChunkedKVCache / KVCache and
 * llama.cpp's iSWA cache):
 * - FullKvCache (global NoPE layers): every position, grows with the context.
 * - ChunkedKvCache (RoPE layers): a query at position p sees only keys in its own chunk [C·floor(p/C), p], so after
 *   each step the cache keeps only the current chunk — its memory never exceeds one chunk plus the step's tokens,
 *   whatever the context length.
 * Rows are [nKvHeads · headDim] values (keys stored after RoPE and qk-norm, as the reference does), kept as
 * float32 (exact) or compressed to f16 / q8_0 (KvType, src/tensor/kv.ts) as they are appended — llama.cpp's
 * --cache-type-k/v. Attention reads the compressed rows in place; truncate/clone/bytes work on the stored form.
 */
import type { KvData, KvType } from '../tensor/index.ts';
import { allocKv, encodeKv, kvElements } from '../tensor/index.ts';

/** What attention needs after an append: keys/values for positions kPos0 .. kPos0 + S - 1. */
export interface KvView {
  readonly k: KvData; // [S, nKvHeads, headDim] stored as kvType
  readonly v: KvData;
  readonly kvType: KvType;
  readonly kPos0: number;
  readonly S: number;
}

export interface LayerCache {
  readonly kvType: KvType;
  /** Number of positions processed (the next row goes at position `length`). */
  readonly length: number;
  /** Appends n rows for positions length .. length + n - 1 and returns every key those queries may need. */
  append(k: Float32Array, v: Float32Array, n: number): KvView;
  /** Drops rows no future query can see (called after attention for the appended rows has run). */
  settle(): void;
  /** True when truncate(length) can succeed. */
  canTruncate(length: number): boolean;
  truncate(length: number): void;
  clone(): LayerCache;
  /** Bytes of key/value storage currently allocated. */
  bytes(): number;
}

/** Stores float32 values as a KV type: encodeKv's signature (a backend may supply the same bits faster). */
export type KvEncoder = (type: KvType, src: Float32Array, so: number, values: number, dst: KvData, o: number) => void;

/** Growable storage of rows for positions start .. start + rows - 1, each row `unit` array elements. */
class RowStore {
  k: KvData;
  v: KvData;
  rows = 0;
  start = 0; // absolute position of row 0
  readonly unit: number;
  constructor(
    readonly type: KvType,
    readonly rowSize: number,
    capacity: number,
    readonly encode: KvEncoder = encodeKv,
  ) {
    this.unit = kvElements(type, rowSize);
    this.k = allocKv(type, capacity * this.unit);
    this.v = allocKv(type, capacity * this.unit);
  }
  reserve(rows: number): void {
    if (rows * this.unit <= this.k.length) return;
    const cap = Math.max(rows, Math.ceil((this.k.length / this.unit) * 1.5), 16);
    const k = allocKv(this.type, cap * this.unit);
    const v = allocKv(this.type, cap * this.unit);
    k.set(this.k.subarray(0, this.rows * this.unit) as never);
    v.set(this.v.subarray(0, this.rows * this.unit) as never);
    this.k = k;
    this.v = v;
  }
  push(k: Float32Array, v: Float32Array, n: number): void {
    this.reserve(this.rows + n);
    const rs = this.rowSize,
      u = this.unit;
    if (this.type === 'f32') {
      (this.k as Float32Array).set(k.subarray(0, n * rs), this.rows * u);
      (this.v as Float32Array).set(v.subarray(0, n * rs), this.rows * u);
    } else if (this.type === 'f16') {
      // f16 rows are contiguous values: all n rows in one call
      this.encode('f16', k, 0, n * rs, this.k, this.rows * u);
      this.encode('f16', v, 0, n * rs, this.v, this.rows * u);
    } else {
      // one row at a time: q8_0 blocks of 32 never straddle rows (nor heads: headDim % 32 == 0 is checked by the model)
      for (let r = 0; r < n; r++) {
        this.encode(this.type, k, r * rs, rs, this.k, (this.rows + r) * u);
        this.encode(this.type, v, r * rs, rs, this.v, (this.rows + r) * u);
      }
    }
    this.rows += n;
  }
  /** Removes the first `n` rows (moving the rest to the front). */
  dropFront(n: number): void {
    if (n <= 0) return;
    const u = this.unit;
    this.k.copyWithin(0, n * u, this.rows * u);
    this.v.copyWithin(0, n * u, this.rows * u);
    this.rows -= n;
    this.start += n;
  }
  view(): KvView {
    const n = this.rows * this.unit;
    return { k: this.k.subarray(0, n), v: this.v.subarray(0, n), kvType: this.type, kPos0: this.start, S: this.rows };
  }
  copyInto(o: RowStore): void {
    o.reserve(this.rows);
    o.k.set(this.k.subarray(0, this.rows * this.unit) as never);
    o.v.set(this.v.subarray(0, this.rows * this.unit) as never);
    o.rows = this.rows;
    o.start = this.start;
  }
}

export class FullKvCache implements LayerCache {
  private store: RowStore;
  constructor(
    readonly rowSize: number,
    initialCapacity = 64,
    readonly kvType: KvType = 'f32',
    private readonly encode: KvEncoder = encodeKv,
  ) {
    this.store = new RowStore(kvType, rowSize, initialCapacity, encode);
  }
  get length(): number {
    return this.store.start + this.store.rows;
  }
  append(k: Float32Array, v: Float32Array, n: number): KvView {
    this.store.push(k, v, n);
    return this.store.view();
  }
  settle(): void {}
  canTruncate(length: number): boolean {
    return length >= 0 && length <= this.length;
  }
  truncate(length: number): void {
    if (!this.canTruncate(length)) throw new RangeError(`cannot truncate a ${this.length}-token cache to ${length}`);
    this.store.rows = length;
  }
  clone(): LayerCache {
    const c = new FullKvCache(this.rowSize, Math.max(this.store.rows, 1), this.kvType, this.encode);
    this.store.copyInto(c.store);
    return c;
  }
  bytes(): number {
    return this.store.k.byteLength + this.store.v.byteLength;
  }
}

export class ChunkedKvCache implements LayerCache {
  private store: RowStore;
  constructor(
    readonly rowSize: number,
    readonly chunkSize: number,
    readonly kvType: KvType = 'f32',
    private readonly encode: KvEncoder = encodeKv,
  ) {
    this.store = new RowStore(kvType, rowSize, Math.min(chunkSize, 64), encode);
  }
  get length(): number {
    return this.store.start + this.store.rows;
  }
  append(k: Float32Array, v: Float32Array, n: number): KvView {
    this.store.push(k, v, n);
    return this.store.view();
  }
  settle(): void {
    // The next query (position `length`) sees keys from the start of its chunk on; nothing older is needed again.
    const keepFrom = Math.floor(this.length / this.chunkSize) * this.chunkSize;
    this.store.dropFront(keepFrom - this.store.start);
    // A long prefill piece may have grown the storage past one chunk: give that memory back.
    if (this.store.k.length > this.chunkSize * this.store.unit && this.store.rows <= this.chunkSize) {
      const s = new RowStore(this.kvType, this.rowSize, this.chunkSize, this.encode);
      this.store.copyInto(s);
      this.store = s;
    }
  }
  canTruncate(length: number): boolean {
    // Rows before store.start were dropped; the chunk that `length` falls in must still be complete.
    return length >= 0 && length <= this.length && Math.floor(length / this.chunkSize) * this.chunkSize >= this.store.start;
  }
  truncate(length: number): void {
    if (!this.canTruncate(length))
      throw new RangeError(`cannot truncate a chunked cache holding ${this.store.start}..${this.length} to ${length}`);
    this.store.rows = length - this.store.start;
    this.settle();
  }
  clone(): LayerCache {
    const c = new ChunkedKvCache(this.rowSize, this.chunkSize, this.kvType, this.encode);
    this.store.copyInto(c.store);
    return c;
  }
  bytes(): number {
    return this.store.k.byteLength + this.store.v.byteLength;
  }
}
