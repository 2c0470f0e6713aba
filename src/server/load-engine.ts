/**
 * `llama4 serve`'s model loading: loadModel (the composition root) plus what the server needs beside the weights —
 * the tokenizer and chat template, read from the model folder (tokenizer.json / tokenizer.model,
 * tokenizer_config.json or chat_template.jinja) or from the GGUF metadata (tokenizer.ggml.*, tokenizer.chat_template).
 */
import { basename } from 'node:path';
import { loadChatAssets, loadModel, type LoadOptions } from '../load.ts';
import { imagePromptEncoder } from '../model/llama4/vision-prompt.ts';
import type { SchedulerOptions } from '../engine/scheduler.ts';
import type { ServerEngine } from './engine.ts';
import { llama4Engine } from './llama4-engine.ts';

export interface ServeLoadOptions extends LoadOptions, SchedulerOptions {
  /** Folder or file with the tokenizer, when it is not beside the weights. */
  tokenizerPath?: string;
  /** Jinja chat template text overriding the model's. */
  chatTemplate?: string;
}

export async function loadServerEngine(path: string, o: ServeLoadOptions = {}): Promise<ServerEngine> {
  const loaded = await loadModel(path, o);
  const model = loaded.model;
  const { tokenizer, chatTemplate: template } = loadChatAssets(loaded, o.tokenizerPath);
  return llama4Engine({
    ...o,
    modelId: basename(path.replace(/\/+$/, '')).replace(/\.gguf$/, ''),
    model,
    tokenizer,
    chatTemplate: o.chatTemplate ?? template,
    ...(loaded.vision ? { images: imagePromptEncoder(loaded.vision) } : {}),
  });
}
