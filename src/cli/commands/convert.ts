/**
 * `llama4 convert HF_DIR OUT.gguf --type TYPE`: a Hugging Face Llama 4 checkpoint (config.json + safetensors) ->
 * a llama.cpp GGUF (architecture llama4), with the tokenizer (tokenizer.json, or Meta's tokenizer.model with merges
 * recovered from the ranks) and the chat template when the folder has them.
 */
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import type { Command } from '../command.ts';
import { dequantize } from '../../tensor/index.ts';
import { openSafetensors } from '../../io/safetensors.ts';
import { parseFileType } from '../../io/gguf/quant-policy.ts';
import type { Llama4Config } from '../../model/llama4/config.ts';
import { parseHfConfig } from '../../model/llama4/config.ts';
import { loadHfTextTensors } from '../../model/llama4/weights.ts';
import { ggufIncompatibilities } from '../../model/llama4/gguf-config.ts';
import { llama4SpecialTokens } from '../../tokenizer/index.ts';
import { ModelFileError, UsageError } from '../../util/index.ts';
import type { GgufTokenizer } from './make-test-model.ts';
import { gpt2ByteChars, parseThreads, writeLlama4Gguf } from './make-test-model.ts';

function readJson(file: string): unknown {
  try {
    return JSON.parse(readFileSync(file, 'utf8'));
  } catch (e) {
    throw new ModelFileError(file, `not valid JSON (${(e as Error).message})`);
  }
}

const isObj = (x: unknown): x is Record<string, unknown> => typeof x === 'object' && x !== null && !Array.isArray(x);

/** The chat template of an HF folder: chat_template.jinja, chat_template.json, or tokenizer_config.json's. */
function chatTemplate(dir: string): string | null {
  const jinja = join(dir, 'chat_template.jinja');
  if (existsSync(jinja)) return readFileSync(jinja, 'utf8');
  for (const f of ['chat_template.json', 'tokenizer_config.json']) {
    const p = join(dir, f);
    if (!existsSync(p)) continue;
    const j = readJson(p);
    if (isObj(j) && typeof j['chat_template'] === 'string') return j['chat_template'];
  }
  return null;
}

/** Byte string (latin1, one char per byte) -> GPT-2 byte-level text. */
function toByteLevel(bin: string, chars: string[]): string {
  let s = '';
  for (let i = 0; i < bin.length; i++) s += chars[bin.charCodeAt(i)]!;
  return s;
}

/**
 * Merges from tiktoken ranks, as llama.cpp's and HF's converters recover them: token t of rank r is what BPE makes
 * of its bytes using only ranks below r, which must be exactly two parts.
 */
export function mergesFromRanks(ranks: Map<string, number>, source: string): [string, string][] {
  const byRank = [...ranks].filter(([t]) => t.length > 1).sort((a, b) => a[1] - b[1]);
  const merges: [string, string][] = [];
  for (const [tok, rank] of byRank) {
    let parts = [...tok];
    for (;;) {
      let best = -1, bestRank = Infinity;
      for (let i = 0; i + 1 < parts.length; i++) {
        const r = ranks.get(parts[i]! + parts[i + 1]!);
        if (r !== undefined && r < bestRank) { bestRank = r; best = i; }
      }
      if (best < 0 || bestRank >= rank) break;
      parts = [...parts.slice(0, best), parts[best]! + parts[best + 1]!, ...parts.slice(best + 2)];
    }
    if (parts.length !== 2) throw new ModelFileError(source, `cannot recover a merge for rank ${rank} (${parts.length} parts)`);
    merges.push([parts[0]!, parts[1]!]);
  }
  return merges;
}

/** Tokenizer metadata from an HF folder, or null when it has none. */
export function tokenizerFromFolder(dir: string, cfg: Llama4Config): GgufTokenizer | null {
  const chars = gpt2ByteChars();
  const tokens: string[] = [];
  const types: number[] = [];
  let merges: string[] = [];
  const tj = join(dir, 'tokenizer.json');
  const tm = [join(dir, 'tokenizer.model'), join(dir, 'original', 'tokenizer.model')].find((p) => existsSync(p));
  if (existsSync(tj)) {
    const j = readJson(tj);
    const model = isObj(j) ? j['model'] : undefined;
    if (!isObj(model) || !isObj(model['vocab'])) throw new ModelFileError(tj, 'no model.vocab (only BPE tokenizer.json files are supported)');
    for (const [t, id] of Object.entries(model['vocab'] as Record<string, number>)) { tokens[id] = t; types[id] = 1; }
    const added = isObj(j) && Array.isArray(j['added_tokens']) ? (j['added_tokens'] as Record<string, unknown>[]) : [];
    for (const a of added) {
      if (typeof a['id'] !== 'number' || typeof a['content'] !== 'string') continue;
      tokens[a['id']] = a['content'];
      types[a['id']] = a['special'] === false ? 4 : 3;
    }
    const m = Array.isArray(model['merges']) ? (model['merges'] as unknown[]) : [];
    merges = m.map((x) => (Array.isArray(x) ? `${x[0]} ${x[1]}` : String(x)));
  } else if (tm) {
    const ranks = new Map<string, number>();
    for (const line of readFileSync(tm, 'utf8').split('\n')) {
      const sp = line.indexOf(' ');
      if (sp <= 0) continue;
      ranks.set(Buffer.from(line.slice(0, sp), 'base64').toString('latin1'), Number(line.slice(sp + 1)));
    }
    for (const [bin, id] of ranks) { tokens[id] = toByteLevel(bin, chars); types[id] = 1; }
    merges = mergesFromRanks(ranks, tm).map(([a, b]) => `${toByteLevel(a, chars)} ${toByteLevel(b, chars)}`);
    llama4SpecialTokens().forEach((t, i) => { tokens[ranks.size + i] = t; types[ranks.size + i] = 3; });
  } else {
    return null;
  }
  // Pad to the model's vocabulary (rows beyond the tokenizer exist and are computed) like llama.cpp's converter.
  const n = Math.max(cfg.vocabSize, tokens.length);
  for (let i = 0; i < n; i++) if (tokens[i] === undefined) { tokens[i] = `[PAD${i}]`; types[i] = 5; }
  const idOf = (t: string): number | null => { const i = tokens.indexOf(t); return i >= 0 ? i : null; };
  return {
    tokens, types: Int32Array.from(types), merges,
    bos: cfg.bosTokenId ?? idOf('<|begin_of_text|>'),
    eos: cfg.eosTokenIds[0] ?? idOf('<|eot|>'),
    eot: idOf('<|eot|>'), eom: idOf('<|eom|>'),
    pad: cfg.padTokenId,
    chatTemplate: chatTemplate(dir),
  };
}

