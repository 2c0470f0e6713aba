/** Llama 4 chat: prompt rendering (the model's Jinja template or the built-in format) and tool-call parsing. */
export type {
  ChatMessage,
  ContentPart,
  TextPart,
  ImagePart,
  ToolCall,
  ToolSpec,
  TemplateMessage,
  TemplateContentPart,
  TemplateToolCall,
  ToolDefinition,
} from './types.ts';
export { toTemplateMessages, toolDefinitions, messageImages } from './types.ts';
export {
  renderChat,
  loadChatTemplate,
  templateFromConfigValue,
  normalizeMessages,
  chatPromptIds,
  type RenderChatOptions,
  type ChatTemplateSource,
  type PromptEncoder,
} from './template.ts';
export { renderLlama4Builtin } from './llama4-template.ts';
export { SpecialTextGuard, type SpecialTextEncoder } from './plain-specials.ts';
export {
  parseToolCalls,
  createToolCallStreamParser,
  type ParsedToolCall,
  type ToolCallParse,
  type ToolCallStreamEvent,
  type ToolCallStreamParser,
} from './tool-calls.ts';
