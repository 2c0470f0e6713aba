/** `llama4-ts/image`: image decoding, Llama 4 preprocessing (tiles) and prompt expansion. */
export * from '../image/index.ts';
