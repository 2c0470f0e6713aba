/**
 * Llama 4 image preprocessing, exactly as the Hugging Face `Llama4ImageProcessorFast` (spec §3.1):
 * canvas choice among tile grids, resize without upscaling images that already fit a canvas, right/bottom padding,
 * rescale + normalise rounded to bfloat16 at each step, row-major tiles, then a global tile (the whole image
 * squashed to one tile) when there is more than one tile.
 */
import { roundBf16 } from '../tensor/index.ts';
import { check } from '../util/index.ts';
import type { RgbImage } from './decode.ts';
import { resizeBilinearAntialias } from './resize.ts';

export interface PreprocessOptions {
  /** Tile side in pixels (336 for Scout/Maverick; the vision config's image_size). */
  readonly tileSize?: number;
  /** Most tiles in the grid, global tile not counted (HF `max_patches`, 16). */
  readonly maxTiles?: number;
  /** Upscale small images to the largest canvas instead of the smallest fitting one (HF default false). */
  readonly resizeToMaxCanvas?: boolean;
}

/** Preprocessed pixels of one image. */
export interface ImageTiles {
  /** Tile grid [rows, cols] (HF `aspect_ratios`). */
  readonly grid: readonly [number, number];
  readonly tileSize: number;
  /** rows·cols, plus one global tile when rows·cols > 1. */
  readonly nTiles: number;
  /** [nTiles, 3, tileSize, tileSize]: grid tiles row-major (index ty·cols + tx), then the global tile. */
  readonly pixels: Float32Array;
}

/**
 * The candidate canvases (height, width) in pixels, in HF's order: for n = maxTiles..1, each factor pair
 * (h, n/h) with ascending h, grouped by aspect ratio h/w in first-seen order. The order breaks ties later.
 */
export function supportedCanvases(maxTiles: number, tileSize: number): Array<[number, number]> {
  const groups = new Map<number, Array<[number, number]>>();
  for (let n = maxTiles; n >= 1; n--) {
    for (let h = 1; h <= n; h++) {
      if (n % h !== 0) continue;
      const w = n / h;
      const ratio = h / w; // a Python float key: equal ratios share a group
      let g = groups.get(ratio);
      if (!g) groups.set(ratio, (g = []));
      g.push([h * tileSize, w * tileSize]);
    }
  }
  return [...groups.values()].flat();
}

/**
 * HF `get_best_fit`: per canvas s = min(Hc/H, Wc/W) in float32. Upscaling options (s ≥ 1) win: the smallest one
 * (largest with resizeToMaxCanvas); otherwise the largest downscale. Among canvases with exactly that s, the smallest
 * area, first in list order on ties.
 */
export function bestFitCanvas(
  height: number,
  width: number,
  canvases: ReadonlyArray<readonly [number, number]>,
  resizeToMaxCanvas = false,
): [number, number] {
  // torch computes these scales in float32; exact equality below depends on that.
  const scales = canvases.map(([hc, wc]) => {
    const sw = Math.fround(wc / width),
      sh = Math.fround(hc / height);
    return sh > sw ? sw : sh;
  });
  const up = scales.filter((s) => s >= 1);
  let chosen: number;
  if (up.length > 0) chosen = resizeToMaxCanvas ? Math.max(...up) : Math.min(...up);
  else chosen = Math.max(...scales.filter((s) => s < 1));
  let best: [number, number] | null = null;
  for (let i = 0; i < canvases.length; i++) {
    if (scales[i] !== chosen) continue;
    const c = canvases[i]!;
    if (!best || c[0] * c[1] < best[0] * best[1]) best = [c[0], c[1]];
  }
  return best!;
}

/** HF `get_max_res_without_distortion`: the largest (h, w) with the image's aspect inside (th, tw), floors. */
export function fitWithoutDistortion(height: number, width: number, th: number, tw: number): [number, number] {
  const sw = tw / width,
    sh = th / height;
  let nh: number, nw: number;
  if (sw < sh) {
    nw = tw;
    nh = Math.min(Math.floor(height * sw), th);
  } else {
    nh = th;
    nw = Math.min(Math.floor(width * sh), tw);
  }
  return [Math.max(1, nh), Math.max(1, nw)];
}

