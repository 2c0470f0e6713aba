/**
 * `llama4 serve`'s model loading: loadModel (the composition root) plus what the server needs beside the weights —
 * the tokenizer and chat template, read from the model folder (tokenizer.json / tokenizer.model,
 * tokenizer_config.json or chat_template.jinja) or from the GGUF metadata (tokenizer.ggml.*, tokenizer.chat_template).
 */
import { existsSync, readFileSync } from 'node:fs';
import { basename, join } from 'node:path';
import { loadModel, type LoadOptions } from '../load.ts';
import { readGgufHeader } from '../io/gguf/index.ts';
import { loadTokenizer, tokenizerFromGguf, type Tokenizer } from '../tokenizer/index.ts';
import { ModelFileError } from '../util/index.ts';
import type { SchedulerOptions } from '../engine/scheduler.ts';
import type { ServerEngine } from './engine.ts';
import { llama4Engine } from './llama4-engine.ts';

function ggufTokenizer(path: string, vocabSize: number): { tokenizer: Tokenizer; template: string | null } {
  const md = readGgufHeader(path).metadata;
  const num = (k: string) => {
    const v = md.get(k);
    return typeof v === 'number' ? v : typeof v === 'bigint' ? Number(v) : undefined;
  };
  const tokens = md.get('tokenizer.ggml.tokens');
  if (!Array.isArray(tokens)) throw new ModelFileError(path, 'the GGUF has no tokenizer (tokenizer.ggml.tokens); the server needs one');
  const merges = md.get('tokenizer.ggml.merges');
  const types = md.get('tokenizer.ggml.token_type');
  const bos = num('tokenizer.ggml.bos_token_id');
  const eos = num('tokenizer.ggml.eos_token_id');
  const extra = [num('tokenizer.ggml.eot_token_id'), num('tokenizer.ggml.eom_token_id')].filter((x): x is number => x !== undefined);
  const tokenizer = tokenizerFromGguf({
    tokens: tokens as string[],
    ...(Array.isArray(merges) ? { merges: merges as string[] } : {}),
    ...(types && typeof types === 'object' && 'length' in types ? { tokenTypes: Array.from(types as ArrayLike<number>) } : {}),
    ...(bos !== undefined ? { bosId: bos } : {}),
    ...(eos !== undefined ? { eosId: eos } : {}),
    extraEosIds: extra,
    vocabSize,
    source: path,
  });
  const t = md.get('tokenizer.chat_template');
  return { tokenizer, template: typeof t === 'string' ? t : null };
}

function folderTemplate(dir: string): string | null {
  const jinja = join(dir, 'chat_template.jinja');
  if (existsSync(jinja)) return readFileSync(jinja, 'utf8');
  const cfg = join(dir, 'tokenizer_config.json');
  if (existsSync(cfg)) {
    try {
      const t = (JSON.parse(readFileSync(cfg, 'utf8')) as { chat_template?: unknown }).chat_template;
      if (typeof t === 'string') return t;
      if (Array.isArray(t)) {
        const d = t.find((x: { name?: string }) => x?.name === 'default') as { template?: string } | undefined;
        if (d?.template) return d.template;
      }
    } catch (e) {
      throw new ModelFileError(cfg, `not valid JSON (${(e as Error).message})`);
    }
  }
  return null;
}

export interface ServeLoadOptions extends LoadOptions, SchedulerOptions {
  /** Folder or file with the tokenizer, when it is not beside the weights. */
  tokenizerPath?: string;
  /** Jinja chat template text overriding the model's. */
  chatTemplate?: string;
}

export async function loadServerEngine(path: string, o: ServeLoadOptions = {}): Promise<ServerEngine> {
  const loaded = await loadModel(path, o);
  const model = loaded.model;
  let tokenizer: Tokenizer;
  let template: string | null = null;
  if (o.tokenizerPath) {
    tokenizer = loadTokenizer(o.tokenizerPath);
    if (existsSync(join(o.tokenizerPath, 'tokenizer_config.json'))) template = folderTemplate(o.tokenizerPath);
  } else if (loaded.format === 'gguf') {
    ({ tokenizer, template } = ggufTokenizer(loaded.path, model.info.vocabSize));
  } else {
    const dir = loaded.tokenizerDir ?? loaded.path;
    tokenizer = loadTokenizer(dir);
    template = folderTemplate(dir);
  }
  return llama4Engine({
    ...o,
    modelId: basename(path.replace(/\/+$/, '')).replace(/\.gguf$/, ''),
    model,
    tokenizer,
    chatTemplate: o.chatTemplate ?? template,
  });
}
