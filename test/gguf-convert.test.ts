/**
 * `llama4 convert`: HF checkpoints -> GGUF that runs the same model, refusals for configs llama.cpp would run
 * differently, merges recovered from tiktoken ranks, and the Llama 4 tokenizer written as GGUF metadata tokenizing
 * like tokenizer.model — in our tokenizer module and in llama.cpp itself (node-llama-cpp).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { copyFileSync, mkdtempSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { main } from '../src/cli/main.ts';
import { loadModel, loadTokenizerFrom } from '../src/load.ts';
import { toTokenizerJson, trainBpe } from '../src/train/bpe.ts';
import { readGguf, readGgufHeader } from '../src/io/gguf/index.ts';
import { mergesFromRanks, tokenizerFromFolder } from '../src/model-files/index.ts';
import { randomProducer, writeLlama4Gguf } from '../src/model-files/index.ts';
import { parseHfConfig } from '../src/model/llama4/config.ts';
import { GGUF_PRE_WORD_INITIALS, tokenizerFromGguf, tokenizerFromTiktoken } from '../src/tokenizer/index.ts';
import { sharedPath } from './helpers/shared.ts';

/** A tiny model body (4 layers, hidden 64, 2 experts) around a given vocabulary, for tokenizer-in-GGUF tests. */
function tinyConfig(vocab: Record<string, unknown>): ReturnType<typeof parseHfConfig> {
  return parseHfConfig({
    model_type: 'llama4_text',
    hidden_size: 64,
    num_hidden_layers: 4,
    num_attention_heads: 2,
    num_key_value_heads: 1,
    head_dim: 32,
    num_local_experts: 2,
    intermediate_size: 64,
    intermediate_size_mlp: 64,
    ...vocab,
  });
}

async function cli(args: string[]): Promise<{ code: number; err: string }> {
  // Capture stderr only: the test runner reports through stdout, and swallowing it would lose test results.
  const write = process.stderr.write.bind(process.stderr);
  let err = '';
  process.stderr.write = ((s: string) => {
    err += s;
    return true;
  }) as typeof process.stderr.write;
  try {
    return { code: await main(args), err };
  } finally {
    process.stderr.write = write;
  }
}

