export * from './sampler.ts';
export * from './generate.ts';
export { yieldToEventLoop, type FinishReason } from './common.ts';
export { ChatSession, type ChatSessionOptions, type SendOptions, type ChatReply } from './chat-session.ts';
export {
  createChatEngine,
  turnEndTokens,
  chatLayerToolCalls,
  type ChatEngine,
  type ChatEngineOptions,
  type EncodedPrompt,
  type ParsedToolCalls,
  type ToolCallStream,
} from './chat-engine.ts';
export {
  runGeneration,
  StopMatcher,
  randomId,
  type RunParams,
  type RunResult,
  type ChoiceOutput,
  type LogprobEntry,
  type DeltaListener,
} from './completion.ts';
export { Scheduler, QueueFullError } from './scheduler.ts';
export type {
  SchedulerOptions,
  SchedulerStats,
  GenerationRequest,
  GenerationResult,
  TokenConstraint,
  TokenInfo,
  TokenPicker,
  SamplingOptions,
} from './scheduler.ts';
export type {
  CausalLM,
  AsyncCausalLM,
  ModelInfo,
  SequenceState,
  ForwardItem,
  ImageSource,
  ImagePromptEncoder,
  EncodedImagePrompt,
} from '../model/types.ts';
