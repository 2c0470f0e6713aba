/**
 * `serve --guard`'s guard: by default in its own model worker (src/model-worker), restarted if it dies like the main
 * model's, so a guard check's forward passes run off the event loop — /health, streams and the main model's steps
 * keep going while a request is screened. With `worker: false` it computes in this thread (loadGuard).
 */
import { Guard, loadGuard } from '../guard/index.ts';
import type { LoadOptions } from '../load.ts';
import { startSupervisedModel } from './load-engine.ts';

export interface ServeGuardOptions extends LoadOptions {
  /** Folder or file with the tokenizer, when it is not beside the weights. */
  tokenizerPath?: string;
  /** Compute in a worker thread (default true). */
  worker?: boolean;
}

export interface ServedGuard {
  readonly guard: Guard;
  /** Where the guard computes, for the startup line. */
  readonly where: 'worker thread' | 'in-thread';
  close(): Promise<void>;
}

export async function loadServeGuard(path: string, o: ServeGuardOptions = {}): Promise<ServedGuard> {
  if (o.worker === false) {
    const guard = await loadGuard(path, { ...o, ...(o.tokenizerPath ? { tokenizer: o.tokenizerPath } : {}) });
    return { guard, where: 'in-thread', close: async () => guard.loaded?.dispose() };
  }
  const { model, ready, tokenizer, chatTemplate } = await startSupervisedModel(path, o);
  const images = ready.vision ? model.encodeImages.bind(model) : null;
  const guard = new Guard({ model, images }, tokenizer, chatTemplate);
  return { guard, where: 'worker thread', close: () => model.close() };
}
