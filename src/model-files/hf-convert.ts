/**
 * Hugging Face Llama 4 checkpoint (config.json + safetensors) -> what the GGUF writer needs: the config, tensors on
 * demand in internal names and layouts, and the tokenizer (tokenizer.json, or Meta's tokenizer.model with merges
 * recovered from the ranks) with the chat template when the folder has them.
 */
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { dequantize } from '../tensor/index.ts';
import type { TensorSource } from '../io/safetensors.ts';
import { openSafetensors } from '../io/safetensors.ts';
import type { Llama4Config } from '../model/llama4/config.ts';
import { parseHfConfig } from '../model/llama4/config.ts';
import { hfPrefixes, transposeLast2 } from '../model/llama4/weights.ts';
import { ggufIncompatibilities } from '../model/llama4/gguf-config.ts';
import { GGUF_PRE_WORD_INITIALS, gpt2ByteChars, hasWordInitialSplit, llama4SpecialTokens } from '../tokenizer/index.ts';
import { ModelFileError } from '../util/index.ts';
import type { GgufTokenizer, TensorProducer } from './gguf-writer.ts';

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
      let best = -1,
        bestRank = Infinity;
      for (let i = 0; i + 1 < parts.length; i++) {
        const r = ranks.get(parts[i]! + parts[i + 1]!);
        if (r !== undefined && r < bestRank) {
          bestRank = r;
          best = i;
        }
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
  let pre: string | undefined;
  const tj = join(dir, 'tokenizer.json');
  const tm = [join(dir, 'tokenizer.model'), join(dir, 'original', 'tokenizer.model')].find((p) => existsSync(p));
  if (existsSync(tj)) {
    const j = readJson(tj);
    const model = isObj(j) ? j['model'] : undefined;
    if (!isObj(model) || !isObj(model['vocab']))
      throw new ModelFileError(tj, 'no model.vocab (only BPE tokenizer.json files are supported)');
    for (const [t, id] of Object.entries(model['vocab'] as Record<string, number>)) {
      tokens[id] = t;
      types[id] = 1;
    }
    const added = isObj(j) && Array.isArray(j['added_tokens']) ? (j['added_tokens'] as Record<string, unknown>[]) : [];
    for (const a of added) {
      if (typeof a['id'] !== 'number' || typeof a['content'] !== 'string') continue;
      tokens[a['id']] = a['content'];
      types[a['id']] = a['special'] === false ? 4 : 3;
    }
    const m = Array.isArray(model['merges']) ? (model['merges'] as unknown[]) : [];
    merges = m.map((x) => (Array.isArray(x) ? `${x[0]} ${x[1]}` : String(x)));
    if (isObj(j) && hasWordInitialSplit(j['pre_tokenizer'])) pre = GGUF_PRE_WORD_INITIALS;
  } else if (tm) {
    const ranks = new Map<string, number>();
    for (const line of readFileSync(tm, 'utf8').split('\n')) {
      const sp = line.indexOf(' ');
      if (sp <= 0) continue;
      ranks.set(Buffer.from(line.slice(0, sp), 'base64').toString('latin1'), Number(line.slice(sp + 1)));
    }
    for (const [bin, id] of ranks) {
      tokens[id] = toByteLevel(bin, chars);
      types[id] = 1;
    }
    merges = mergesFromRanks(ranks, tm).map(([a, b]) => `${toByteLevel(a, chars)} ${toByteLevel(b, chars)}`);
    llama4SpecialTokens().forEach((t, i) => {
      tokens[ranks.size + i] = t;
      types[ranks.size + i] = 3;
    });
  } else {
    return null;
  }
  // Pad to the model's vocabulary (rows beyond the tokenizer exist and are computed) like llama.cpp's converter.
  const n = Math.max(cfg.vocabSize, tokens.length);
  for (let i = 0; i < n; i++)
    if (tokens[i] === undefined) {
      tokens[i] = `[PAD${i}]`;
      types[i] = 5;
    }
  const idOf = (t: string): number | null => {
    const i = tokens.indexOf(t);
    return i >= 0 ? i : null;
  };
  return {
    tokens,
    types: Int32Array.from(types),
    merges,
    bos: cfg.bosTokenId ?? idOf('<|begin_of_text|>'),
    eos: cfg.eosTokenIds[0] ?? idOf('<|eot|>'),
    eot: idOf('<|eot|>'),
    eom: idOf('<|eom|>'),
    pad: cfg.padTokenId,
    chatTemplate: chatTemplate(dir),
    ...(pre ? { pre } : {}),
  };
}

/** Internal name (after `blk.N.`) -> HF name (after `layers.N.`) for tensors that only change name. */
const HF_NAMES: Record<string, string> = {
  attn_norm: 'input_layernorm.weight',
  ffn_norm: 'post_attention_layernorm.weight',
  attn_q: 'self_attn.q_proj.weight',
  attn_k: 'self_attn.k_proj.weight',
  attn_v: 'self_attn.v_proj.weight',
  attn_output: 'self_attn.o_proj.weight',
  ffn_gate_inp: 'feed_forward.router.weight',
  ffn_gate_shexp: 'feed_forward.shared_expert.gate_proj.weight',
  ffn_up_shexp: 'feed_forward.shared_expert.up_proj.weight',
  ffn_down_shexp: 'feed_forward.shared_expert.down_proj.weight',
  ffn_gate: 'feed_forward.gate_proj.weight',
  ffn_up: 'feed_forward.up_proj.weight',
  ffn_down: 'feed_forward.down_proj.weight',
};

