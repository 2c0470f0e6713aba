// The trainer's BPE tokenizer and chat data agree with what the runtime uses: the project's tokenizer loader
// (src/tokenizer) encodes chat prompts exactly like the trainer's encoder, and the shipped Jinja chat template
// (rendered by @huggingface/jinja) produces exactly the strings the training data was made of.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Template } from '@huggingface/jinja';
import { BpeEncoder, toTokenizerJson, trainBpe, fromTokenizerJson, SPECIAL_TOKENS } from '../src/train/bpe.ts';
import { CHAT_TEMPLATE, renderChat, toolObject, TOOLS, randomChatExample, splitFortunes } from '../src/train/data.ts';
import { hasWordInitialSplit, splitWordInitials, tokenizerFromHfJson } from '../src/tokenizer/index.ts';
import { Rng } from '../src/train/rng.ts';

const text =
  `It's 7 o'clock: "Time flies" -- they say.\nWhat is 12 plus 30? 12 plus 30 is 42.\n\n  Indented   text\tand tabs.\n` +
  'Numbers 1234567 and symbols ==> {"name": "get_weather"} ünïcödé 東京 🙂';

/** `text` and 200 chat examples (20% with tools), as BPE training text. */
function chatCorpus(rng: Rng): string {
  let corpus = text;
  for (let i = 0; i < 200; i++) {
    const e = randomChatExample(rng, undefined, 0.2);
    corpus += e.prompt + e.answer + '\n';
  }
  return corpus;
}

/** The trainer's encoder and the project's loader give the same ids on 30 chat examples and on `text`. */
function assertEncodersAgree(rng: Rng, ours: BpeEncoder, theirs: ReturnType<typeof tokenizerFromHfJson>): void {
  for (let i = 0; i < 30; i++) {
    const e = randomChatExample(rng, undefined, 0.3);
    const s = e.prompt + e.answer + '<|eot|>';
    assert.deepEqual(theirs.encode(s, { allowSpecial: true }), ours.encode(s), s);
  }
  assert.deepEqual(theirs.encode(text, { allowSpecial: true }), ours.encode(text));
}

test('BPE trainer: merges are learned, encode/decode round-trips, specials sit at the end of the vocab', () => {
  const bpe = trainBpe(text.repeat(3) + 'What is 7 plus 5? 7 plus 5 is 12.', 60);
  assert.equal(bpe.merges.length, 60);
  const enc = new BpeEncoder(bpe);
  assert.equal(enc.vocabSize, 256 + 60 + SPECIAL_TOKENS.length);
  assert.equal(enc.special('<|begin_of_text|>'), 256 + 60);
  const s = '<|begin_of_text|><|header_start|>user<|header_end|>\n\n' + text + '<|eot|>';
  const ids = enc.encode(s);
  assert.equal(enc.decode(ids), s);
  assert.ok(ids.length < new TextEncoder().encode(s).length * 0.8, 'merges shorten the encoding');
  const again = new BpeEncoder(fromTokenizerJson(JSON.parse(JSON.stringify(toTokenizerJson(bpe)))));
  assert.deepEqual(again.encode(s), ids);
});

test('the project tokenizer loader reads our tokenizer.json and encodes identically', () => {
  const rng = new Rng(3);
  const corpus = chatCorpus(rng);
  const bpe = trainBpe(corpus.replace(/<\|[a-z_0-9]+\|>/g, ' '), 200);
  const ours = new BpeEncoder(bpe);
  const theirs = tokenizerFromHfJson(toTokenizerJson(bpe), 'tokenizer.json', { bos_token: '<|begin_of_text|>', eos_token: '<|eot|>' });
  assertEncodersAgree(rng, ours, theirs);
});

