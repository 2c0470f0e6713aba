/** Every subcommand, in the order `llama4 --help` lists them. Add a command by adding its module here. */
import type { Command } from '../command.ts';

export const COMMANDS: readonly Command[] = [];
