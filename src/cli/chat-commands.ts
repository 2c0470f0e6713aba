/**
 * `llama4 chat`'s slash commands, handled by the CLI and never sent to the model (Ollama's `/bye`, `/?`; llama.cpp's
 * `/exit`). A line is a command when it starts with `/word` followed by a space or its end, so a message such as
 * "/etc/hosts holds what?" still goes to the model.
 */
import { suggest } from './args.ts';

export type ChatCommand =
  | { readonly kind: 'help' }
  | { readonly kind: 'exit' }
  | { readonly kind: 'reset' }
  | { readonly kind: 'system'; readonly text: string }
  | { readonly kind: 'unknown'; readonly message: string };

const NAMES = ['/help', '/?', '/bye', '/exit', '/quit', '/reset', '/clear', '/system'] as const;

export const CHAT_COMMANDS_HELP = `commands (not sent to the model):
  /help, /?              this list
  /bye, /exit, /quit     leave (also Ctrl-D, or Ctrl-C at an empty prompt)
  /reset, /clear         forget the conversation (the system message stays)
  /system TEXT           set the system message (the conversation so far is kept); /system alone shows it
Ctrl-C while an answer is being written stops it.`;

/** The command a line holds, or null when the line is a message for the model. */
export function parseChatCommand(line: string): ChatCommand | null {
  const m = /^(\/[a-z?]+)(?:\s+([\s\S]*))?$/i.exec(line.trim());
  if (!m) return null;
  const name = m[1]!.toLowerCase();
  const arg = (m[2] ?? '').trim();
  switch (name) {
    case '/help':
    case '/?':
      return { kind: 'help' };
    case '/bye':
    case '/exit':
    case '/quit':
      return { kind: 'exit' };
    case '/reset':
    case '/clear':
      return { kind: 'reset' };
    case '/system':
      return { kind: 'system', text: arg };
    default: {
      const hint = suggest(name, NAMES);
      return { kind: 'unknown', message: `unknown command ${name}${hint ? ` (did you mean ${hint}?)` : ''}; /help lists the commands` };
    }
  }
}
