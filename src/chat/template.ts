/**
 * Chat prompts: the model's own chat_template (Jinja, rendered as Python Jinja2 would) or the built-in Llama 4
 * format. The render starts with `bos_token`, so callers encode it with special tokens recognised and add no BOS
 * of their own (`chatPromptIds` does exactly that and collapses a doubled BOS if a template wrote two).
 */
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { ModelFileError, UsageError } from '../util/errors.ts';
import { jsonTextDepth } from '../util/json-depth.ts';
import { JinjaTemplate, TemplateRaisedError } from './jinja.ts';
import { renderLlama4Builtin } from './llama4-template.ts';
import type { TemplateMessage, TemplateContentPart, TemplateToolCall, ToolDefinition } from './types.ts';

/** A model's chat template(s) as found on disk or in GGUF metadata. */
export interface ChatTemplateSource {
  /** The template used unless a named one applies. */
  template: string;
  /** Named templates (tokenizer_config.json may hold a list of {name, template}); `tool_use` is used with tools. */
  named?: Record<string, string>;
  /** Where it came from, for messages. */
  file?: string;
}

export interface RenderChatOptions {
  messages: TemplateMessage[];
  /** OpenAI tool list; null/undefined: the template sees no `tools` variable. */
  tools?: ToolDefinition[] | null;
  addGenerationPrompt: boolean;
  /** Jinja source or a loaded template; undefined: the built-in Llama 4 format. */
  template?: string | ChatTemplateSource;
  /** Default `<|begin_of_text|>`. */
  bosToken?: string;
  /** Default `<|eot|>` (visible to templates as eos_token). */
  eosToken?: string;
  /** More template variables (tools_in_user_message, custom_tools, date_string, …). */
  extra?: Record<string, unknown>;
  /**
   * OpenAI clients send `content: null` and `tool_calls: null` (e.g. a response message appended as is). With
   * `dropNulls` they become '' and absent, as vLLM treats them. Default false: messages reach the template as given,
   * so the render — or the error — is what transformers + Python Jinja2 produce (most templates fail on null content).
   * A server should set it.
   */
  dropNulls?: boolean;
}

const parsed = new Map<string, JinjaTemplate>();

function compile(source: string, where: string): JinjaTemplate {
  let t = parsed.get(source);
  if (!t) {
    try {
      t = new JinjaTemplate(source);
    } catch (e) {
      throw new UsageError(`chat template${where}: cannot parse: ${(e as Error).message}`);
    }
    if (parsed.size > 32) parsed.clear();
    parsed.set(source, t);
  }
  return t;
}

function isRecord(x: unknown): x is Record<string, unknown> {
  return typeof x === 'object' && x !== null && !Array.isArray(x);
}

const isToolRole = (role: string): boolean => role === 'tool' || role === 'ipython';

/** OpenAI-style messages → what Llama 4 templates expect (copies; the caller's objects are not changed). */
export function normalizeMessages(messages: unknown, opts: { dropNulls?: boolean } = {}): TemplateMessage[] {
  if (!Array.isArray(messages)) throw new UsageError('messages must be a list');
  return messages.map((m, i) => {
    if (!isRecord(m) || typeof m.role !== 'string' || m.role.length === 0) {
      throw new UsageError(`messages[${i}] must be an object with a string "role"`);
    }
    const out: TemplateMessage = { ...(m as unknown as TemplateMessage) };
    const c = m.content;
    if (c === undefined || (c === null && opts.dropNulls)) out.content = '';
    else if (c === null)
      out.content = null; // as transformers passes it: most templates then fail, like Python
    else if (Array.isArray(c) && (!isToolRole(m.role) || c.every((p) => isRecord(p) && typeof p.type === 'string')))
      out.content = c.map((p, j) => normalizePart(p, i, j));
    else if (typeof c !== 'string' && !Array.isArray(c) && !isToolRole(m.role)) {
      // Tool results may be any JSON value (templates tojson them); other roles carry text or parts.
      throw new UsageError(`messages[${i}].content must be a string, a list of parts or null`);
    }
    if (m.tool_calls === undefined || (m.tool_calls === null && opts.dropNulls)) delete out.tool_calls;
    else if (m.tool_calls === null) out.tool_calls = null;
    else if (!Array.isArray(m.tool_calls)) throw new UsageError(`messages[${i}].tool_calls must be a list`);
    else out.tool_calls = m.tool_calls.map((tc, j) => normalizeCall(tc, i, j));
    return out;
  });
}

function normalizePart(p: unknown, i: number, j: number): TemplateContentPart {
  if (typeof p === 'string') return { type: 'text', text: p };
  if (!isRecord(p) || typeof p.type !== 'string') throw new UsageError(`messages[${i}].content[${j}] must be an object with a "type"`);
  if (p.type === 'text') {
    if (typeof p.text !== 'string') throw new UsageError(`messages[${i}].content[${j}].text must be a string`);
    return { type: 'text', text: p.text };
  }
  // Every image form becomes {type: 'image'}: the templates write one <|image|> for it.
  if (p.type === 'image_url' || p.type === 'image' || p.type === 'input_image') return { ...p, type: 'image' };
  return p as TemplateContentPart;
}

/** Tool-call argument text nested deeper than this is passed to the template as text, not parsed. */
const MAX_ARGUMENT_DEPTH = 128;

