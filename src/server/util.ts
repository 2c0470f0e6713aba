/**
 * Shared helpers of the HTTP layer: the API error type (each API formats it its own way), field validation that
 * names the offending field, ids, and image inputs (data URLs, base64, remote URLs behind a flag with limits).
 */
import { Llama4Error } from '../util/index.ts';
import type { ChatMessage, EncodedPrompt, ImagePart, ServerEngine, ToolSpec } from './engine.ts';
import { fetchRemoteImage, RemoteImageError } from './remote-image.ts';

/** A request the server refuses. `kind` maps onto each API's error type names. */
export class ApiError extends Error {
  constructor(
    readonly status: number,
    readonly kind: 'invalid_request' | 'authentication' | 'not_found' | 'rate_limit' | 'server' | 'too_large',
    message: string,
    readonly param: string | null = null,
    readonly retryAfterS?: number,
  ) {
    super(message);
  }
}

/**
 * The API error for a choice that failed while generating: the request's own fault (a Llama4Error, e.g. a JSON
 * schema too ambiguous to follow) is a 400; a model that stopped (its worker died; `unavailable` set on the error)
 * is a 503 the client may retry; anything else a 500.
 */
export function generationError(e: Error): ApiError {
  if (e instanceof Llama4Error) return new ApiError(400, 'invalid_request', e.message);
  if ((e as { unavailable?: boolean }).unavailable === true)
    return new ApiError(503, 'server', `the model is unavailable: ${e.message}`, null, 1);
  return new ApiError(500, 'server', `generation failed: ${e.message}`);
}

export const badRequest = (message: string, param: string | null = null) => new ApiError(400, 'invalid_request', message, param);

export { randomId } from '../engine/completion.ts';

export type Json = Record<string, unknown>;
export const isObject = (v: unknown): v is Json => typeof v === 'object' && v !== null && !Array.isArray(v);

/** Typed field readers: each throws a 400 that names the field. */
export const field = {
  obj(o: Json, k: string, path = k): Json | undefined {
    const v = o[k];
    if (v === undefined || v === null) return undefined;
    if (!isObject(v)) throw badRequest(`'${path}' must be an object`, path);
    return v;
  },
  str(o: Json, k: string, path = k): string | undefined {
    const v = o[k];
    if (v === undefined || v === null) return undefined;
    if (typeof v !== 'string') throw badRequest(`'${path}' must be a string`, path);
    return v;
  },
  bool(o: Json, k: string, path = k): boolean | undefined {
    const v = o[k];
    if (v === undefined || v === null) return undefined;
    if (typeof v !== 'boolean') throw badRequest(`'${path}' must be a boolean`, path);
    return v;
  },
  num(o: Json, k: string, min: number, max: number, path = k): number | undefined {
    const v = o[k];
    if (v === undefined || v === null) return undefined;
    if (typeof v !== 'number' || !Number.isFinite(v)) throw badRequest(`'${path}' must be a number`, path);
    if (v < min || v > max) throw badRequest(`'${path}' must be between ${min} and ${max}, got ${v}`, path);
    return v;
  },
  int(o: Json, k: string, min: number, max: number, path = k): number | undefined {
    const v = field.num(o, k, min, max, path);
    if (v !== undefined && !Number.isInteger(v)) throw badRequest(`'${path}' must be an integer, got ${v}`, path);
    return v;
  },
  arr(o: Json, k: string, path = k): unknown[] | undefined {
    const v = o[k];
    if (v === undefined || v === null) return undefined;
    if (!Array.isArray(v)) throw badRequest(`'${path}' must be an array`, path);
    return v;
  },
};

/** `stop` / `stop_sequences`: a string or up to 16 non-empty strings. */
export function readStops(v: unknown, path: string): string[] {
  if (v === undefined || v === null) return [];
  const list = typeof v === 'string' ? [v] : v;
  if (!Array.isArray(list) || !list.every((s) => typeof s === 'string'))
    throw badRequest(`'${path}' must be a string or an array of strings`, path);
  if (list.length > 16) throw badRequest(`'${path}' has ${list.length} entries; at most 16`, path);
  if (list.some((s) => s.length === 0)) throw badRequest(`'${path}' entries must not be empty`, path);
  return list as string[];
}

const MEDIA: [string, (b: Uint8Array) => boolean][] = [
  ['image/png', (b) => b[0] === 0x89 && b[1] === 0x50 && b[2] === 0x4e && b[3] === 0x47],
  ['image/jpeg', (b) => b[0] === 0xff && b[1] === 0xd8 && b[2] === 0xff],
  ['image/gif', (b) => b[0] === 0x47 && b[1] === 0x49 && b[2] === 0x46],
  ['image/webp', (b) => b[0] === 0x52 && b[1] === 0x49 && b[2] === 0x46 && b[3] === 0x46 && b[8] === 0x57 && b[9] === 0x45],
];

