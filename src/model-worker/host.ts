/**
 * The host side of the model worker (worker.ts computes; protocol.ts has the messages): `startModelWorker(path, options)` loads the model
 * in a worker_threads Worker and returns a WorkerModel, an AsyncCausalLM whose forward() posts the batch and resolves
 * with the logits (their buffers transferred, not copied) while the main event loop stays free.
 *
 * Sequence handles stay synchronous, as the scheduler needs them: a WorkerSequence mirrors its length, the lowest
 * length truncate() can reach (reported by the worker after every operation) and its cache bytes. truncate() decides
 * from that mirror (false below the floor: a chunked layer already dropped those positions), then tells the worker;
 * clone() and newSequence() name the new sequence at once and the worker creates it in message order. free() (the
 * scheduler calls it for every sequence it drops) releases the worker's caches; a FinalizationRegistry does the
 * same for handles that are merely forgotten.
 *
 * Failures: a bad model file rejects startModelWorker with the worker's error (same class: ModelFileError,
 * UsageError, …); an exception inside forward fails that forward only; a worker that dies fails every pending and
 * later call with one error naming why, while the main thread (the server) keeps running.
 */
import type { Worker } from 'node:worker_threads';
import { extname } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { LoadOptions } from '../load.ts';
import type { AsyncCausalLM, EncodedImagePrompt, ForwardItem, ImageSource, ModelInfo, SequenceState } from '../model/types.ts';
import { UsageError, startWorker } from '../util/index.ts';
import {
  fromWire,
  type FromWorker,
  type SeqFacts,
  type ToWorker,
  type WireItem,
  type WorkerInit,
  type WorkerReady,
  type WorkerStats,
} from './protocol.ts';

/**
 * The worker entry beside this module, with this module's extension: src/model-worker/worker.ts under tsx,
 * dist/model-worker/worker.js when compiled.
 */
function workerUrl(): URL {
  const ext = extname(fileURLToPath(import.meta.url));
  return new URL(`./worker${ext}`, import.meta.url);
}

/** Starts a Worker on the entry (util/worker.ts registers tsx inside it for a TypeScript entry). */
function spawn(init: WorkerInit): Worker {
  return startWorker(workerUrl(), { workerData: init });
}

export class WorkerSequence implements SequenceState {
  /** Operations sent for this sequence; the worker's facts count only when they answer the latest one. */
  ver = 1;
  length: number;
  floor: number;
  bytes = 0;
  freed = false;
  /** A forward that included it failed: its caches may hold part of a step, so it is never truncated or reused. */
  broken = false;
  constructor(
    readonly owner: WorkerModel,
    readonly id: number,
    length = 0,
    floor = 0,
  ) {
    this.length = length;
    this.floor = floor;
  }
  truncate(length: number): boolean {
    this.owner.usable(this);
    if (this.broken || !Number.isInteger(length) || length < this.floor || length > this.length) return false;
    this.length = length;
    // The chunked caches settle after truncation; until the worker says where, assume nothing below `length`.
    this.floor = length;
    this.owner.send({ op: 'truncate', seq: this.id, ver: ++this.ver, length });
    return true;
  }
  clone(): WorkerSequence {
    this.owner.usable(this);
    return this.owner.cloneOf(this);
  }
  cacheBytes(): number {
    return this.freed ? 0 : this.bytes;
  }
  free(): void {
    this.owner.release(this);
  }
}

/** A model running in a worker thread. */
export class WorkerModel implements AsyncCausalLM {
  readonly info: ModelInfo;
  /** Why the worker can no longer serve (it died or was closed), or null while it runs. */
  dead: Error | null = null;
  private nextSeq = 1;
  private nextId = 1;
  private readonly seqs = new Map<number, WeakRef<WorkerSequence>>();
  private readonly pending = new Map<number, { resolve(m: FromWorker): void; reject(e: Error): void }>();
  private readonly registry = new FinalizationRegistry<number>((id) => {
    this.seqs.delete(id);
    if (!this.dead) this.send({ op: 'free', seq: id });
  });

