/** `llama4-ts/server`: the OpenAI/Anthropic-compatible HTTP app, its engine seam, and the model in a worker thread. */
export { createApp, startServer, type ServerOptions, type RunningServer } from '../server/app.ts';
export type { ServerEngine, ChatMessage, ToolSpec, EncodedPrompt } from '../server/engine.ts';
export { llama4Engine, type Llama4EngineOptions, type ImagePromptEncoder } from '../server/llama4-engine.ts';
export { loadServerEngine, type ServeLoadOptions } from '../server/load-engine.ts';
export { startModelWorker, WorkerModel, WorkerSequence, type ModelWorkerOptions } from '../model-worker/index.ts';
