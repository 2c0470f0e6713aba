/**
 * The composition root: the only module that names concrete file formats and backends.
 * `loadModel(path)` reads a Hugging Face folder (config.json + safetensors, single or sharded) or a GGUF file,
 * picks a backend (native when it loads, else TypeScript), and returns the model with its facts.
 */
import { existsSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Backend } from './tensor/index.ts';
import { TsBackend } from './kernels/ts/index.ts';
import { tryCreateNativeBackend } from './kernels/native/index.ts';
import { openSafetensors } from './io/safetensors.ts';
import type { Llama4Config } from './model/llama4/config.ts';
import { parseHfConfig } from './model/llama4/config.ts';
import { loadHfTextTensors } from './model/llama4/weights.ts';
import { isGgufFile, readGguf } from './io/gguf/index.ts';
import { llama4FromGguf } from './model/llama4/gguf-config.ts';
import { Llama4TextModel } from './model/llama4/text-model.ts';
import { ModelFileError, UsageError } from './util/index.ts';

/** The model shipped with the package (models/default), used when no -m is given. */
export const DEFAULT_MODEL_DIR = fileURLToPath(new URL('../models/default/', import.meta.url));

export type BackendChoice = 'auto' | 'typescript' | 'native';

export interface LoadOptions {
  backend?: BackendChoice;
  /** Compute threads for the native backend (default: all cores). */
  threads?: number;
  /** Called with a fraction 0..1 while weights load. */
  onProgress?: (fraction: number, what: string) => void;
}

export interface LoadedModel {
  readonly model: Llama4TextModel;
  readonly config: Llama4Config;
  readonly path: string;
  readonly format: 'safetensors' | 'gguf';
  readonly backend: Backend;
  /** Folder holding tokenizer files next to the weights (HF layouts), or null. */
  readonly tokenizerDir: string | null;
  /** Why the native backend is not in use, when it was wanted (printed by the CLI). */
  readonly backendNote: string | null;
}

function readJson(file: string): unknown {
  try {
    return JSON.parse(readFileSync(file, 'utf8'));
  } catch (e) {
    throw new ModelFileError(file, `not valid JSON (${(e as Error).message})`);
  }
}

/**
 * Picks the compute backend: the native core when its addon loads (auto), else the TypeScript reference with a
 * one-line note saying why. `native` insists and fails with that reason.
 */
export async function createBackend(choice: BackendChoice = 'auto', threads?: number): Promise<{ backend: Backend; note: string | null }> {
  if (choice === 'typescript') return { backend: new TsBackend(), note: null };
  const { backend, reason } = tryCreateNativeBackend(threads !== undefined ? { threads } : {});
  if (backend) return { backend, note: null };
  const note = `native backend unavailable (${reason}); using the TypeScript backend`;
  if (choice === 'native') throw new UsageError(note);
  return { backend: new TsBackend(), note };
}

export async function loadModel(path: string = DEFAULT_MODEL_DIR, opts: LoadOptions = {}): Promise<LoadedModel> {
  if (!existsSync(path)) throw new ModelFileError(path, 'no such file or folder');
  const { backend, note } = await createBackend(opts.backend, opts.threads);
  if (statSync(path).isDirectory()) {
    const cfgFile = join(path, 'config.json');
    if (!existsSync(cfgFile)) throw new ModelFileError(path, 'not a model folder: config.json is missing');
    const genFile = join(path, 'generation_config.json');
    const config = parseHfConfig(readJson(cfgFile), existsSync(genFile) ? readJson(genFile) : undefined);
    opts.onProgress?.(0, 'reading weights');
    const tensors = loadHfTextTensors(config, openSafetensors(path), path);
    const model = new Llama4TextModel(config, tensors, backend, path);
    opts.onProgress?.(1, 'ready');
    return { model, config, path, format: 'safetensors', backend, tokenizerDir: path, backendNote: note };
  }
  if (path.endsWith('.gguf') || isGgufFile(path)) {
    // GGUF (llama.cpp layout): metadata -> Llama4Config, `<name>.weight` -> internal names; tensors stay quantized.
    opts.onProgress?.(0, 'reading weights');
    const file = readGguf(path);
    const { config, tensors } = llama4FromGguf(file.metadata, file.tensorData, path);
    const model = new Llama4TextModel(config, tensors, backend, path);
    opts.onProgress?.(1, 'ready');
    return { model, config, path, format: 'gguf', backend, tokenizerDir: null, backendNote: note };
  }
  throw new ModelFileError(path, 'expected a model folder (config.json + *.safetensors) or a .gguf file');
}
