/**
 * `llama4 serve`'s model loading: the model (in a worker thread by default, see src/model-worker; or in this thread)
 * plus what the server needs beside the weights — the tokenizer and chat template, read from the model folder
 * (tokenizer.json / tokenizer.model, tokenizer_config.json or chat_template.jinja) or from the GGUF metadata
 * (tokenizer.ggml.*, tokenizer.chat_template). Tokenization, sampling and scheduling stay on the main thread either
 * way; with the worker, forward passes and image encoding run off it, so HTTP keeps answering during a step.
 */
import { basename } from 'node:path';
import { loadChatAssets, loadModel, samplingDefaultsOf, type LoadOptions } from '../load.ts';
import type { SchedulerOptions } from '../engine/scheduler.ts';
import type { ServerEngine } from './engine.ts';
import { createChatEngine } from '../engine/chat-engine.ts';
import { startModelWorker, type WorkerReady } from '../model-worker/index.ts';
import type { Tokenizer } from '../tokenizer/index.ts';
import { SupervisedModel } from './supervised-model.ts';

export interface ServeLoadOptions extends LoadOptions, SchedulerOptions {
  /** Folder or file with the tokenizer, when it is not beside the weights. */
  tokenizerPath?: string;
  /** Jinja chat template text overriding the model's. */
  chatTemplate?: string;
  /** Run the model in a worker thread (default true); false computes on the main thread between HTTP events. */
  worker?: boolean;
  /** Special-token text in messages becomes control tokens (the reference's behaviour; see Llama4EngineOptions). */
  specialTokensInMessages?: boolean;
}

/**
 * `path` in a model worker that is restarted when it dies (SupervisedModel), with its tokenizer and chat template
 * read on this thread (from the folder, a tokenizer path, or the GGUF metadata the worker reported). Shared by the
 * served model and `serve --guard`'s guard. `onRestart` runs after a new worker is in place.
 */
export async function startSupervisedModel(
  path: string,
  o: LoadOptions & { tokenizerPath?: string | undefined },
  onRestart?: () => void,
): Promise<{ model: SupervisedModel; ready: WorkerReady; tokenizer: Tokenizer; chatTemplate: string | null }> {
  const { backend, threads, mmproj, onProgress } = o;
  const workerOptions = { ...(backend ? { backend } : {}), ...(threads !== undefined ? { threads } : {}), ...(mmproj ? { mmproj } : {}) };
  const first = await startModelWorker(path, { ...workerOptions, ...(onProgress ? { onProgress } : {}) });
  const model = new SupervisedModel(first, () => startModelWorker(path, workerOptions), onRestart);
  try {
    const r = first.ready;
    const assets = loadChatAssets(
      { path, format: r.format, tokenizerDir: r.tokenizerDir, config: { vocabSize: r.info.vocabSize } },
      o.tokenizerPath,
    );
    return { model, ready: r, ...assets };
  } catch (e) {
    await model.close();
    throw e;
  }
}

export async function loadServerEngine(path: string, o: ServeLoadOptions = {}): Promise<ServerEngine> {
  const modelId = basename(path.replace(/\/+$/, '')).replace(/\.gguf$/, '');
  if (o.worker === false) {
    const loaded = await loadModel(path, o);
    const engine = loaded.createChatEngine({ ...o, modelId });
    return { ...engine, close: async () => loaded.dispose() };
  }
  // A worker that dies is replaced (supervised-model.ts); the prefixes the scheduler kept lived in the dead one.
  let engine: ServerEngine | null = null;
  const {
    model,
    ready: r,
    tokenizer,
    chatTemplate: template,
  } = await startSupervisedModel(path, o, () => engine?.scheduler.clearPrefixCache());
  try {
    engine = createChatEngine({
      ...o,
      modelId,
      model,
      tokenizer,
      chatTemplate: o.chatTemplate ?? template,
      samplingDefaults: samplingDefaultsOf(path),
      ...(r.vision ? { images: (tokens, images) => model.encodeImages(tokens, images) } : {}),
      close: () => model.close(),
      failure: () => model.failure(),
    });
    return engine;
  } catch (e) {
    await model.close();
    throw e;
  }
}
