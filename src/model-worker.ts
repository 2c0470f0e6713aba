/**
 * The model worker: a worker_threads entry that loads a model with loadModel (same options as in-thread) and serves
 * its compute to the main thread, so that the main thread's event loop (HTTP, tokenization, sampling, scheduling)
 * never waits for a forward pass. The main side is src/server/worker-model.ts; this file also defines the messages.
 *
 * Protocol. Sequences are named by numbers the main side picks. Every sequence operation carries `ver`, the count of
 * operations the main side has sent for that sequence; the worker echoes it with the sequence's facts (length, the
 * lowest length truncate can reach, cache bytes), so the main side's mirror takes only the answer to its latest op.
 * Messages are handled in the order they arrive; forward is synchronous here, so operations on one sequence never
 * interleave. An operation that fails on a sequence (bad clone source, …) marks it broken: the next forward that
 * uses it fails with that error. Anything thrown inside a handler becomes an error reply, never a dead worker.
 *
 * Threads: the native backend's pool runs with `threads` threads counting this worker's JS thread (the pool's caller
 * thread), exactly as it counts the main thread in-thread; the main thread sleeps while a step runs.
 */
import { isMainThread, parentPort, workerData } from 'node:worker_threads';
import { loadModel, type LoadedModel, type LoadOptions } from './load.ts';
import { imagePromptEncoder } from './model/llama4/vision-prompt.ts';
import { Llama4Sequence } from './model/llama4/text-model.ts';
import type { CausalLM, ForwardItem, ModelInfo, SequenceState } from './model/types.ts';
import { Llama4Error, ModelFileError } from './util/index.ts';

/** What the worker is started with (workerData). */
export interface WorkerInit {
  /** Marks a model worker (the entry does nothing when imported elsewhere). */
  llama4ModelWorker: true;
  path: string;
  options: Omit<LoadOptions, 'onProgress'>;
}

/** An error as it crosses threads: its class name, message, whether it is a Llama4Error and (ModelFileError) the file. */
export interface WireError {
  name: string;
  message: string;
  llama4?: boolean;
  file?: string;
  stack?: string;
}

export interface WireItem {
  seq: number;
  ver: number;
  tokens: Int32Array;
  logits: ForwardItem['logits'];
  patchEmbeddings?: Float32Array;
}

export type ToWorker =
  | { op: 'forward'; id: number; items: WireItem[] }
  | { op: 'new'; seq: number; ver: number }
  | { op: 'clone'; seq: number; ver: number; from: number }
  | { op: 'truncate'; seq: number; ver: number; length: number }
  | { op: 'free'; seq: number }
  | { op: 'images'; id: number; tokens: number[]; images: Uint8Array[] }
  | { op: 'stats'; id: number };

/** A sequence's state after operation `ver`: `floor` is the lowest length truncate() can still reach. */
export interface SeqFacts {
  seq: number;
  ver: number;
  length: number;
  floor: number;
  bytes: number;
}

/** The worker's own count of what it holds (tests: no sequence leaks). */
export interface WorkerStats {
  sequences: number;
  cacheBytes: number;
}

export interface WorkerReady {
  type: 'ready';
  info: ModelInfo;
  format: 'safetensors' | 'gguf';
  tokenizerDir: string | null;
  backendNote: string | null;
  backend: string;
  vision: boolean;
}

export type FromWorker =
  | WorkerReady
  | { type: 'progress'; fraction: number; what: string }
  | { type: 'init-error'; error: WireError }
  | { type: 'seq'; facts: SeqFacts }
  | { type: 'forward'; id: number; logits: Float32Array[]; seqs: SeqFacts[] }
  | { type: 'images'; id: number; tokens: number[]; patchEmbeddings: Float32Array }
  | { type: 'stats'; id: number; stats: WorkerStats }
  | { type: 'failed'; id: number; error: WireError };

export function toWire(e: unknown): WireError {
  if (!(e instanceof Error)) return { name: 'Error', message: String(e) };
  return {
    name: e.name,
    message: e.message,
    ...(e instanceof Llama4Error ? { llama4: true } : {}),
    ...(e instanceof ModelFileError ? { file: e.file } : {}),
    ...(e.stack ? { stack: e.stack } : {}),
  };
}

/**
 * The lowest length `seq` can be truncated to. Truncatable lengths form one interval [floor, length] (full caches:
 * from 0; chunked caches: from the start of the chunk they still hold), so a binary search on canTruncate finds it.
 */
function truncateFloor(seq: SequenceState): number {
  if (!(seq instanceof Llama4Sequence)) return seq.length;
  const ok = (n: number) => seq.caches.every((c) => c.canTruncate(n));
  let lo = 0;
  let hi = seq.length;
  while (lo < hi) {
    const mid = (lo + hi) >> 1;
    if (ok(mid)) hi = mid;
    else lo = mid + 1;
  }
  return lo;
}

