/**
 * Llama 4 tokenizer against the reference encodings in ../shared/tokenizer (made by `tiktoken` with Meta's pattern),
 * plus random text cross-checked against the `tiktoken` npm package in the same process.
 * Meta's tokenizer.model is licensed with the model: it is read from ../shared and the tests skip loudly without it.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { Tiktoken } from 'tiktoken';
import { asciiPieceEnd, isAscii } from '../src/tokenizer/pretokenize.ts';
import {
  bytesToUnicode,
  LLAMA4_PRETOKENIZE_FLAGS,
  LLAMA4_PRETOKENIZE_SOURCE,
  llama4SpecialTokens,
  loadTokenizer,
  pretokenize,
  tokenizerFromGguf,
  tokenizerFromHfJson,
  tokenizerFromTiktoken,
  type Tokenizer,
} from '../src/tokenizer/index.ts';
import { ModelFileError, UsageError } from '../src/util/errors.ts';

const SHARED = resolve(process.cwd(), '../shared/tokenizer');
const MODEL = join(SHARED, 'llama4-tokenizer.model');
const HAVE = existsSync(MODEL);
const SKIP = HAVE ? false : `SKIPPED: ${MODEL} is absent (Meta's Llama 4 tokenizer.model lives in ../shared and is never committed)`;
if (!HAVE) console.warn(`\n*** ${SKIP} ***\n`);

interface Case {
  id: string;
  kind: string;
  text: string;
  ids: number[];
  ids_with_special: number[];
}
const cases: Case[] = HAVE
  ? readFileSync(join(SHARED, 'cases.jsonl'), 'utf8')
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l) as Case)
  : [];

let tokCache: Tokenizer | undefined;
const tok = (): Tokenizer => (tokCache ??= loadTokenizer(MODEL));

const META_PATTERN =
  "[^\\r\\n\\p{L}\\p{N}]?[\\p{Lu}\\p{Lt}\\p{Lm}\\p{Lo}\\p{M}]*[\\p{Ll}\\p{Lm}\\p{Lo}\\p{M}]+(?i:'s|'t|'re|'ve|'m|'ll|'d)?|[^\\r\\n\\p{L}\\p{N}]?[\\p{Lu}\\p{Lt}\\p{Lm}\\p{Lo}\\p{M}]+[\\p{Ll}\\p{Lm}\\p{Lo}\\p{M}]*(?i:'s|'t|'re|'ve|'m|'ll|'d)?|\\p{N}{1,3}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n/]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+";

test('every case of cases.jsonl: ids (special text as text) and ids_with_special', { skip: SKIP }, () => {
  assert.equal(cases.length, 358);
  const t = tok();
  let checked = 0;
  for (const c of cases) {
    assert.deepEqual(t.encode(c.text), c.ids, `${c.id} (${c.kind}) ids`);
    assert.deepEqual(t.encode(c.text, { allowSpecial: true }), c.ids_with_special, `${c.id} (${c.kind}) ids_with_special`);
    checked++;
  }
  assert.equal(checked, 358);
});

test('decode(encode(x)) == x on every case, with and without special tokens (U+FEFF survives)', { skip: SKIP }, () => {
  const t = tok();
  for (const c of cases) {
    assert.equal(t.decode(t.encode(c.text)), c.text, c.id);
    assert.equal(t.decode(t.encode(c.text, { allowSpecial: true })), c.text, c.id);
  }
  assert.equal(t.decode(t.encode('\uFEFFx')), '\uFEFFx');
});

test('streaming decoder emits only whole characters and reassembles every case', { skip: SKIP }, () => {
  const t = tok();
  let splitChars = 0;
  for (const c of cases) {
    const ids = t.encode(c.text, { allowSpecial: true });
    const d = t.createStreamDecoder();
    let out = '';
    for (const id of ids) {
      const piece = d.push(id);
      // No replacement characters and no lone surrogates: nothing broken is ever emitted.
      assert.ok(!piece.includes('\uFFFD') || c.text.includes('\uFFFD'), `${c.id}: U+FFFD emitted`);
      assert.ok((piece as unknown as { isWellFormed(): boolean }).isWellFormed(), `${c.id}: lone surrogate emitted`);
      if (piece === '') splitChars++;
      out += piece;
    }
    out += d.flush();
    assert.equal(out, c.text, c.id);
  }
  assert.ok(splitChars > 0, 'the corpus should contain characters split across tokens');
  // An incomplete sequence at the end comes out as U+FFFD on flush, not before.
  const d = t.createStreamDecoder();
  const e = t.encode('é')[0]!;
  const bytes = t.decodeBytes([e]);
  assert.equal(bytes.length, 2);
  const lead = t.tokenToId('\u00c3')!; // the byte-level token of 0xC3, the first byte of 'é'
  assert.deepEqual([...t.decodeBytes([lead])], [0xc3]);
  assert.equal(d.push(lead), '');
  assert.equal(d.flush(), '\uFFFD');
});

test('special tokens: Meta list, 200000–202047, recognised only with allowSpecial', { skip: SKIP }, () => {
  const t = tok();
  const list = llama4SpecialTokens();
  assert.equal(list.length, 2048);
  assert.equal(new Set(list).size, 2048);
  const expect: [string, number][] = [
    ['<|begin_of_text|>', 200000],
    ['<|end_of_text|>', 200001],
    ['<|fim_suffix|>', 200004],
    ['<|header_start|>', 200005],
    ['<|header_end|>', 200006],
    ['<|eom|>', 200007],
    ['<|eot|>', 200008],
    ['<|step|>', 200009],
    ['<|text_post_train_reserved_special_token_0|>', 200010],
    ['<|text_post_train_reserved_special_token_5|>', 200015],
    ['<|python_start|>', 200016],
    ['<|python_end|>', 200017],
    ['<|finetune_right_pad|>', 200018],
    ['<|text_post_train_reserved_special_token_8|>', 200019],
    ['<|text_post_train_reserved_special_token_68|>', 200079],
    ['<|image_start|>', 200080],
    ['<|image_end|>', 200081],
    ['<|vision_reserved_special_token_1|>', 200083],
    ['<|tile_x_separator|>', 200084],
    ['<|tile_y_separator|>', 200085],
    ['<|vision_reserved_special_token_2|>', 200086],
    ['<|vision_reserved_special_token_5|>', 200089],
    ['<|image|>', 200090],
    ['<|vision_reserved_special_token_6|>', 200091],
    ['<|patch|>', 200092],
    ['<|vision_reserved_special_token_7|>', 200093],
    ['<|vision_reserved_special_token_1047|>', 201133],
    ['<|reasoning_reserved_special_token_0|>', 201134],
    ['<|reasoning_thinking_start|>', 201142],
    ['<|reasoning_thinking_end|>', 201143],
    ['<|reserved_special_token_0|>', 201144],
    ['<|reserved_special_token_903|>', 202047],
  ];
  for (const [text, id] of expect) {
    assert.equal(t.tokenToId(text), id, text);
    assert.equal(t.idToToken(id), text);
    assert.deepEqual(t.encode(text, { allowSpecial: true }), [id]);
    assert.ok(t.encode(text).length > 1, `${text} as plain text is several tokens`);
  }
  assert.equal(t.vocabSize, 202048);
  assert.equal(t.bosId, 200000);
  assert.equal(t.eotId, 200008);
  assert.deepEqual([...t.stopIds].sort(), [200001, 200007, 200008]);
  assert.equal(t.decode([200000, 200008], { skipSpecial: true }), '');
  assert.equal(t.decode(t.encode('a<|eot|>b', { allowSpecial: true }), { skipSpecial: true }), 'ab');
  // Near misses stay text.
  assert.deepEqual(t.encode('<|eot|', { allowSpecial: true }), t.encode('<|eot|'));
  assert.deepEqual(t.encode('<|<|eot|>', { allowSpecial: true }).slice(-1), [200008]);
  assert.equal(t.idToToken(t.encode(' hello')[0]!), 'Ġhello');
  assert.equal(t.tokenToId('Ġhello'), t.encode(' hello')[0]);
});

/** mulberry32, so a failure names a reproducible seed. */
function rng(seed: number): () => number {
  return () => {
    seed = (seed + 0x6d2b79f5) | 0;
    let x = Math.imul(seed ^ (seed >>> 15), 1 | seed);
    x = (x + Math.imul(x ^ (x >>> 7), 61 | x)) ^ x;
    return ((x ^ (x >>> 14)) >>> 0) / 4294967296;
  };
}

