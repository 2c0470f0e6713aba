/**
 * Pixel values given directly as JSON (`llama4 logits --pixel-values FILE.json`): an array [tiles][C][H][W] of
 * numbers, e.g. a Hugging Face processor's `pixel_values[0].tolist()`. Also accepted: [C][H][W] (one tile) and the
 * golden files' [C][H·W] rows. Validated fully so a malformed file is one clear error.
 */
import { readFileSync } from 'node:fs';
import { UsageError } from '../util/index.ts';

export interface PixelValues {
  readonly nTiles: number;
  readonly channels: number;
  readonly tileSize: number;
  /** [nTiles, channels, tileSize, tileSize]. */
  readonly pixels: Float32Array;
}

/** Flattens a nested numeric array, recording the size of each level (which must be rectangular). */
function flatten(x: unknown, where: string): { shape: number[]; values: number[] } {
  const shape: number[] = [];
  for (let v: unknown = x; Array.isArray(v); v = v[0]) shape.push(v.length);
  const values: number[] = [];
  const walk = (v: unknown, d: number, path: string): void => {
    if (d === shape.length) {
      if (typeof v !== 'number' || !Number.isFinite(v)) throw new UsageError(`${where}: ${path} is not a finite number`);
      values.push(v);
      return;
    }
    if (!Array.isArray(v) || v.length !== shape[d])
      throw new UsageError(`${where}: ${path || 'top level'} is not an array of ${shape[d]} (ragged pixel array)`);
    v.forEach((e, i) => walk(e, d + 1, `${path}[${i}]`));
  };
  walk(x, 0, '');
  return { shape, values };
}

/** Parses pixel values for an encoder taking `channels` × `tileSize`² tiles. */
export function parsePixelValues(json: unknown, tileSize: number, channels = 3, where = 'pixel values'): PixelValues {
  const { shape, values } = flatten(json, where);
  const per = channels * tileSize * tileSize;
  let nTiles: number;
  if (shape.length === 4 && shape[1] === channels && shape[2] === tileSize && shape[3] === tileSize) nTiles = shape[0]!;
  else if (shape.length === 3 && shape[0] === channels && shape[1] === tileSize && shape[2] === tileSize) nTiles = 1;
  else if (shape.length === 2 && shape[0] === channels && shape[1] === tileSize * tileSize) nTiles = 1;
  else throw new UsageError(`${where}: shape [${shape.join(', ')}] is not [tiles, ${channels}, ${tileSize}, ${tileSize}]`);
  if (nTiles < 1) throw new UsageError(`${where}: no tiles`);
  if (values.length !== nTiles * per) throw new UsageError(`${where}: ${values.length} values for ${nTiles} tiles`);
  return { nTiles, channels, tileSize, pixels: Float32Array.from(values) };
}

/** Reads and parses a pixel-values JSON file (refusing files over `maxBytes`, default 1 GiB). */
export function readPixelValuesFile(file: string, tileSize: number, channels = 3, maxBytes = 1 << 30): PixelValues {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (e) {
    throw new UsageError(`${file}: cannot read (${(e as NodeJS.ErrnoException).code ?? String(e)})`);
  }
  if (text.length > maxBytes) throw new UsageError(`${file}: larger than ${maxBytes} bytes`);
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (e) {
    throw new UsageError(`${file}: not valid JSON (${(e as Error).message})`);
  }
  return parsePixelValues(json, tileSize, channels, file);
}
