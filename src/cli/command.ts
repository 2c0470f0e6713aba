/** One `llama4 <name>` subcommand. `run` returns the process exit code; user mistakes throw Llama4Error. */
export interface Command {
  readonly name: string;
  /** One line for `llama4 --help`. */
  readonly summary: string;
  /** Full usage text for `llama4 <name> --help`. */
  readonly usage: string;
  run(argv: string[]): Promise<number>;
}
