/**
 * Llama 4 vision weights from a llama.cpp `mmproj` GGUF (clip.projector_type = "llama4"), spec §6.4.
 * The GGUF tensors are renamed to the Hugging Face names the encoder reads, and a vision config is rebuilt from the
 * `clip.vision.*` keys and the tensor shapes, so the same Llama4VisionEncoder runs either source.
 *
 * Caveat (spec §9): the names come from llama.cpp's converter mapping and third-party loaders, not from a Llama 4
 * mmproj file seen here. Both spellings seen for the post-attention norm (`ln2`, `attn_post_norm`) are accepted, and
 * `v.patch_embd.weight` may be [Hv, C·P·P] (llama.cpp reshapes it at graph time) or a conv-shaped [Hv, C, P, P]
 * with the same memory layout.
 *
 * Reading the file is the composition root's job (model code names no file format): load.ts does
 *   const f = readGguf(mmprojPath, (n) => n.startsWith('v.') || n.startsWith('mm.'));
 *   const vision = mmprojEncoder(f.metadata, f.tensorData, backend, { imageTokenId: config.imageTokenId }, {}, mmprojPath);
 */

/** GGUF metadata as io/gguf reads it (number | bigint | string | … per key); only numbers and strings are read here. */
type GgufMetadata = ReadonlyMap<string, unknown>;
import type { Backend, RawTensor } from '../../tensor/index.ts';
import { ModelFileError, fieldReader } from '../../util/index.ts';
import { parseVisionConfig } from './vision-config.ts';
import { Llama4VisionEncoder, type VisionEncoderOptions } from './vision.ts';
import { LLAMA4_IMAGE_TOKEN_IDS } from '../../image/index.ts';

/** GGUF (llama.cpp CLIP) name → HF name, for the non-layer tensors. */
const GLOBAL_NAMES: ReadonlyArray<[string, string]> = [
  ['v.patch_embd.weight', 'vision_model.patch_embedding.linear.weight'],
  ['v.class_embd', 'vision_model.class_embedding'],
  ['v.class_embd.weight', 'vision_model.class_embedding'],
  ['v.position_embd.weight', 'vision_model.positional_embedding_vlm'],
  ['v.pre_ln.weight', 'vision_model.layernorm_pre.weight'],
  ['v.pre_ln.bias', 'vision_model.layernorm_pre.bias'],
  ['v.post_ln.weight', 'vision_model.layernorm_post.weight'],
  ['v.post_ln.bias', 'vision_model.layernorm_post.bias'],
  ['mm.model.mlp.1.weight', 'vision_model.vision_adapter.mlp.fc1.weight'],
  ['mm.model.mlp.2.weight', 'vision_model.vision_adapter.mlp.fc2.weight'],
  ['mm.model.fc.weight', 'multi_modal_projector.linear_1.weight'],
  ['mm.model.fc.bias', 'multi_modal_projector.linear_1.bias'],
];

/** Per-layer GGUF role → HF suffix under vision_model.model.layers.N. */
const LAYER_NAMES: ReadonlyArray<[string, string]> = [
  ['attn_q', 'self_attn.q_proj'],
  ['attn_k', 'self_attn.k_proj'],
  ['attn_v', 'self_attn.v_proj'],
  ['attn_out', 'self_attn.o_proj'],
  ['ln1', 'input_layernorm'],
  ['ln2', 'post_attention_layernorm'],
  ['attn_post_norm', 'post_attention_layernorm'],
  ['ffn_up', 'mlp.fc1'],
  ['ffn_down', 'mlp.fc2'],
];

