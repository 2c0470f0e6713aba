/**
 * The model worker's protocol: the messages between the host side (host.ts, the thread that schedules) and the worker
 * side (worker.ts, the thread that computes), and errors as they cross threads.
 *
 * Sequences are named by numbers the host side picks. Every sequence operation carries `ver`, the count of operations
 * the host side has sent for that sequence; the worker echoes it with the sequence's facts (length, the lowest length
 * truncate can reach, cache bytes), so the host side's mirror takes only the answer to its latest op. Messages are
 * handled in the order they arrive; forward is synchronous in the worker, so operations on one sequence never
 * interleave. An operation that fails on a sequence (bad clone source, …) marks it broken: the next forward that uses
 * it fails with that error. Anything thrown inside a handler becomes an error reply, never a dead worker.
 */
import type { LoadOptions } from '../load.ts';
import type { ForwardItem, ImageSource, ModelInfo } from '../model/types.ts';
import { ConfigError, Llama4Error, ModelFileError, UsageError } from '../util/index.ts';

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
  | { op: 'images'; id: number; tokens: number[]; images: ImageSource[] }
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

/** Rebuilds an error that crossed from the worker, keeping the classes callers branch on (Llama4Error = bad input). */
export function fromWire(w: WireError): Error {
  let e: Error;
  if (w.name === 'ModelFileError' && w.file !== undefined) {
    const prefix = `${w.file}: `;
    e = new ModelFileError(w.file, w.message.startsWith(prefix) ? w.message.slice(prefix.length) : w.message);
  } else if (w.name === 'UsageError') e = new UsageError(w.message);
  else if (w.name === 'ConfigError') e = new ConfigError(w.message);
  else if (w.llama4) {
    // Another input error (ImageError, …): still a Llama4Error (the server answers 400), under its own name.
    e = new Llama4Error(w.message);
    Object.defineProperty(e, 'name', { value: w.name });
  } else if (w.name === 'RangeError') e = new RangeError(w.message);
  else if (w.name === 'TypeError') e = new TypeError(w.message);
  else e = new Error(w.message);
  if (w.stack) e.stack = `${e.name}: ${e.message}\n    (in the model worker)\n${w.stack.split('\n').slice(1).join('\n')}`;
  return e;
}