  constructor(
    private readonly worker: Worker,
    readonly ready: WorkerReady,
  ) {
    this.info = ready.info;
    worker.on('message', (m: FromWorker) => this.onMessage(m));
    worker.on('error', (e) => this.die(new Error(`the model worker failed: ${e.message}`)));
    worker.on('exit', (code) => this.die(new Error(`the model worker exited (code ${code})`)));
    worker.unref();
  }

  newSequence(): WorkerSequence {
    const s = this.track(new WorkerSequence(this, this.nextSeq++));
    this.send({ op: 'new', seq: s.id, ver: s.ver });
    return s;
  }

  /** Throws unless `s` is a live sequence of this model. */
  usable(s: SequenceState): asserts s is WorkerSequence {
    if (!(s instanceof WorkerSequence) || s.owner !== this) throw new UsageError('sequence was not created by this model');
    if (s.freed) throw new UsageError(`sequence ${s.id} was freed`);
  }

  cloneOf(src: WorkerSequence): WorkerSequence {
    const s = this.track(new WorkerSequence(this, this.nextSeq++, src.length, src.floor));
    s.bytes = src.bytes;
    s.broken = src.broken;
    this.send({ op: 'clone', seq: s.id, ver: s.ver, from: src.id });
    return s;
  }

  release(s: WorkerSequence): void {
    if (s.freed || s.owner !== this) return;
    s.freed = true;
    this.registry.unregister(s);
    this.seqs.delete(s.id);
    if (!this.dead) this.send({ op: 'free', seq: s.id });
  }

  forward(items: readonly ForwardItem[]): Promise<Float32Array[]> {
    if (this.dead) return Promise.reject(this.dead);
    const transfer: ArrayBuffer[] = [];
    const used: WorkerSequence[] = [];
    let wire: WireItem[];
    try {
      wire = items.map((it) => {
        this.usable(it.seq);
        const s = it.seq;
        used.push(s);
        // Copies, so that only these bytes cross (a view would carry its whole buffer) and can be transferred.
        const tokens = Int32Array.from(it.tokens);
        transfer.push(tokens.buffer);
        const w: WireItem = { seq: s.id, ver: ++s.ver, tokens, logits: it.logits };
        if (it.patchEmbeddings) {
          w.patchEmbeddings = it.patchEmbeddings.slice();
          transfer.push(w.patchEmbeddings.buffer as ArrayBuffer);
        }
        return w;
      });
    } catch (e) {
      return Promise.reject(e);
    }
    for (let i = 0; i < used.length; i++) used[i]!.length += items[i]!.tokens.length;
    return this.call({ op: 'forward', id: this.nextId++, items: wire }, transfer).then(
      (m) => {
        if (m.type !== 'forward') throw new Error(`model worker: unexpected reply ${m.type}`);
        for (const f of m.seqs) this.apply(f);
        return m.logits;
      },
      (e: Error) => {
        for (const s of used) s.broken = true;
        throw e;
      },
    );
  }

  /** Early fusion in the worker: expands the prompt's image placeholders and encodes the images (vision models). */
  async encodeImages(tokens: number[], images: readonly ImageSource[]): Promise<EncodedImagePrompt> {
    // Bytes are copied so that only they cross (and can be transferred); paths and data URLs go as text.
    const transfer: ArrayBuffer[] = [];
    const copy = (b: Uint8Array) => {
      const c = new Uint8Array(b);
      transfer.push(c.buffer);
      return c;
    };
    const copies = images.map(
      (x): ImageSource => (typeof x === 'string' ? x : x instanceof Uint8Array ? copy(x) : { ...x, bytes: copy(x.bytes) }),
    );
    const m = await this.call({ op: 'images', id: this.nextId++, tokens, images: copies }, transfer);
    if (m.type !== 'images') throw new Error(`model worker: unexpected reply ${m.type}`);
    return { tokens: m.tokens, patchEmbeddings: m.patchEmbeddings };
  }

  /** The worker's own count of live sequences and their cache bytes (after every message sent before this one). */
  async workerStats(): Promise<WorkerStats> {
    const m = await this.call({ op: 'stats', id: this.nextId++ });
    if (m.type !== 'stats') throw new Error(`model worker: unexpected reply ${m.type}`);
    return m.stats;
  }