/** Checks the bytes are an image format we decode; returns its media type. */
export function sniffImage(bytes: Uint8Array, path: string): string {
  for (const [type, test] of MEDIA) if (bytes.length >= 12 && test(bytes)) return type;
  throw badRequest(`'${path}' is not a PNG, JPEG, GIF or WebP image`, path);
}

export function decodeBase64Image(data: string, path: string, maxBytes: number): ImagePart {
  if (!/^[A-Za-z0-9+/\s]*={0,2}\s*$/.test(data)) throw badRequest(`'${path}' is not valid base64`, path);
  if ((data.length * 3) / 4 > maxBytes) throw new ApiError(413, 'too_large', `'${path}' is larger than ${maxBytes} bytes`, path);
  const bytes = new Uint8Array(Buffer.from(data, 'base64'));
  if (bytes.length === 0) throw badRequest(`'${path}' is empty`, path);
  return { type: 'image', data: bytes, mediaType: sniffImage(bytes, path) };
}

export interface ImageFetchOptions {
  /** Allow http(s) image URLs (off by default: the server would fetch on a client's behalf). */
  allowRemote: boolean;
  maxBytes: number;
  timeoutMs: number;
  /** Which resolved addresses remote images may come from (default: public addresses only, see remote-image.ts). */
  allowAddress?: (ip: string) => boolean;
}

/** An image_url: a data URL, or a remote URL when allowed (fetched with size and time limits). */
export async function loadImageUrl(url: string, path: string, o: ImageFetchOptions): Promise<ImagePart> {
  const m = /^data:([^;,]*)(;base64)?,(.*)$/s.exec(url);
  if (m) {
    if (!m[2]) throw badRequest(`'${path}': only base64 data URLs are supported`, path);
    return decodeBase64Image(m[3]!, path, o.maxBytes);
  }
  if (!/^https?:\/\//.test(url)) throw badRequest(`'${path}' must be a data: URL${o.allowRemote ? ' or an http(s) URL' : ''}`, path);
  if (!o.allowRemote)
    throw badRequest(
      `'${path}': remote image URLs are disabled on this server (start it with --allow-remote-images); send a data: URL`,
      path,
    );
  let bytes: Uint8Array;
  try {
    bytes = await fetchRemoteImage(url, o);
  } catch (e) {
    if (e instanceof RemoteImageError && e.tooLarge)
      throw new ApiError(413, 'too_large', `'${path}': the image is larger than ${o.maxBytes} bytes`, path);
    throw badRequest(`'${path}': ${(e as Error).message}`, path);
  }
  return { type: 'image', data: bytes, mediaType: sniffImage(bytes, path) };
}

/**
 * Refuses text that cannot fit the context before tokenizing it: tokenizing tens of megabytes would hold the event
 * loop for seconds. A token is rarely longer than 32 characters, so more than 32 × context characters cannot fit.
 */
export function checkTextSize(chars: number, contextLength: number, param: string): void {
  if (chars > contextLength * 32) {
    throw badRequest(`the prompt has ${chars} characters, more than a ${contextLength}-token context can hold`, param);
  }
}

/** Characters of text in chat messages (what the size check counts). */
export function chatChars(messages: readonly { content: string | readonly { type: string; text?: string }[] }[]): number {
  let n = 0;
  for (const m of messages) {
    if (typeof m.content === 'string') n += m.content.length;
    else for (const p of m.content) n += p.text?.length ?? 0;
  }
  return n;
}

/**
 * A chat request's prompt, refused as `param` when it cannot leave room to generate in `contextLength`: first by
 * its characters (before tokenizing, see checkTextSize), then by its tokens, with the API's own wording (`tooLong`).
 */
export async function encodeChatWithin(
  engine: ServerEngine,
  messages: ChatMessage[],
  tools: ToolSpec[] | null,
  contextLength: number,
  param: string,
  tooLong: (tokens: number) => string,
): Promise<EncodedPrompt> {
  checkTextSize(chatChars(messages), contextLength, param);
  const prompt = await engine.encodeChat(messages, tools);
  if (prompt.tokens.length >= contextLength) throw badRequest(tooLong(prompt.tokens.length), param);
  return prompt;
}

export { toolCallSchema } from '../engine/tool-schema.ts';
