/**
 * Baseline decode/prefill speed of a backend on the golden checkpoints (tiny models: this measures per-token
 * overhead, not bandwidth). Usage: node --import tsx bench/golden-decode.ts [typescript|native|auto] [tokens]
 */
import { loadModel } from '../src/load.ts';
import { resolve } from 'node:path';

const backend = (process.argv[2] ?? 'typescript') as 'typescript' | 'native' | 'auto';
const n = Number(process.argv[3] ?? 200);
for (const name of ['a_moe_all_chunked_temptuning', 'b_maverick_interleaved', 'c_scout_shaped']) {
  const { model, backend: be } = await loadModel(resolve('../shared/golden', name), { backend });
  const runs: number[] = [];
  const pre: number[] = [];
  for (let rep = 0; rep < 5; rep++) {
    const seq = model.newSequence();
    const prompt = Array.from({ length: 64 }, (_, i) => (i * 7) % 200);
    let t0 = performance.now();
    model.forward([{ seq, tokens: prompt, logits: 'last' }]);
    pre.push(64 / ((performance.now() - t0) / 1000));
    t0 = performance.now();
    for (let i = 0; i < n; i++) model.forward([{ seq, tokens: [(i * 13) % 200], logits: 'last' }]);
    runs.push(n / ((performance.now() - t0) / 1000));
  }
  const med = (a: number[]) => a.sort((x, y) => x - y)[Math.floor(a.length / 2)]!;
  console.log(
    `${name} [${be.name}]: prefill ${med(pre).toFixed(0)} tok/s, decode ${med(runs).toFixed(0)} tok/s (median of 5; ${n} tokens after a 64-token prompt)`,
  );
}