/** The chosen grid and resize target for an image of (height, width). */
export function planTiles(
  height: number,
  width: number,
  opts: PreprocessOptions = {},
): { grid: [number, number]; resized: [number, number]; canvas: [number, number] } {
  const S = opts.tileSize ?? 336,
    maxTiles = opts.maxTiles ?? 16;
  check(Number.isInteger(S) && S >= 1, `tile size must be a positive integer, got ${S}`);
  check(Number.isInteger(maxTiles) && maxTiles >= 1 && maxTiles <= 64, `max tiles must be an integer in 1..64, got ${maxTiles}`);
  const canvas = bestFitCanvas(height, width, supportedCanvases(maxTiles, S), opts.resizeToMaxCanvas ?? false);
  // Without resize_to_max_canvas the target box is the image itself, grown to at least one tile and capped by the
  // canvas: images that fit are only padded; smaller-than-a-tile images are upscaled to one tile side.
  const th = opts.resizeToMaxCanvas ? canvas[0] : Math.min(Math.max(height, S), canvas[0]);
  const tw = opts.resizeToMaxCanvas ? canvas[1] : Math.min(Math.max(width, S), canvas[1]);
  const resized = fitWithoutDistortion(height, width, th, tw);
  return { grid: [canvas[0] / S, canvas[1] / S], resized, canvas };
}

/**
 * u8 → normalised value with HF's bfloat16 arithmetic: bf16(bf16(f32(v)·f32(1/255)) − 0.5) / 0.5.
 * (The HF fast processor casts to bf16 before rescale/normalise; each op rounds its float32 result to bf16.)
 */
const NORM_LUT = (() => {
  const t = new Float32Array(256);
  const inv255 = Math.fround(1 / 255);
  for (let v = 0; v < 256; v++) {
    const scaled = roundBf16(Math.fround(v * inv255));
    const centred = roundBf16(Math.fround(scaled - 0.5));
    t[v] = roundBf16(centred / 0.5);
  }
  return t;
})();

/** Padding is 0 before normalisation, so −1 after. */
const PAD_VALUE = NORM_LUT[0]!;

/** Writes tile (ty, tx) of a [canvasH, canvasW] image (RGB u8 [h, w, 3], padded beyond) as [3, S, S]. */
function writeTile(out: Float32Array, o: number, img: Uint8Array, h: number, w: number, ty: number, tx: number, S: number): void {
  const plane = S * S;
  for (let y = 0; y < S; y++) {
    const iy = ty * S + y;
    for (let x = 0; x < S; x++) {
      const ix = tx * S + x;
      const p = o + y * S + x;
      if (iy < h && ix < w) {
        const s = (iy * w + ix) * 3;
        out[p] = NORM_LUT[img[s]!]!;
        out[p + plane] = NORM_LUT[img[s + 1]!]!;
        out[p + 2 * plane] = NORM_LUT[img[s + 2]!]!;
      } else {
        out[p] = PAD_VALUE;
        out[p + plane] = PAD_VALUE;
        out[p + 2 * plane] = PAD_VALUE;
      }
    }
  }
}

/** Runs the whole §3.1 pipeline on a decoded RGB image. */
export function preprocessImage(image: RgbImage, opts: PreprocessOptions = {}): ImageTiles {
  const S = opts.tileSize ?? 336;
  const { grid, resized } = planTiles(image.height, image.width, opts);
  const [rows, cols] = grid;
  const [rh, rw] = resized;
  const body =
    rh === image.height && rw === image.width ? image.data : resizeBilinearAntialias(image.data, image.height, image.width, rh, rw);
  const nGrid = rows * cols;
  const nTiles = nGrid > 1 ? nGrid + 1 : 1;
  const tileLen = 3 * S * S;
  const pixels = new Float32Array(nTiles * tileLen);
  for (let ty = 0; ty < rows; ty++)
    for (let tx = 0; tx < cols; tx++) writeTile(pixels, (ty * cols + tx) * tileLen, body, rh, rw, ty, tx, S);
  if (nGrid > 1) {
    // The global tile: the ORIGINAL image resized (aspect-distorting) to one tile, not the padded canvas.
    const g = image.height === S && image.width === S ? image.data : resizeBilinearAntialias(image.data, image.height, image.width, S, S);
    writeTile(pixels, nGrid * tileLen, g, S, S, 0, 0, S);
  }
  return { grid: [rows, cols], tileSize: S, nTiles, pixels };
}

/** mean and sum of each tile (what `llama4 image-tiles --json` prints), computed in float64. */
export function tileStats(tiles: ImageTiles): Array<{ mean: number; sum: number }> {
  const len = 3 * tiles.tileSize * tiles.tileSize;
  const out: Array<{ mean: number; sum: number }> = [];
  for (let t = 0; t < tiles.nTiles; t++) {
    let s = 0;
    for (let i = t * len; i < (t + 1) * len; i++) s += tiles.pixels[i]!;
    out.push({ mean: s / len, sum: s });
  }
  return out;
}