/** Renames llama.cpp mmproj tensors to HF names (unknown names are dropped; a clash is an error). */
export function mmprojToHfTensors(tensors: ReadonlyMap<string, RawTensor>, where = 'mmproj'): Map<string, RawTensor> {
  const out = new Map<string, RawTensor>();
  const put = (hf: string, t: RawTensor): void => {
    if (out.has(hf)) throw new ModelFileError(where, `tensors "${out.get(hf)!.name}" and "${t.name}" both map to ${hf}`);
    let shape = t.shape;
    // A conv-shaped patch embedding [Hv, C, P, P] has the unfold layout already; flatten to the linear's [Hv, C·P·P].
    if (hf === 'vision_model.patch_embedding.linear.weight' && shape.length === 4) shape = [shape[0]!, shape[1]! * shape[2]! * shape[3]!];
    out.set(hf, { name: hf, dtype: t.dtype, shape, bytes: t.bytes });
  };
  const globals = new Map(GLOBAL_NAMES);
  const roles = new Map(LAYER_NAMES);
  for (const [name, t] of tensors) {
    const g = globals.get(name);
    if (g) {
      put(g, t);
      continue;
    }
    const m = /^v\.blk\.(\d+)\.([a-z_0-9]+)\.(weight|bias)$/.exec(name);
    if (!m) continue;
    const role = roles.get(m[2]!);
    if (role) put(`vision_model.model.layers.${m[1]}.${role}.${m[3]}`, t);
  }
  return out;
}

const num = (meta: GgufMetadata, key: string, where: string): number =>
  fieldReader((k) => meta.get(k), {
    where,
    label: (k) => `metadata key ${k}`,
    error: (m) => new ModelFileError(where, m.slice(where.length + 2)),
  }).num(key);

/** Token ids the mmproj cannot know (they live in the text model's vocabulary); Meta's ids by default. */
export interface MmprojTokenIds {
  readonly imageTokenId?: number;
  readonly boiTokenId?: number;
  readonly eoiTokenId?: number;
}

/**
 * Rebuilds an HF-style config.json object (`vision_config` + token ids + text hidden size) from mmproj metadata
 * and tensor shapes.
 */
export function mmprojConfig(
  meta: GgufMetadata,
  hf: ReadonlyMap<string, RawTensor>,
  ids: MmprojTokenIds = {},
  where = 'mmproj',
): Record<string, unknown> {
  const type = meta.get('clip.projector_type');
  if (type !== 'llama4') throw new ModelFileError(where, `clip.projector_type is ${JSON.stringify(type ?? null)}, expected "llama4"`);
  const shape = (name: string): readonly number[] => {
    const t = hf.get(name);
    if (!t) throw new ModelFileError(where, `missing tensor for ${name}`);
    return t.shape;
  };
  const fc1 = shape('vision_model.vision_adapter.mlp.fc1.weight');
  const fc2 = shape('vision_model.vision_adapter.mlp.fc2.weight');
  const proj = shape('multi_modal_projector.linear_1.weight');
  const scale = num(meta, 'clip.vision.projector.scale_factor', where);
  return {
    image_token_index: ids.imageTokenId ?? LLAMA4_IMAGE_TOKEN_IDS.patch,
    boi_token_index: ids.boiTokenId ?? LLAMA4_IMAGE_TOKEN_IDS.start,
    eoi_token_index: ids.eoiTokenId ?? LLAMA4_IMAGE_TOKEN_IDS.end,
    text_config: { hidden_size: proj[0] },
    vision_config: {
      hidden_size: num(meta, 'clip.vision.embedding_length', where),
      num_hidden_layers: num(meta, 'clip.vision.block_count', where),
      num_attention_heads: num(meta, 'clip.vision.attention.head_count', where),
      intermediate_size: num(meta, 'clip.vision.feed_forward_length', where),
      image_size: num(meta, 'clip.vision.image_size', where),
      patch_size: num(meta, 'clip.vision.patch_size', where),
      pixel_shuffle_ratio: 1 / scale,
      projector_input_dim: fc1[0],
      projector_output_dim: fc2[0],
      vision_output_dim: proj[1],
      // Not stored in mmproj files; llama.cpp hard-codes Llama 4's 10000 as well.
      rope_theta: 10000,
    },
  };
}

/** A vision encoder from a read llama.cpp Llama 4 mmproj GGUF (its metadata and tensors, torch-order shapes). */
export function mmprojEncoder(
  metadata: GgufMetadata,
  tensors: ReadonlyMap<string, RawTensor>,
  backend: Backend,
  ids: MmprojTokenIds = {},
  opts: Omit<VisionEncoderOptions, 'where'> = {},
  where = 'mmproj',
): Llama4VisionEncoder {
  const hf = mmprojToHfTensors(tensors, where);
  const cfg = parseVisionConfig(mmprojConfig(metadata, hf, ids, where), where);
  return new Llama4VisionEncoder(cfg, hf, backend, { ...opts, where });
}
