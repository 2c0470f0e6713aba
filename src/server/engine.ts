/**
 * What the HTTP layer needs from a model: the `ServerEngine` seam. The routes only translate JSON to these calls, so
 * tests drive the server with a fake engine (a fake CausalLM and character tokenizer) and the real clients, and
 * `llama4 serve` builds the real one from a loaded model, its tokenizer and chat template (llama4-engine.ts).
 */
import type { SamplingOptions, Scheduler } from '../engine/scheduler.ts';
import type { TokenVocabulary } from '../engine/json-schema-mask.ts';

/** An image attached to a message: the raw file bytes (PNG, JPEG, GIF or WebP). */
export interface ImagePart {
  type: 'image';
  data: Uint8Array;
  mediaType: string;
}
export interface TextPart {
  type: 'text';
  text: string;
}
export type ContentPart = TextPart | ImagePart;

/** A tool call the model made: `arguments` is JSON text (OpenAI's convention). */
export interface ToolCall {
  id: string;
  name: string;
  arguments: string;
}

/** A conversation turn after API-specific parsing (OpenAI and Anthropic both map to this). */
export interface ChatMessage {
  role: 'system' | 'user' | 'assistant' | 'tool';
  content: ContentPart[];
  toolCalls?: ToolCall[];
  /** role 'tool': the call this message answers. */
  toolCallId?: string;
  /** role 'tool': the tool's name, when known. */
  name?: string;
}

export interface ToolSpec {
  name: string;
  description?: string;
  /** JSON Schema of the arguments. */
  parameters?: unknown;
}

export interface EncodedPrompt {
  tokens: number[];
  /** [nImageTokens, hiddenSize] features for the image-token slots (see ForwardItem.patchEmbeddings). */
  patchEmbeddings?: Float32Array;
}

/** Turns token ids into text incrementally (holds back incomplete UTF-8 sequences). */
export interface StreamDecoder {
  push(token: number): string;
  flush(): string;
}

export interface ParsedToolCalls {
  content: string | null;
  toolCalls: { name: string; arguments: unknown }[];
}

/** Incremental tool-call extraction for streaming: prose streams out, calls come at the end. */
export interface ToolCallStream {
  /** Feeds generated text; returns the part that is certainly prose (safe to stream now). */
  push(delta: string): string;
  /** End of output: the held-back prose not yet returned, and the tool calls. */
  end(): { content: string; toolCalls: ParsedToolCalls['toolCalls'] };
}

export interface ServerEngine {
  /** The id /v1/models lists and requests must name. */
  readonly modelId: string;
  /** Unix seconds the model was loaded. */
  readonly created: number;
  readonly scheduler: Scheduler;
  /** Token texts for constrained decoding. */
  readonly vocabulary: TokenVocabulary;
  /** Tokens that end a turn (EOS, <|eot|>); they end the JSON-constrained output too. */
  readonly endTokens: readonly number[];
  readonly supportsImages: boolean;
  /**
   * Renders a conversation with the chat template (generation prompt appended) and tokenizes it; decodes images into
   * patch embeddings. Throws UsageError for inputs it cannot take (bad image, unsupported role order).
   */
  encodeChat(messages: ChatMessage[], tools: ToolSpec[] | null): Promise<EncodedPrompt>;
  /** Plain completion prompt: BOS + the text's tokens. */
  encodeText(text: string): number[];
  newDecoder(): StreamDecoder;
  /** Text of one token, for logprobs (partial UTF-8 shows as U+FFFD). */
  tokenText(token: number): string;
  /** Splits a finished assistant output into prose and tool calls (never throws). */
  parseToolCalls(text: string, tools: ToolSpec[]): ParsedToolCalls;
  /** Streaming form of parseToolCalls; without it, outputs of requests with tools are buffered until the end. */
  newToolCallStream?(tools: ToolSpec[]): ToolCallStream;
  /** Releases the model (stops its worker thread); the server calls it on close. */
  close?(): Promise<void>;
  /** Why the model can no longer generate (its worker thread died), or null; /health then answers 503. */
  failure?(): string | null;
  /** The model's own sampling defaults (generation_config.json), which the chat page starts from. */
  readonly samplingDefaults?: SamplingOptions;
}