test('the shipped chat template renders exactly like the training data', () => {
  const tpl = new Template(CHAT_TEMPLATE);
  const base = { bos_token: '<|begin_of_text|>', add_generation_prompt: true };
  const msgs = [{ role: 'user' as const, content: 'What is 7 plus 5?' }];
  assert.equal(tpl.render({ ...base, messages: msgs }), renderChat(msgs, null, true));
  const tools = [TOOLS[1]!, TOOLS[0]!];
  const withTools = tpl.render({
    ...base,
    messages: [{ role: 'user', content: 'What time is it in Paris?' }],
    tools: tools.map(toolObject),
  });
  assert.equal(withTools, renderChat([{ role: 'user', content: 'What time is it in Paris?' }], tools, true));
  const sys = [
    { role: 'system' as const, content: 'Be brief.' },
    { role: 'user' as const, content: 'Hi' },
    { role: 'assistant' as const, content: 'Hi!' },
    { role: 'user' as const, content: 'What is 2 plus 2?' },
  ];
  assert.equal(tpl.render({ ...base, messages: sys }), renderChat(sys, null, true));
  // Assistant tool calls come out in the JSON form the model is trained to emit.
  const tc = tpl.render({
    ...base,
    add_generation_prompt: false,
    messages: [
      { role: 'user', content: 'q' },
      { role: 'assistant', content: '', tool_calls: [{ type: 'function', function: { name: 'get_time', arguments: { city: 'Rome' } } }] },
    ],
  });
  assert.ok(tc.endsWith('<|header_start|>assistant<|header_end|>\n\n{"name": "get_time", "parameters": {"city": "Rome"}}<|eot|>'), tc);
});

test('fortune splitting keeps clean English paragraphs', () => {
  const docs = splitFortunes(
    'A short one.\n%\nThis is a proper fortune, long enough to keep.\n\t-- Someone\n%\nNon-ascii caf\u00e9 entry is dropped here.\n%\n',
  );
  assert.deepEqual(docs, ['This is a proper fortune, long enough to keep.\n -- Someone']);
});

test('word-initial split: a word and its capitalised form share every token but the first, in the trainer and the loader', () => {
  const rng = new Rng(5);
  const corpus = chatCorpus(rng);
  const bpe = trainBpe(corpus.replace(/<\|[a-z_0-9]+\|>/g, ' '), 200, { wordPieces: true, splitWordInitials: true });
  const ours = new BpeEncoder(bpe);
  const json = toTokenizerJson(bpe);
  assert.equal(hasWordInitialSplit(json.pre_tokenizer), true);
  assert.equal(hasWordInitialSplit(toTokenizerJson(trainBpe(corpus, 20)).pre_tokenizer), false);
  const theirs = tokenizerFromHfJson(json, 'tokenizer.json', { bos_token: '<|begin_of_text|>', eos_token: '<|eot|>' });
  const pieces = (s: string) => ours.encode(s).map((i) => ours.decode([i]));
  // Meta's pattern keeps "Query" / "_tide" / "it's" whole; the split isolates each letter that follows no letter.
  assert.deepEqual(splitWordInitials('Query'), ['Q', 'uery']);
  assert.deepEqual(splitWordInitials('_tide'), ['_', 't', 'ide']);
  assert.deepEqual(splitWordInitials(" it's"), [' ', 'i', "t'", 's']);
  assert.deepEqual(splitWordInitials('東京'), ['東', '京']);
  assert.deepEqual(splitWordInitials('42'), ['42']);
  for (const w of ['weather', 'Paris', 'tomorrow', 'Quillo']) {
    const lower = pieces(w.toLowerCase()),
      upper = pieces(w[0]!.toUpperCase() + w.slice(1).toLowerCase());
    assert.equal(lower[0], w[0]!.toLowerCase());
    assert.equal(upper[0], w[0]!.toUpperCase());
    assert.deepEqual(upper.slice(1), lower.slice(1), w);
  }
  assertEncodersAgree(rng, ours, theirs);
  assert.equal(theirs.decode(theirs.encode(text)), text);
  const again = new BpeEncoder(fromTokenizerJson(JSON.parse(JSON.stringify(json))));
  assert.deepEqual(again.encode(text), ours.encode(text));
});
