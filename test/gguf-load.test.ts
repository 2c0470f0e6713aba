/** loadModel on llama.cpp-made GGUFs through the composition root: memory-mapped on the native backend, read on TS. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { loadModel } from '../src/load.ts';
import { canMmap } from '../src/kernels/native/index.ts';
import { sharedPath, maxAbsDiff } from './helpers/shared.ts';

for (const type of ['F16', 'Q8_0', 'Q4_K']) {
  test(`loadModel(${type}.gguf): auto (mmap + native when built) and TypeScript backends agree with llama.cpp's logits`, async (t) => {
    const file = sharedPath('gguf', `llama4-tiny-g1-${type}.gguf`);
    if (!file) return t.skip('../shared/gguf missing');
    const exp = JSON.parse(readFileSync(file.replace('.gguf', '.expected.json'), 'utf8')) as {
      input_ids: number[];
      router_min_gap_per_position: number[];
    };
    const ref = new Float32Array(readFileSync(file.replace('.gguf', '.logits.f32')).buffer.slice(0));
    const ids = exp.input_ids.slice(0, 12);
    const V = 512;
    const rows: Float32Array[] = [];
    for (const backend of ['typescript', 'auto'] as const) {
      const { model, backend: be } = await loadModel(file, { backend });
      if (backend === 'auto' && be.name === 'typescript')
        process.stderr.write(
          `\n*** native backend not built: auto fell back to TypeScript (mmap path not exercised: canMmap=${canMmap()}) ***\n`,
        );
      const [l] = model.forward([{ seq: model.newSequence(), tokens: ids, logits: 'all' }]);
      rows.push(l!);
    }
    // README tolerances: F16 max 0.05; other types max 0.6 on the positions before the first near-tie in routing
    // (router gap < 0.05), where a tiny numeric difference may pick the other expert. The native backend rounds
    // activations to 8-bit blocks as llama.cpp does, so each backend is held to llama.cpp, not to each other.
    const tol = type === 'F16' ? 0.05 : 0.6;
    let clear = exp.router_min_gap_per_position.findIndex((g) => g < 0.05);
    if (clear < 0) clear = ids.length;
    clear = Math.min(clear, ids.length);
    for (const r of rows)
      assert.ok(maxAbsDiff(r.subarray(0, clear * V), ref.subarray(0, clear * V)) < tol, `max |Δ| over ${clear} positions`);
  });
}
