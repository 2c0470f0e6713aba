/**
 * The public API of llama4-ts (`import … from 'llama4-ts'`): load a model, chat with it, generate, the tokenizer and
 * chat helpers, start a server, errors and types. Named re-exports only. Everything else sits behind subpaths:
 * `llama4-ts/engine` (scheduler, sampler, constrained decoding), `llama4-ts/model` (the Llama 4 model, configs, KV
 * caches, vision tower), `llama4-ts/gguf` (GGUF/safetensors reading and writing, conversion, test models),
 * `llama4-ts/kernels` (backends, tensor codecs, mapped files), `llama4-ts/image`, `llama4-ts/server`,
 * `llama4-ts/train` (src/exports/).
 */

// Loading (the composition root) and chatting.
export { loadModel, loadChatAssets, loadTokenizerFrom, loadChatTemplateFrom, DEFAULT_MODEL_DIR } from './load.ts';
export type { LoadOptions, LoadedModel, ChatAssets, BackendChoice, ChatEngineLoadOptions } from './load.ts';
export { ChatSession, type ChatSessionOptions, type SendOptions, type ChatReply } from './engine/index.ts';

// Generation on raw token ids.
export {
  generate,
  generateAll,
  prefill,
  makeSampler,
  type GenerateOptions,
  type GenerationStep,
  type Sampler,
  type SamplerOptions,
  type FinishReason,
} from './engine/index.ts';

// Tokenizer and chat helpers.
export { loadTokenizer, type Tokenizer, type StreamDecoder, type EncodeOptions, type DecodeOptions } from './tokenizer/index.ts';
export {
  renderChat,
  chatPromptIds,
  loadChatTemplate,
  parseToolCalls,
  createToolCallStreamParser,
  toTemplateMessages,
  type ChatMessage,
  type ContentPart,
  type TextPart,
  type ImagePart,
  type ToolCall,
  type ToolSpec,
  type TemplateMessage,
  type ToolDefinition,
  type RenderChatOptions,
  type ParsedToolCall,
  type ToolCallStreamEvent,
} from './chat/index.ts';

// Serving.
export { startServer, createApp, type ServerOptions, type RunningServer } from './server/app.ts';
export { loadServerEngine, type ServeLoadOptions } from './server/load-engine.ts';
export type { ServerEngine } from './server/engine.ts';

// Safety: Llama Guard 4 as a classifier (src/guard).
export { loadGuard, Guard, LLAMA_GUARD_4_CATEGORIES, parseCategoryCodes, renderGuardPrompt } from './guard/index.ts';
export type {
  GuardCheckOptions,
  GuardCheckResult,
  GuardInput,
  GuardMessage,
  GuardContentPart,
  GuardCategory,
  GuardVerdict,
  LoadGuardOptions,
} from './guard/index.ts';

// Errors and the model-facing types.
export { Llama4Error, ModelFileError, ConfigError, UsageError } from './util/index.ts';
export type { CausalLM, AsyncCausalLM, ModelInfo, SequenceState, ForwardItem, ImageSource, ImagePromptEncoder } from './model/types.ts';
export type { KvType } from './tensor/index.ts';
