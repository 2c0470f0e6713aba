/**
 * What the HTTP layer needs from a model: the `ServerEngine` seam, which is the engine's ChatEngine
 * (src/engine/chat-engine.ts). The routes only translate JSON to its calls, so tests drive the server with a fake
 * engine (a fake CausalLM and character tokenizer) and the real clients, and `llama4 serve` builds the real one
 * (load-engine.ts). The message types are the chat layer's (src/chat/types.ts), the one message type of the project.
 */
export type { ChatEngine as ServerEngine, EncodedPrompt, StreamDecoder, ParsedToolCalls, ToolCallStream } from '../engine/chat-engine.ts';
export type { ChatMessage, ContentPart, TextPart, ImagePart, ToolCall, ToolSpec } from '../chat/index.ts';
