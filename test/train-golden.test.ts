// The training forward reproduces the Hugging Face reference logits on the golden checkpoints (../shared/golden).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { loadCheckpoint } from '../src/train/checkpoint.ts';

const GOLDEN = resolve(process.cwd(), '../shared/golden');

for (const name of ['a_moe_all_chunked_temptuning', 'b_maverick_interleaved', 'c_scout_shaped', 'd_chunk_boundary_generation']) {
  test(`training forward matches HF logits: ${name}`, (t) => {
    const dir = resolve(GOLDEN, name);
    if (!existsSync(dir)) {
      t.skip(`MISSING reference data ${dir}`);
      return;
    }
    const exp = JSON.parse(readFileSync(resolve(dir, 'expected.json'), 'utf8')) as { input_ids: number[]; logits: number[][] };
    const model = loadCheckpoint(dir);
    const T = exp.input_ids.length,
      V = model.cfg.vocabSize;
    const logits = model.forward(Int32Array.from(exp.input_ids), 1, T, false);
    let maxErr = 0;
    for (let t0 = 0; t0 < exp.logits.length; t0++)
      for (let j = 0; j < V; j++) maxErr = Math.max(maxErr, Math.abs(logits[t0 * V + j]! - exp.logits[t0]![j]!));
    assert.ok(maxErr < 1e-4, `max |Δlogit| = ${maxErr}`);
  });
}
