/**
 * Images → early-fusion inputs: decode, preprocess to the encoder's tile size, encode (once per distinct image,
 * through a feature cache so a conversation's later turns reuse earlier images), and expand the prompt's
 * `<|image|>` placeholders so the `<|patch|>` slots line up with the feature rows (tiles row-major, then global).
 *
 *   const imgs = await encodeImages(encoder, ['a.jpg', 'b.png'], { cache });
 *   const tokens = expandImagePrompt(promptIds, imgs, encoder.cfg);      // ids with one placeholder per image
 *   generate(model, tokens, { patchEmbeddings: imgs.embeddings, ... });
 */
import { createHash } from 'node:crypto';
import type { DecodeLimits, ImageInput, ImageTiles, ImageTokenIds, RgbImage } from '../../image/index.ts';
import {
  DEFAULT_MAX_IMAGE_PIXELS,
  ImageError,
  LLAMA4_IMAGE_TOKEN_IDS,
  decodeImage,
  expandImageTokenIds,
  expandImagePlaceholders,
  preprocessImage,
  readImageSize,
} from '../../image/index.ts';
import { UsageError } from '../../util/index.ts';
import type { Llama4VisionConfig } from './vision-config.ts';
import type { Llama4VisionEncoder } from './vision.ts';
import type { ImagePromptEncoder } from '../types.ts';

/**
 * The image token ids of a model: `<|patch|>`, `<|image_start|>`, `<|image_end|>` from its config; `<|image|>` and
 * the tile separators are not in config.json, so Meta's tokenizer ids apply unless given.
 */
export function imageTokenIdsFor(cfg: Llama4VisionConfig, overrides: Partial<ImageTokenIds> = {}): ImageTokenIds {
  return {
    ...LLAMA4_IMAGE_TOKEN_IDS,
    patch: cfg.imageTokenId,
    ...(cfg.boiTokenId !== null ? { start: cfg.boiTokenId } : {}),
    ...(cfg.eoiTokenId !== null ? { end: cfg.eoiTokenId } : {}),
    ...overrides,
  };
}

/** LRU of projected features keyed by the preprocessed pixels' hash, bounded in bytes. */
export class ImageFeatureCache {
  private readonly map = new Map<string, Float32Array>();
  private bytes = 0;
  hits = 0;
  misses = 0;
  constructor(readonly maxBytes = 256 * 1024 * 1024) {}

  get(key: string): Float32Array | undefined {
    const v = this.map.get(key);
    if (v) {
      this.map.delete(key);
      this.map.set(key, v);
      this.hits++;
    } else this.misses++;
    return v;
  }

  set(key: string, value: Float32Array): void {
    if (value.byteLength > this.maxBytes) return;
    const old = this.map.get(key);
    if (old) {
      this.bytes -= old.byteLength;
      this.map.delete(key);
    }
    this.map.set(key, value);
    this.bytes += value.byteLength;
    for (const [k, v] of this.map) {
      if (this.bytes <= this.maxBytes) break;
      this.map.delete(k);
      this.bytes -= v.byteLength;
    }
  }

  get size(): number {
    return this.map.size;
  }
}

export interface EncodedImage {
  readonly grid: readonly [number, number];
  readonly nTiles: number;
  /** [nTiles · tokensPerTile, textHidden]. */
  readonly embeddings: Float32Array;
  /** sha256 of the preprocessed pixels (the cache key). */
  readonly key: string;
}

export interface EncodedImages {
  readonly images: readonly EncodedImage[];
  /** Every image's rows back to back, in prompt order: ForwardItem.patchEmbeddings / GenerateOptions.patchEmbeddings. */
  readonly embeddings: Float32Array;
}

export interface EncodeImageOptions {
  /** Most grid tiles per image (default 16, the processor's max_patches). */
  readonly maxTiles?: number;
  readonly limits?: DecodeLimits;
  readonly cache?: ImageFeatureCache;
  /** Most pixels of all images of one call together, checked from their headers before any is decoded (default 64 MP). */
  readonly maxTotalPixels?: number;
}

/** Default pixel budget of one encodeImages call: the encoder sees at most 16 tiles of 336² (1.8 MP) per image anyway. */
export const DEFAULT_MAX_TOTAL_PIXELS = 64 * 1024 * 1024;

function isRgb(x: unknown): x is RgbImage {
  return typeof x === 'object' && x !== null && 'width' in x && 'height' in x && 'data' in x && !('bytes' in x);
}

function isTiles(x: unknown): x is ImageTiles {
  return typeof x === 'object' && x !== null && 'pixels' in x && 'grid' in x;
}

