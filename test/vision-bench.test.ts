/**
 * `llama4 bench --vision`: the command runs on a tiny setting (1 layer, 28-pixel tile = 5 rows; Scout's widths) and
 * prints the documented JSON; the FLOP count it divides by is Scout's, counted by hand here.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { spawnSync } from 'node:child_process';
import { PROJECT_ROOT } from './helpers/shared.ts';
import { scoutVisionConfig, visionMatmulFlops, attentionFlops } from '../src/model/llama4/vision-bench.ts';

const MAIN = join(PROJECT_ROOT, 'src/cli/main.ts');
const cli = (args: string[]) => spawnSync(process.execPath, ['--import', 'tsx', MAIN, ...args], { encoding: 'utf8', timeout: 120000 });

test('Scout vision: 577 rows per tile, 144 tokens, and the matrix-product FLOPs of one tile', () => {
  const c = scoutVisionConfig();
  assert.equal(c.patchesPerSide ** 2 + 1, 577);
  assert.equal(c.tokensPerTile, 144);
  const patch = 2 * 576 * 1408 * 588;
  const layer = 2 * 577 * (4 * 1408 * 1408 + 2 * 1408 * 5632);
  const adapter = 2 * 144 * (4096 * 5632 + 4096 * 4096);
  const projector = 2 * 144 * 5120 * 4096;
  assert.equal(visionMatmulFlops(c), patch + 34 * layer + adapter + projector); // 951.9 GFLOP
  assert.equal(attentionFlops(c), 34 * 16 * 4 * 577 * 577 * 88);
});

test('bench --vision --json on a tiny setting: one object with the documented fields', () => {
  const r = cli(['bench', '--vision', '--layers', '1', '--tile', '28', '-r', '2', '--baseline', '-t', '2', '--json']);
  assert.equal(r.status, 0, r.stderr);
  const j = JSON.parse(r.stdout) as Record<string, unknown>;
  for (const k of ['tile_seconds', 'gflops', 'matmul_seconds', 'attention_seconds', 'other_seconds', 'matmul_flops'])
    assert.ok(typeof j[k] === 'number' && (j[k] as number) >= 0 && Number.isFinite(j[k]), `${k}: ${j[k]}`);
  assert.ok((j.tile_seconds as number) > 0);
  assert.equal(j.layers, 1);
  assert.equal(j.rows, 5);
  assert.equal(j.matmul_flops, visionMatmulFlops(scoutVisionConfig(1, 28)));
  assert.ok(Math.abs((j.gflops as number) - (j.matmul_flops as number) / (j.tile_seconds as number) / 1e9) < 1e-6 * (j.gflops as number));
  assert.ok(['bf16', 'exact'].includes(j.products as string));
  const base = j.baseline as Record<string, unknown>;
  assert.equal(base.products, 'exact');
  assert.equal((base.runs as { tile: number[] }).tile.length, 2);
  assert.ok(typeof j.speedup_vs_baseline_matmuls === 'number');
});

test('bench --vision rejects a tile that pixel shuffle cannot halve', () => {
  const r = cli(['bench', '--vision', '--tile', '42', '--json']);
  assert.notEqual(r.status, 0);
  assert.match(r.stderr, /--tile must be a multiple of 28/);
});