function normalizeCall(tc: unknown, i: number, j: number): TemplateToolCall {
  if (!isRecord(tc)) throw new UsageError(`messages[${i}].tool_calls[${j}] must be an object`);
  // Accept both {function: {name, arguments}} and a flat {name, arguments}.
  const fn = isRecord(tc.function) ? tc.function : tc;
  if (typeof fn.name !== 'string') throw new UsageError(`messages[${i}].tool_calls[${j}] has no function name`);
  let args = fn.arguments ?? fn.parameters ?? {};
  // OpenAI sends arguments JSON-encoded; templates expect the object. Deeply nested text stays a string: the
  // template's tojson would recurse once per level.
  if (typeof args === 'string' && jsonTextDepth(args) <= MAX_ARGUMENT_DEPTH) {
    try {
      const parsedArgs: unknown = JSON.parse(args);
      if (isRecord(parsedArgs)) args = parsedArgs;
    } catch {
      /* keep the string: the template writes it as given */
    }
  }
  const out: TemplateToolCall = { type: 'function', function: { name: fn.name, arguments: args as Record<string, unknown> } };
  if (typeof tc.id === 'string') out.id = tc.id;
  return out;
}

/** Picks the template for a conversation: `tool_use` when tools are given and the model names one. */
function pickTemplate(t: string | ChatTemplateSource, hasTools: boolean): { source: string; where: string } {
  if (typeof t === 'string') return { source: t, where: '' };
  const where = t.file ? ` (${t.file})` : '';
  if (hasTools && t.named?.tool_use) return { source: t.named.tool_use, where };
  return { source: t.template, where };
}

/** The prompt text for a conversation. Throws UsageError when the messages are malformed or the template refuses. */
export function renderChat(opts: RenderChatOptions): string {
  const messages = normalizeMessages(opts.messages, { dropNulls: opts.dropNulls ?? false });
  if (opts.tools !== undefined && opts.tools !== null && !Array.isArray(opts.tools)) throw new UsageError('tools must be a list');
  const tools = opts.tools ?? null;
  const bosToken = opts.bosToken ?? '<|begin_of_text|>';
  if (opts.template === undefined) {
    try {
      return renderLlama4Builtin({
        messages,
        tools,
        addGenerationPrompt: opts.addGenerationPrompt,
        bosToken,
        ...(opts.extra ? { extra: opts.extra } : {}),
      });
    } catch (e) {
      if (e instanceof RangeError) throw new UsageError('chat: tool arguments or results are too deeply nested');
      throw e;
    }
  }
  const { source, where } = pickTemplate(opts.template, tools !== null);
  const t = compile(source, where);
  const ctx: Record<string, unknown> = {
    messages,
    add_generation_prompt: opts.addGenerationPrompt,
    bos_token: bosToken,
    eos_token: opts.eosToken ?? '<|eot|>',
    ...(opts.extra ?? {}),
  };
  if (tools !== null) ctx.tools = tools;
  try {
    return t.render(ctx);
  } catch (e) {
    if (e instanceof TemplateRaisedError) throw new UsageError(`chat template${where} refused the conversation: ${e.message}`);
    if (e instanceof RangeError) throw new UsageError(`chat template${where}: too deeply nested`);
    throw new UsageError(`chat template${where}: ${(e as Error).message}`);
  }
}

/**
 * The chat template of a model folder: chat_template.jinja (newer transformers), chat_template.json, or
 * tokenizer_config.json's "chat_template" (a string or a list of {name, template}). Undefined when there is none.
 */
export function loadChatTemplate(dir: string): ChatTemplateSource | undefined {
  const jinja = join(dir, 'chat_template.jinja');
  if (existsSync(jinja)) return { template: readFileSync(jinja, 'utf8'), file: jinja };
  for (const name of ['chat_template.json', 'tokenizer_config.json']) {
    const file = join(dir, name);
    if (!existsSync(file)) continue;
    let json: unknown;
    try {
      json = JSON.parse(readFileSync(file, 'utf8'));
    } catch (e) {
      throw new ModelFileError(file, `invalid JSON: ${(e as Error).message}`);
    }
    if (!isRecord(json) || json.chat_template === undefined || json.chat_template === null) continue;
    return templateFromConfigValue(json.chat_template, file);
  }
  return undefined;
}

/** A "chat_template" value (tokenizer_config.json or GGUF `tokenizer.chat_template`) → ChatTemplateSource. */
export function templateFromConfigValue(value: unknown, file: string): ChatTemplateSource {
  if (typeof value === 'string') return { template: value, file };
  if (Array.isArray(value)) {
    const named: Record<string, string> = {};
    for (const entry of value) {
      if (!isRecord(entry) || typeof entry.name !== 'string' || typeof entry.template !== 'string') {
        throw new ModelFileError(file, 'chat_template list entries must be {name, template}');
      }
      named[entry.name] = entry.template;
    }
    const def = named.default ?? Object.values(named)[0];
    if (def === undefined) throw new ModelFileError(file, 'chat_template list is empty');
    return { template: def, named, file };
  }
  throw new ModelFileError(file, 'chat_template must be a string or a list of {name, template}');
}

/** What chatPromptIds needs of a tokenizer (structural: chat does not depend on the tokenizer module). */
export interface PromptEncoder {
  encode(text: string, opts?: { allowSpecial?: boolean }): number[];
  readonly bosId: number | undefined;
}

/**
 * Token ids of a rendered prompt: special tokens recognised, no BOS added (the template wrote it), and a doubled
 * BOS (a template that writes bos_token while the caller also prepended one) collapsed to one.
 */
export function chatPromptIds(tokenizer: PromptEncoder, prompt: string): number[] {
  const ids = tokenizer.encode(prompt, { allowSpecial: true });
  const bos = tokenizer.bosId;
  let k = 0;
  while (bos !== undefined && k + 1 < ids.length && ids[k] === bos && ids[k + 1] === bos) k++;
  return k ? ids.slice(k) : ids;
}
