/** Every subcommand, in the order `llama4 --help` lists them. Add a command by adding its module here. */
import type { Command } from '../command.ts';
import { runCommand } from './run.ts';
import { chatCommand } from './chat.ts';
import { logitsCommand } from './logits.ts';
import { generateCommand } from './generate.ts';
import { imageTilesCommand } from './image-tiles.ts';
import { trainCommand } from './train.ts';
import { serveCommand } from './serve.ts';
import { benchCommand } from './bench.ts';
import { makeTestModelCommand } from './make-test-model.ts';
import { convertCommand } from './convert.ts';
import { infoCommand } from './info.ts';
import { tokenizeCommand } from './tokenize.ts';
import { templateCommand } from './template.ts';
import { guardCommand } from './guard.ts';

export const COMMANDS: readonly Command[] = [
  runCommand,
  chatCommand,
  serveCommand,
  logitsCommand,
  generateCommand,
  imageTilesCommand,
  trainCommand,
  benchCommand,
  makeTestModelCommand,
  convertCommand,
  infoCommand,
  tokenizeCommand,
  templateCommand,
  guardCommand,
];
