/** `llama4-ts/tokenizer`: the BPE tokenizer (tiktoken-exact), Llama 4's special tokens, and the whole chat layer. */
export * from '../tokenizer/index.ts';
export * from '../chat/index.ts';