test("random text in many scripts and odd whitespace matches tiktoken with Meta's pattern", { skip: SKIP }, () => {
  const t = tok();
  const specials: Record<string, number> = {};
  llama4SpecialTokens().forEach((s, i) => {
    specials[s] = 200000 + i;
  });
  const ref = new Tiktoken(readFileSync(MODEL, 'utf8'), specials, META_PATTERN);
  try {
    const atoms = [
      'the',
      'The',
      'THE',
      "don't",
      "DON'T",
      "we'Re",
      "it'ſ",
      "I'LL",
      "'ve",
      'naïve',
      'Ærø',
      'straße',
      'İstanbul',
      'ǅemal',
      'Привет',
      'мир',
      'Ελληνικά',
      'עברית',
      'العربية',
      'हिन्दी',
      'தமிழ்',
      'ไทย',
      '中文字符',
      '日本語のテキスト',
      '한국어',
      'ქართული',
      '😀',
      '👩‍💻',
      '🏳️‍🌈',
      '🇩🇪',
      'e\u0301',
      'a\u0308\u0323',
      '\u0301',
      'Z̤̺̗a̩l̠g̸o',
      '①',
      '½',
      '٣٤٥',
      '१२३',
      '12345',
      '3.14159',
      '1,000,000',
      ' ',
      '  ',
      '\t',
      '\n',
      '\r\n',
      '\r',
      '\n\n\n',
      ' \n ',
      '\u00A0',
      '\u0085',
      '\uFEFF',
      '\u2028',
      '\u3000',
      '\u200B',
      '\u000B',
      '\f',
      '.',
      '...',
      '!?',
      '/',
      '//',
      '<|eot|>',
      '<|',
      '|>',
      '{"a": [1, 2]}',
      '$x',
      '#',
      '@user',
      '\\',
      '"',
      "'",
      '```',
      '->',
      '=>',
      '\u0000',
      '\u007F',
      '\uFFFD',
      '\u{10FFFF}',
      '\u{1D400}',
      'ꙮ',
      'ﬁ',
      'Ⅻ',
      'ǈ',
      'ᾼ',
      // New in Unicode 17 (this Node) but unassigned for tiktoken's Rust tables; and unassigned everywhere.
      '\u{1ACF}',
      '\u{1AE5}',
      '\u{A7CE}',
      '\u{10945}',
      '\u{11DE3}',
      '\u{16EA5}',
      '\u{18D90}',
      '\u{2CEA5}',
      '\u{323B5}',
      '\u{E0080}',
      '\u{50000}',
    ];
    let checked = 0;
    for (let seed = 1; seed <= 400; seed++) {
      const r = rng(seed);
      const n = 1 + Math.floor(r() * 40);
      let s = '';
      for (let i = 0; i < n; i++) s += atoms[Math.floor(r() * atoms.length)]!;
      const want = Array.from(ref.encode_ordinary(s));
      assert.deepEqual(t.encode(s), want, `seed ${seed}: ${JSON.stringify(s)}`);
      const wantSp = Array.from(ref.encode(s, 'all'));
      assert.deepEqual(t.encode(s, { allowSpecial: true }), wantSp, `seed ${seed} (special): ${JSON.stringify(s)}`);
      assert.equal(t.decode(t.encode(s)), s);
      checked++;
    }
    // Long runs take the heap path (pieces over 64 bytes): same ids as tiktoken.
    for (const s of [
      ' '.repeat(5000) + 'x',
      '\n'.repeat(3000),
      'a'.repeat(2000),
      '中'.repeat(700),
      '😀'.repeat(300),
      '1'.repeat(999) + '-'.repeat(500),
    ]) {
      assert.deepEqual(t.encode(s), Array.from(ref.encode_ordinary(s)), `long run ${JSON.stringify(s.slice(0, 3))}×${s.length}`);
    }
    assert.equal(checked, 400);
  } finally {
    ref.free();
  }
});

