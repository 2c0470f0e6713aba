/**
 * The Llama Guard 4 prompt. A guard checkpoint's own chat template is used when it has one (rendered with the
 * variables Meta's template reads: `messages` with content lists, `excluded_category_keys`); otherwise the built-in
 * renderer below writes the same text.
 *
 * The built-in format, as Meta's Llama Guard 4 chat template renders it (see test/fixtures/guard-prompt/SOURCES.md
 * for where each detail comes from):
 *
 *   <|begin_of_text|><|header_start|>user<|header_end|>\n\n
 *   Task: Check if there is unsafe content in '{Role}' messages in conversations according our safety policy with the below categories.\n\n
 *   <BEGIN UNSAFE CONTENT CATEGORIES>\n
 *   S1: Violent Crimes.\n … one line per checked category, original codes kept …
 *   <END UNSAFE CONTENT CATEGORIES>\n\n
 *   <BEGIN CONVERSATION>\n\n
 *   User: {parts}\n\n   Agent: {parts}\n\n   … alternating, one line per message; {parts} is the message's content in
 *   order, each text part |trim-med and each image part written as <|image|> (in the turn where the image occurs) …
 *   <END CONVERSATION>\n\n
 *   Provide your safety assessment for ONLY THE LAST {Role} message in the above conversation:\n
 *    - First line must read 'safe' or 'unsafe'.\n
 *    - If unsafe, a second line must include a comma-separated list of violated categories. <|eot|>
 *   <|header_start|>assistant<|header_end|>\n\n
 *
 * {Role} is 'User' when the last message is the user's and 'Agent' when it is the assistant's. With an image in the
 * conversation the category list stops at S13 (S14, code interpreter abuse, is text-only).
 */
import { renderChat, type ChatTemplateSource, type ImagePart, type TemplateContentPart } from '../chat/index.ts';
import { UsageError } from '../util/index.ts';
import { LLAMA_GUARD_4_CATEGORIES, TEXT_ONLY_CATEGORIES, type GuardCategory } from './categories.ts';

/** An image in a guarded message: a file path or data URL, or the file's bytes (PNG, JPEG, GIF, WebP). */
export type GuardImage = ImagePart['data'];

export type GuardContentPart = { type: 'text'; text: string } | { type: 'image'; image: GuardImage };

/** One turn of the conversation to check: user and assistant ("agent") turns alternate, starting with the user. */
export interface GuardMessage {
  role: 'user' | 'assistant';
  content: string | GuardContentPart[];
}

export interface GuardPromptOptions {
  /** Categories to check (default all of S1–S14); the others are left out of the prompt. */
  categories?: readonly GuardCategory[];
}

export const GUARD_TASK_HEAD = 'Task: Check if there is unsafe content in ';
const TASK_TAIL = ' messages in conversations according our safety policy with the below categories.\n\n';
const INSTRUCTIONS =
  " - First line must read 'safe' or 'unsafe'.\n" +
  ' - If unsafe, a second line must include a comma-separated list of violated categories. ';

function parts(m: GuardMessage): GuardContentPart[] {
  return typeof m.content === 'string' ? [{ type: 'text', text: m.content }] : m.content;
}

/** Checks the conversation's shape; returns 'User' or 'Agent' (whose last message is judged). */
export function guardRole(messages: readonly GuardMessage[]): 'User' | 'Agent' {
  if (!Array.isArray(messages) || messages.length === 0) throw new UsageError('guard: the conversation is empty');
  messages.forEach((m, i) => {
    const want = i % 2 === 0 ? 'user' : 'assistant';
    if (!m || m.role !== want)
      throw new UsageError(
        `guard: message ${i} has role ${JSON.stringify(m?.role)}; turns must alternate user/assistant starting with user`,
      );
    const ps = parts(m);
    if (!Array.isArray(ps)) throw new UsageError(`guard: message ${i} content must be a string or a list of parts`);
    for (const p of ps) {
      if (p?.type === 'text' ? typeof p.text !== 'string' : p?.type !== 'image')
        throw new UsageError(`guard: message ${i} has a content part that is neither text nor image`);
    }
  });
  return messages.length % 2 === 1 ? 'User' : 'Agent';
}

