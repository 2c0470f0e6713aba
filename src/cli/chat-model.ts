/**
 * What `run` and `chat` both do before the first turn: load the model named by -m (or the embedded one) with a
 * loading bar on a terminal, say a fallback backend in one line, and merge the sampling flags over the model's
 * generation_config defaults.
 */
import { DEFAULT_MODEL_DIR, loadModel, type LoadedModel } from '../load.ts';
import type { SamplerOptions } from '../engine/index.ts';
import { createProgress } from './progress.ts';
import { loadOptions, samplerOptions } from './options.ts';

export async function loadChatModel(
  values: Parameters<typeof loadOptions>[0] & { model?: string | undefined } & Record<string, unknown>,
): Promise<{ loaded: LoadedModel; sampler: SamplerOptions }> {
  // A terminal sees a loading bar (erased once loaded); pipes and logs get nothing, so the answer stays clean.
  const progress = createProgress(`loading ${values.model ?? 'the embedded model'}`, { quiet: !process.stderr.isTTY });
  const loaded = await loadModel(values.model ?? DEFAULT_MODEL_DIR, {
    ...loadOptions(values),
    onProgress: (f, what) => progress.update(f, what),
  });
  progress.done();
  // Falling back to the (much slower) TypeScript backend is said once, in one line, not silently.
  if (loaded.backendNote) process.stderr.write(`llama4: ${loaded.backendNote}\n`);
  const sampler = { ...loaded.samplingDefaults, ...samplerOptions(values, loaded.samplingDefaults.temperature ?? 0.6) };
  return { loaded, sampler };
}
