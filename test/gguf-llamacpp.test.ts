/**
 * Files WE write load in llama.cpp: tiny random llama4 GGUFs from make-test-model's writer (F16, Q8_0, Q4_K_M, IQ4_XS)
 * are loaded by node-llama-cpp (llama.cpp prebuilt, CPU only, offline) and its greedy continuation of a prompt is
 * compared with ours. Tokens must agree step by step; they may part only at a step where our top-1 margin is not
 * clear (0.1 for F16, 0.5 for quantized files, where llama.cpp's 8-bit activation rounding moves logits by ~0.3).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseHfConfig } from '../src/model/llama4/config.ts';
import { PRESETS, randomProducer, syntheticTokenizer, writeLlama4Gguf } from '../src/model-files/index.ts';
import type { FileType } from '../src/io/gguf/quant-policy.ts';
import { readGguf } from '../src/io/gguf/index.ts';
import { llama4FromGguf } from '../src/model/llama4/gguf-config.ts';
import { Llama4TextModel } from '../src/model/llama4/text-model.ts';
import { TsBackend } from '../src/kernels/ts/index.ts';

const PROMPT = [480, 12, 300, 77, 410, 5, 260, 199, 33, 471, 90, 264];
const N_GEN = 10;

function ourGreedy(path: string): { ids: number[]; margins: number[] } {
  const f = readGguf(path);
  const { config, tensors } = llama4FromGguf(f.metadata, f.tensorData, path);
  const model = new Llama4TextModel(config, tensors, new TsBackend(), path);
  const seq = model.newSequence();
  let row = model.forward([{ seq, tokens: PROMPT, logits: 'last' }])[0]!;
  const ids: number[] = [],
    margins: number[] = [];
  for (let k = 0; k < N_GEN; k++) {
    let a = 0;
    for (let i = 1; i < row.length; i++) if (row[i]! > row[a]!) a = i;
    let second = -Infinity;
    for (let i = 0; i < row.length; i++) if (i !== a && row[i]! > second) second = row[i]!;
    ids.push(a);
    margins.push(row[a]! - second);
    row = model.forward([{ seq, tokens: [a], logits: 'last' }])[0]!;
  }
  return { ids, margins };
}

test('GGUFs we write load in llama.cpp (node-llama-cpp) and continue greedily like us', async (t) => {
  let getLlama: typeof import('node-llama-cpp').getLlama;
  try {
    ({ getLlama } = await import('node-llama-cpp'));
  } catch (e) {
    return t.skip(`node-llama-cpp is not installed (${(e as Error).message})`);
  }
  const dir = mkdtempSync(join(tmpdir(), 'gguf-llamacpp-'));
  const llama = await getLlama({ gpu: false, build: 'never', logLevel: 'error' as never });
  try {
    const cfg = parseHfConfig(PRESETS['tiny']);
    for (const ftype of ['f16', 'q8_0', 'q4_k_m', 'iq4_xs'] as FileType[]) {
      const path = join(dir, `tiny-${ftype}.gguf`);
      await writeLlama4Gguf(path, cfg, ftype, randomProducer(7, cfg.hiddenSize), syntheticTokenizer(cfg.vocabSize), 'llama4-tiny-test');
      const ours = ourGreedy(path);
      const model = await llama.loadModel({ modelPath: path });
      const ctx = await model.createContext({ contextSize: 64, threads: 1 });
      const theirs: number[] = [];
      for await (const tok of ctx
        .getSequence()
        .evaluate(PROMPT as unknown as Parameters<ReturnType<typeof ctx.getSequence>['evaluate']>[0], { temperature: 0 })) {
        theirs.push(tok as number);
        if (theirs.length >= N_GEN) break;
      }
      await ctx.dispose();
      await model.dispose();
      const clear = ftype === 'f16' ? 0.1 : 0.5;
      // Same tokens step by step; a difference is allowed only where our top-1 margin is not clear (after it the
      // two continuations legitimately part ways).
      let compared = 0;
      for (let k = 0; k < N_GEN; k++) {
        if (theirs[k] !== ours.ids[k]) {
          assert.ok(
            ours.margins[k]! < clear,
            `${ftype}: greedy token ${k} differs with a clear margin ${ours.margins[k]} (ours ${ours.ids.join(',')} vs llama.cpp ${theirs.join(',')})`,
          );
          break;
        }
        compared++;
      }
      t.diagnostic(`${ftype}: llama.cpp ${theirs.join(',')} | ours ${ours.ids.join(',')} | agreed on ${compared} compared steps`);
      assert.ok(compared >= 3, `${ftype}: only ${compared} steps agreed`);
    }
  } finally {
    await llama.dispose();
    rmSync(dir, { recursive: true, force: true });
  }
});
