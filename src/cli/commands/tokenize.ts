import { readFileSync } from 'node:fs';
import { createInterface } from 'node:readline';
import { parseArgs } from '../args.ts';
import type { Command } from '../command.ts';
import { DEFAULT_MODEL_DIR, loadTokenizerFrom } from '../../load.ts';
import type { Tokenizer } from '../../tokenizer/index.ts';
import { UsageError } from '../../util/index.ts';

/** `-m MODEL` (folder or .gguf) or `--tokenizer FILE|DIR`; neither: the embedded model's folder. */
export function cliTokenizer(model: string | undefined, tokenizer: string | undefined): Tokenizer {
  if (model && tokenizer) throw new UsageError('give -m MODEL or --tokenizer FILE, not both');
  return loadTokenizerFrom(tokenizer ?? model ?? DEFAULT_MODEL_DIR);
}

function readStdin(): string {
  try {
    return readFileSync(0, 'utf8');
  } catch {
    return '';
  }
}

export const tokenizeCommand: Command = {
  name: 'tokenize',
  summary: 'print the token ids of a text (or of {"text"} JSON lines on stdin)',
  usage: `usage: llama4 tokenize (-m MODEL | --tokenizer FILE) [TEXT] [--json] [--special]
       llama4 tokenize (-m MODEL | --tokenizer FILE) --jsonl [--special] < lines.jsonl
Prints the ids of TEXT (or of all of stdin when TEXT is absent), space-separated; no BOS is added.
  -m, --model PATH       model folder (tokenizer.json / tokenizer.model inside) or .gguf file
  --tokenizer PATH       tokenizer.json, Meta's tokenizer.model, or a folder holding one
  --special              recognise special-token text such as <|eot|> (default: encode it as plain text)
  --json                 print {"ids": [...], "tokens": [...]} (tokens in the vocabulary's own spelling)
  --jsonl                read {"text": ...} lines on stdin, write {"ids": [...]} lines (one process for a corpus)`,
  async run(argv) {
    const { values, positionals } = parseArgs({
      args: argv,
      options: {
        model: { type: 'string', short: 'm' },
        tokenizer: { type: 'string' },
        special: { type: 'boolean' },
        json: { type: 'boolean' },
        jsonl: { type: 'boolean' },
      },
      allowPositionals: true,
      strict: true,
    });
    if (positionals.length > 1) throw new UsageError('give the text as one argument (quote it)');
    const tok = cliTokenizer(values.model, values.tokenizer);
    const opts = { allowSpecial: values.special ?? false };
    if (values.jsonl) {
      if (positionals.length) throw new UsageError('--jsonl reads stdin; do not give TEXT');
      const rl = createInterface({ input: process.stdin, crlfDelay: Infinity });
      let lineNo = 0;
      let buf = '';
      for await (const line of rl) {
        lineNo++;
        if (line.trim() === '') continue;
        let obj: unknown;
        try {
          obj = JSON.parse(line);
        } catch (e) {
          throw new UsageError(`stdin line ${lineNo}: invalid JSON (${(e as Error).message})`);
        }
        const text = (obj as { text?: unknown } | null)?.text;
        if (typeof text !== 'string') throw new UsageError(`stdin line ${lineNo}: expected {"text": string}`);
        buf += `{"ids":[${tok.encode(text, opts).join(',')}]}\n`;
        if (buf.length > 1 << 16) {
          if (!process.stdout.write(buf)) await new Promise((r) => process.stdout.once('drain', r));
          buf = '';
        }
      }
      process.stdout.write(buf);
      return 0;
    }
    const text = positionals[0] ?? readStdin();
    const ids = tok.encode(text, opts);
    if (values.json) {
      process.stdout.write(JSON.stringify({ ids, tokens: ids.map((id) => tok.idToToken(id) ?? null) }) + '\n');
    } else {
      process.stdout.write(ids.join(' ') + '\n');
    }
    return 0;
  },
};
