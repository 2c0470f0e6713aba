/**
 * Errors that describe a user's mistake or a bad input file. The CLI prints their message alone (no stack trace);
 * every other error is a bug and is printed with its stack.
 */
export class Llama4Error extends Error {
  override readonly name: string = 'Llama4Error';
}

/** A model file (safetensors, GGUF, config.json, tokenizer) that is missing, corrupt or inconsistent. */
export class ModelFileError extends Llama4Error {
  override readonly name = 'ModelFileError';
  constructor(
    readonly file: string,
    detail: string,
  ) {
    super(`${file}: ${detail}`);
  }
}

/** A configuration the engine does not support or that contradicts itself. */
export class ConfigError extends Llama4Error {
  override readonly name = 'ConfigError';
}

/** Bad arguments from a caller (CLI flags, library options, request fields). */
export class UsageError extends Llama4Error {
  override readonly name = 'UsageError';
}

/** Throws a UsageError unless `cond` holds. */
export function check(cond: unknown, message: string): asserts cond {
  if (!cond) throw new UsageError(message);
}

/** Internal invariant; failing it is a bug. */
export function assert(cond: unknown, message: string): asserts cond {
  if (!cond) throw new Error(`internal error: ${message}`);
}
