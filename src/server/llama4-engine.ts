/** The real ServerEngine is the engine's ChatEngine (src/engine/chat-engine.ts); these are its names on the server side. */
export { createChatEngine as llama4Engine, chatLayerToolCalls, type ChatEngineOptions as Llama4EngineOptions } from '../engine/chat-engine.ts';
export type { ImagePromptEncoder } from '../engine/index.ts';