  /** Sequences whose handles are still live on this side. */
  get liveSequences(): number {
    return this.seqs.size;
  }

  /** Stops the worker; pending and later calls fail. */
  async close(): Promise<void> {
    if (this.dead) return;
    this.die(new Error('the model worker was stopped'));
    await this.worker.terminate();
  }

  /** Test hook and last resort: kills the worker as a crash would (pending calls fail, the server goes on). */
  async terminate(): Promise<void> {
    await this.worker.terminate();
  }

  send(m: ToWorker, transfer: ArrayBuffer[] = []): void {
    if (this.dead) return;
    this.worker.postMessage(m, transfer);
  }

  private track(s: WorkerSequence): WorkerSequence {
    this.seqs.set(s.id, new WeakRef(s));
    this.registry.register(s, s.id, s);
    return s;
  }

  private apply(f: SeqFacts): void {
    const s = this.seqs.get(f.seq)?.deref();
    if (!s || s.ver !== f.ver) return;
    s.length = f.length;
    s.floor = f.floor;
    s.bytes = f.bytes;
  }

  private call(m: ToWorker & { id: number }, transfer: ArrayBuffer[] = []): Promise<FromWorker> {
    if (this.dead) return Promise.reject(this.dead);
    return new Promise<FromWorker>((resolve, reject) => {
      this.pending.set(m.id, { resolve, reject });
      // Keeps the process alive while an answer is due, and only then.
      if (this.pending.size === 1) this.worker.ref();
      try {
        this.worker.postMessage(m, transfer);
      } catch (e) {
        this.settle(m.id);
        reject(e instanceof Error ? e : new Error(String(e)));
      }
    });
  }

  private settle(id: number): { resolve(m: FromWorker): void; reject(e: Error): void } | undefined {
    const p = this.pending.get(id);
    this.pending.delete(id);
    if (this.pending.size === 0) this.worker.unref();
    return p;
  }

  private onMessage(m: FromWorker): void {
    switch (m.type) {
      case 'seq':
        this.apply(m.facts);
        return;
      case 'failed':
        this.settle(m.id)?.reject(fromWire(m.error));
        return;
      case 'forward':
      case 'images':
      case 'stats':
        this.settle(m.id)?.resolve(m);
        return;
      default:
        return;
    }
  }

  private die(e: Error): void {
    if (this.dead) return;
    this.dead = e;
    for (const [id, p] of [...this.pending]) {
      this.pending.delete(id);
      p.reject(e);
    }
    this.worker.unref();
  }
}

export interface ModelWorkerOptions extends LoadOptions {}

/**
 * Loads `path` in a new worker thread with loadModel's options and resolves once the model is ready. Rejects with the
 * loading error (its class kept) when the model cannot be loaded, or with a clear error when the worker dies first.
 */
export function startModelWorker(path: string, o: ModelWorkerOptions = {}): Promise<WorkerModel> {
  const { onProgress, ...options } = o;
  const init: WorkerInit = { llama4ModelWorker: true, path, options };
  let worker: Worker;
  try {
    worker = spawn(init);
  } catch (e) {
    return Promise.reject(new Error(`could not start the model worker: ${(e as Error).message}`));
  }
  return new Promise<WorkerModel>((resolve, reject) => {
    const onMessage = (m: FromWorker) => {
      if (m.type === 'progress') onProgress?.(m.fraction, m.what);
      else if (m.type === 'ready') {
        cleanup();
        resolve(new WorkerModel(worker, m));
      } else if (m.type === 'init-error') {
        cleanup();
        void worker.terminate();
        reject(fromWire(m.error));
      }
    };
    const onError = (e: Error) => {
      cleanup();
      void worker.terminate();
      reject(new Error(`the model worker failed while loading ${path}: ${e.message}`));
    };
    const onExit = (code: number) => {
      cleanup();
      reject(new Error(`the model worker exited (code ${code}) while loading ${path}`));
    };
    const cleanup = () => {
      worker.off('message', onMessage);
      worker.off('error', onError);
      worker.off('exit', onExit);
    };
    worker.on('message', onMessage);
    worker.on('error', onError);
    worker.on('exit', onExit);
  });
}
