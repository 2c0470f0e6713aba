/**
 * Dense Llama 4 (Llama Guard 4's shape) in GGUF: `convert` writes what llama.cpp builds a dense llama4 from
 * (interleave_moe_layer_step 0 and only ffn_gate/up/down; expert_count 1 because llama.cpp refuses 0 for llama4), the file runs the same
 * model as the HF folder (float64 reference), attention_chunk_size null is spelled as llama.cpp can (sliding_window 0
 * when every layer is RoPE; otherwise refused without --force because llama.cpp chunks at 8192), and llama.cpp itself
 * (node-llama-cpp) loads the guard-tiny GGUF and continues greedily like us.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { spawnSync } from 'node:child_process';
import { loadModel } from '../src/load.ts';
import { readGguf, readGgufHeader } from '../src/io/gguf/index.ts';
import { parseHfConfig } from '../src/model/llama4/config.ts';
import { llama4FromGguf } from '../src/model/llama4/gguf-config.ts';
import { Llama4TextModel } from '../src/model/llama4/text-model.ts';
import { TsBackend } from '../src/kernels/ts/index.ts';
import { PRESETS, randomProducer, syntheticTokenizer, writeLlama4Gguf } from '../src/model-files/index.ts';
import { writeTinyCheckpoint, rng } from './helpers/tiny-checkpoint.ts';
import { referenceLogits } from './helpers/reference-llama4.ts';
import { maxAbsDiff, PROJECT_ROOT } from './helpers/shared.ts';

const tmp = mkdtempSync(join(tmpdir(), 'guard-gguf-'));
process.on('exit', () => rmSync(tmp, { recursive: true, force: true }));

function cli(args: string[]): { code: number; out: string; err: string } {
  const r = spawnSync(process.execPath, ['--import', 'tsx', join(PROJECT_ROOT, 'src', 'cli', 'main.ts'), ...args], {
    encoding: 'utf8',
    cwd: PROJECT_ROOT,
  });
  return { code: r.status ?? -1, out: r.stdout, err: r.stderr };
}

async function matchesReference(
  gguf: string,
  config: Record<string, unknown>,
  tensors: Map<string, { shape: number[]; data: Float32Array }>,
): Promise<number> {
  const r = rng(5);
  const ids = Array.from({ length: 23 }, () => Math.floor(r() * 64));
  const want = referenceLogits(config, tensors, ids);
  const { model } = await loadModel(gguf, { backend: 'typescript' });
  const [got] = model.forward([{ seq: model.newSequence(), tokens: ids, logits: 'all' }]);
  let worst = 0;
  want.forEach((row, p) => (worst = Math.max(worst, maxAbsDiff(got!.subarray(p * 64, (p + 1) * 64), row))));
  return worst;
}

test('convert: a dense, unchunked, all-RoPE checkpoint becomes a dense llama4 GGUF with sliding_window 0', async () => {
  const hf = join(tmp, 'rope');
  const { config, tensors } = writeTinyCheckpoint(hf, {
    experts: 0,
    step: 0,
    moeLayers: [],
    chunk: null,
    noRopeLayers: [1, 1, 1, 1],
    seed: 21,
  });
  const out = join(tmp, 'rope.gguf');
  const r = cli(['convert', hf, out, '--type', 'f32', '-q']);
  assert.equal(r.code, 0, r.err);
  const h = readGgufHeader(out);
  // llama.cpp refuses expert_count 0 for llama4 ("cannot have zero experts"); step 0 alone makes every layer dense.
  assert.equal(h.metadata.get('llama4.expert_count'), 1);
  assert.equal(h.metadata.get('llama4.expert_used_count'), 1);
  assert.equal(h.metadata.get('llama4.interleave_moe_layer_step'), 0, 'llama.cpp: MoE iff step > 0 && (l+1) % step == 0');
  assert.equal(h.metadata.get('llama4.attention.sliding_window'), 0, 'no chunking, no NoPE');
  assert.equal(h.metadata.get('llama4.feed_forward_length'), 40);
  assert.ok(
    [...h.tensors.keys()].every((n) => !/exps|shexp|gate_inp/.test(n)),
    'no expert tensors',
  );
  assert.ok(h.tensors.has('blk.0.ffn_gate.weight'));
  const worst = await matchesReference(out, config, tensors);
  assert.ok(worst < 1e-4, `max |Δlogit| ${worst}`);
});

test('convert: chunk null with NoPE layers has no exact GGUF spelling: refused, and with --force exact up to 8192 tokens', async () => {
  const hf = join(tmp, 'nope');
  const { config, tensors } = writeTinyCheckpoint(hf, { experts: 0, moeLayers: [], chunk: null, floorScale: 8192, seed: 22 });
  const out = join(tmp, 'nope.gguf');
  const refused = cli(['convert', hf, out, '--type', 'f32', '-q']);
  assert.equal(refused.code, 1);
  assert.match(refused.err, /attention_chunk_size null \(no chunking; llama\.cpp chunks RoPE layers at 8192/);
  const forced = cli(['convert', hf, out, '--type', 'f32', '-q', '--force']);
  assert.equal(forced.code, 0, forced.err);
  const f = readGguf(out);
  const { config: back } = llama4FromGguf(f.metadata, f.tensorData, out);
  assert.equal(back.attentionChunkSize, 8192, 'read back as llama.cpp reads it');
  assert.deepEqual(
    back.layers.map((l) => l.usesRope),
    [true, true, true, false],
  );
  const worst = await matchesReference(out, config, tensors);
  assert.ok(worst < 1e-4, `max |Δlogit| ${worst}`);
});

test('guard-tiny: llama.cpp (node-llama-cpp) loads the dense GGUF and continues greedily like us', async (t) => {
  let getLlama: typeof import('node-llama-cpp').getLlama;
  try {
    ({ getLlama } = await import('node-llama-cpp'));
  } catch (e) {
    return t.skip(`node-llama-cpp is not installed (${(e as Error).message})`);
  }
  const cfg = parseHfConfig(PRESETS['guard-tiny']!);
  const path = join(tmp, 'guard-tiny-f16.gguf');
  await writeLlama4Gguf(path, cfg, 'f16', randomProducer(3, cfg.hiddenSize), syntheticTokenizer(cfg.vocabSize), 'guard-tiny');
  const prompt = [480, 12, 300, 77, 410, 5, 260, 199, 33, 471, 90, 264];
  const f = readGguf(path);
  const { config, tensors } = llama4FromGguf(f.metadata, f.tensorData, path);
  assert.ok(config.layers.every((l) => !l.isMoe));
  const ours = new Llama4TextModel(config, tensors, new TsBackend(), path);
  const seq = ours.newSequence();
  let row = ours.forward([{ seq, tokens: prompt, logits: 'last' }])[0]!;
  const mine: number[] = [],
    margins: number[] = [];
  for (let k = 0; k < 8; k++) {
    let a = 0;
    for (let i = 1; i < row.length; i++) if (row[i]! > row[a]!) a = i;
    let second = -Infinity;
    for (let i = 0; i < row.length; i++) if (i !== a && row[i]! > second) second = row[i]!;
    mine.push(a);
    margins.push(row[a]! - second);
    row = ours.forward([{ seq, tokens: [a], logits: 'last' }])[0]!;
  }
  const llama = await getLlama({ gpu: false, build: 'never', logLevel: 'error' as never });
  try {
    const model = await llama.loadModel({ modelPath: path });
    const ctx = await model.createContext({ contextSize: 64, threads: 1 });
    const theirs: number[] = [];
    for await (const tok of ctx.getSequence().evaluate(prompt as never, { temperature: 0 })) {
      theirs.push(tok as number);
      if (theirs.length >= 8) break;
    }
    await ctx.dispose();
    await model.dispose();
    let agreed = 0;
    for (let k = 0; k < 8 && theirs[k] === mine[k]; k++) agreed++;
    if (agreed < 8) assert.ok(margins[agreed]! < 0.1, `step ${agreed} differs with a clear margin (ours ${mine} vs llama.cpp ${theirs})`);
    t.diagnostic(`llama.cpp ${theirs.join(',')} | ours ${mine.join(',')} | agreed on ${agreed}`);
    assert.ok(agreed >= 3, `only ${agreed} steps agreed`);
  } finally {
    await llama.dispose();
  }
});

test('native backend: the dense, unchunked full-layout checkpoint (Llama Guard 4 shape) matches the float64 reference', async (t) => {
  const dir = join(tmp, 'native');
  const { config, tensors } = writeTinyCheckpoint(dir, { experts: 0, moeLayers: [], chunk: null, floorScale: 3, layout: 'full', seed: 4 });
  let m: Awaited<ReturnType<typeof loadModel>>;
  try {
    m = await loadModel(dir, { backend: 'native' });
  } catch (e) {
    return t.skip(`native backend unavailable: ${(e as Error).message}`);
  }
  const ids = Array.from({ length: 40 }, (_, i) => (i * 13 + 5) % 64);
  const want = referenceLogits(config, tensors, ids);
  const [got] = m.model.forward([{ seq: m.model.newSequence(), tokens: ids, logits: 'all' }]);
  let worst = 0;
  want.forEach((row, p) => (worst = Math.max(worst, maxAbsDiff(got!.subarray(p * 64, (p + 1) * 64), row))));
  assert.ok(worst < 1e-4, `max |Δlogit| ${worst}`);
});