test('pathological input stays fast: 200,000 spaces encode in well under a second', { skip: SKIP }, () => {
  const t = tok();
  const t0 = performance.now();
  const ids = t.encode(' '.repeat(200_000) + 'end');
  const ms = performance.now() - t0;
  assert.equal(t.decode(ids), ' '.repeat(200_000) + 'end');
  assert.ok(ms < 3000, `took ${ms.toFixed(0)} ms`);
});

test('lone surrogates encode as U+FFFD (what any UTF-8 pipeline sees)', { skip: SKIP }, () => {
  const t = tok();
  assert.deepEqual(t.encode('a\uD800b'), t.encode('a\uFFFDb'));
});

/**
 * HF's TikTokenConverter: merges are every split (l, r) of a token whose halves are tokens, ordered by the merged
 * token's rank. A tokenizer.json written this way must give tiktoken's ids through the merges path.
 */
function hfJsonFromRanks(ranks: Map<string, number>, keep: (bin: string) => boolean): { vocab: Record<string, number>; merges: string[] } {
  const vocab: Record<string, number> = {};
  const kept = new Map<string, number>();
  for (const [bin, id] of ranks) if (bin.length === 1 || keep(bin)) kept.set(bin, id);
  for (const [bin, id] of kept) vocab[bytesToUnicode(Buffer.from(bin, 'latin1'))] = id;
  const merges: [string, string, number][] = [];
  for (const [bin, id] of kept) {
    if (bin.length < 2) continue;
    const local: [string, string, number][] = [];
    for (let k = 1; k < bin.length; k++) {
      const l = bin.slice(0, k);
      const r = bin.slice(k);
      if (kept.has(l) && kept.has(r)) local.push([l, r, id]);
    }
    local.sort((a, b) => kept.get(a[0])! - kept.get(b[0])! || kept.get(a[1])! - kept.get(b[1])!);
    merges.push(...local);
  }
  merges.sort((a, b) => a[2] - b[2]);
  const u = (bin: string): string => bytesToUnicode(Buffer.from(bin, 'latin1'));
  return { vocab, merges: merges.map(([l, r]) => `${u(l)} ${u(r)}`) };
}

