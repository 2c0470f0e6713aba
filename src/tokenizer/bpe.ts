/**
 * Byte-pair merging of one pre-token, on token ids.
 *
 * A pre-token starts as its UTF-8 bytes (each a token), and adjacent parts merge lowest priority first, leftmost
 * on ties (tiktoken's `byte_pair_merge`, HF's BPE `merge_all`). What may merge comes from the file:
 * - tiktoken ranks (Meta's tokenizer.model): parts A and B merge iff the bytes A+B are a token; priority = its rank.
 * - a merges list (HF tokenizer.json, GGUF): A and B merge iff "A B" is listed; priority = the merge's index.
 * For vocabularies converted from tiktoken (Llama 4's) both give the same ids.
 *
 * Speed: a Map<string, number> lookup into Llama 4's 200k tokens costs ~300 ns (cache misses), so merges are looked
 * up in a numeric open-addressing table keyed by the id pair, and the 65,536 byte pairs in a direct table. With
 * tiktoken ranks the pair table fills lazily (a miss asks the string map once per distinct pair).
 *
 * Short pieces use tiktoken's O(n²) scan (fastest for n ≲ 64); long ones (real text has whitespace runs of 24,000
 * chars) a linked list + binary heap, O(n log n), with the same (priority, leftmost) order.
 */

/** A merge as one number: priority·2²² + resulting id (ids < 4M). Comparing packed values compares priorities. */
const ID_SPACE = 4194304;
export const NO_MERGE = -1;

/** Resolves a pair the table has not seen: packed merge or NO_MERGE. */
export type PairResolver = (a: number, b: number) => number;

export class MergeTable {
  /** Pair (a, b) of single-byte tokens: packed merge or NO_MERGE, indexed by byteA·256 + byteB. */
  private readonly bytePairs = new Float64Array(65536).fill(NO_MERGE);
  /** byte → id of its single-byte token. */
  readonly byteIds = new Int32Array(256);
  private keys: Int32Array; // [a, b] per slot; a = -1 marks an empty slot
  private vals: Float64Array;
  private mask: number;
  private count = 0;

  /**
   * @param resolve computes pairs not yet in the table (tiktoken ranks); without it the table is complete once
   *   `add` has been called for every merge.
   * @param maxEntries lazily resolved pairs kept before the table starts over (bounds memory on huge inputs).
   */
  constructor(
    private readonly resolve?: PairResolver,
    private readonly maxEntries = 1 << 21,
  ) {
    this.keys = new Int32Array(2 << 16).fill(-1);
    this.vals = new Float64Array(1 << 16);
    this.mask = (1 << 16) - 1;
  }

  static pack(priority: number, result: number): number {
    return priority * ID_SPACE + result;
  }
  static result(packed: number): number {
    return packed % ID_SPACE;
  }
  static priority(packed: number): number {
    return Math.floor(packed / ID_SPACE);
  }

  setByte(byte: number, id: number): void {
    this.byteIds[byte] = id;
  }

  /** Records that (a, b) merges with this packed value, or cannot merge (NO_MERGE). Keeps the first merge given. */
  add(a: number, b: number, packed: number): void {
    const slot = this.find(a, b);
    if (this.keys[2 * slot] !== -1) return;
    if ((this.count + 1) * 2 > this.mask + 1) {
      this.grow();
      this.add(a, b, packed);
      return;
    }
    this.keys[2 * slot] = a;
    this.keys[2 * slot + 1] = b;
    this.vals[slot] = packed;
    this.count++;
  }

  /** Marks the pair of single-byte tokens (x, y) as merging (used by loaders, before any encode). */
  addBytePair(x: number, y: number, packed: number): void {
    if (this.bytePairs[x * 256 + y] === NO_MERGE) this.bytePairs[x * 256 + y] = packed;
  }

  bytePair(x: number, y: number): number {
    return this.bytePairs[x * 256 + y]!;
  }

  get(a: number, b: number): number {
    const slot = this.find(a, b);
    if (this.keys[2 * slot] !== -1) return this.vals[slot]!;
    if (!this.resolve) return NO_MERGE;
    const v = this.resolve(a, b);
    if (this.count >= this.maxEntries) this.clear();
    this.add(a, b, v);
    return v;
  }

  private find(a: number, b: number): number {
    let h = Math.imul(a, 0x9e3779b1) ^ Math.imul(b + 0x632be5ab, 0x85ebca77);
    h ^= h >>> 15;
    let slot = h & this.mask;
    const keys = this.keys;
    for (;;) {
      const ka = keys[2 * slot]!;
      if (ka === -1 || (ka === a && keys[2 * slot + 1] === b)) return slot;
      slot = (slot + 1) & this.mask;
    }
  }

  private grow(): void {
    const oldKeys = this.keys;
    const oldVals = this.vals;
    const cap = (this.mask + 1) * 2;
    this.keys = new Int32Array(2 * cap).fill(-1);
    this.vals = new Float64Array(cap);
    this.mask = cap - 1;
    this.count = 0;
    for (let s = 0; s < oldVals.length; s++) {
      const a = oldKeys[2 * s]!;
      if (a !== -1) this.add(a, oldKeys[2 * s + 1]!, oldVals[s]!);
    }
  }