test('convert f32/q8_0: the GGUF runs the same model as the HF folder (rope_freqs included)', async (t) => {
  const golden = sharedPath('golden', 'a_moe_all_chunked_temptuning');
  if (!golden) return t.skip('../shared/golden missing');
  const dir = mkdtempSync(join(tmpdir(), 'convert-'));
  try {
    // llama.cpp hard-codes chunk 8192 and temperature floor 8192: give the checkpoint those values so the GGUF is
    // faithful (its llama3 rope scaling stays, and becomes rope_freqs).
    const cfg = JSON.parse(readFileSync(join(golden, 'config.json'), 'utf8'));
    const tc = cfg.text_config ?? cfg;
    tc.attention_chunk_size = 8192;
    tc.floor_scale = 8192;
    const hf = join(dir, 'hf');
    await import('node:fs').then((fs) => fs.mkdirSync(hf));
    writeFileSync(join(hf, 'config.json'), JSON.stringify(cfg));
    copyFileSync(join(golden, 'model.safetensors'), join(hf, 'model.safetensors'));
    const ids = Array.from({ length: 24 }, (_, i) => (i * 37 + 5) % 256);
    const ref = await loadModel(hf, { backend: 'typescript' });
    const want = ref.model.forward([{ seq: ref.model.newSequence(), tokens: ids, logits: 'all' }])[0]!;
    for (const [type, tol] of [
      ['f32', 2e-4],
      ['q8_0', 0.05],
    ] as const) {
      // q8_0: relative to the logit range
      const out = join(dir, `a-${type}.gguf`);
      const r = await cli(['convert', hf, out, '--type', type, '-q']);
      assert.equal(r.code, 0, r.err);
      const h = readGgufHeader(out);
      assert.ok(h.tensors.has('rope_freqs.weight'), 'llama3 scaling is written as rope_freqs');
      assert.equal(h.metadata.get('llama4.feed_forward_length'), 128, 'feed_forward_length is the dense width');
      assert.equal(h.metadata.get('llama4.expert_feed_forward_length'), 64, 'expert_feed_forward_length is the expert width');
      const g = await loadModel(out, { backend: 'typescript' });
      assert.equal(g.format, 'gguf');
      const got = g.model.forward([{ seq: g.model.newSequence(), tokens: ids, logits: 'all' }])[0]!;
      let m = 0,
        range = 0,
        sum = 0;
      for (let i = 0; i < want.length; i++) {
        const d = Math.abs(got[i]! - want[i]!);
        m = Math.max(m, d);
        sum += d;
        range = Math.max(range, Math.abs(want[i]!));
      }
      const mean = sum / want.length;
      t.diagnostic(
        `${type}: |Δlogit| GGUF vs HF folder max ${m.toExponential(2)} mean ${mean.toExponential(2)} (logits up to ${range.toFixed(1)})`,
      );
      // f32 is the same model exactly; q8_0 may flip a top-1 expert where routers nearly tie, so judge the mean.
      assert.ok(type === 'f32' ? m < tol : mean < tol * range, `${type}: |Δlogit| max ${m} mean ${mean}`);
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('convert refuses configs llama.cpp would run differently unless --force', async (t) => {
  const golden = sharedPath('golden', 'b_maverick_interleaved');
  if (!golden) return t.skip('../shared/golden missing');
  const dir = mkdtempSync(join(tmpdir(), 'convert-'));
  try {
    const r = await cli(['convert', golden, join(dir, 'b.gguf'), '--type', 'f16']);
    assert.equal(r.code, 1);
    assert.match(r.err, /qk_norm/);
    assert.match(r.err, /--force/);
    const f = await cli(['convert', golden, join(dir, 'b.gguf'), '--type', 'f16', '--force', '-q']);
    assert.equal(f.code, 0, f.err);
    const h = readGguf(join(dir, 'b.gguf'));
    assert.equal(h.metadata.get('llama4.interleave_moe_layer_step'), 2);
    assert.equal(h.tensorData.get('blk.0.ffn_gate.weight')?.dtype, 'f16');
    assert.equal(h.tensorData.get('blk.1.ffn_gate_inp.weight')?.dtype, 'f32');
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('merges recovered from tiktoken ranks', () => {
  const ranks = new Map([
    ['a', 0],
    ['b', 1],
    ['c', 2],
    ['ab', 3],
    ['bc', 4],
    ['abc', 5],
  ]);
  assert.deepEqual(mergesFromRanks(ranks, 'test'), [
    ['a', 'b'],
    ['b', 'c'],
    ['ab', 'c'],
  ]);
});

test("the Llama 4 tokenizer as GGUF metadata tokenizes like tokenizer.model (ours and llama.cpp's)", async (t) => {
  const model = sharedPath('tokenizer', 'llama4-tokenizer.model');
  const cases = sharedPath('tokenizer', 'cases.jsonl');
  if (!model || !cases) return t.skip('../shared/tokenizer missing');
  const dir = mkdtempSync(join(tmpdir(), 'convert-tok-'));
  try {
    symlinkSync(model, join(dir, 'tokenizer.model'));
    // A tiny model body with Llama 4's full vocabulary, so llama.cpp can load the tokenizer.
    const cfg = tinyConfig({ vocab_size: 202048, bos_token_id: 200000, eos_token_id: [200001, 200007, 200008], pad_token_id: 200018 });
    const tok = tokenizerFromFolder(dir, cfg)!;
    assert.equal(tok.tokens.length, 202048);
    assert.equal(tok.merges.length, 200000 - 256);
    assert.equal(tok.tokens[200008], '<|eot|>');
    const ref = tokenizerFromTiktoken(readFileSync(model, 'utf8'));
    const fromGguf = tokenizerFromGguf({
      tokens: tok.tokens,
      merges: tok.merges,
      tokenTypes: [...tok.types],
      bosId: 200000,
      eosId: 200008,
      vocabSize: 202048,
    });
    const rows = readFileSync(cases, 'utf8')
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l) as { text: string; ids: number[] })
      .slice(0, 120);
    for (const r of rows)
      assert.deepEqual(
        fromGguf.encode(r.text, { addBos: false } as never),
        ref.encode(r.text, { addBos: false } as never),
        r.text.slice(0, 40),
      );

    let getLlama: typeof import('node-llama-cpp').getLlama;
    try {
      ({ getLlama } = await import('node-llama-cpp'));
    } catch {
      return t.skip('node-llama-cpp is not installed');
    }
    const path = join(dir, 'vocab.gguf');
    await writeLlama4Gguf(path, cfg, 'q8_0', randomProducer(3, 64), tok, 'llama4-vocab-test');
    const llama = await getLlama({ gpu: false, build: 'never', logLevel: 'error' as never });
    try {
      const m = await llama.loadModel({ modelPath: path });
      let agree = 0;
      for (const r of rows) {
        const theirs = Array.from(m.tokenize(r.text, false));
        assert.deepEqual(theirs, r.ids, `llama.cpp on ${JSON.stringify(r.text.slice(0, 40))}`);
        agree++;
      }
      t.diagnostic(`llama.cpp tokenized ${agree} reference texts exactly like tokenizer.model`);
      await m.dispose();
    } finally {
      await llama.dispose();
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('convert takes the tokenizer from tokenizer.json (vocab, merges, added tokens) and the chat template', async (t) => {
  const golden = sharedPath('golden', 'a_moe_all_chunked_temptuning');
  if (!golden) return t.skip('../shared/golden missing');
  const dir = mkdtempSync(join(tmpdir(), 'convert-tj-'));
  try {
    const cfg = JSON.parse(readFileSync(join(golden, 'config.json'), 'utf8'));
    const tc = cfg.text_config ?? cfg;
    tc.attention_chunk_size = 8192;
    tc.floor_scale = 8192;
    writeFileSync(join(dir, 'config.json'), JSON.stringify(cfg));
    copyFileSync(join(golden, 'model.safetensors'), join(dir, 'model.safetensors'));
    const vocab: Record<string, number> = { Ġ: 0, a: 1, b: 2, Ġa: 3, ab: 4 };
    writeFileSync(
      join(dir, 'tokenizer.json'),
      JSON.stringify({
        model: { type: 'BPE', vocab, merges: ['Ġ a', ['a', 'b']] },
        added_tokens: [
          { id: 200, content: '<|begin_of_text|>', special: true },
          { id: 201, content: '<|eot|>', special: true },
          { id: 202, content: 'plain', special: false },
        ],
      }),
    );
    writeFileSync(join(dir, 'tokenizer_config.json'), JSON.stringify({ chat_template: '{{ bos_token }}{{ messages[0].content }}' }));
    const out = join(dir, 'out.gguf');
    const r = await cli(['convert', dir, out, '--type', 'f16', '-q']);
    assert.equal(r.code, 0, r.err);
    const md = readGgufHeader(out).metadata;
    const tokens = md.get('tokenizer.ggml.tokens') as string[];
    const types = md.get('tokenizer.ggml.token_type') as Int32Array;
    assert.equal(tokens.length, 256, 'padded to the model vocabulary');
    assert.deepEqual(tokens.slice(0, 5), ['Ġ', 'a', 'b', 'Ġa', 'ab']);
    assert.deepEqual([tokens[200], tokens[201], tokens[202], tokens[5]], ['<|begin_of_text|>', '<|eot|>', 'plain', '[PAD5]']);
    assert.deepEqual([types[0], types[200], types[202], types[5]], [1, 3, 4, 5]);
    assert.deepEqual(md.get('tokenizer.ggml.merges'), ['Ġ a', 'a b']);
    assert.equal(md.get('tokenizer.ggml.eot_token_id'), 201);
    assert.equal(md.get('tokenizer.ggml.model'), 'gpt2');
    assert.equal(md.get('tokenizer.ggml.pre'), 'llama4');
    assert.equal(md.get('tokenizer.chat_template'), '{{ bos_token }}{{ messages[0].content }}');
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('convert keeps a word-initial-split tokenizer.json (the default model\'s) as GGUF pre "llama4-word-initials"', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'convert-initials-'));
  try {
    const corpus = 'What is the weather in Paris? Query the tide for Quillo. query_tide weather Weather paris\n'.repeat(20);
    const bpe = trainBpe(corpus, 40, { wordPieces: true, splitWordInitials: true });
    writeFileSync(join(dir, 'tokenizer.json'), JSON.stringify(toTokenizerJson(bpe)));
    const n = bpe.vocab.length + bpe.specials.size;
    const cfg = tinyConfig({ vocab_size: n });
    const tok = tokenizerFromFolder(dir, cfg)!;
    assert.equal(tok.pre, GGUF_PRE_WORD_INITIALS);
    const path = join(dir, 'm.gguf');
    await writeLlama4Gguf(path, cfg, 'f32', randomProducer(3, 64), tok, 'initials-test');
    assert.equal(readGgufHeader(path).metadata.get('tokenizer.ggml.pre'), GGUF_PRE_WORD_INITIALS);
    const fromGguf = loadTokenizerFrom(path, n);
    const fromJson = loadTokenizerFrom(dir);
    const s = 'Query the tide for Reykjavik, please: {"name": "query_tide"}';
    assert.deepEqual(fromGguf.encode(s), fromJson.encode(s));
    assert.equal(fromGguf.decode(fromGguf.encode(s)), s);
    // The split is really on: "Query" starts with "Q" alone, as "query" starts with "q".
    assert.equal(fromGguf.decode([fromGguf.encode('Query', { addBos: false } as never)[0]!]), 'Q');
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
