/**
 * The per-vocabulary cache of compiled JSON schemas and their token masks, bounded in bytes (one budget for both).
 * Requests with the same schema share its compiled tree and masks (keyed by the automaton state's signature); the
 * least recently used schema goes first when the budget is passed, and within a schema the least recently used
 * mask. A mask is an Int32Array of allowed token ids (up to 4 bytes × vocabulary); a compiled schema is estimated
 * at COMPILED_BYTES_PER_CHAR bytes per character of its JSON text (its Maps, arrays and option strings: measured
 * as heap growth under --expose-gc, 2.3 bytes per character for 5k-entry enums and 6.2 for objects of 2k
 * properties, so the estimate errs high).
 *
 * A schema evicted while requests still use it stays alive through their closures; its masks are then no longer
 * counted, and it is gone when they finish.
 */
import type { Schema } from './json-schema.ts';

const COMPILED_BYTES_PER_CHAR = 8;
/** Default budget per vocabulary: a 200k-token vocabulary's masks are up to 0.8 MB each, so about 300 of them. */
export const SCHEMA_CACHE_BYTES = 256 * 1024 * 1024;
const MASKS_PER_SCHEMA = 512;

interface Entry {
  schema: Schema;
  masks: Map<string, Int32Array>;
  bytes: number;
  live: boolean;
}

/** What a constraint sees: get/set by state signature. */
export interface MaskStore {
  get(sig: string): Int32Array | undefined;
  set(sig: string, mask: Int32Array): void;
}

export class SchemaCache {
  private readonly entries = new Map<string, Entry>();
  bytes = 0;
  constructor(readonly maxBytes = SCHEMA_CACHE_BYTES) {}

  /** The compiled schema for `key` (its JSON text), compiled by `compile` on a miss. */
  schema(key: string, compile: () => Schema): Schema {
    return this.entry(key, compile).schema;
  }

  /** The mask store of `key`'s schema (call after schema()). */
  masks(key: string): MaskStore {
    const e = this.entries.get(key);
    if (!e) throw new Error(`schema cache: no entry for the key (call schema() first)`);
    return {
      get: (sig) => {
        const m = e.masks.get(sig);
        if (m) {
          e.masks.delete(sig);
          e.masks.set(sig, m);
        }
        return m;
      },
      set: (sig, mask) => {
        if (e.masks.has(sig)) return;
        e.masks.set(sig, mask);
        this.grow(e, mask.byteLength + sig.length * 2);
        if (e.masks.size > MASKS_PER_SCHEMA) this.dropOldestMask(e);
        this.evict(e);
      },
    };
  }

  get size(): number {
    return this.entries.size;
  }

  private entry(key: string, compile: () => Schema): Entry {
    let e = this.entries.get(key);
    if (e) {
      this.entries.delete(key);
      this.entries.set(key, e);
      return e;
    }
    e = { schema: compile(), masks: new Map(), bytes: 0, live: true };
    this.entries.set(key, e);
    this.grow(e, key.length * (2 + COMPILED_BYTES_PER_CHAR) + 1024);
    this.evict(e);
    return e;
  }

  private grow(e: Entry, by: number): void {
    e.bytes += by;
    if (e.live) this.bytes += by;
  }

  private dropOldestMask(e: Entry): void {
    const [sig, m] = e.masks.entries().next().value!;
    e.masks.delete(sig);
    this.grow(e, -(m.byteLength + sig.length * 2));
  }

  /** Drops other schemas, oldest first, then `keep`'s own oldest masks, until the budget holds. */
  private evict(keep: Entry): void {
    for (const [k, e] of this.entries) {
      if (this.bytes <= this.maxBytes) return;
      if (e === keep) continue;
      this.entries.delete(k);
      this.bytes -= e.bytes;
      e.live = false;
    }
    while (this.bytes > this.maxBytes && keep.masks.size > 1) this.dropOldestMask(keep);
  }
}
