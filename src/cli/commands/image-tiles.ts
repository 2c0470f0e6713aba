import { parseArgs } from '../args.ts';
import type { Command } from '../command.ts';
import { decodeImage, preprocessImage, tileStats, imagePromptLength } from '../../image/index.ts';
import { parseNumber } from '../options.ts';
import { UsageError } from '../../util/index.ts';

export const imageTilesCommand: Command = {
  name: 'image-tiles',
  summary: 'preprocess an image into Llama 4 tiles and print the grid and per-tile statistics',
  usage: `usage: llama4 image-tiles FILE [--json] [--tile-size 336] [--max-tiles 16] [--tokens-per-tile 144]
Decodes FILE (JPEG, PNG, WebP, GIF; a data: URL also works), preprocesses it exactly as the Hugging Face Llama 4
image processor does, and prints the tile grid and each tile's mean and sum (grid tiles row-major, then the global
tile). --json prints {"grid": [rows, cols], "tiles": [{"mean": m, "sum": s}, ...]}.
  --tile-size N          tile side in pixels (the vision config's image_size; default 336)
  --max-tiles N          most grid tiles (default 16)
  --tokens-per-tile N    patch tokens per tile, for the prompt length shown without --json (default 144)`,
  async run(argv) {
    const { values, positionals } = parseArgs({
      args: argv,
      options: {
        json: { type: 'boolean' },
        'tile-size': { type: 'string' },
        'max-tiles': { type: 'string' },
        'tokens-per-tile': { type: 'string' },
      },
      allowPositionals: true,
      strict: true,
    });
    if (positionals.length !== 1) throw new UsageError('give exactly one image file');
    const tileSize = parseNumber('tile-size', values['tile-size'], { int: true, min: 1 }) ?? 336;
    const maxTiles = parseNumber('max-tiles', values['max-tiles'], { int: true, min: 1 }) ?? 16;
    const perTile = parseNumber('tokens-per-tile', values['tokens-per-tile'], { int: true, min: 1 }) ?? 144;
    const img = await decodeImage(positionals[0]!);
    const tiles = preprocessImage(img, { tileSize, maxTiles });
    const stats = tileStats(tiles);
    const promptTokens = imagePromptLength(tiles.grid, perTile);
    if (values.json) {
      process.stdout.write(JSON.stringify({ grid: tiles.grid, tiles: stats }) + '\n');
    } else {
      process.stdout.write(
        `${positionals[0]}: ${img.width}x${img.height} → grid ${tiles.grid[0]}x${tiles.grid[1]}, ${tiles.nTiles} tiles of ${tileSize}x${tileSize}, ${promptTokens} prompt tokens\n`,
      );
      stats.forEach((s, i) => {
        const label = tiles.nTiles > 1 && i === tiles.nTiles - 1 ? 'global' : `tile ${Math.floor(i / tiles.grid[1])},${i % tiles.grid[1]}`;
        process.stdout.write(`  ${label.padEnd(10)} mean ${s.mean.toFixed(6)}  sum ${s.sum.toFixed(4)}\n`);
      });
    }
    return 0;
  },
};
