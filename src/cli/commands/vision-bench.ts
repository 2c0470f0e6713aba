/**
 * `llama4 bench --vision [-t N] [--layers N] [--tile PIXELS] [-r 3] [--baseline] [--json]`: how long the vision
 * encoder takes for one image tile. A random Scout-size encoder (weights in bf16, as the checkpoints store them) is
 * built in memory and encodes one tile through the tower, the adapter and the projector; the wall time is split into
 * matrix products, attention and the rest (layernorms, GELU, RoPE, biases, pixel shuffle), medians of R runs.
 * --baseline also times the same encoder with exact products (activations kept in float32: the kernels the vision
 * path used before BF16 products), the two taking turns in one process.
 */
import {
  attentionFlops,
  randomVisionTensors,
  scoutVisionConfig,
  timeVisionTile,
  visionMatmulFlops,
  type VisionTileRuns,
} from '../../load.ts';
import type { Backend } from '../../tensor/index.ts';

const median = (xs: number[]): number => {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m]! : (s[m - 1]! + s[m]!) / 2;
};

export interface VisionBenchOptions {
  readonly backend: Backend;
  readonly layers: number;
  readonly tilePixels: number;
  readonly repeat: number;
  readonly baseline: boolean;
  readonly json: boolean;
}

export function runVisionBench(o: VisionBenchOptions): number {
  const cfg = scoutVisionConfig(o.layers, o.tilePixels);
  const tensors = randomVisionTensors(cfg);
  const flops = visionMatmulFlops(cfg);
  const bf16Kernel = (o.backend as { bf16Products?: string | null }).bf16Products ?? null;
  const modes = o.baseline ? (['bf16', 'exact'] as const) : (['bf16'] as const);
  const runs = timeVisionTile(o.backend, cfg, tensors, modes, o.repeat);
  const summary = (r: VisionTileRuns) => {
    const tile = median(r.tile),
      mm = median(r.matmul),
      att = median(r.attention);
    return {
      // what the backend actually did: 'bf16' only where it has a BF16-products kernel
      products: r.products === 'bf16' && bf16Kernel ? 'bf16' : 'exact',
      tile_seconds: tile,
      gflops: flops / tile / 1e9,
      matmul_seconds: mm,
      matmul_gflops: flops / mm / 1e9,
      attention_seconds: att,
      attention_gflops: attentionFlops(cfg) / att / 1e9,
      other_seconds: median(r.tile.map((t, i) => t - r.matmul[i]! - r.attention[i]!)),
      runs: { tile: r.tile, matmul: r.matmul, attention: r.attention },
    };
  };
  const main = summary(runs[0]!);
  const base = runs[1] ? summary(runs[1]) : null;
  const result = {
    ...main,
    bf16_kernel: bf16Kernel,
    backend: o.backend.name,
    threads: (o.backend as { threads?: number }).threads ?? 1,
    layers: cfg.numLayers,
    tile_pixels: cfg.imageSize,
    rows: cfg.patchesPerSide * cfg.patchesPerSide + 1,
    matmul_flops: flops,
    attention_flops: attentionFlops(cfg),
    repeat: o.repeat,
    baseline: base,
    // the old path's matrix products alone against the whole new tile (the measure)
    speedup_vs_baseline_matmuls: base ? base.matmul_seconds / main.tile_seconds : null,
  };
  if (o.json) process.stdout.write(JSON.stringify(result) + '\n');
  else {
    const f = (x: number) => x.toFixed(3);
    const line = (name: string, s: typeof main) =>
      `${name} ${f(s.tile_seconds)} s per tile (${s.gflops.toFixed(1)} GFLOP/s): matrix products ${f(s.matmul_seconds)} s ` +
      `(${s.matmul_gflops.toFixed(1)} GFLOP/s, ${s.products}), attention ${f(s.attention_seconds)} s, rest ${f(s.other_seconds)} s\n`;
    process.stdout.write(
      `vision   Scout-size encoder, ${cfg.numLayers} layers, ${result.rows} rows per ${cfg.imageSize}-pixel tile ` +
        `(${o.backend.name}, ${result.threads} thread${result.threads === 1 ? '' : 's'}, bf16 kernel ${bf16Kernel ?? 'none'}; median of ${o.repeat})\n` +
        line('new     ', main) +
        (base
          ? line('baseline', base) +
            `speedup  ${result.speedup_vs_baseline_matmuls!.toFixed(2)}x (baseline matrix products alone / new tile)\n`
          : ''),
    );
  }
  return 0;
}
