/**
 * Decoding during training goes through the inference model: a TrainModel's current weights are handed to
 * `Llama4TextModel` (model/llama4, the same code `llama4 run` uses) in HF layout and prompts are completed through
 * its forward (prefill, then one token at a time on its KV cache). So evaluation and RL samples see exactly the
 * model users will get. Sampling here is plain softmax sampling at a temperature (greedy at 0) from a seeded Rng.
 * The caller supplies the compute Backend (src/load.ts picks it).
 */
import type { Backend, RawTensor } from '../tensor/backend.ts';
import { parseHfConfig } from '../model/llama4/config.ts';
import { loadHfTextTensors } from '../model/llama4/weights.ts';
import { Llama4TextModel } from '../model/llama4/text-model.ts';
import { modelTensors } from './checkpoint.ts';
import { toHfConfig } from './config.ts';
import type { TrainModel } from './model.ts';
import type { Rng } from './rng.ts';

/** Greedy completion ids for a prompt (stop token excluded). */
export type GreedyDecode = (prompt: readonly number[], maxNew: number, stop: readonly number[]) => number[];

/** Greedy decoding through Llama4TextModel on a snapshot of `model`'s current weights. */
export function snapshotDecode(model: TrainModel, backend: Backend): GreedyDecode {
  const snap = new PolicySnapshot(model, backend);
  return (prompt, maxNew, stop) => snap.complete(prompt, { maxNew, stop });
}

export interface DecodeOptions {
  maxNew: number;
  stop: readonly number[];
  temperature?: number;
}

/** An inference snapshot of a TrainModel (rebuild it after the weights change). */
export class PolicySnapshot {
  readonly model: Llama4TextModel;
  constructor(train: TrainModel, backend: Backend) {
    const config = parseHfConfig(toHfConfig(train.cfg));
    const tensors = modelTensors(train);
    const infos = new Map<string, { dtype: 'f32'; shape: readonly number[]; file: string }>();
    for (const [name, t] of tensors) infos.set(name, { dtype: 'f32', shape: t.shape, file: 'memory' });
    const read = (name: string): RawTensor => {
      const t = tensors.get(name)!;
      return { name, dtype: 'f32', shape: t.shape, bytes: new Uint8Array(t.data.buffer, t.data.byteOffset, t.data.byteLength) };
    };
    this.model = new Llama4TextModel(config, loadHfTextTensors(config, { infos, read }, 'training snapshot'), backend, 'training snapshot');
  }

  /** Completion ids (stop token excluded) for one prompt; temperature 0 / undefined = greedy. */
  complete(prompt: readonly number[], o: DecodeOptions, rng?: Rng): number[] {
    const seq = this.model.newSequence();
    let [logits] = this.model.forward([{ seq, tokens: prompt, logits: 'last' }]) as [Float32Array];
    const out: number[] = [];
    const temp = o.temperature ?? 0;
    for (let i = 0; i < o.maxNew; i++) {
      const t = temp > 0 && rng ? sample(logits, temp, rng) : argmax(logits);
      if (o.stop.includes(t)) break;
      out.push(t);
      [logits] = this.model.forward([{ seq, tokens: [t], logits: 'last' }]) as [Float32Array];
    }
    return out;
  }
}

function argmax(x: Float32Array): number {
  let b = 0;
  for (let i = 1; i < x.length; i++) if (x[i]! > x[b]!) b = i;
  return b;
}

function sample(x: Float32Array, temp: number, rng: Rng): number {
  let mx = -Infinity;
  for (let i = 0; i < x.length; i++) if (x[i]! > mx) mx = x[i]!;
  let z = 0;
  const p = new Float64Array(x.length);
  for (let i = 0; i < x.length; i++) {
    p[i] = Math.exp((x[i]! - mx) / temp);
    z += p[i]!;
  }
  let r = rng.next() * z;
  for (let i = 0; i < x.length; i++) {
    r -= p[i]!;
    if (r <= 0) return i;
  }
  return x.length - 1;
}