test('a tokenizer.json built here (ASCII subset of the Llama 4 vocab) round trips through loadTokenizer and GGUF arrays', {
  skip: SKIP,
}, () => {
  const ranks = new Map<string, number>();
  for (const line of readFileSync(MODEL, 'utf8').split('\n')) {
    if (!line) continue;
    const [b64, r] = line.split(' ');
    ranks.set(Buffer.from(b64!, 'base64').toString('latin1'), Number(r));
  }
  // Keep ASCII tokens of up to 6 bytes: a real but small vocabulary (its ids are sparse; holes decode to nothing).
  const { vocab, merges } = hfJsonFromRanks(ranks, (bin) => bin.length <= 6 && /^[\x20-\x7e]+$/.test(bin));
  const special = [
    ['<|begin_of_text|>', 200000],
    ['<|end_of_text|>', 200001],
    ['<|eot|>', 200008],
  ] as const;
  const json = {
    version: '1.0',
    added_tokens: special.map(([content, id]) => ({
      id,
      content,
      single_word: false,
      lstrip: false,
      rstrip: false,
      normalized: false,
      special: true,
    })),
    pre_tokenizer: {
      type: 'Sequence',
      pretokenizers: [
        { type: 'Split', pattern: { Regex: META_PATTERN }, behavior: 'Isolated', invert: false },
        { type: 'ByteLevel', add_prefix_space: false, trim_offsets: true, use_regex: false },
      ],
    },
    decoder: { type: 'ByteLevel' },
    model: { type: 'BPE', ignore_merges: true, vocab, merges },
  };
  const dir = mkdtempSync(join(tmpdir(), 'llama4-tok-'));
  try {
    writeFileSync(join(dir, 'tokenizer.json'), JSON.stringify(json));
    writeFileSync(join(dir, 'tokenizer_config.json'), JSON.stringify({ bos_token: '<|begin_of_text|>', eos_token: '<|eot|>' }));
    const hf = loadTokenizer(dir);
    assert.equal(hf.bosId, 200000);
    assert.equal(hf.eosId, 200008);
    // Reference: tiktoken on the same reduced ranks.
    const sub = [...ranks].filter(([bin]) => bin.length === 1 || (bin.length <= 6 && /^[\x20-\x7e]+$/.test(bin)));
    const ref = tokenizerFromTiktoken(
      sub.map(([bin, id]) => `${Buffer.from(bin, 'latin1').toString('base64')} ${id}`).join('\n'),
      'subset',
      {
        specials: new Map(special),
      },
    );
    const ggufTokens: string[] = [];
    const types: number[] = [];
    for (const [piece, id] of Object.entries(vocab)) {
      ggufTokens[id] = piece;
      types[id] = 1;
    }
    for (const [content, id] of special) {
      ggufTokens[id] = content;
      types[id] = 3;
    }
    for (let i = 0; i < ggufTokens.length; i++)
      if (ggufTokens[i] === undefined) {
        ggufTokens[i] = `<unused_${i}>`;
        types[i] = 5;
      }
    const gg = tokenizerFromGguf({ tokens: ggufTokens, merges, tokenTypes: types, bosId: 200000, eosId: 200008 });
    const texts = [
      ...cases
        .filter((c) => /^[\x20-\x7e\n\t]*$/.test(c.text))
        .map((c) => c.text)
        .slice(0, 60),
      "Hello world, it's 2025! <|eot|> don't STOP",
      '    indented\n\tcode();',
      '',
    ];
    assert.ok(texts.length > 20);
    for (const s of texts) {
      const want = ref.encode(s, { allowSpecial: true });
      assert.deepEqual(hf.encode(s, { allowSpecial: true }), want, JSON.stringify(s.slice(0, 60)));
      assert.deepEqual(gg.encode(s, { allowSpecial: true }), want, JSON.stringify(s.slice(0, 60)));
      assert.equal(hf.decode(want), s);
      assert.equal(gg.decode(want), s);
    }
    assert.equal(gg.idToToken(gg.encode(' the')[0]!), 'Ġthe');
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('bad input gives one clear error', { skip: SKIP }, () => {
  const t = tok();
  assert.throws(() => t.decode([202048]), UsageError);
  assert.throws(() => t.decode([-1]), UsageError);
  assert.throws(() => t.decode([1.5]), UsageError);
  assert.throws(() => loadTokenizer('/nonexistent/tokenizer.model'), UsageError);
  assert.throws(() => tokenizerFromTiktoken('not base64!! 12\n', 'x.model'), ModelFileError);
  assert.throws(() => tokenizerFromTiktoken('QQ== 0\n', 'x.model'), ModelFileError); // 1 rank, no byte tokens
  assert.throws(() => tokenizerFromHfJson({ model: { type: 'Unigram', vocab: [] } }), ModelFileError);
  assert.throws(() => tokenizerFromHfJson({ nope: 1 }), ModelFileError);
  assert.throws(() => tokenizerFromGguf({ tokens: [] }), ModelFileError);
});

test('the ASCII scanner splits exactly like the RegExp (corpus and 20,000 random ASCII strings)', { skip: SKIP }, () => {
  const re = new RegExp(LLAMA4_PRETOKENIZE_SOURCE, LLAMA4_PRETOKENIZE_FLAGS);
  const scan = (s: string): string[] => {
    const out: string[] = [];
    for (let p = 0; p < s.length; ) {
      const e = asciiPieceEnd(s, p);
      out.push(s.slice(p, e));
      p = e;
    }
    return out;
  };
  const texts = cases.map((c) => c.text).filter(isAscii);
  assert.ok(texts.length > 100);
  const r = rng(99);
  const atoms = [
    "'s",
    "'S",
    "'re",
    "'RE",
    "'Ll",
    "'d",
    "'x",
    "'",
    'a',
    'B',
    'ab',
    'AB',
    'Ab',
    'aB',
    '1',
    '12',
    '1234',
    ' ',
    '  ',
    '\t',
    '\n',
    '\r\n',
    '\r',
    '\v',
    '\f',
    '/',
    '//',
    '.',
    '!?',
    '-',
    '\x00',
    '\x1b',
    '\x7f',
    '\x1c',
    '_',
    '"',
    '#',
  ];
  for (let k = 0; k < 20000; k++) {
    let s = '';
    const n = 1 + Math.floor(r() * 12);
    for (let i = 0; i < n; i++) s += atoms[Math.floor(r() * atoms.length)]!;
    texts.push(s);
  }
  for (const t of texts) assert.deepEqual(scan(t), t.match(re) ?? [], JSON.stringify(t.slice(0, 80)));
});

test('pretokenize splits exactly like the Rust pattern on the two JS traps', () => {
  // U+0085 is White_Space in Rust (not in JS \s); U+FEFF is the reverse.
  assert.deepEqual(pretokenize('a\u0085\u0085b'), ['a', '\u0085', '\u0085b']);
  assert.deepEqual(pretokenize('a \uFEFFb'), ['a', ' \uFEFF', 'b']);
  assert.deepEqual(pretokenize("WE'LL it'ſ"), ["WE'LL", " it'ſ"]);
  assert.deepEqual(pretokenize('12345 x\r\n\r\n  y'), ['123', '45', ' x', '\r\n\r\n', ' ', ' y']);
});
