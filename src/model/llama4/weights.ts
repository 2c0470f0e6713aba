/**
 * The one rename point: Hugging Face tensor names and layouts -> internal names (the GGUF names, as tinygrad does),
 * plus the shape table every loader validates against.
 *
 * Internal layout: every matrix is [out, in] (nn.Linear and GGUF order), so the model computes x · Wᵀ everywhere.
 * HF keeps the fused experts the other way round ([E, in, out], used as x @ W), so they are transposed here once:
 *   feed_forward.experts.gate_up_proj [E, H, 2I] -> ffn_gate_exps [E, I, H] (first I columns) + ffn_up_exps [E, I, H]
 *   feed_forward.experts.down_proj    [E, I, H]  -> ffn_down_exps [E, H, I]
 */
import type { DType, RawTensor } from '../../tensor/index.ts';
import { DTYPES } from '../../tensor/index.ts';
import { ModelFileError } from '../../util/index.ts';
import type { Llama4Config } from './config.ts';

/** Expected torch-order shape of every internal tensor the config needs. */
export function expectedShapes(cfg: Llama4Config): Map<string, number[]> {
  const {
    hiddenSize: H,
    numHeads: nh,
    numKvHeads: nkv,
    headDim: d,
    numExperts: E,
    intermediateSize: I,
    intermediateSizeMlp: Imlp,
    vocabSize: V,
  } = cfg;
  const m = new Map<string, number[]>();
  m.set('token_embd', [V, H]);
  m.set('output_norm', [H]);
  if (!cfg.tieWordEmbeddings) m.set('output', [V, H]);
  cfg.layers.forEach((f, l) => {
    const b = `blk.${l}.`;
    m.set(b + 'attn_norm', [H]);
    m.set(b + 'attn_q', [nh * d, H]);
    m.set(b + 'attn_k', [nkv * d, H]);
    m.set(b + 'attn_v', [nkv * d, H]);
    m.set(b + 'attn_output', [H, nh * d]);
    m.set(b + 'ffn_norm', [H]);
    if (f.isMoe) {
      m.set(b + 'ffn_gate_inp', [E, H]);
      m.set(b + 'ffn_gate_exps', [E, I, H]);
      m.set(b + 'ffn_up_exps', [E, I, H]);
      m.set(b + 'ffn_down_exps', [E, H, I]);
      m.set(b + 'ffn_gate_shexp', [I, H]);
      m.set(b + 'ffn_up_shexp', [I, H]);
      m.set(b + 'ffn_down_shexp', [H, I]);
    } else {
      m.set(b + 'ffn_gate', [Imlp, H]);
      m.set(b + 'ffn_up', [Imlp, H]);
      m.set(b + 'ffn_down', [H, Imlp]);
    }
  });
  return m;
}

/** Checks that every tensor the config needs is present with the right shape. `where` names the file(s). */
export function validateTensors(cfg: Llama4Config, shapes: Map<string, { shape: readonly number[] }>, where: string): void {
  for (const [name, want] of expectedShapes(cfg)) {
    const t = shapes.get(name);
    if (!t) throw new ModelFileError(where, `missing tensor "${name}" required by the config`);
    if (t.shape.length !== want.length || t.shape.some((s, i) => s !== want[i])) {
      throw new ModelFileError(where, `tensor "${name}" has shape [${t.shape.join(', ')}], the config needs [${want.join(', ')}]`);
    }
  }
}

/** HF name (after the model prefix) -> internal name, for the tensors that are renamed without a layout change. */
const HF_LAYER_RENAMES: Record<string, string> = {
  'input_layernorm.weight': 'attn_norm',
  'post_attention_layernorm.weight': 'ffn_norm',
  'self_attn.q_proj.weight': 'attn_q',
  'self_attn.k_proj.weight': 'attn_k',
  'self_attn.v_proj.weight': 'attn_v',
  'self_attn.o_proj.weight': 'attn_output',
  'feed_forward.router.weight': 'ffn_gate_inp',
  'feed_forward.shared_expert.gate_proj.weight': 'ffn_gate_shexp',
  'feed_forward.shared_expert.up_proj.weight': 'ffn_up_shexp',
  'feed_forward.shared_expert.down_proj.weight': 'ffn_down_shexp',
  'feed_forward.gate_proj.weight': 'ffn_gate',
  'feed_forward.up_proj.weight': 'ffn_up',
  'feed_forward.down_proj.weight': 'ffn_down',
};

/** Where the text model's tensors live in each HF layout. */
export function hfPrefixes(cfg: Llama4Config): { model: string; head: string } {
  return cfg.modelType === 'llama4'
    ? { model: 'language_model.model.', head: 'language_model.lm_head.weight' }
    : { model: 'model.', head: 'lm_head.weight' };
}

/**
 * Reads an HF checkpoint's text tensors into internal names and layouts. Tensors are read (and expert stacks
 * transposed) one at a time, so peak memory stays near one copy of the weights plus one tensor.
 */
