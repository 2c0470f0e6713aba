/**
 * Image decoding: JPEG, PNG, WebP and GIF (first frame) from a file path, bytes or a data URL, through sharp
 * (libvips). Output is 8-bit RGB, row-major [height, width, 3] — what PIL's `convert('RGB')` gives the Hugging Face
 * processor: EXIF orientation applied, alpha dropped WITHOUT compositing (the reference keeps the colour
 * channels of transparent pixels as they are; Meta's own code composites onto white, HF does not).
 *
 * Every failure of the input (unreadable, corrupt, truncated, too many bytes or pixels, unsupported format) is one
 * ImageError naming the source; nothing is decoded before the byte and pixel limits are checked.
 */
import { readFile, stat } from 'node:fs/promises';
import type { Metadata, default as Sharp } from 'sharp';
import { Llama4Error } from '../util/index.ts';

/** A decoded image: `data[(y * width + x) * 3 + c]`, c in R, G, B. */
export interface RgbImage {
  readonly width: number;
  readonly height: number;
  readonly data: Uint8Array;
}

/** A bad image input (corrupt, truncated, oversized, unsupported). */
export class ImageError extends Llama4Error {
  override readonly name = 'ImageError';
  constructor(
    readonly source: string,
    detail: string,
  ) {
    super(`image ${source}: ${detail}`);
  }
}

export interface DecodeLimits {
  /** Largest encoded size accepted, in bytes (default 64 MiB). */
  readonly maxBytes?: number;
  /** Largest width·height accepted (default 64 megapixels). Checked from the header before decoding. */
  readonly maxPixels?: number;
}

export const DEFAULT_MAX_IMAGE_BYTES = 64 * 1024 * 1024;
export const DEFAULT_MAX_IMAGE_PIXELS = 64 * 1024 * 1024;

/**
 * sharp, imported on first use: text-only users never load libvips, and a sharp whose native part is missing or
 * broken (wrong platform, blocked install scripts) costs image calls only, with one clear error
 * (test/sharp-missing.test.ts makes the import fail).
 */
let sharpModule: Promise<typeof Sharp> | null = null;
async function loadSharp(src: string): Promise<typeof Sharp> {
  sharpModule ??= import('sharp').then((m: { default: typeof Sharp }) => m.default);
  try {
    return await sharpModule;
  } catch (e) {
    throw new ImageError(
      src,
      `image decoding needs the 'sharp' package, which failed to load (${sharpMessage(e)}); reinstall it with \`npm install sharp\``,
    );
  }
}

/** Formats we accept (sharp can read more, e.g. SVG or TIFF; those are refused so the surface stays small). */
const FORMATS = new Set(['jpeg', 'png', 'webp', 'gif']);

/**
 * Where an image comes from: a file path, a `data:image/...;base64,` URL, or the encoded bytes themselves.
 * `label` names it in errors when bytes are given.
 */
export type ImageInput = string | Uint8Array | { readonly bytes: Uint8Array; readonly label?: string };

/** Short description of a source for error messages (data URLs are not echoed whole). */
function describe(input: ImageInput): string {
  if (typeof input === 'string') return input.startsWith('data:') ? `data URL (${input.length} chars)` : input;
  if (input instanceof Uint8Array) return `<${input.length} bytes>`;
  return input.label ?? `<${input.bytes.length} bytes>`;
}

/** Parses `data:[<mime>][;base64],<payload>` into bytes. */
export function parseDataUrl(url: string, maxBytes = DEFAULT_MAX_IMAGE_BYTES): Uint8Array {
  const src = describe(url);
  const comma = url.indexOf(',');
  if (!url.startsWith('data:') || comma < 0) throw new ImageError(src, 'not a data URL (expected data:image/...;base64,...)');
  const meta = url.slice(5, comma);
  const payload = url.slice(comma + 1);
  // Base64 inflates by 4/3: refuse before allocating when the decoded size would pass the limit.
  if (Math.floor((payload.length * 3) / 4) > maxBytes + 3) throw new ImageError(src, `larger than the ${maxBytes}-byte limit`);
  let bytes: Buffer;
  if (/;base64$/i.test(meta)) {
    const clean = payload.replace(/\s+/g, '');
    if (!/^[A-Za-z0-9+/_-]*={0,2}$/.test(clean)) throw new ImageError(src, 'data URL payload is not valid base64');
    bytes = Buffer.from(clean, 'base64');
  } else {
    let text: string;
    try {
      text = decodeURIComponent(payload);
    } catch {
      throw new ImageError(src, 'data URL payload has a malformed %-escape');
    }
    bytes = Buffer.from(text, 'latin1');
  }
  if (bytes.length > maxBytes) throw new ImageError(src, `${bytes.length} bytes is over the ${maxBytes}-byte limit`);
  return new Uint8Array(bytes.buffer, bytes.byteOffset, bytes.length);
}