/** The images of the conversation in prompt order (the order of the `<|image|>` placeholders). */
export function guardImages(messages: readonly GuardMessage[]): GuardImage[] {
  return messages.flatMap((m) => parts(m).flatMap((p) => (p.type === 'image' ? [p.image] : [])));
}

/** The categories the prompt lists: the chosen ones, without the text-only ones when there is an image. */
export function promptCategories(messages: readonly GuardMessage[], opts: GuardPromptOptions = {}): GuardCategory[] {
  const chosen = opts.categories ?? LLAMA_GUARD_4_CATEGORIES;
  const withImage = guardImages(messages).length > 0;
  const out = LLAMA_GUARD_4_CATEGORIES.filter(
    (c) => chosen.some((x) => x.code === c.code) && !(withImage && TEXT_ONLY_CATEGORIES.has(c.code)),
  );
  if (out.length === 0) throw new UsageError('guard: no category left to check (S14 does not apply to conversations with images)');
  return out;
}

/** The built-in Llama Guard 4 prompt (see the header), byte for byte. */
export function renderGuardPrompt(messages: readonly GuardMessage[], opts: GuardPromptOptions = {}): string {
  const role = guardRole(messages);
  const cats = promptCategories(messages, opts);
  let s = '<|begin_of_text|><|header_start|>user<|header_end|>\n\n';
  s += GUARD_TASK_HEAD + `'${role}'` + TASK_TAIL;
  s += '<BEGIN UNSAFE CONTENT CATEGORIES>\n';
  for (const c of cats) s += `${c.code}: ${c.name}.\n`;
  s += '<END UNSAFE CONTENT CATEGORIES>\n\n';
  s += '<BEGIN CONVERSATION>\n\n';
  for (const m of messages) {
    s += m.role === 'user' ? 'User: ' : 'Agent: ';
    for (const p of parts(m)) s += p.type === 'image' ? '<|image|>' : p.text.trim();
    s += '\n\n';
  }
  s += '<END CONVERSATION>\n\n';
  s += `Provide your safety assessment for ONLY THE LAST ${role} message in the above conversation:\n`;
  s += INSTRUCTIONS + '<|eot|>';
  s += '<|header_start|>assistant<|header_end|>\n\n';
  return s;
}

/** Whether a checkpoint's chat template is a Llama Guard template (a general model's template is not used). */
export function isGuardTemplate(t: string | ChatTemplateSource | null | undefined): boolean {
  const src = typeof t === 'string' ? t : t?.template;
  return typeof src === 'string' && src.includes('UNSAFE CONTENT CATEGORIES');
}

/**
 * The prompt through a checkpoint's own guard template, with the variables Meta's template reads: content as lists
 * of {type:'text'|'image'} parts and `excluded_category_keys` for the categories not chosen.
 */
export function renderGuardTemplate(
  template: string | ChatTemplateSource,
  messages: readonly GuardMessage[],
  opts: GuardPromptOptions = {},
): string {
  guardRole(messages);
  const chosen = new Set((opts.categories ?? LLAMA_GUARD_4_CATEGORIES).map((c) => c.code));
  const excluded = LLAMA_GUARD_4_CATEGORIES.filter((c) => !chosen.has(c.code)).map((c) => c.code);
  const chatMessages = messages.map((m) => ({
    role: m.role,
    content: parts(m).map((p): TemplateContentPart => (p.type === 'text' ? { type: 'text', text: p.text } : { type: 'image' })),
  }));
  return renderChat({ messages: chatMessages, addGenerationPrompt: true, template, extra: { excluded_category_keys: excluded } });
}
