/**
 * The built-in Llama 4 chat format, used when a model ships no chat_template. Written in TypeScript from the
 * format's description (spec §5.1–5.2); it renders byte-for-byte what the Hugging Face converter's template renders
 * (checked against the shared reference renders), including its quirks:
 * - the system text is trimmed, and the first user message is trimmed when tools go into it;
 * - string tool results are JSON-quoted (Jinja strings are iterable, so the template's `tojson` branch takes them);
 * - an assistant message with an empty `tool_calls` list is dropped;
 * - tool-call content sits between `<|python_start|>` and `<|python_end|>`, calls follow as
 *   `{"name": "…", "parameters": {…}}` with no separator.
 * Context (`extra`): `tools_in_user_message` (default true), `custom_tools` (overrides tools).
 */
import { UsageError } from '../util/errors.ts';
import { pyJsonDumps, pyRepr, pyStr, pyStrip, toRuntimeLike } from './python-format.ts';
import type { TemplateMessage, TemplateContentPart } from './types.ts';

const HEADER = (role: string): string => `<|header_start|>${role}<|header_end|>\n\n`;
const EOT = '<|eot|>';
const JSON_INSTRUCTIONS =
  'Respond in the format {"name": function name, "parameters": dictionary of argument name and its value}.' + 'Do not use variables.\n\n';

export interface BuiltinRenderInput {
  messages: TemplateMessage[];
  tools?: unknown[] | null;
  addGenerationPrompt: boolean;
  bosToken: string;
  extra?: Record<string, unknown>;
}

/** Python str(x).strip() of a template value (Jinja2's `|trim` on a non-string writes its repr). */
function trimmed(x: unknown): string {
  return pyStrip(typeof x === 'string' ? x : pyRepr(toRuntimeLike(x)));
}

/** Content as the template writes it: a string verbatim; parts in order, images as <|image|>. */
function contentText(content: TemplateMessage['content']): string {
  if (typeof content === 'string') return content;
  // The template iterates non-string content; Python fails on None ('NoneType' object is not iterable).
  if (!Array.isArray(content))
    throw new UsageError("message content is null ('NoneType' object is not iterable); pass '' or set dropNulls");
  let out = '';
  for (const part of content as TemplateContentPart[]) {
    if (part.type === 'image') out += '<|image|>';
    else if (part.type === 'text') out += part.text ?? '';
  }
  return out;
}

function toolsBlock(tools: unknown[]): string {
  return tools.map((t) => pyJsonDumps(t, 4) + '\n\n').join('');
}

export function renderLlama4Builtin(input: BuiltinRenderInput): string {
  const extra = input.extra ?? {};
  let messages = input.messages;
  const tools: unknown[] | null = (extra.custom_tools as unknown[] | undefined) ?? input.tools ?? null;
  const toolsInUser = extra.tools_in_user_message === undefined ? true : Boolean(extra.tools_in_user_message);
  let out = input.bosToken;

  const first = messages[0];
  if (first && first.role === 'system') {
    const c = first.content;
    let system: string;
    if (typeof c === 'string') system = pyStrip(c);
    else if (Array.isArray(c) && c.length > 0) system = trimmed((c[0] as { text?: unknown }).text ?? '');
    else throw new UsageError('the system message has no content');
    messages = messages.slice(1);
    out += HEADER('system');
    if (tools !== null) out += 'Environment: ipython\n';
    if (tools !== null && !toolsInUser) {
      out += 'You have access to the following functions. To call a function, please respond with JSON for a function call.';
      out += JSON_INSTRUCTIONS + toolsBlock(tools);
    }
    out += system + EOT;
  }

  if (toolsInUser && tools !== null) {
    const firstUser = messages[0];
    if (!firstUser) throw new UsageError("Cannot put tools in the first user message when there's no first user message!");
    const text = trimmed(firstUser.content);
    messages = messages.slice(1);
    out += HEADER('user');
    out += 'Given the following functions, please respond with a JSON for a function call ';
    out += 'with its proper arguments that best answers the given prompt.\n\n';
    out += JSON_INSTRUCTIONS + toolsBlock(tools) + text + EOT;
  }

  for (const m of messages) {
    const isTool = m.role === 'ipython' || m.role === 'tool';
    const hasCallsKey = m.tool_calls !== undefined;
    if (hasCallsKey && m.tool_calls === null)
      throw new UsageError("tool_calls is null (object of type 'NoneType' has no len()); omit it or set dropNulls");
    if (!(isTool || hasCallsKey)) {
      out += HEADER(m.role) + contentText(m.content) + EOT;
    } else if (hasCallsKey && m.tool_calls!.length > 0) {
      out += HEADER('assistant') + '<|python_start|>' + contentText(m.content) + '<|python_end|>';
      for (const call of m.tool_calls!) {
        out += `{"name": "${call.function.name}", "parameters": ${pyJsonDumps(call.function.arguments)}}`;
      }
      out += EOT;
    } else if (isTool) {
      const c = m.content;
      // The template's `content is mapping or content is iterable` holds for strings, lists and dicts.
      out +=
        HEADER('ipython') +
        ((c !== null && typeof c === 'object') || typeof c === 'string' ? pyJsonDumps(c) : pyStr(toRuntimeLike(c))) +
        EOT;
    }
    // An assistant message with an empty tool_calls list matches no branch of the template: dropped.
  }
  if (input.addGenerationPrompt) out += HEADER('assistant');
  return out;
}