export const convertCommand: Command = {
  name: 'convert',
  summary: 'convert a Hugging Face checkpoint to a llama.cpp GGUF (f16, q8_0, q4_k_m, …)',
  usage: `usage: llama4 convert HF_DIR OUT.gguf --type TYPE [--pure] [--name NAME] [--force]
Writes the text model of HF_DIR (config.json + safetensors) as a llama4 GGUF that llama.cpp loads, with the
tokenizer (tokenizer.json or tokenizer.model) and chat template when the folder has them.
  --type TYPE   f32 | f16 | bf16 | q8_0 | q4_0 | q4_1 | q5_0 | q5_1 | q2_k | q3_k | q4_k | q5_k | q6_k |
                q4_k_s | q4_k_m | q5_k_s | q5_k_m (default f16). Norms and the MoE router stay F32; quantization is
                llama.cpp's reference quantizer, byte for byte.
  --pure        every weight matrix in TYPE (llama-quantize --pure); default: llama-quantize's per-tensor mix
                (output Q6_K; _m types raise some attn_v/ffn_down to Q6_K; plain q4_k/q5_k mean q4_k_m/q5_k_m)
  -t, --threads N  worker threads for k-quant quantization (default: all cores; output is identical)
  --force       write even when llama.cpp would run the config differently (it hard-codes chunk 8192, NoPE on
                every 4th layer, temperature tuning and qk-norm by expert count); the differences are printed.`,
  async run(argv) {
    const { values, positionals } = parseArgs({
      args: argv, allowPositionals: true, strict: true,
      options: { type: { type: 'string' }, name: { type: 'string' }, force: { type: 'boolean' }, threads: { type: 'string', short: 't' }, pure: { type: 'boolean' }, quiet: { type: 'boolean', short: 'q' } },
    });
    if (positionals.length !== 2) throw new UsageError('give HF_DIR and OUT.gguf');
    const [dir, out] = positionals as [string, string];
    const ftype = parseFileType(values.type ?? 'f16');
    const cfgFile = join(dir, 'config.json');
    if (!existsSync(cfgFile)) throw new ModelFileError(dir, 'not a model folder: config.json is missing');
    const genFile = join(dir, 'generation_config.json');
    const cfg = parseHfConfig(readJson(cfgFile), existsSync(genFile) ? readJson(genFile) : undefined);
    const problems = ggufIncompatibilities(cfg);
    if (problems.length) {
      const msg = `llama.cpp would not run this config as written: ${problems.join('; ')}`;
      if (!values.force) throw new UsageError(`${msg} (use --force to write it anyway)`);
      process.stderr.write(`warning: ${msg}\n`);
    }
    const tensors = loadHfTextTensors(cfg, openSafetensors(dir), dir);
    const tok = tokenizerFromFolder(dir, cfg);
    if (!tok) process.stderr.write('warning: no tokenizer.json or tokenizer.model in the folder; llama.cpp needs one to load the file\n');
    const t0 = Date.now();
    const sum = await writeLlama4Gguf(out, cfg, ftype, (name, shape) => {
      const t = tensors.get(name);
      if (!t) throw new ModelFileError(dir, `missing tensor "${name}"`);
      tensors.delete(name); // release each source tensor once written
      return dequantize(t.dtype, t.bytes, shape.reduce((a, b) => a * b, 1));
    }, tok, values.name ?? dir.replace(/\/+$/, '').split('/').pop() ?? 'llama4', {
      onTensor: (n, i, total) => { if (!values.quiet && process.stderr.isTTY) process.stderr.write(`\r[${i + 1}/${total}] ${n.padEnd(28)}`); },
      threads: parseThreads(values.threads),
      pure: values.pure ?? false,
    });
    if (!values.quiet && process.stderr.isTTY) process.stderr.write("\n");
    const types = [...sum.types].map(([t, c]) => `${c} ${t}`).join(', ');
    process.stdout.write(`wrote ${out}: ${ftype}, ${(sum.bytes / 2 ** 20).toFixed(1)} MiB of tensors (${types})${tok ? `, ${tok.tokens.length} tokens` : ''} in ${((Date.now() - t0) / 1000).toFixed(1)} s\n`);
    return 0;
  },
};
