import { existsSync, readFileSync } from 'node:fs';
import { parseArgs, readStdin } from '../args.ts';
import type { Command } from '../command.ts';
import {
  renderChat,
  templateFromConfigValue,
  type TemplateMessage,
  type ChatTemplateSource,
  type ToolDefinition,
} from '../../chat/index.ts';
import { UsageError } from '../../util/index.ts';
import { loadChatTemplateFrom } from '../../load.ts';

function readJsonFile(path: string, what: string, text?: string): unknown {
  if (text === undefined && !existsSync(path)) throw new UsageError(`${what}: no such file: ${path}`);
  try {
    return JSON.parse(text ?? readFileSync(path, 'utf8'));
  } catch (e) {
    throw new UsageError(`${what}: ${path} is not valid JSON (${(e as Error).message})`);
  }
}

/** The template named by -m (folder or .gguf) or --template (a .jinja file, or a JSON file with "chat_template"). */
function findTemplate(model: string | undefined, file: string | undefined): ChatTemplateSource | undefined {
  if (model && file) throw new UsageError('give -m MODEL or --template FILE, not both');
  if (file) {
    if (!existsSync(file)) throw new UsageError(`--template: no such file: ${file}`);
    if (file.endsWith('.json')) {
      const j = readJsonFile(file, '--template') as { chat_template?: unknown } | null;
      if (!j || j.chat_template === undefined) throw new UsageError(`--template: ${file} has no "chat_template"`);
      return templateFromConfigValue(j.chat_template, file);
    }
    return { template: readFileSync(file, 'utf8'), file };
  }
  if (!model) return undefined;
  if (!existsSync(model)) throw new UsageError(`-m: not found: ${model}`);
  return loadChatTemplateFrom(model);
}

export const templateCommand: Command = {
  name: 'template',
  summary: 'render a conversation with a chat template and print the exact prompt text',
  usage: `usage: llama4 template (-m MODEL | --template FILE) --messages FILE.json [--tools FILE.json] [--context JSON]
                      [--generation-prompt] [--bos TEXT] [--json]
Renders the messages as the model will see them (Python Jinja2 semantics) and prints the prompt; with --json
prints {"prompt": "..."}. Without -m or --template (or when the model has none) the built-in Llama 4 format is used.
  -m, --model PATH       model folder (chat_template.jinja / tokenizer_config.json) or .gguf file
  --template FILE        a Jinja template file, or a JSON file with a "chat_template" field
  --messages FILE        JSON: a list of OpenAI-style messages (or {"messages": [...], "tools": [...]}); - reads stdin
  --tools FILE           JSON: an OpenAI tool list
  --context JSON         extra template variables as a JSON object, e.g. '{"tools_in_user_message": false}'
  --generation-prompt    end with the assistant header (add_generation_prompt)
  --bos TEXT             bos_token (default <|begin_of_text|>)
  --drop-nulls           treat content: null as '' and drop tool_calls: null (as vLLM; default: as transformers)
  --json                 print {"prompt": "..."}`,
  async run(argv) {
    const { values, positionals } = parseArgs({
      args: argv,
      options: {
        model: { type: 'string', short: 'm' },
        template: { type: 'string' },
        messages: { type: 'string' },
        tools: { type: 'string' },
        context: { type: 'string' },
        'generation-prompt': { type: 'boolean' },
        bos: { type: 'string' },
        'drop-nulls': { type: 'boolean' },
        json: { type: 'boolean' },
      },
      allowPositionals: false,
      strict: true,
    });
    void positionals;
    if (!values.messages) throw new UsageError('--messages FILE.json is required');
    const m =
      values.messages === '-' ? readJsonFile('stdin', '--messages', await readStdin()) : readJsonFile(values.messages, '--messages');
    let messages: unknown = m;
    let tools: unknown;
    if (m && typeof m === 'object' && !Array.isArray(m)) {
      messages = (m as { messages?: unknown }).messages;
      tools = (m as { tools?: unknown }).tools;
    }
    if (values.tools) tools = readJsonFile(values.tools, '--tools');
    if (tools !== undefined && tools !== null && !Array.isArray(tools)) throw new UsageError('--tools: expected a JSON list of tools');
    let extra: Record<string, unknown> | undefined;
    if (values.context) {
      try {
        extra = JSON.parse(values.context) as Record<string, unknown>;
      } catch (e) {
        throw new UsageError(`--context: not valid JSON (${(e as Error).message})`);
      }
      if (!extra || typeof extra !== 'object' || Array.isArray(extra)) throw new UsageError('--context: expected a JSON object');
    }
    const template = findTemplate(values.model, values.template);
    const prompt = renderChat({
      messages: messages as TemplateMessage[],
      tools: (tools ?? null) as ToolDefinition[] | null,
      addGenerationPrompt: values['generation-prompt'] ?? false,
      dropNulls: values['drop-nulls'] ?? false,
      ...(template ? { template } : {}),
      ...(values.bos !== undefined ? { bosToken: values.bos } : {}),
      ...(extra ? { extra } : {}),
    });
    process.stdout.write(values.json ? JSON.stringify({ prompt }) + '\n' : prompt);
    return 0;
  },
};
