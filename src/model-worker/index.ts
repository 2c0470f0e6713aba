/** A model in a worker thread, as an AsyncCausalLM (host.ts); worker.ts is the thread's entry, protocol.ts the messages. */
export { startModelWorker, WorkerModel, WorkerSequence, type ModelWorkerOptions } from './host.ts';
export type { WorkerReady, WorkerStats } from './protocol.ts';
