/**
 * Encode throughput of our tokenizer vs the `tiktoken` npm package (OpenAI's Rust BPE compiled to WebAssembly) on
 * the same text in the same process. Not a test: prints MB/s (UTF-8 megabytes = 1e6 bytes per second) and ratios.
 *
 *   npm run bench:tokenizer                    # corpus = ../shared/tokenizer/cases.jsonl texts
 *   npm run bench:tokenizer -- FILE...         # corpus = these text files
 *
 * "cold" = a fresh tokenizer per run (empty pre-token cache: the fair first-encounter number); "warm" = the same
 * tokenizer encoding the text again (cache filled, what a server sees on everyday text).
 */
import { existsSync, readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { Tiktoken } from 'tiktoken';
import { llama4SpecialTokens, tokenizerFromTiktoken } from '../src/tokenizer/index.ts';

const shared = resolve(process.cwd(), '../shared/tokenizer');
const modelPath = resolve(shared, 'llama4-tokenizer.model');
if (!existsSync(modelPath)) {
  console.error(`SKIPPED: ${modelPath} is absent (Meta's Llama 4 tokenizer.model is read from ../shared, never committed)`);
  process.exit(0);
}
const modelText = readFileSync(modelPath, 'utf8');

interface Corpus {
  name: string;
  texts: string[];
}
const corpora: Corpus[] = [];
const files = process.argv.slice(2);
if (files.length) {
  for (const f of files) corpora.push({ name: f, texts: [readFileSync(f, 'utf8')] });
} else {
  const cases = readFileSync(resolve(shared, 'cases.jsonl'), 'utf8')
    .trim()
    .split('\n')
    .map((l) => JSON.parse(l) as { kind: string; text: string });
  const unnatural = new Set(['whitespace-run', 'odd-whitespace', 'whitespace-only', 'emoji-run', 'zalgo-combining', 'short-window']);
  corpora.push({
    name: 'natural text (cases.jsonl minus synthetic whitespace/emoji/zalgo runs)',
    texts: cases.filter((c) => !unnatural.has(c.kind)).map((c) => c.text),
  });
  corpora.push({ name: 'all of cases.jsonl (incl. 24k-char whitespace runs)', texts: cases.map((c) => c.text) });
}

const mb = (texts: string[]): number => texts.reduce((n, t) => n + Buffer.byteLength(t, 'utf8'), 0) / 1e6;

/**
 * Runs the contenders in interleaved rounds (so a busy shared machine slows them alike) for at least `minMs`,
 * returning each one's fastest run in ms (the least disturbed) and its median.
 */
function race(fns: Record<string, () => void>, minMs = 4000): Record<string, { best: number; median: number }> {
  const times: Record<string, number[]> = {};
  for (const [k, fn] of Object.entries(fns)) {
    fn();
    times[k] = [];
  } // warm-up
  const t0 = performance.now();
  while (performance.now() - t0 < minMs || times[Object.keys(fns)[0]!]!.length < 5) {
    for (const [k, fn] of Object.entries(fns)) {
      const a = performance.now();
      fn();
      times[k]!.push(performance.now() - a);
    }
  }
  const out: Record<string, { best: number; median: number }> = {};
  for (const [k, ts] of Object.entries(times)) {
    const sorted = [...ts].sort((x, y) => x - y);
    out[k] = { best: sorted[0]!, median: sorted[sorted.length >> 1]! };
  }
  return out;
}

let t0 = performance.now();
const ours = tokenizerFromTiktoken(modelText, modelPath);
const oursLoad = performance.now() - t0;
t0 = performance.now();
const specials: Record<string, number> = {};
llama4SpecialTokens().forEach((s, i) => {
  specials[s] = 200000 + i;
});
const metaPattern =
  "[^\\r\\n\\p{L}\\p{N}]?[\\p{Lu}\\p{Lt}\\p{Lm}\\p{Lo}\\p{M}]*[\\p{Ll}\\p{Lm}\\p{Lo}\\p{M}]+(?i:'s|'t|'re|'ve|'m|'ll|'d)?|[^\\r\\n\\p{L}\\p{N}]?[\\p{Lu}\\p{Lt}\\p{Lm}\\p{Lo}\\p{M}]+[\\p{Ll}\\p{Lm}\\p{Lo}\\p{M}]*(?i:'s|'t|'re|'ve|'m|'ll|'d)?|\\p{N}{1,3}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n/]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+";
const tk = new Tiktoken(modelText, specials, metaPattern);
const tkLoad = performance.now() - t0;

console.log(`node ${process.version}; load: ours ${oursLoad.toFixed(0)} ms, tiktoken ${tkLoad.toFixed(0)} ms`);
for (const c of corpora) {
  const size = mb(c.texts);
  // Same ids first: a benchmark of a wrong tokenizer is meaningless.
  let mismatches = 0;
  for (const t of c.texts) {
    const a = ours.encode(t);
    const b = tk.encode_ordinary(t);
    if (a.length !== b.length || a.some((x, i) => x !== b[i])) mismatches++;
  }
  const r = race({
    tiktoken: () => {
      for (const t of c.texts) tk.encode_ordinary(t);
    },
    // Cold: caches emptied before each run (pre-token ids and lazily resolved merges), vocabulary kept loaded.
    cold: () => {
      ours.clearCache();
      for (const t of c.texts) ours.encode(t);
    },
    // Warm: the pre-token cache filled by earlier runs (what a long-running server sees on everyday text).
    warm: () => {
      for (const t of c.texts) ours.encode(t);
    },
  });
  const mbps = (ms: number): string => (size / (ms / 1000)).toFixed(2).padStart(7);
  console.log(`\n${c.name}: ${c.texts.length} texts, ${(size * 1e6).toFixed(0)} UTF-8 bytes, id mismatches vs tiktoken: ${mismatches}`);
  console.log('                    best run   median run   ratio to tiktoken (best / median)');
  for (const k of ['tiktoken', 'cold', 'warm'] as const) {
    const label = { tiktoken: 'tiktoken (WASM)', cold: 'ours, cold cache', warm: 'ours, warm cache' }[k];
    const ratio =
      k === 'tiktoken' ? '' : `x${(r.tiktoken!.best / r[k]!.best).toFixed(2)} / x${(r.tiktoken!.median / r[k]!.median).toFixed(2)}`;
    console.log(`  ${label.padEnd(17)} ${mbps(r[k]!.best)} MB/s ${mbps(r[k]!.median)} MB/s   ${ratio}`);
  }
}
tk.free();