/** Serves one loaded model over `port` (the worker's parentPort). */
function serveModel(model: CausalLM, encodeImages: ((tokens: number[], images: Uint8Array[]) => Promise<{ tokens: number[]; patchEmbeddings: Float32Array }>) | null) {
  const port = parentPort!;
  const seqs = new Map<number, SequenceState>();
  const broken = new Map<number, Error>();
  const post = (m: FromWorker, transfer: ArrayBuffer[] = []) => port.postMessage(m, transfer);
  const facts = (id: number, ver: number, s: SequenceState): SeqFacts => ({ seq: id, ver, length: s.length, floor: truncateFloor(s), bytes: s.cacheBytes() });
  const get = (id: number): SequenceState => {
    const b = broken.get(id);
    if (b) throw b;
    const s = seqs.get(id);
    if (!s) throw new Error(`model worker: unknown sequence ${id}`);
    return s;
  };
  /** Runs a sequence operation; a failure marks the sequence broken instead of answering (no one waits for it). */
  const seqOp = (id: number, ver: number, f: () => SequenceState) => {
    try {
      const s = f();
      seqs.set(id, s);
      post({ type: 'seq', facts: facts(id, ver, s) });
    } catch (e) {
      broken.set(id, e instanceof Error ? e : new Error(String(e)));
    }
  };

  const handle = (m: ToWorker): void => {
    switch (m.op) {
      case 'forward': {
        try {
          const items: ForwardItem[] = m.items.map((it) => ({
            seq: get(it.seq),
            tokens: it.tokens,
            logits: it.logits,
            ...(it.patchEmbeddings ? { patchEmbeddings: it.patchEmbeddings } : {}),
          }));
          const out = model.forward(items);
          // Each row goes back by transfer when it owns its whole buffer; a view into a shared buffer is copied first.
          const transfer = new Set<ArrayBuffer>();
          const logits = out.map((a) => {
            const whole = a.byteOffset === 0 && a.byteLength === a.buffer.byteLength && a.buffer instanceof ArrayBuffer && !transfer.has(a.buffer);
            const own = whole ? a : a.slice();
            transfer.add(own.buffer as ArrayBuffer);
            return own;
          });
          post({ type: 'forward', id: m.id, logits, seqs: m.items.map((it, i) => facts(it.seq, it.ver, items[i]!.seq)) }, [...transfer]);
        } catch (e) {
          post({ type: 'failed', id: m.id, error: toWire(e) });
        }
        return;
      }
      case 'new':
        return seqOp(m.seq, m.ver, () => model.newSequence());
      case 'clone':
        return seqOp(m.seq, m.ver, () => get(m.from).clone());
      case 'truncate':
        return seqOp(m.seq, m.ver, () => {
          const s = get(m.seq);
          if (!s.truncate(m.length)) throw new Error(`model worker: sequence ${m.seq} cannot be truncated to ${m.length} (length ${s.length}, floor ${truncateFloor(s)})`);
          return s;
        });
      case 'free':
        seqs.get(m.seq)?.free?.();
        seqs.delete(m.seq);
        broken.delete(m.seq);
        return;
      case 'stats': {
        let bytes = 0;
        for (const s of seqs.values()) bytes += s.cacheBytes();
        post({ type: 'stats', id: m.id, stats: { sequences: seqs.size, cacheBytes: bytes } });
        return;
      }
      case 'images': {
        if (!encodeImages) {
          post({ type: 'failed', id: m.id, error: { name: 'UsageError', message: 'this model does not take images', llama4: true } });
          return;
        }
        encodeImages(m.tokens, m.images).then(
          (r) => {
            // A copy is sent (transferred): the encoder's feature cache may hold the array it returned.
            const pe = r.patchEmbeddings.slice();
            post({ type: 'images', id: m.id, tokens: r.tokens, patchEmbeddings: pe }, [pe.buffer]);
          },
          (e: unknown) => post({ type: 'failed', id: m.id, error: toWire(e) }),
        );
        return;
      }
    }
  };
  port.on('message', handle);
}

async function main(): Promise<void> {
  const init = workerData as WorkerInit;
  const port = parentPort!;
  let loaded: LoadedModel;
  try {
    loaded = await loadModel(init.path, { ...init.options, onProgress: (fraction, what) => port.postMessage({ type: 'progress', fraction, what } satisfies FromWorker) });
  } catch (e) {
    port.postMessage({ type: 'init-error', error: toWire(e) } satisfies FromWorker);
    return;
  }
  serveModel(loaded.model, loaded.vision ? imagePromptEncoder(loaded.vision) : null);
  port.postMessage({
    type: 'ready',
    info: loaded.model.info,
    format: loaded.format,
    tokenizerDir: loaded.tokenizerDir,
    backendNote: loaded.backendNote,
    backend: loaded.backend.name,
    vision: loaded.vision !== null,
  } satisfies FromWorker);
}

if (!isMainThread && parentPort && (workerData as Partial<WorkerInit> | null)?.llama4ModelWorker === true) void main();