/** Encodes one image (a source to decode, a decoded RGB image, or already preprocessed tiles). */
export async function encodeImage(
  encoder: Llama4VisionEncoder,
  input: ImageInput | RgbImage | ImageTiles,
  opts: EncodeImageOptions = {},
): Promise<EncodedImage> {
  const cfg = encoder.cfg;
  let tiles: ImageTiles;
  if (isTiles(input)) tiles = input;
  else {
    const rgb = isRgb(input) ? input : await decodeImage(input, opts.limits);
    tiles = preprocessImage(rgb, { tileSize: cfg.imageSize, ...(opts.maxTiles !== undefined ? { maxTiles: opts.maxTiles } : {}) });
  }
  if (tiles.tileSize !== cfg.imageSize)
    throw new UsageError(`image tiles are ${tiles.tileSize} pixels; this model's vision encoder takes ${cfg.imageSize}`);
  const key = createHash('sha256')
    .update(new Uint8Array(tiles.pixels.buffer, tiles.pixels.byteOffset, tiles.pixels.byteLength))
    .digest('hex');
  let emb = opts.cache?.get(key);
  if (!emb) {
    emb = encoder.encode(tiles.pixels, tiles.nTiles);
    opts.cache?.set(key, emb);
  }
  return { grid: tiles.grid, nTiles: tiles.nTiles, embeddings: emb, key };
}

/**
 * Encodes several images in prompt order. Every header is read first (an unreadable image or one over the
 * per-image or per-call pixel budget fails before anything is decoded); then the images are decoded and encoded one
 * at a time, so only one decoded image is held at once (eight 64-MP images decoded together took 1.76 GB).
 */
export async function encodeImages(
  encoder: Llama4VisionEncoder,
  inputs: ReadonlyArray<ImageInput | RgbImage | ImageTiles>,
  opts: EncodeImageOptions = {},
): Promise<EncodedImages> {
  const budget = opts.maxTotalPixels ?? DEFAULT_MAX_TOTAL_PIXELS;
  const maxPixels = opts.limits?.maxPixels ?? DEFAULT_MAX_IMAGE_PIXELS;
  let pixels = 0;
  for (let i = 0; i < inputs.length; i++) {
    const x = inputs[i]!;
    if (isTiles(x)) continue;
    const { width, height } = isRgb(x) ? x : await readImageSize(x, opts.limits);
    if (width * height > maxPixels) throw new ImageError(`#${i + 1}`, `${width}x${height} is over the ${maxPixels}-pixel limit`);
    pixels += width * height;
    if (pixels > budget)
      throw new ImageError(`#${i + 1}`, `the images of this request have more than ${budget} pixels together (the limit per request)`);
  }
  const images: EncodedImage[] = [];
  for (const x of inputs) images.push(await encodeImage(encoder, x, opts));
  const total = images.reduce((n, im) => n + im.embeddings.length, 0);
  const embeddings = new Float32Array(total);
  let o = 0;
  for (const im of images) {
    embeddings.set(im.embeddings, o);
    o += im.embeddings.length;
  }
  return { images, embeddings };
}

/** Replaces each `<|image|>` id of a tokenised prompt with its image's layout (§3.2). */
export function expandImagePrompt(
  tokens: ArrayLike<number>,
  images: EncodedImages | readonly EncodedImage[],
  cfg: Llama4VisionConfig,
  ids: ImageTokenIds = imageTokenIdsFor(cfg),
): number[] {
  const list = Array.isArray(images) ? images : (images as EncodedImages).images;
  return expandImageTokenIds(
    tokens,
    list.map((im) => im.grid),
    cfg.tokensPerTile,
    ids,
  );
}

/** Same on text, before tokenisation (the tokenizer must then treat the image tokens as special tokens). */
export function expandImagePromptText(text: string, images: EncodedImages | readonly EncodedImage[], cfg: Llama4VisionConfig): string {
  const list = Array.isArray(images) ? images : (images as EncodedImages).images;
  return expandImagePlaceholders(
    text,
    list.map((im) => im.grid),
    cfg.tokensPerTile,
  );
}

/**
 * The server's/CLI's image hook: (prompt tokens with one `<|image|>` id per image, encoded image files) →
 * expanded tokens + patch embeddings. Features are cached across calls (later turns of a conversation resend the
 * same images), bounded by the cache's byte budget. Bad images throw ImageError (a Llama4Error) before any
 * encoding starts.
 */
export function imagePromptEncoder(
  encoder: Llama4VisionEncoder,
  opts: EncodeImageOptions & { readonly ids?: ImageTokenIds } = {},
): ImagePromptEncoder {
  const cache = opts.cache ?? new ImageFeatureCache();
  const ids = opts.ids ?? imageTokenIdsFor(encoder.cfg);
  return async (tokens, images) => {
    const inputs = images.map((x, i) => (x instanceof Uint8Array ? { bytes: x, label: `#${i + 1}` } : x));
    const imgs = await encodeImages(encoder, inputs, { ...opts, cache });
    return { tokens: expandImagePrompt(tokens, imgs, encoder.cfg, ids), patchEmbeddings: imgs.embeddings };
  };
}
