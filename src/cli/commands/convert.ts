/**
 * `llama4 convert HF_DIR OUT.gguf --type TYPE`: a Hugging Face Llama 4 checkpoint (config.json + safetensors) ->
 * a llama.cpp GGUF (architecture llama4), with the tokenizer (tokenizer.json, or Meta's tokenizer.model with merges
 * recovered from the ranks) and the chat template when the folder has them.
 */
import { parseArgs } from '../args.ts';
import { createProgress } from '../progress.ts';
import type { Command } from '../command.ts';
import { openHfCheckpoint, parseFileType, writeLlama4Gguf } from '../../model-files/index.ts';
import { UsageError } from '../../util/index.ts';
import { createQuantizer } from '../../load.ts';
import { parseThreads } from './make-test-model.ts';

export const convertCommand: Command = {
  name: 'convert',
  summary: 'convert a Hugging Face checkpoint to a llama.cpp GGUF (f16, q8_0, q4_k_m, …)',
  usage: `usage: llama4 convert HF_DIR OUT.gguf --type TYPE [--pure] [--name NAME] [--force]
Writes the text model of HF_DIR (config.json + safetensors) as a llama4 GGUF that llama.cpp loads, with the
tokenizer (tokenizer.json or tokenizer.model) and chat template when the folder has them.
  --type TYPE   f32 | f16 | bf16 | q8_0 | q4_0 | q4_1 | q5_0 | q5_1 | q2_k | q3_k | q4_k | q5_k | q6_k |
                q4_k_s | q4_k_m | q5_k_s | q5_k_m | iq4_nl | iq4_xs (default f16). Norms and the MoE router stay
                F32; quantization is llama.cpp's quantizer without an importance matrix, byte for byte. (The lower
                i-quants, IQ1_S…IQ3_S, need an importance matrix: this engine reads them but does not write them.)
  --pure        every weight matrix in TYPE (llama-quantize --pure); default: llama-quantize's per-tensor mix
                (output Q6_K; _m types raise some attn_v/ffn_down to Q6_K; plain q4_k/q5_k mean q4_k_m/q5_k_m)
  -t, --threads N  threads for quantization (default: all cores; output is identical, native or not)
  --force       write even when llama.cpp would run the config differently (it hard-codes chunk 8192, NoPE on
                every 4th layer, temperature tuning and qk-norm by expert count); the differences are printed.`,
  async run(argv) {
    const { values, positionals } = parseArgs({
      args: argv,
      allowPositionals: true,
      strict: true,
      options: {
        type: { type: 'string' },
        name: { type: 'string' },
        force: { type: 'boolean' },
        threads: { type: 'string', short: 't' },
        pure: { type: 'boolean' },
        quiet: { type: 'boolean', short: 'q' },
      },
    });
    if (positionals.length !== 2) throw new UsageError('give HF_DIR and OUT.gguf');
    const [dir, out] = positionals as [string, string];
    const ftype = parseFileType(values.type ?? 'f16');
    const { config: cfg, incompatibilities: problems, produce, tokenizer: tok } = openHfCheckpoint(dir);
    if (problems.length) {
      const msg = `llama.cpp would not run this config as written: ${problems.join('; ')}`;
      if (!values.force) throw new UsageError(`${msg} (use --force to write it anyway)`);
      process.stderr.write(`warning: ${msg}\n`);
    }
    if (!tok) process.stderr.write('warning: no tokenizer.json or tokenizer.model in the folder; llama.cpp needs one to load the file\n');
    const threads = parseThreads(values.threads);
    const t0 = Date.now();
    const progress = createProgress(`converting ${dir}`, { quiet: values.quiet === true });
    // The native quantizers when the addon loads (same bytes; LLAMA4_NATIVE=0 keeps the TypeScript ones).
    const quantizer = createQuantizer(threads);
    const sum = await writeLlama4Gguf(out, cfg, ftype, produce, tok, values.name ?? dir.replace(/\/+$/, '').split('/').pop() ?? 'llama4', {
      onTensor: (n, i, total) => progress.update(i / total, `[${i + 1}/${total}] ${n}`), // called before tensor i
      ...(threads !== undefined ? { threads } : {}),
      pure: values.pure ?? false,
      quantizer,
    }).finally(() => quantizer?.close());
    progress.done();
    const types = [...sum.types].map(([t, c]) => `${c} ${t}`).join(', ');
    process.stdout.write(
      `wrote ${out}: ${ftype}, ${(sum.bytes / 2 ** 20).toFixed(1)} MiB of tensors (${types})${tok ? `, ${tok.tokens.length} tokens` : ''} in ${((Date.now() - t0) / 1000).toFixed(1)} s\n`,
    );
    return 0;
  },
};
