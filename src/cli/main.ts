/**
 * `llama4` entry point: dispatches to a subcommand. Errors that describe the user's mistake (Llama4Error) are
 * printed as one line on stderr with exit code 1, never as a stack trace. `llama4 help CMD` and `llama4 CMD --help`
 * print a command's usage; `--version` the package version and the backend this machine would use.
 */
import { readFileSync } from 'node:fs';
import { Llama4Error } from '../util/index.ts';
import { describeDefaultBackend } from '../load.ts';
import { COMMANDS } from './commands/index.ts';
import { suggest } from './args.ts';

/** `llama4-ts 0.1.0` plus the backend line; package.json is two folders up from both src/cli and dist/cli. */
function version(): string {
  const pkg = JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as { name: string; version: string };
  return `${pkg.name} ${pkg.version}\nbackend: ${describeDefaultBackend()}\nnode ${process.version} (${process.platform}-${process.arch})`;
}

function unknownCommand(name: string): string {
  const hint = suggest(
    name,
    COMMANDS.map((c) => c.name),
  );
  return `llama4: unknown command '${name}'${hint ? ` (did you mean '${hint}'?)` : ''}; \`llama4 --help\` lists the commands\n`;
}

function help(): string {
  const width = Math.max(...COMMANDS.map((c) => c.name.length), 4);
  return [
    'usage: llama4 <command> [options]',
    '',
    'commands:',
    ...COMMANDS.map((c) => `  ${c.name.padEnd(width)}  ${c.summary}`),
    '',
    'Run `llama4 help <command>` (or `llama4 <command> --help`) for its options; `llama4 --version` for the version',
    'and the compute backend this machine uses.',
  ].join('\n');
}

export async function main(argv: string[]): Promise<number> {
  const [name, ...rest] = argv;
  if (name === '--version' || name === '-v' || name === 'version') {
    process.stdout.write(version() + '\n');
    return 0;
  }
  if (name === 'help' && rest[0] !== undefined) {
    const topic = COMMANDS.find((c) => c.name === rest[0]);
    if (!topic) {
      process.stderr.write(unknownCommand(rest[0]));
      return 2;
    }
    process.stdout.write(topic.usage.trimEnd() + '\n');
    return 0;
  }
  if (!name || name === '--help' || name === '-h' || name === 'help') {
    process.stdout.write(help() + '\n');
    return name ? 0 : 1;
  }
  const cmd = COMMANDS.find((c) => c.name === name);
  if (!cmd) {
    process.stderr.write(unknownCommand(name));
    return 2;
  }
  if (rest.includes('--help') || rest.includes('-h')) {
    process.stdout.write(cmd.usage.trimEnd() + '\n');
    return 0;
  }
  try {
    return await cmd.run(rest);
  } catch (e) {
    if (e instanceof Llama4Error || (e instanceof TypeError && (e as { code?: string }).code?.startsWith('ERR_PARSE_ARGS'))) {
      process.stderr.write(`llama4 ${name}: ${(e as Error).message}\n`);
      return 1;
    }
    throw e;
  }
}

// Run directly (node --import tsx src/cli/main.ts …) as well as through bin/llama4.js.
if (process.argv[1] && import.meta.url === new URL(`file://${process.argv[1]}`).href) {
  process.exitCode = await main(process.argv.slice(2));
}
