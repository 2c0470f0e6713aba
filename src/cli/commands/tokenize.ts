import { existsSync, readFileSync, statSync } from 'node:fs';
import { createInterface } from 'node:readline';
import { parseArgs } from 'node:util';
import type { Command } from '../command.ts';
import { DEFAULT_MODEL_DIR } from '../../load.ts';
import { readGgufHeader } from '../../io/gguf/index.ts';
import { loadTokenizer, tokenizerFromGguf, type Tokenizer } from '../../tokenizer/index.ts';
import { ModelFileError, UsageError } from '../../util/index.ts';

/** The GGUF metadata a tokenizer and chat template come from (header only; no tensor data is read). */
export function ggufMetadata(path: string): Map<string, unknown> {
  return readGgufHeader(path).metadata as Map<string, unknown>;
}

/** Tokenizer from a GGUF's `tokenizer.ggml.*` metadata. */
function ggufTokenizer(path: string): Tokenizer {
  const md = ggufMetadata(path);
  const num = (k: string): number | undefined => {
    const v = md.get(k);
    return typeof v === 'number' ? v : typeof v === 'bigint' ? Number(v) : undefined;
  };
  const tokens = md.get('tokenizer.ggml.tokens');
  if (!Array.isArray(tokens)) throw new ModelFileError(path, 'the GGUF has no tokenizer (tokenizer.ggml.tokens)');
  const merges = md.get('tokenizer.ggml.merges');
  const types = md.get('tokenizer.ggml.token_type');
  const bos = num('tokenizer.ggml.bos_token_id');
  const eos = num('tokenizer.ggml.eos_token_id');
  return tokenizerFromGguf({
    tokens: tokens as string[],
    ...(Array.isArray(merges) ? { merges: merges as string[] } : {}),
    ...(types && typeof types === 'object' && 'length' in types ? { tokenTypes: Array.from(types as ArrayLike<number>) } : {}),
    ...(bos !== undefined ? { bosId: bos } : {}),
    ...(eos !== undefined ? { eosId: eos } : {}),
    extraEosIds: [num('tokenizer.ggml.eot_token_id'), num('tokenizer.ggml.eom_token_id')].filter((x): x is number => x !== undefined),
    source: path,
  });
}

/** `-m MODEL` (folder or .gguf) or `--tokenizer FILE|DIR`; neither: the embedded model's folder. */
export function cliTokenizer(model: string | undefined, tokenizer: string | undefined): Tokenizer {
  if (model && tokenizer) throw new UsageError('give -m MODEL or --tokenizer FILE, not both');
  const path = tokenizer ?? model ?? DEFAULT_MODEL_DIR;
  if (!existsSync(path)) throw new UsageError(`not found: ${path}`);
  if (statSync(path).isFile() && path.endsWith('.gguf')) return ggufTokenizer(path);
  return loadTokenizer(path);
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
