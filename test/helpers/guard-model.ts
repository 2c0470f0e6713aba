/**
 * A tiny Llama Guard whose answers are set by hand, to test verdict plumbing deterministically (a random-weight
 * guard says nothing meaningful). Guard-tiny's shape (dense, no chunking) in GGUF, with:
 * - every layer's matrices zero, so each layer adds nothing and the last hidden state is the token embedding;
 * - every token embedding the same vector (10 on dimension 0), so the final RMSNorm gives √H·e0 at every position;
 * - output row r = bias(r)/√H on dimension 0: the logits are (to 1e-5) the chosen bias vector, at every position.
 * The tokenizer is the synthetic byte-level one plus merges that make "safe" and "unsafe" single tokens, as they
 * are in Meta's tokenizer (60411 and 72110), so first-token classification can go either way.
 */
import { parseHfConfig } from '../../src/model/llama4/config.ts';
import { PRESETS, syntheticTokenizer, writeLlama4Gguf, type GgufTokenizer } from '../../src/model-files/index.ts';

const EXTRA: [string, string][] = [
  ['s', 'a'],
  ['f', 'e'],
  ['sa', 'fe'],
  ['u', 'n'],
  ['un', 'safe'],
];

export function guardTokenizer(vocab = 512): GgufTokenizer {
  const t = syntheticTokenizer(vocab);
  const tokens = [...t.tokens];
  const merges = [...t.merges];
  const first = tokens.findIndex((x) => x.startsWith('<|'));
  // Replace the last ordinary merges by the guard words' merge chain (lowest priority, no overlap with ' x' pairs).
  for (let i = 0; i < EXTRA.length; i++) {
    const id = first - EXTRA.length + i;
    const [a, b] = EXTRA[i]!;
    tokens[id] = a + b;
    merges[id - 256] = `${a} ${b}`;
  }
  return { ...t, tokens, merges, chatTemplate: null };
}

/** Writes the controlled guard; `bias` maps token text (GGUF form) to its logit, every other token gets `rest`. */
export async function writeControlledGuard(path: string, bias: Record<string, number>, rest = 0): Promise<GgufTokenizer> {
  const cfg = parseHfConfig(PRESETS['guard-tiny']!);
  const tok = guardTokenizer(cfg.vocabSize);
  const H = cfg.hiddenSize;
  const byToken = new Map(tok.tokens.map((t, i) => [t, i]));
  for (const k of Object.keys(bias)) if (!byToken.has(k)) throw new Error(`controlled guard: no token ${JSON.stringify(k)}`);
  await writeLlama4Gguf(
    path,
    cfg,
    'f32',
    (name, shape) => {
      const n = shape.reduce((a, b) => a * b, 1);
      const x = new Float32Array(n);
      if (shape.length === 1) return x.fill(1);
      if (name === 'token_embd') {
        for (let r = 0; r < shape[0]!; r++) x[r * H] = 10;
        return x;
      }
      if (name === 'output') {
        for (let r = 0; r < shape[0]!; r++) x[r * H] = (bias[tok.tokens[r]!] ?? rest) / Math.sqrt(H);
        return x;
      }
      return x; // every layer matrix zero
    },
    tok,
    'controlled-guard',
  );
  return tok;
}