/**
 * Reads HF tensors on demand in internal names and layouts (as weights.ts does for loading, but one tensor at a
 * time, so converting a 100 B-parameter checkpoint holds one source tensor, not all of them). The fused experts:
 * gate_up_proj [E, H, 2I] -> ffn_gate_exps / ffn_up_exps [E, I, H] (the half not yet asked for is kept until it
 * is), down_proj [E, I, H] -> ffn_down_exps [E, H, I].
 */
export function hfProducer(cfg: Llama4Config, src: TensorSource, where: string): TensorProducer {
  const { model, head } = hfPrefixes(cfg);
  const { numExperts: E, hiddenSize: H, intermediateSize: I } = cfg;
  const pending = new Map<string, Float32Array>();
  const read = (hf: string, shape: readonly number[]): Float32Array => {
    if (!src.infos.has(hf)) throw new ModelFileError(where, `missing tensor "${hf}"`);
    const t = src.read(hf);
    if (t.shape.length !== shape.length || t.shape.some((d, i) => d !== shape[i])) {
      throw new ModelFileError(where, `tensor "${hf}" has shape [${t.shape.join(', ')}], the config needs [${shape.join(', ')}]`);
    }
    return dequantize(
      t.dtype,
      t.bytes,
      shape.reduce((a, b) => a * b, 1),
    );
  };
  return (name, shape) => {
    const kept = pending.get(name);
    if (kept) {
      pending.delete(name);
      return kept;
    }
    if (name === 'token_embd') return read(`${model}embed_tokens.weight`, shape);
    if (name === 'output_norm') return read(`${model}norm.weight`, shape);
    if (name === 'output') return read(head, shape);
    const m = /^blk\.(\d+)\.(\w+)$/.exec(name);
    if (!m) throw new ModelFileError(where, `no HF tensor for "${name}"`);
    const p = `${model}layers.${m[1]}.`;
    const kind = m[2]!;
    if (kind === 'ffn_gate_exps' || kind === 'ffn_up_exps') {
      // [E, H, 2I] -> [E, 2I, H]: rows 0..I-1 of each expert are gate, I..2I-1 up.
      const gu = read(`${p}feed_forward.experts.gate_up_proj`, [E, H, 2 * I]);
      const t = new Float32Array(transposeLast2(new Uint8Array(gu.buffer), 'f32', E, H, 2 * I).buffer);
      const gate = new Float32Array(E * I * H),
        up = new Float32Array(E * I * H);
      for (let e = 0; e < E; e++) {
        gate.set(t.subarray(e * 2 * I * H, (e * 2 + 1) * I * H), e * I * H);
        up.set(t.subarray((e * 2 + 1) * I * H, (e + 1) * 2 * I * H), e * I * H);
      }
      const other = kind === 'ffn_gate_exps' ? 'ffn_up_exps' : 'ffn_gate_exps';
      pending.set(`blk.${m[1]}.${other}`, kind === 'ffn_gate_exps' ? up : gate);
      return kind === 'ffn_gate_exps' ? gate : up;
    }
    if (kind === 'ffn_down_exps') {
      const d = read(`${p}feed_forward.experts.down_proj`, [E, I, H]);
      return new Float32Array(transposeLast2(new Uint8Array(d.buffer), 'f32', E, I, H).buffer);
    }
    const hf = HF_NAMES[kind];
    if (!hf) throw new ModelFileError(where, `no HF tensor for "${name}"`);
    return read(p + hf, shape);
  };
}

/** A checkpoint folder opened for conversion. */
export interface HfCheckpoint {
  readonly config: Llama4Config;
  /** Why llama.cpp would run this config differently (empty when it matches what llama.cpp hard-codes). */
  readonly incompatibilities: string[];
  readonly produce: TensorProducer;
  /** null when the folder has no tokenizer.json / tokenizer.model. */
  readonly tokenizer: GgufTokenizer | null;
}

/** Opens an HF folder for conversion (config, tensors on demand, tokenizer); nothing big is read yet. */
export function openHfCheckpoint(dir: string): HfCheckpoint {
  const cfgFile = join(dir, 'config.json');
  if (!existsSync(cfgFile)) throw new ModelFileError(dir, 'not a model folder: config.json is missing');
  const genFile = join(dir, 'generation_config.json');
  const config = parseHfConfig(readJson(cfgFile), existsSync(genFile) ? readJson(genFile) : undefined);
  const tokenizer = tokenizerFromFolder(dir, config);
  const incompatibilities = ggufIncompatibilities(config);
  if (tokenizer?.pre === GGUF_PRE_WORD_INITIALS)
    incompatibilities.push(`the tokenizer splits off word-initial letters (GGUF pre "${GGUF_PRE_WORD_INITIALS}", unknown to llama.cpp)`);
  return { config, incompatibilities, produce: hfProducer(config, openSafetensors(dir), dir), tokenizer };
}
