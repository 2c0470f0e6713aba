/**
 * Argument parsing for every `llama4` command: node:util's parseArgs, plus
 * - the llama.cpp / Ollama spellings of our flags as aliases (`--temp`, `-c/--ctx-size`, `--n-predict`, …), applied
 *   only where the command has the flag they stand for and does not define the alias itself;
 * - one-line UsageErrors with a "did you mean" for unknown flags, instead of Node's raw parseArgs message;
 * - reading a prompt or a file from stdin (`-`, or a pipe).
 */
import { parseArgs as nodeParseArgs, type ParseArgsConfig } from 'node:util';
import { UsageError } from '../util/index.ts';

/** llama.cpp's long flags → ours (`--top-k`, `--top-p`, `--min-p`, `--repeat-penalty`, `--seed`, `--host`, `--port`,
 * `--mmproj`, `--alias` are spelled the same in both). */
export const FLAG_ALIASES: Readonly<Record<string, string>> = {
  temp: 'temperature',
  'ctx-size': 'ctx',
  'n-predict': 'max-tokens',
};

/** Other programs' short flag → our long flag (llama.cpp's `-c N` context size). */
export const SHORT_ALIASES: Readonly<Record<string, string>> = { c: 'ctx' };

type Options = NonNullable<ParseArgsConfig['options']>;

/** Rewrites alias flags in argv to the command's own names (stops at `--`). */
export function applyAliases(argv: readonly string[], options: Options): string[] {
  const shorts = new Set(
    Object.values(options)
      .map((o) => o.short)
      .filter(Boolean),
  );
  const out: string[] = [];
  let rest = false;
  for (const a of argv) {
    if (rest || a === '--') {
      rest = true;
      out.push(a);
      continue;
    }
    const long = /^--([^=]+)(=.*)?$/.exec(a);
    if (long) {
      const target = FLAG_ALIASES[long[1]!];
      out.push(target && !(long[1]! in options) && target in options ? `--${target}${long[2] ?? ''}` : a);
      continue;
    }
    const short = /^-([a-zA-Z])$/.exec(a);
    const target = short ? SHORT_ALIASES[short[1]!] : undefined;
    out.push(target && !shorts.has(short![1]) && target in options ? `--${target}` : a);
  }
  return out;
}

/** Edit distance: insert, delete, substitute and swap of neighbours (`rnu` → `run`) each cost 1. */
function distance(a: string, b: string): number {
  const d: number[][] = Array.from({ length: a.length + 1 }, (_, i) =>
    Array.from({ length: b.length + 1 }, (_, j) => (i === 0 ? j : j === 0 ? i : 0)),
  );
  for (let i = 1; i <= a.length; i++) {
    for (let j = 1; j <= b.length; j++) {
      const row = d[i]!,
        up = d[i - 1]!;
      row[j] = Math.min(up[j]! + 1, row[j - 1]! + 1, up[j - 1]! + (a[i - 1] === b[j - 1] ? 0 : 1));
      if (i > 1 && j > 1 && a[i - 1] === b[j - 2] && a[i - 2] === b[j - 1]) row[j] = Math.min(row[j]!, d[i - 2]![j - 2]! + 1);
    }
  }
  return d[a.length]![b.length]!;
}

/** The closest candidate to `word` (a prefix of one, or within a third of its length in edits), or null. */
export function suggest(word: string, candidates: readonly string[]): string | null {
  let best: string | null = null;
  let bestD = Infinity;
  for (const c of candidates) {
    const d = c.startsWith(word) && word.length >= 2 ? 0.5 : distance(word, c);
    if (d < bestD) {
      bestD = d;
      best = c;
    }
  }
  return best !== null && bestD <= Math.max(1, Math.floor(word.length / 3)) ? best : null;
}

/** Every flag a command accepts, as typed (`--temperature`, `--temp`, `-m`, …). */
export function knownFlags(options: Options): string[] {
  const flags: string[] = [];
  for (const [name, o] of Object.entries(options)) {
    flags.push(`--${name}`);
    if (o.short) flags.push(`-${o.short}`);
  }
  for (const [alias, target] of Object.entries(FLAG_ALIASES)) if (target in options) flags.push(`--${alias}`);
  flags.push('--help');
  return flags;
}

/**
 * node:util parseArgs with aliases applied (see FLAG_ALIASES) and parse errors turned into one-line UsageErrors:
 * `unknown option '--tmep' (did you mean --temp?)`.
 */
export function parseArgs<T extends ParseArgsConfig>(config: T): ReturnType<typeof nodeParseArgs<T>> {
  const options = config.options ?? {};
  const args = applyAliases(config.args ?? process.argv.slice(2), options);
  try {
    return nodeParseArgs({ ...config, args }) as ReturnType<typeof nodeParseArgs<T>>; // only args differs
  } catch (e) {
    const code = (e as { code?: string }).code ?? '';
    const msg = (e as Error).message;
    if (code === 'ERR_PARSE_ARGS_UNKNOWN_OPTION') {
      const flag = /'([^']+)'/.exec(msg)?.[1] ?? '?';
      const name = flag.replace(/=.*$/, '');
      const hint = suggest(name, knownFlags(options));
      throw new UsageError(`unknown option '${name}' (${hint ? `did you mean ${hint}?` : '--help lists the options'})`);
    }
    if (code === 'ERR_PARSE_ARGS_UNEXPECTED_POSITIONAL') {
      throw new UsageError(
        `unexpected argument '${/'([^']+)'/.exec(msg)?.[1] ?? '?'}' (this command takes only options; --help lists them)`,
      );
    }
    if (code === 'ERR_PARSE_ARGS_INVALID_OPTION_VALUE') {
      const flag = /--[\w-]+/.exec(msg)?.[0];
      throw new UsageError(/argument missing/.test(msg) && flag ? `option ${flag} needs a value` : msg.split('\n')[0]!);
    }
    throw e;
  }
}

/** All of stdin as text (for `-` and piped prompts). */
export async function readStdin(stream: NodeJS.ReadableStream = process.stdin): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const c of stream) chunks.push(typeof c === 'string' ? Buffer.from(c) : (c as Buffer));
  return Buffer.concat(chunks).toString('utf8');
}
