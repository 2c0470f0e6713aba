/**
 * Prompt expansion for images (spec §3.2): each `<|image|>` placeholder in the text becomes the image's token
 * layout, whose `<|patch|>` slots later receive the projected image features in order (early fusion, §2.5).
 *
 *   one tile:      <|image_start|> <|image|> P×n <|image_end|>
 *   rows × cols:   <|image_start|> { (P×n <|tile_x_separator|>)×(cols−1) P×n <|tile_y_separator|> }×rows
 *                  <|image|> P×n <|image_end|>            (the global tile's patches follow <|image|>)
 *
 * where P = <|patch|> and n = patch tokens per tile (144 for 336-pixel tiles of 14-pixel patches, shuffle 0.5).
 */
import { check } from '../util/index.ts';

/** Token strings of the Llama 4 image layout. */
export const IMAGE_TOKENS = {
  start: '<|image_start|>',
  end: '<|image_end|>',
  image: '<|image|>',
  patch: '<|patch|>',
  tileX: '<|tile_x_separator|>',
  tileY: '<|tile_y_separator|>',
} as const;

/** Token ids of the same layout. */
export interface ImageTokenIds {
  readonly start: number;
  readonly end: number;
  readonly image: number;
  readonly patch: number;
  readonly tileX: number;
  readonly tileY: number;
}

/** Meta's Llama 4 tokenizer ids (Scout / Maverick). */
export const LLAMA4_IMAGE_TOKEN_IDS: ImageTokenIds = {
  start: 200080,
  end: 200081,
  tileX: 200084,
  tileY: 200085,
  image: 200090,
  patch: 200092,
};

/** Number of tokens one image expands to: 3 + n_t·(t+1) + rows·cols for t = rows·cols > 1, else n_t + 3. */
export function imagePromptLength(grid: readonly [number, number], tokensPerTile: number): number {
  const t = grid[0] * grid[1];
  return t > 1 ? 3 + t + tokensPerTile * (t + 1) : tokensPerTile + 3;
}

/** The expansion of one `<|image|>` placeholder as a list of T (token strings or ids). */
function layout<T>(grid: readonly [number, number], tokensPerTile: number, k: Record<keyof ImageTokenIds, T>): T[] {
  const [rows, cols] = grid;
  check(Number.isInteger(rows) && Number.isInteger(cols) && rows >= 1 && cols >= 1, `bad tile grid [${rows}, ${cols}]`);
  check(Number.isInteger(tokensPerTile) && tokensPerTile >= 1, `bad tokens per tile ${tokensPerTile}`);
  const out: T[] = [k.start];
  const patches = (): void => {
    for (let i = 0; i < tokensPerTile; i++) out.push(k.patch);
  };
  if (rows * cols > 1) {
    for (let y = 0; y < rows; y++) {
      for (let x = 0; x < cols; x++) {
        patches();
        if (x < cols - 1) out.push(k.tileX);
      }
      out.push(k.tileY);
    }
  }
  out.push(k.image);
  patches();
  out.push(k.end);
  return out;
}

/** Token ids replacing one `<|image|>` placeholder. */
export function imagePromptTokenIds(
  grid: readonly [number, number],
  tokensPerTile: number,
  ids: ImageTokenIds = LLAMA4_IMAGE_TOKEN_IDS,
): number[] {
  return layout(grid, tokensPerTile, ids);
}

/** The same expansion as text (special-token strings), for templating before tokenisation. */
export function imagePromptText(grid: readonly [number, number], tokensPerTile: number): string {
  return layout(grid, tokensPerTile, IMAGE_TOKENS).join('');
}

/**
 * Replaces the i-th `<|image|>` placeholder of `text` with image i's expansion. The number of placeholders must
 * equal the number of images (HF raises the same way).
 */
export function expandImagePlaceholders(text: string, grids: ReadonlyArray<readonly [number, number]>, tokensPerTile: number): string {
  const parts = text.split(IMAGE_TOKENS.image);
  check(parts.length - 1 === grids.length, `prompt has ${parts.length - 1} ${IMAGE_TOKENS.image} placeholders for ${grids.length} images`);
  let out = parts[0]!;
  for (let i = 0; i < grids.length; i++) out += imagePromptText(grids[i]!, tokensPerTile) + parts[i + 1]!;
  return out;
}

/**
 * Same on token ids: each `ids.image` in `tokens` is replaced by image i's expansion. Use this when the prompt was
 * tokenised with the placeholder as one special token.
 */
export function expandImageTokenIds(
  tokens: ArrayLike<number>,
  grids: ReadonlyArray<readonly [number, number]>,
  tokensPerTile: number,
  ids: ImageTokenIds = LLAMA4_IMAGE_TOKEN_IDS,
): number[] {
  const out: number[] = [];
  let next = 0;
  for (let i = 0; i < tokens.length; i++) {
    const t = tokens[i]!;
    if (t !== ids.image) {
      out.push(t);
      continue;
    }
    check(next < grids.length, `prompt has more image placeholders than the ${grids.length} images given`);
    for (const u of imagePromptTokenIds(grids[next++]!, tokensPerTile, ids)) out.push(u);
  }
  check(next === grids.length, `prompt has ${next} image placeholders for ${grids.length} images`);
  return out;
}