  /** Forgets lazily resolved pairs (only a table with a resolver: a merges-list table is its whole content). */
  clear(): void {
    if (!this.resolve) return;
    this.keys.fill(-1);
    this.count = 0;
  }
}

const NONE = Number.MAX_VALUE;
const SMALL_PIECE = 64;

/** Token ids of `bin` (a binary string: one char per byte, codes 0–255) after all merges. */
export function bytePairEncode(bin: string, table: MergeTable): number[] {
  return bin.length <= SMALL_PIECE ? mergeSmall(bin, table) : mergeLarge(bin, table);
}

/** tiktoken's algorithm on ids: `val[i]` is the packed merge of parts i and i+1 (NONE if they cannot merge). */
function mergeSmall(bin: string, table: MergeTable): number[] {
  const n = bin.length;
  const ids: number[] = new Array(n);
  const val: number[] = new Array(n);
  const byteIds = table.byteIds;
  let prevByte = bin.charCodeAt(0);
  ids[0] = byteIds[prevByte]!;
  for (let i = 1; i < n; i++) {
    const c = bin.charCodeAt(i);
    ids[i] = byteIds[c]!;
    const v = table.bytePair(prevByte, c);
    val[i - 1] = v === NO_MERGE ? NONE : v;
    prevByte = c;
  }
  val[n - 1] = NONE;
  let len = n;
  while (len > 1) {
    let best = NONE;
    let bi = -1;
    for (let i = 0; i < len - 1; i++) {
      const v = val[i]!;
      if (v < best) {
        best = v;
        bi = i;
      }
    }
    if (bi < 0) break;
    ids[bi] = MergeTable.result(best);
    for (let j = bi + 1; j < len - 1; j++) {
      ids[j] = ids[j + 1]!;
      val[j] = val[j + 1]!;
    }
    len--;
    if (bi + 1 < len) {
      const v = table.get(ids[bi]!, ids[bi + 1]!);
      val[bi] = v === NO_MERGE ? NONE : v;
    } else {
      val[bi] = NONE;
    }
    if (bi > 0) {
      const v = table.get(ids[bi - 1]!, ids[bi]!);
      val[bi - 1] = v === NO_MERGE ? NONE : v;
    }
  }
  ids.length = len;
  return ids;
}

/** Same merge order with a heap of (priority, position) keys; stale entries are skipped when popped. */
function mergeLarge(bin: string, table: MergeTable): number[] {
  const n = bin.length;
  // Node i is the part starting at byte i, alive until a merge swallows it into its left neighbour.
  const id = new Int32Array(n);
  const next = new Int32Array(n + 1);
  const prev = new Int32Array(n + 1);
  const val = new Float64Array(n).fill(NONE);
  const alive = new Uint8Array(n + 1).fill(1);
  for (let i = 0; i < n; i++) id[i] = table.byteIds[bin.charCodeAt(i)]!;
  for (let i = 0; i <= n; i++) {
    next[i] = i + 1;
    prev[i] = i - 1;
  }
  const heap = new Heap();
  const POS = 4294967296; // heap key = priority·2³² + position: lowest priority first, then leftmost
  const setVal = (i: number): void => {
    const j = next[i]!;
    const v = j < n ? table.get(id[i]!, id[j]!) : NO_MERGE;
    val[i] = v === NO_MERGE ? NONE : v;
    if (v !== NO_MERGE) heap.push(MergeTable.priority(v) * POS + i);
  };
  for (let i = 0; i < n; i++) setVal(i);
  while (heap.size > 0) {
    const key = heap.pop();
    const i = key % POS;
    const v = val[i]!;
    if (!alive[i] || v === NONE || MergeTable.priority(v) * POS + i !== key) continue; // stale
    const j = next[i]!;
    alive[j] = 0;
    id[i] = MergeTable.result(v);
    next[i] = next[j]!;
    prev[next[j]!] = i;
    setVal(i);
    if (i > 0) setVal(prev[i]!);
  }
  const out: number[] = [];
  for (let i = 0; i < n; i = next[i]!) out.push(id[i]!);
  return out;
}

/** Binary min-heap of numbers. */
class Heap {
  private a: number[] = [];
  get size(): number {
    return this.a.length;
  }
  push(v: number): void {
    const a = this.a;
    let i = a.length;
    a.push(v);
    while (i > 0) {
      const p = (i - 1) >> 1;
      if (a[p]! <= v) break;
      a[i] = a[p]!;
      i = p;
    }
    a[i] = v;
  }
  pop(): number {
    const a = this.a;
    const top = a[0]!;
    const last = a.pop()!;
    const n = a.length;
    if (n > 0) {
      let i = 0;
      for (;;) {
        const l = 2 * i + 1;
        if (l >= n) break;
        const r = l + 1;
        const c = r < n && a[r]! < a[l]! ? r : l;
        if (a[c]! >= last) break;
        a[i] = a[c]!;
        i = c;
      }
      a[i] = last;
    }
    return top;
  }
}
