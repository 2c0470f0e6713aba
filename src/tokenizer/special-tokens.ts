/**
 * Llama 4's special tokens: ids 200000–202047, exactly Meta's list (llama-models `llama4/tokenizer.py`).
 * The Hugging Face converter writes the same list without the reasoning/reserved tail (ids ≥ 201134), so loaders
 * fill the ids a file leaves unoccupied from this list and every Llama 4 tokenizer covers the model's 202048 rows.
 */

/** First special id: Meta's tokenizer.model holds 200000 mergeable ranks (ids 0–199999). */
export const LLAMA4_NUM_BASE_TOKENS = 200_000;
/** Meta pads the special list to 2048 entries, so n_words = 202048 = the model's vocab_size. */
export const LLAMA4_NUM_SPECIAL_TOKENS = 2048;

function reserved(prefix: string, count: number, start = 0): string[] {
  return Array.from({ length: count }, (_, i) => `<|${prefix}_${start + i}|>`);
}

/** Meta's special tokens in id order; index i has id 200000 + i. */
export function llama4SpecialTokens(): string[] {
  const basic = ['<|begin_of_text|>', '<|end_of_text|>', '<|fim_prefix|>', '<|fim_middle|>', '<|fim_suffix|>'];
  const textPostTrain = [
    '<|header_start|>',
    '<|header_end|>',
    '<|eom|>',
    '<|eot|>',
    '<|step|>',
    ...reserved('text_post_train_reserved_special_token', 6),
    '<|python_start|>',
    '<|python_end|>',
    '<|finetune_right_pad|>',
    // Meta skips _6 and _7 here: the three named tokens above took their places.
    ...reserved('text_post_train_reserved_special_token', 61, 8),
  ];
  const vision = [
    '<|image_start|>',
    '<|image_end|>',
    '<|vision_reserved_special_token_0|>',
    '<|vision_reserved_special_token_1|>',
    '<|tile_x_separator|>',
    '<|tile_y_separator|>',
    ...reserved('vision_reserved_special_token', 4, 2),
    '<|image|>',
    '<|vision_reserved_special_token_6|>',
    '<|patch|>',
    ...reserved('vision_reserved_special_token', 1041, 7),
  ];
  const reasoning = [...reserved('reasoning_reserved_special_token', 8), '<|reasoning_thinking_start|>', '<|reasoning_thinking_end|>'];
  const all = [...basic, ...textPostTrain, ...vision, ...reasoning];
  // Pad with <|reserved_special_token_N|> to 2048 entries (904 of them).
  all.push(...reserved('reserved_special_token', LLAMA4_NUM_SPECIAL_TOKENS - all.length));
  return all;
}

/** Well-known ids (valid for every Llama 4 tokenizer: Meta's and the HF conversion agree below 201134). */
export const LLAMA4_IDS = {
  beginOfText: 200000,
  endOfText: 200001,
  headerStart: 200005,
  headerEnd: 200006,
  eom: 200007,
  eot: 200008,
  pythonStart: 200016,
  pythonEnd: 200017,
  finetuneRightPad: 200018,
  imageStart: 200080,
  imageEnd: 200081,
  tileXSeparator: 200084,
  tileYSeparator: 200085,
  image: 200090,
  patch: 200092,
} as const;