export function loadHfTextTensors(
  cfg: Llama4Config,
  src: { infos: Map<string, { dtype: DType; shape: readonly number[]; file: string }>; read(name: string): RawTensor },
  where: string,
): Map<string, RawTensor> {
  const { model, head } = hfPrefixes(cfg);
  const out = new Map<string, RawTensor>();
  const need = (hf: string): RawTensor => {
    if (!src.infos.has(hf)) throw new ModelFileError(where, `missing tensor "${hf}"`);
    return src.read(hf);
  };
  const put = (name: string, t: RawTensor, shape = t.shape): void => {
    out.set(name, { name, dtype: t.dtype, shape, bytes: t.bytes });
  };
  put('token_embd', need(model + 'embed_tokens.weight'));
  put('output_norm', need(model + 'norm.weight'));
  if (!cfg.tieWordEmbeddings) put('output', need(head));
  const { intermediateSize: I, hiddenSize: H, numExperts: E } = cfg;
  cfg.layers.forEach((f, l) => {
    const p = `${model}layers.${l}.`;
    for (const [hf, internal] of Object.entries(HF_LAYER_RENAMES)) {
      const isMoeName = internal.endsWith('shexp') || internal === 'ffn_gate_inp';
      const isDenseName = internal === 'ffn_gate' || internal === 'ffn_up' || internal === 'ffn_down';
      if ((isMoeName && !f.isMoe) || (isDenseName && f.isMoe)) continue;
      put(`blk.${l}.${internal}`, need(p + hf));
    }
    if (f.isMoe) {
      const gu = need(p + 'feed_forward.experts.gate_up_proj');
      checkShape(where, gu, [E, H, 2 * I]);
      // [E, H, 2I] -> [E, 2I, H] one expert at a time: rows 0..I-1 are gate, I..2I-1 are up.
      const per = I * H * DTYPES[gu.dtype].bytesPerBlock;
      const gate = new Uint8Array(E * per),
        up = new Uint8Array(E * per);
      for (let e = 0; e < E; e++) {
        const t = transposeLast2(gu.bytes.subarray(e * 2 * per, (e + 1) * 2 * per), gu.dtype, 1, H, 2 * I);
        gate.set(t.subarray(0, per), e * per);
        up.set(t.subarray(per), e * per);
      }
      out.set(`blk.${l}.ffn_gate_exps`, { name: `blk.${l}.ffn_gate_exps`, dtype: gu.dtype, shape: [E, I, H], bytes: gate });
      out.set(`blk.${l}.ffn_up_exps`, { name: `blk.${l}.ffn_up_exps`, dtype: gu.dtype, shape: [E, I, H], bytes: up });
      const dn = need(p + 'feed_forward.experts.down_proj');
      checkShape(where, dn, [E, I, H]);
      out.set(`blk.${l}.ffn_down_exps`, {
        name: `blk.${l}.ffn_down_exps`,
        dtype: dn.dtype,
        shape: [E, H, I],
        bytes: transposeLast2(dn.bytes, dn.dtype, E, I, H),
      });
    }
  });
  validateTensors(cfg, out, where);
  return out;
}

function checkShape(where: string, t: RawTensor, want: number[]): void {
  if (t.shape.length !== want.length || t.shape.some((s, i) => s !== want[i])) {
    throw new ModelFileError(where, `tensor "${t.name}" has shape [${t.shape.join(', ')}], the config needs [${want.join(', ')}]`);
  }
}

/** [B, R, C] -> [B, C, R] for plain float element types. */
export function transposeLast2(bytes: Uint8Array, dtype: DType, B: number, R: number, C: number): Uint8Array {
  const size = DTYPES[dtype].bytesPerBlock;
  if (DTYPES[dtype].blockSize !== 1) throw new Error(`cannot transpose ${dtype} data`);
  const out = new Uint8Array(bytes.length);
  if (size === 4 && bytes.byteOffset % 4 === 0) {
    const a = new Uint32Array(bytes.buffer, bytes.byteOffset, bytes.length / 4),
      o = new Uint32Array(out.buffer);
    for (let b = 0; b < B; b++) {
      const base = b * R * C;
      for (let r = 0; r < R; r++) for (let c = 0; c < C; c++) o[base + c * R + r] = a[base + r * C + c]!;
    }
    return out;
  }
  if (size === 2 && bytes.byteOffset % 2 === 0) {
    const a = new Uint16Array(bytes.buffer, bytes.byteOffset, bytes.length / 2),
      o = new Uint16Array(out.buffer);
    for (let b = 0; b < B; b++) {
      const base = b * R * C;
      for (let r = 0; r < R; r++) for (let c = 0; c < C; c++) o[base + c * R + r] = a[base + r * C + c]!;
    }
    return out;
  }
  for (let b = 0; b < B; b++) {
    const base = b * R * C;
    for (let r = 0; r < R; r++)
      for (let c = 0; c < C; c++) {
        const s = (base + r * C + c) * size,
          d = (base + c * R + r) * size;
        for (let i = 0; i < size; i++) out[d + i] = bytes[s + i]!;
      }
  }
  return out;
}
