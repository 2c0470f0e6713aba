/**
 * `llama4` entry point: dispatches to a subcommand. Errors that describe the user's mistake (Llama4Error) are
 * printed as one line on stderr with exit code 1, never as a stack trace.
 */
import { Llama4Error } from '../util/index.ts';
import { COMMANDS } from './commands/index.ts';

function help(): string {
  const width = Math.max(...COMMANDS.map((c) => c.name.length), 4);
  return [
    'usage: llama4 <command> [options]',
    '',
    'commands:',
    ...COMMANDS.map((c) => `  ${c.name.padEnd(width)}  ${c.summary}`),
    '',
    'Run `llama4 <command> --help` for its options.',
  ].join('\n');
}

export async function main(argv: string[]): Promise<number> {
  const [name, ...rest] = argv;
  if (!name || name === '--help' || name === '-h' || name === 'help') {
    process.stdout.write(help() + '\n');
    return name ? 0 : 1;
  }
  const cmd = COMMANDS.find((c) => c.name === name);
  if (!cmd) {
    process.stderr.write(`llama4: unknown command '${name}'\n${help()}\n`);
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
