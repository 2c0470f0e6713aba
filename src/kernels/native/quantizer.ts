/**
 * The native core's weight quantizers (native/src/quant.cc) behind the BulkQuantizer seam of src/tensor/quant: the
 * bytes are those of the TypeScript quantizers (a C++ port that keeps their float32 operation order), computed on
 * the addon's thread pool off the JavaScript thread, so the GGUF writer can produce the next tensor meanwhile.
 */
import { availableParallelism } from 'node:os';
import type { BulkQuantizer, DType } from '../../tensor/index.ts';
import { DTYPES } from '../../tensor/index.ts';
import { loadAddon, type NativeIsa, type RawEngine } from './addon.ts';

class NativeQuantizer implements BulkQuantizer {
  constructor(private readonly engine: RawEngine) {}

  supports(dtype: DType): boolean {
    return this.engine.canQuantize!(DTYPES[dtype].ggmlType);
  }

  async quantize(dtype: DType, src: Float32Array, rowLength: number): Promise<Uint8Array> {
    const { blockSize, bytesPerBlock, ggmlType } = DTYPES[dtype];
    const rows = src.length / rowLength;
    const out = new Uint8Array(rows * (rowLength / blockSize) * bytesPerBlock);
    await this.engine.quantizeAsync!(out, src, ggmlType, rows, rowLength);
    return out;
  }

  close(): void {
    this.engine.dispose();
  }
}

/**
 * A native BulkQuantizer on `threads` threads (default: all cores), or null plus why (no addon, an older build).
 * `isa` 'scalar' keeps the scalar scale searches (tests compare both paths; the bytes are the same).
 */
export function tryCreateNativeQuantizer(
  threads = availableParallelism(),
  isa?: NativeIsa,
): { quantizer: BulkQuantizer | null; reason: string } {
  const { addon, reason } = loadAddon();
  if (!addon) return { quantizer: null, reason };
  if (!(Number.isInteger(threads) && threads >= 1 && threads <= 1024)) return { quantizer: null, reason: `bad thread count ${threads}` };
  let engine: RawEngine;
  try {
    engine = new addon.Engine(threads, isa);
  } catch (e) {
    return { quantizer: null, reason: String((e as Error).message) };
  }
  if (!engine.canQuantize || !engine.quantizeAsync) {
    engine.dispose();
    return { quantizer: null, reason: 'the native core was built without quantizers (rebuild it)' };
  }
  return { quantizer: new NativeQuantizer(engine), reason: '' };
}
