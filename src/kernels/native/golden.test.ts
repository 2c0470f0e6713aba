/**
 * The golden cases on the native backend, with the same tolerances as the TypeScript backend's golden tests
 * (test/golden-text.test.ts, test/gguf-golden.test.ts): the Hugging Face reference's logits and greedy runs
 * (../shared/golden a–d, f32 weights, within 1e-4) and llama.cpp's logits for the eight tiny GGUFs
 * (../shared/gguf/README.md: F16 max 0.05; Q8_0 max 0.6; others max 0.6 before the first near-tie of the router,
 * mean 0.2). Native matmuls quantize activations to 8 bits for quantized weights as llama.cpp does.
 * (A test may reach across layers; the model is built here exactly as load.ts builds it.)
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, readFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { readGguf } from '../../io/gguf/index.ts';
import { openSafetensors } from '../../io/safetensors.ts';
import { parseHfConfig } from '../../model/llama4/config.ts';
import { llama4FromGguf } from '../../model/llama4/gguf-config.ts';
import { loadHfTextTensors } from '../../model/llama4/weights.ts';
import { Llama4TextModel } from '../../model/llama4/text-model.ts';
import { tryCreateNativeBackend } from './index.ts';

const SHARED = resolve(fileURLToPath(new URL('../../../', import.meta.url)), '..', 'shared');
const made = tryCreateNativeBackend({ threads: 2 });
function skipReason(folder: string): string | false {
  if (!made.backend) return made.reason;
  if (!existsSync(join(SHARED, folder))) { process.stderr.write(`\n*** SKIPPED: ${join(SHARED, folder)} is missing ***\n`); return `${folder} missing`; }
  return false;
}
const maxAbs = (a: ArrayLike<number>, b: ArrayLike<number>): number => { let m = 0; for (let i = 0; i < b.length; i++) m = Math.max(m, Math.abs(a[i]! - b[i]!)); return m; };
const argmax = (r: ArrayLike<number>): number => { let b = 0; for (let i = 1; i < r.length; i++) if (r[i]! > r[b]!) b = i; return b; };

for (const name of ['a_moe_all_chunked_temptuning', 'b_maverick_interleaved', 'c_scout_shaped', 'd_chunk_boundary_generation']) {
  test(`native golden ${name}: logits within 1e-4 and greedy ids through the cache`, { skip: skipReason('golden') }, () => {
    const dir = join(SHARED, 'golden', name);
    const cfg = parseHfConfig(JSON.parse(readFileSync(join(dir, 'config.json'), 'utf8')));
    const model = new Llama4TextModel(cfg, loadHfTextTensors(cfg, openSafetensors(dir), dir), made.backend!, dir);
    const exp = JSON.parse(readFileSync(join(dir, 'expected.json'), 'utf8'));
    const V = cfg.vocabSize;
    const [logits] = model.forward([{ seq: model.newSequence(), tokens: exp.input_ids, logits: 'all' }]);
    let worst = 0;
    (exp.logits as number[][]).forEach((row, p) => { worst = Math.max(worst, maxAbs(logits!.subarray(p * V, (p + 1) * V), row)); });
    assert.ok(worst < 1e-4, `max |Δlogit| = ${worst}`);
    const g = exp.generation;
    const seq = model.newSequence();
    let [l] = model.forward([{ seq, tokens: g.prompt_ids, logits: 'last' }]);
    const out: number[] = [];
    for (let i = 0; i < g.max_new_tokens; i++) {
      out.push(argmax(l!));
      if (i + 1 < g.max_new_tokens) [l] = model.forward([{ seq, tokens: [out[i]!], logits: 'last' }]);
    }
    assert.deepEqual(out, g.generated_ids);
  });
}

const f32 = (p: string): Float32Array => { const b = readFileSync(p); return new Float32Array(b.buffer.slice(b.byteOffset, b.byteOffset + b.length)); };
for (const type of ['F16', 'Q8_0', 'Q6_K', 'Q5_K', 'Q5_0', 'Q4_K', 'Q4_1', 'Q4_0']) {
  test(`native gguf ${type}: logits and greedy steps agree with llama.cpp`, { skip: skipReason('gguf') }, (t) => {
    const base = join(SHARED, 'gguf', `llama4-tiny-g1-${type}`);
    const exp = JSON.parse(readFileSync(`${base}.expected.json`, 'utf8'));
    const file = readGguf(`${base}.gguf`);
    const { config, tensors } = llama4FromGguf(file.metadata, file.tensorData, `${base}.gguf`);
    const model = new Llama4TextModel(config, tensors, made.backend!, `${base}.gguf`);
    const V = 512, ids: number[] = exp.input_ids, T = ids.length;
    const want = f32(`${base}.logits.f32`);
    const seq = model.newSequence();
    const [got] = model.forward([{ seq, tokens: ids, logits: 'all' }]);
    const gaps: number[] = exp.router_min_gap_per_position;
    const firstFlip = gaps.findIndex((g) => g < 0.05);
    const strictUntil = type === 'F16' || type === 'Q8_0' ? T : firstFlip < 0 ? T : firstFlip;
    const maxTol = type === 'F16' ? 0.05 : 0.6, clear = type === 'F16' ? 0.1 : 0.5;
    let sum = 0, maxStrict = 0;
    for (let p = 0; p < T; p++) for (let v = 0; v < V; v++) {
      const d = Math.abs(got![p * V + v]! - want[p * V + v]!);
      sum += d;
      if (p < strictUntil) maxStrict = Math.max(maxStrict, d);
    }
    const mean = sum / (T * V);
    t.diagnostic(`${type}: max |Δ| ${maxStrict.toFixed(4)} over ${strictUntil} positions, mean |Δ| ${mean.toFixed(4)}`);
    assert.ok(maxStrict <= maxTol, `${type}: max |Δlogit| ${maxStrict} > ${maxTol}`);
    assert.ok(mean <= (type === 'F16' ? 0.01 : 0.2), `${type}: mean |Δlogit| ${mean}`);
    for (let p = 0; p < strictUntil; p++)
      if (exp.argmax_margin[p] > clear) assert.equal(argmax(got!.subarray(p * V, (p + 1) * V)), exp.argmax[p], `${type}: argmax at ${p}`);
    const gen = f32(`${base}.gen_logits.f32`);
    const greedy: number[] = exp.greedy.ids, margins: number[] = exp.greedy.margins;
    let row = got!.subarray((T - 1) * V, T * V);
    let genMax = 0;
    for (let k = 0; k < greedy.length; k++) {
      genMax = Math.max(genMax, maxAbs(row, gen.subarray(k * V, (k + 1) * V)));
      if (margins[k]! > clear) assert.equal(argmax(row), greedy[k], `${type}: greedy step ${k}`);
      if (k + 1 < greedy.length) row = model.forward([{ seq, tokens: [greedy[k]!], logits: 'last' }])[0]!;
    }
    t.diagnostic(`${type}: generation max |Δ| ${genMax.toFixed(4)}`);
    if (type === 'F16' || type === 'Q8_0') assert.ok(genMax <= maxTol, `${type}: generation max |Δlogit| ${genMax}`);
  });
}
