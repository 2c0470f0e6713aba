/**
 * Row-parallel quantization on worker threads, for the slow k-quant scale searches (about 1 M elements/s per core
 * in TypeScript): a tensor's rows are split into pieces, quantized by the workers and concatenated in order, so
 * the bytes are exactly those of quantize() on one thread. Given a BulkQuantizer (the native core's, about 50 times
 * faster), the types it supports go to it instead and no workers are started.
 */
import { availableParallelism } from 'node:os';
import { extname } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Worker } from 'node:worker_threads';
import { startWorker } from '../../util/index.ts';
import type { BulkQuantizer, DType } from '../../tensor/index.ts';
import { DTYPES, quantize } from '../../tensor/index.ts';

/** Types whose quantizer is slow enough to be worth the copies to and from workers. */
const SLOW: ReadonlySet<DType> = new Set(['q2_k', 'q3_k', 'q4_k', 'q5_k', 'q6_k', 'iq4_nl', 'iq4_xs']);
const MIN_PARALLEL = 1 << 20;

export class QuantizePool {
  private readonly workers: Worker[] = [];
  private readonly waiting = new Map<number, { resolve: (q: Uint8Array) => void; reject: (e: Error) => void }>();
  private nextId = 0;
  private turn = 0;

  /** Call close() when done: live workers keep the process running. `bulk` stays the caller's to close. */
  constructor(
    readonly threads = availableParallelism(),
    private readonly bulk: BulkQuantizer | null = null,
  ) {
    if (threads <= 1 || bulk) return;
    const self = fileURLToPath(import.meta.url);
    for (let i = 0; i < threads; i++) {
      const w = startWorker(new URL(`./quantize-worker${extname(self)}`, import.meta.url));
      w.on('message', (m: { id: number; q?: Uint8Array; error?: string }) => {
        const p = this.waiting.get(m.id);
        this.waiting.delete(m.id);
        if (m.q) p?.resolve(m.q);
        else p?.reject(new Error(m.error ?? 'quantize worker failed'));
      });
      w.on('error', (e) => {
        for (const p of this.waiting.values()) p.reject(e);
        this.waiting.clear();
      });
      this.workers.push(w);
    }
  }

  /** Same bytes as quantize(dtype, x, rowLength), computed on the workers when that pays off. */
  async quantize(dtype: DType, x: Float32Array, rowLength: number): Promise<Uint8Array> {
    if (this.bulk?.supports(dtype)) return this.bulk.quantize(dtype, x, rowLength);
    if (this.workers.length === 0 || !SLOW.has(dtype) || x.length < MIN_PARALLEL) return quantize(dtype, x, rowLength);
    const rows = x.length / rowLength;
    const rowBytes = (rowLength / DTYPES[dtype].blockSize) * DTYPES[dtype].bytesPerBlock;
    const pieces = Math.min(rows, this.workers.length * 4);
    const per = Math.ceil(rows / pieces);
    const out = new Uint8Array(rows * rowBytes);
    const jobs: Promise<void>[] = [];
    for (let r0 = 0; r0 < rows; r0 += per) {
      const r1 = Math.min(rows, r0 + per);
      const data = x.slice(r0 * rowLength, r1 * rowLength);
      const id = this.nextId++;
      const w = this.workers[this.turn++ % this.workers.length]!;
      jobs.push(
        new Promise<Uint8Array>((resolve, reject) => {
          this.waiting.set(id, { resolve, reject });
          w.postMessage({ id, dtype, data, rowLength }, [data.buffer]);
        }).then((q) => {
          out.set(q, r0 * rowBytes);
        }),
      );
    }
    await Promise.all(jobs);
    return out;
  }

  async close(): Promise<void> {
    await Promise.all(this.workers.map((w) => w.terminate()));
    this.workers.length = 0;
  }
}
