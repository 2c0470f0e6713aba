/** OpenAI-style chat messages and tools, as the server receives them and templates consume them. */

export type ContentPart =
  | { type: 'text'; text: string }
  /** An image: rendered as one `<|image|>` placeholder (the engine expands it into tiles and patches). */
  | { type: 'image'; [k: string]: unknown }
  | { type: 'image_url'; image_url: { url: string; detail?: string } | string };

export interface ToolCall {
  id?: string;
  type?: 'function';
  function: {
    name: string;
    /** An object, or OpenAI's JSON-encoded string (parsed before rendering). */
    arguments: Record<string, unknown> | string;
  };
}

export interface ChatMessage {
  role: 'system' | 'user' | 'assistant' | 'tool' | 'ipython' | (string & {});
  content?: string | ContentPart[] | null;
  tool_calls?: ToolCall[] | null;
  tool_call_id?: string;
  name?: string;
}

/** OpenAI tool definition. */
export interface ToolDefinition {
  type: 'function';
  function: { name: string; description?: string; parameters?: Record<string, unknown> };
}
