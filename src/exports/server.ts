/** `llama4-ts/server`: the OpenAI/Anthropic-compatible HTTP app, its engine seam, and the model in a worker thread. */
export { createApp, startServer, type ServerOptions, type RunningServer } from '../server/app.ts';
export type { ServerEngine, ChatMessage, ToolSpec, EncodedPrompt } from '../server/engine.ts';
export { createChatEngine, chatLayerToolCalls, type ChatEngineOptions, type ImagePromptEncoder } from '../engine/index.ts';
export { loadServerEngine, type ServeLoadOptions } from '../server/load-engine.ts';
export { startModelWorker, WorkerModel, WorkerSequence, type ModelWorkerOptions } from '../model-worker/index.ts';
