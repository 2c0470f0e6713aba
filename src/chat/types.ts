/**
 * Chat messages. `ChatMessage` is the one message type of the project: what the server's OpenAI and Anthropic routes
 * parse requests into, what the library's ChatSession keeps as history, what `llama4 run`/`chat` send and what the
 * training data is made of. `TemplateMessage` is the dictionary a Jinja chat template reads (the Hugging Face /
 * OpenAI wire layout, `tool_calls` with `function`), produced from ChatMessages by `toTemplateMessages` or passed
 * as given to `renderChat` (the parity tests compare renders of such dictionaries with Python's).
 */

export interface TextPart {
  type: 'text';
  text: string;
}

/**
 * An image: a file path or data URL, the file's bytes (PNG, JPEG, GIF or WebP), or bytes with a label for messages.
 * Templates write one `<|image|>` for it; the engine expands that into tiles and patches.
 */
export interface ImagePart {
  type: 'image';
  data: string | Uint8Array | { readonly bytes: Uint8Array; readonly label?: string };
  /** The media type when the API said (image/png, …); decoding sniffs the bytes either way. */
  mediaType?: string;
}

export type ContentPart = TextPart | ImagePart;

/** A tool call the model made or a client reports: `arguments` is JSON text (OpenAI's convention). */
export interface ToolCall {
  id: string;
  name: string;
  arguments: string;
}

/** A conversation turn. `tool` (Llama 4 says `ipython`) carries a tool's result for the call `toolCallId`. */
export interface ChatMessage {
  role: 'system' | 'user' | 'assistant' | 'tool' | 'ipython';
  content: string | ContentPart[];
  toolCalls?: ToolCall[];
  /** role 'tool': the call this message answers. */
  toolCallId?: string;
  /** role 'tool': the tool's name, when known. */
  name?: string;
}

/** A tool the model may call. */
export interface ToolSpec {
  name: string;
  description?: string;
  /** JSON Schema of the arguments. */
  parameters?: unknown;
}

/** A content part as templates read it (OpenAI's `image_url` parts become `{type: 'image'}` in normalisation). */
export type TemplateContentPart =
  | { type: 'text'; text: string }
  /** An image: rendered as one `<|image|>` placeholder (the engine expands it into tiles and patches). */
  | { type: 'image'; [k: string]: unknown }
  | { type: 'image_url'; image_url: { url: string; detail?: string } | string };

/** A tool call as templates read it. */
export interface TemplateToolCall {
  id?: string;
  type?: 'function';
  function: {
    name: string;
    /** An object, or OpenAI's JSON-encoded string (parsed before rendering). */
    arguments: Record<string, unknown> | string;
  };
}

/** A message as a Jinja chat template reads it (the Hugging Face / OpenAI dictionary). */
export interface TemplateMessage {
  role: 'system' | 'user' | 'assistant' | 'tool' | 'ipython' | (string & {});
  content?: string | TemplateContentPart[] | null;
  tool_calls?: TemplateToolCall[] | null;
  tool_call_id?: string;
  name?: string;
}

/** OpenAI tool definition (what templates read for `tools`). */
export interface ToolDefinition {
  type: 'function';
  function: { name: string; description?: string; parameters?: Record<string, unknown> };
}

/** ChatMessages → what templates read: images become one `{type: 'image'}` placeholder each, text stays text. */
export function toTemplateMessages(messages: readonly ChatMessage[]): TemplateMessage[] {
  return messages.map((m) => {
    let content: TemplateMessage['content'];
    if (typeof m.content === 'string') content = m.content;
    else if (m.content.some((p) => p.type === 'image'))
      content = m.content.map((p): TemplateContentPart => (p.type === 'text' ? { type: 'text', text: p.text } : { type: 'image' }));
    else content = m.content.map((p) => (p.type === 'text' ? p.text : '')).join('');
    const out: TemplateMessage = { role: m.role, content };
    if (m.toolCalls?.length)
      out.tool_calls = m.toolCalls.map((c) => ({
        id: c.id,
        type: 'function' as const,
        function: { name: c.name, arguments: c.arguments },
      }));
    if (m.toolCallId) out.tool_call_id = m.toolCallId;
    if (m.name) out.name = m.name;
    return out;
  });
}

/** ToolSpecs → OpenAI tool definitions (what templates read). */
export function toolDefinitions(tools: readonly ToolSpec[]): ToolDefinition[] {
  return tools.map((t) => ({
    type: 'function',
    function: {
      name: t.name,
      ...(t.description ? { description: t.description } : {}),
      ...(t.parameters ? { parameters: t.parameters as Record<string, unknown> } : {}),
    },
  }));
}

/** The images of a conversation, in the order their placeholders appear. */
export function messageImages(messages: readonly ChatMessage[]): ImagePart['data'][] {
  return messages.flatMap((m) => (typeof m.content === 'string' ? [] : m.content.flatMap((p) => (p.type === 'image' ? [p.data] : []))));
}