/** Reads the encoded bytes of an input, enforcing the byte limit before reading a file whole. */
export async function readImageBytes(input: ImageInput, maxBytes = DEFAULT_MAX_IMAGE_BYTES): Promise<Uint8Array> {
  const src = describe(input);
  let bytes: Uint8Array;
  if (typeof input === 'string') {
    if (input.startsWith('data:')) return parseDataUrl(input, maxBytes);
    let size: number;
    try {
      const st = await stat(input);
      if (!st.isFile()) throw new ImageError(src, 'not a regular file');
      size = st.size;
    } catch (e) {
      if (e instanceof ImageError) throw e;
      throw new ImageError(src, `cannot read (${(e as NodeJS.ErrnoException).code ?? String(e)})`);
    }
    if (size > maxBytes) throw new ImageError(src, `${size} bytes is over the ${maxBytes}-byte limit`);
    try {
      bytes = await readFile(input);
    } catch (e) {
      throw new ImageError(src, `cannot read (${(e as NodeJS.ErrnoException).code ?? String(e)})`);
    }
  } else {
    bytes = input instanceof Uint8Array ? input : input.bytes;
  }
  if (bytes.length > maxBytes) throw new ImageError(src, `${bytes.length} bytes is over the ${maxBytes}-byte limit`);
  if (bytes.length === 0) throw new ImageError(src, 'empty input');
  return bytes;
}

/**
 * Width and height from the image's header, without decoding (what a per-request pixel budget is checked
 * against before any image is decoded). Same errors as decodeImage for unreadable or unsupported inputs.
 */
export async function readImageSize(input: ImageInput, limits: DecodeLimits = {}): Promise<{ width: number; height: number }> {
  const src = describe(input);
  const bytes = await readImageBytes(input, limits.maxBytes ?? DEFAULT_MAX_IMAGE_BYTES);
  const sharp = await loadSharp(src);
  let meta: Metadata;
  try {
    meta = await sharp(bytes, { pages: 1, page: 0, limitInputPixels: false }).metadata();
  } catch (e) {
    throw new ImageError(src, `not a readable image (${sharpMessage(e)})`);
  }
  if (!meta.format || !FORMATS.has(meta.format))
    throw new ImageError(src, `unsupported format ${meta.format ?? 'unknown'} (JPEG, PNG, WebP and GIF are supported)`);
  const width = meta.width ?? 0,
    height = meta.height ?? 0;
  if (!(width > 0 && height > 0)) throw new ImageError(src, 'image has no pixels');
  return { width, height };
}

/**
 * Decodes an image to RGB u8. EXIF orientation is applied (so width/height are the displayed ones), GIF and
 * animated WebP give their first frame, grey/palette/CMYK images are converted to sRGB, alpha is dropped.
 */
export async function decodeImage(input: ImageInput, limits: DecodeLimits = {}): Promise<RgbImage> {
  const maxBytes = limits.maxBytes ?? DEFAULT_MAX_IMAGE_BYTES;
  const maxPixels = limits.maxPixels ?? DEFAULT_MAX_IMAGE_PIXELS;
  const src = describe(input);
  const bytes = await readImageBytes(input, maxBytes);
  const sharp = await loadSharp(src);
  // failOn 'truncated' turns libvips' "premature end of file" warnings into errors; limitInputPixels makes sharp
  // refuse from the header alone. pages: 1 = first frame of GIF/WebP animations. ignoreIcc: the reference (PIL)
  // does no colour management, so a Display-P3 photo's stored values go to the model as they are; sharp would
  // otherwise convert them to sRGB (measured: a P3-tagged pixel stored as 184,50,48 came out as 200,30,40).
  const opts = { failOn: 'truncated', limitInputPixels: maxPixels, pages: 1, page: 0, ignoreIcc: true } as const;
  let meta: Metadata;
  try {
    meta = await sharp(bytes, opts).metadata();
  } catch (e) {
    throw new ImageError(src, `not a readable image (${sharpMessage(e)})`);
  }
  if (!meta.format || !FORMATS.has(meta.format)) {
    throw new ImageError(src, `unsupported format ${meta.format ?? 'unknown'} (JPEG, PNG, WebP and GIF are supported)`);
  }
  const w0 = meta.width ?? 0,
    h0 = meta.height ?? 0;
  if (!(w0 > 0 && h0 > 0)) throw new ImageError(src, 'image has no pixels');
  if (w0 * h0 > maxPixels) throw new ImageError(src, `${w0}x${h0} is over the ${maxPixels}-pixel limit`);
  try {
    const { data, info } = await sharp(bytes, opts)
      .rotate() // no angle: apply EXIF orientation, then drop the tag
      .toColourspace('srgb')
      .removeAlpha()
      .raw({ depth: 'uchar' })
      .toBuffer({ resolveWithObject: true });
    if (info.channels !== 3) throw new ImageError(src, `decoded to ${info.channels} channels, expected 3`);
    if (data.length !== info.width * info.height * 3) throw new ImageError(src, 'decoder returned a short buffer');
    return { width: info.width, height: info.height, data: new Uint8Array(data.buffer, data.byteOffset, data.length) };
  } catch (e) {
    if (e instanceof ImageError) throw e;
    throw new ImageError(src, `corrupt or truncated (${sharpMessage(e)})`);
  }
}

function sharpMessage(e: unknown): string {
  const m = e instanceof Error ? e.message : String(e);
  return m.split('\n')[0]!.trim();
}

/** Wraps already-decoded RGB bytes (tests, callers with their own decoder), validating the size. */
export function rgbImage(width: number, height: number, data: Uint8Array): RgbImage {
  if (!(Number.isInteger(width) && Number.isInteger(height) && width > 0 && height > 0)) {
    throw new ImageError('<rgb>', `bad size ${width}x${height}`);
  }
  if (data.length !== width * height * 3) throw new ImageError('<rgb>', `${data.length} bytes for ${width}x${height}x3`);
  return { width, height, data };
}
