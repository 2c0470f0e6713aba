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
import { startModelWorker } from '../model-worker/index.ts';
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

export async function loadServerEngine(path: string, o: ServeLoadOptions = {}): Promise<ServerEngine> {
  const modelId = basename(path.replace(/\/+$/, '')).replace(/\.gguf$/, '');
  if (o.worker === false) {
    const loaded = await loadModel(path, o);
    const engine = loaded.createChatEngine({ ...o, modelId });
    return { ...engine, close: async () => loaded.dispose() };
  }
  const { backend, threads, mmproj, onProgress } = o;
  const workerOptions = { ...(backend ? { backend } : {}), ...(threads !== undefined ? { threads } : {}), ...(mmproj ? { mmproj } : {}) };
  const first = await startModelWorker(path, { ...workerOptions, ...(onProgress ? { onProgress } : {}) });
  // A worker that dies is replaced (supervised-model.ts); the prefixes the scheduler kept lived in the dead one.
  let engine: ServerEngine | null = null;
  const model = new SupervisedModel(
    first,
    () => startModelWorker(path, workerOptions),
    () => engine?.scheduler.clearPrefixCache(),
  );
  try {
    const r = first.ready;
    const { tokenizer, chatTemplate: template } = loadChatAssets(
      { path, format: r.format, tokenizerDir: r.tokenizerDir, config: { vocabSize: r.info.vocabSize } },
      o.tokenizerPath,
    );
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
