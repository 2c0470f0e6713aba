/**
 * Final-norm hidden states of a whole token sequence (what embeddings pool), through the AsyncCausalLM seam: works
 * for an in-thread model and for one in a model worker alike.
 */
import type { AsyncCausalLM } from '../model/types.ts';
import { UsageError } from '../util/index.ts';
import { yieldToEventLoop } from './common.ts';

/**
 * Final-norm hidden states [tokens.length, hiddenSize] of `tokens`: a new sequence, prefilled `piece` tokens per
 * forward call (so an in-thread model yields to the event loop between pieces), freed afterwards.
 */
export async function computeHiddenStates(
  model: AsyncCausalLM,
  tokens: readonly number[],
  piece: number,
  signal?: AbortSignal,
): Promise<Float32Array> {
  const H = model.info.hiddenSize;
  const out = new Float32Array(tokens.length * H);
  const seq = model.newSequence();
  try {
    for (let i = 0; i < tokens.length; i += piece) {
      if (signal?.aborted) throw new UsageError('the request was cancelled');
      const part = tokens.slice(i, i + piece);
      const [h] = await model.forward([{ seq, tokens: part, logits: 'hidden' }]);
      if (!h || h.length !== part.length * H)
        throw new Error(`the model returned ${h?.length ?? 0} hidden values for ${part.length} tokens × ${H}`);
      out.set(h, i * H);
      if (i + piece < tokens.length) await yieldToEventLoop();
    }
  } finally {
    seq.free?.();
  }
  return out;
}
