/**
 * Memory-mapped model files. The addon maps a file once (MAP_PRIVATE, pages come in on demand, so models larger
 * than RAM still open) and hands out external ArrayBuffers over byte ranges — no copy in the JavaScript heap.
 * Node 20 caps one view at 4 GiB, so files up to that size get one view (every tensor is a subarray of it) and
 * larger files get one view per requested range (per tensor), each cached so a range is never mapped twice.
 */
import { ModelFileError } from '../../util/errors.ts';
import { loadAddon, type RawMappedFile } from './addon.ts';

const WHOLE_FILE_VIEW_LIMIT = 2 ** 32;

export class MappedFile {
  readonly size: number;
  private whole: Uint8Array | null = null;
  private readonly views = new Map<number, Uint8Array>();
  private closed = false;

  private constructor(
    readonly path: string,
    private readonly raw: RawMappedFile,
    wholeViewLimit: number,
  ) {
    this.size = raw.size;
    if (this.size > 0 && this.size <= wholeViewLimit) this.whole = new Uint8Array(raw.view(0, this.size));
  }

  /** Maps `path`; throws ModelFileError if it cannot be opened (check canMmap() first: without the addon it throws a plain Error). */
  static open(path: string, opts: { wholeViewLimit?: number } = {}): MappedFile {
    const { addon, reason } = loadAddon();
    if (!addon) throw new Error(`cannot memory-map ${path}: ${reason}`);
    let raw: RawMappedFile;
    try {
      raw = new addon.MappedFile(path);
    } catch (e) {
      throw new ModelFileError(path, String((e as Error).message).replace(`${path}: `, ''));
    }
    return new MappedFile(path, raw, Math.min(opts.wholeViewLimit ?? WHOLE_FILE_VIEW_LIMIT, WHOLE_FILE_VIEW_LIMIT));
  }

  /**
   * Unmaps the file now: every view handed out is detached (reads as empty from then on) and the mapping goes with
   * the last of them. Whoever closes must be done with the bytes (LoadedModel.dispose closes after the model).
   */
  close(): void {
    const detach = loadAddon().addon?.detach;
    const views = [...(this.whole ? [this.whole] : []), ...this.views.values()];
    this.whole = null;
    this.views.clear();
    this.closed = true;
    if (detach) for (const v of views) detach(v.buffer as ArrayBuffer);
    this.raw.close?.();
  }

  /** The bytes [offset, offset + length) of the file, in place (a view of the mapping; writes stay private). */
  bytes(offset: number, length: number): Uint8Array {
    if (this.closed) throw new ModelFileError(this.path, 'the file was closed (its model was disposed)');
    if (!(Number.isSafeInteger(offset) && Number.isSafeInteger(length) && offset >= 0 && length >= 0 && offset + length <= this.size))
      throw new ModelFileError(this.path, `range [${offset}, ${offset}+${length}) is outside the file (${this.size} bytes)`);
    if (this.whole) return this.whole.subarray(offset, offset + length);
    if (length > WHOLE_FILE_VIEW_LIMIT)
      throw new ModelFileError(this.path, `a tensor of ${length} bytes exceeds Node's 4 GiB limit on one view`);
    let v = this.views.get(offset);
    if (!v || v.length < length) {
      if (v) throw new ModelFileError(this.path, `overlapping ranges at offset ${offset} with different lengths`);
      v = new Uint8Array(this.raw.view(offset, length));
      this.views.set(offset, v);
    }
    return v.subarray(0, length);
  }
}

/** True when files can be memory-mapped (the addon loaded). */
export function canMmap(): boolean {
  return loadAddon().addon !== null;
}

/** Maps a whole file; see MappedFile. */
export function mmapFile(path: string): MappedFile {
  return MappedFile.open(path);
}
