/**
 * A small byte-level tokenizer for the e_multimodal golden checkpoint (which has none): its 256-token vocabulary
 * holds Llama 4's image tokens at 248..253.
 */
import { bytesToUnicode, tokenizerFromGguf } from '../../src/tokenizer/index.ts';

/** Ids < 256: printable ASCII and newline as byte tokens, Llama 4's control tokens, the rest unused. */
export function tinyVisionTokenizer() {
  const byteChar = (b: number) => bytesToUnicode(Uint8Array.of(b));
  const tokens = Array.from({ length: 256 }, (_, i) => `[PAD${i}]`);
  const types = new Array<number>(256).fill(5);
  const special: Record<number, string> = {
    1: '<|begin_of_text|>',
    2: '<|eot|>',
    3: '<|header_start|>',
    4: '<|header_end|>',
    5: '<|end_of_text|>',
    248: '<|image_start|>',
    249: '<|image_end|>',
    250: '<|patch|>',
    251: '<|image|>',
    252: '<|tile_x_separator|>',
    253: '<|tile_y_separator|>',
  };
  for (let b = 32; b < 127; b++) {
    tokens[b] = byteChar(b);
    types[b] = 1;
  }
  tokens[10] = byteChar(10);
  types[10] = 1;
  // The other bytes (never in this test's text) get ids past the model's 256: a byte-level BPE needs all 256.
  for (let b = 0; b < 256; b++) {
    if (b === 10 || (b >= 32 && b < 127)) continue;
    tokens.push(byteChar(b));
    types.push(1);
  }
  for (const [id, t] of Object.entries(special)) {
    tokens[Number(id)] = t;
    types[Number(id)] = 3;
  }
  return tokenizerFromGguf({ tokens, tokenTypes: types, merges: [], bosId: 1, eosId: 5, extraEosIds: [2], source: 'test tokenizer' });
}
