/** Flags shared by the model-running commands, and their parsing into library options. */
import type { ParseArgsConfig } from 'node:util';
import type { BackendChoice, LoadOptions } from '../load.ts';
import type { SamplerOptions } from '../engine/index.ts';
import { UsageError } from '../util/index.ts';
import { isKvType } from '../tensor/index.ts';

export const MODEL_OPTIONS = {
  model: { type: 'string', short: 'm' },
  backend: { type: 'string' },
  threads: { type: 'string', short: 't' },
  'kv-type': { type: 'string' },
  mmproj: { type: 'string' },
} as const satisfies ParseArgsConfig['options'];

export const SAMPLER_OPTIONS = {
  temperature: { type: 'string' }, // --temp (llama.cpp) is an alias: src/cli/args.ts
  'top-k': { type: 'string' },
  'top-p': { type: 'string' },
  'min-p': { type: 'string' },
  'repeat-penalty': { type: 'string' },
  'presence-penalty': { type: 'string' },
  'frequency-penalty': { type: 'string' },
  seed: { type: 'string' },
} as const satisfies ParseArgsConfig['options'];

export const MODEL_USAGE = `  -m, --model PATH       model folder (config.json + safetensors) or .gguf file (default: the embedded model)
  --backend NAME         auto | native | typescript (default auto)
  -t, --threads N        compute threads for the native backend
  --kv-type T            KV cache storage: f32 (default, exact) | f16 | q8_0 (smaller cache, longer contexts)
  --mmproj FILE          vision projector GGUF (llama.cpp's mmproj file) for a GGUF model's images`;

export const SAMPLER_USAGE = `  --temp, --temperature X  0 = greedy (run/chat default: the model's generation_config.json, else 0.6;
                         generate: 0)
  --top-k N  --top-p X  --min-p X
  --repeat-penalty X  --presence-penalty X  --frequency-penalty X
  --seed N               reproducible sampling`;

export function parseNumber(flag: string, v: string | undefined, opts: { int?: boolean; min?: number } = {}): number | undefined {
  if (v === undefined) return undefined;
  const n = Number(v);
  if (v.trim() === '' || !Number.isFinite(n) || (opts.int && !Number.isInteger(n)) || (opts.min !== undefined && n < opts.min)) {
    throw new UsageError(
      `--${flag} expects ${opts.int ? 'an integer' : 'a number'}${opts.min !== undefined ? ` >= ${opts.min}` : ''}, got '${v}'`,
    );
  }
  return n;
}

/** "1,5,9" -> [1, 5, 9]; rejects anything that is not a non-negative integer list. */
export function parseIds(v: string | undefined): number[] {
  if (v === undefined || v.trim() === '') throw new UsageError('--ids expects a comma-separated list of token ids, e.g. --ids 1,5,9');
  return v.split(',').map((s) => {
    const t = s.trim();
    if (!/^\d+$/.test(t)) throw new UsageError(`--ids: '${t}' is not a token id (non-negative integer)`);
    return Number(t);
  });
}

export function loadOptions(values: {
  backend?: string | undefined;
  threads?: string | undefined;
  'kv-type'?: string | undefined;
  mmproj?: string | undefined;
}): LoadOptions {
  const b = values.backend ?? 'auto';
  if (b !== 'auto' && b !== 'native' && b !== 'typescript')
    throw new UsageError(`--backend must be auto, native or typescript, got '${b}'`);
  const threads = parseNumber('threads', values.threads, { int: true, min: 1 });
  const kv = values['kv-type'];
  if (kv !== undefined && !isKvType(kv)) throw new UsageError(`--kv-type must be f32, f16 or q8_0, got '${kv}'`);
  return {
    backend: b as BackendChoice,
    ...(threads !== undefined ? { threads } : {}),
    ...(kv !== undefined ? { kvType: kv } : {}),
    ...(values.mmproj !== undefined ? { mmproj: values.mmproj } : {}),
  };
}

export function samplerOptions(values: Record<string, unknown>, defaultTemperature: number): SamplerOptions {
  const s = (k: string) => values[k] as string | undefined;
  const o: SamplerOptions = { temperature: parseNumber('temperature', s('temperature'), { min: 0 }) ?? defaultTemperature };
  const topK = parseNumber('top-k', s('top-k'), { int: true, min: 0 });
  const topP = parseNumber('top-p', s('top-p'), { min: 0 });
  const minP = parseNumber('min-p', s('min-p'), { min: 0 });
  const rep = parseNumber('repeat-penalty', s('repeat-penalty'), { min: 0 });
  const pres = parseNumber('presence-penalty', s('presence-penalty'));
  const freq = parseNumber('frequency-penalty', s('frequency-penalty'));
  const seed = parseNumber('seed', s('seed'), { int: true, min: 0 });
  if (topK !== undefined) o.topK = topK;
  if (topP !== undefined) o.topP = topP;
  if (minP !== undefined) o.minP = minP;
  if (rep !== undefined) o.repetitionPenalty = rep;
  if (pres !== undefined) o.presencePenalty = pres;
  if (freq !== undefined) o.frequencyPenalty = freq;
  if (seed !== undefined) o.seed = seed;
  return o;
}
