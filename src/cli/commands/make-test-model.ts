/**
 * `llama4 make-test-model --preset tiny|bench-2b --type TYPE OUT.gguf`: random-weight llama4 GGUFs that llama.cpp
 * loads, with a synthetic GPT-2-style byte-level tokenizer (the writer and the presets are in src/model-files).
 */
import { parseArgs } from '../args.ts';
import { createProgress } from '../progress.ts';
import type { Command } from '../command.ts';
import { availableParallelism } from 'node:os';
import { parallelRandomProducer, parseFileType, presetConfig, syntheticTokenizer, writeLlama4Gguf } from '../../model-files/index.ts';
import { UsageError } from '../../util/index.ts';
import { createQuantizer } from '../../load.ts';

export function parseThreads(s: string | undefined): number | undefined {
  if (s === undefined) return undefined;
  const n = Number(s);
  if (!Number.isInteger(n) || n < 1) throw new UsageError(`--threads must be a positive integer, got '${s}'`);
  return n;
}

export const makeTestModelCommand: Command = {
  name: 'make-test-model',
  summary: 'write a random-weight llama4 GGUF (tiny for tests, bench-2b for benchmarks)',
  usage: `usage: llama4 make-test-model --preset tiny|bench-2b|guard-tiny|guard-bench --type TYPE [--pure] [--seed N] OUT.gguf
Writes a llama4 GGUF with random weights and a synthetic byte-level BPE tokenizer that llama.cpp loads.
  --preset NAME   tiny: hidden 256, 4 layers, 4/2 heads of 64, 4 experts (FFN 256) + shared, vocab 512
                  bench-2b: hidden 2048, 16 layers, 16/8 heads of 128, 16 experts (FFN 1024) + shared, MoE on
                  every layer, vocab 32000 (about 2.0 B total / 0.47 B active parameters)
                  guard-tiny: Llama Guard 4's shape (dense FFN 512, no chunking, NoPE every 4th layer), hidden 256,
                  4 layers, vocab 512, Llama 4 special tokens, no chat template (the built-in guard prompt applies)
                  guard-bench: the guard shape at hidden 1024, 8 layers, FFN 4096, vocab 32000 (about 0.19 B)
  --type TYPE     ${['f32', 'f16', 'bf16', 'q8_0', 'q4_0', 'q4_1', 'q5_0', 'q5_1', 'q2_k', 'q3_k', 'q4_k', 'q5_k', 'q6_k', 'q4_k_m', 'q5_k_m', 'iq4_nl', 'iq4_xs', '…'].join(' | ')} (default f16)
  --pure          every weight matrix in TYPE (llama-quantize --pure); default: llama-quantize's per-tensor mix
                  (output Q6_K; _m types raise some attn_v/ffn_down to Q6_K; plain q4_k/q5_k mean q4_k_m/q5_k_m)
  --seed N        random seed (default 1)
  -t, --threads N threads for quantization (default: all cores; output is identical, native or not)
Tensors are generated, quantized and written one at a time (the native quantizers write bench-2b in about a minute
on two cores; the TypeScript ones, used when the addon is not built, take about an hour).`,
  async run(argv) {
    const { values, positionals } = parseArgs({
      args: argv,
      allowPositionals: true,
      strict: true,
      options: {
        preset: { type: 'string' },
        type: { type: 'string' },
        seed: { type: 'string' },
        threads: { type: 'string', short: 't' },
        pure: { type: 'boolean' },
        quiet: { type: 'boolean', short: 'q' },
      },
    });
    const out = positionals[0];
    if (!out || positionals.length > 1) throw new UsageError('give exactly one output path (OUT.gguf)');
    const presetName = values.preset ?? 'tiny';
    const ftype = parseFileType(values.type ?? 'f16');
    const seed = Number(values.seed ?? 1);
    if (!Number.isInteger(seed)) throw new UsageError(`--seed must be an integer, got '${values.seed}'`);
    const cfg = presetConfig(presetName);
    const tok = presetName.startsWith('guard-')
      ? { ...syntheticTokenizer(cfg.vocabSize), chatTemplate: null }
      : syntheticTokenizer(cfg.vocabSize);
    const threads = parseThreads(values.threads);
    const t0 = Date.now();
    const progress = createProgress(`writing ${out}`, { quiet: values.quiet === true });
    // The native quantizers when the addon loads (same bytes; LLAMA4_NATIVE=0 keeps the TypeScript ones).
    const quantizer = createQuantizer(threads);
    // Random values on worker threads (the same values as randomProducer on one).
    const gen = parallelRandomProducer(seed, threads ?? availableParallelism());
    const sum = await writeLlama4Gguf(out, cfg, ftype, gen.produce, tok, `llama4-${presetName}-random`, {
      onTensor: (n, i, total) => progress.update(i / total, `[${i + 1}/${total}] ${n}`), // called before tensor i
      ...(threads !== undefined ? { threads } : {}),
      pure: values.pure ?? false,
      quantizer,
    }).finally(async () => {
      quantizer?.close();
      await gen.close();
    });
    progress.done();
    const types = [...sum.types].map(([t, c]) => `${c} ${t}`).join(', ');
    process.stdout.write(
      `wrote ${out}: ${presetName}, ${ftype}, ${(sum.bytes / 2 ** 20).toFixed(1)} MiB of tensors (${types}) in ${((Date.now() - t0) / 1000).toFixed(1)} s\n`,
    );
    return 0;
  },
};
