/** Images in: decoding (sharp), Llama 4 preprocessing (§3.1) and prompt expansion (§3.2). No tensors or backends here. */
export * from './decode.ts';
export * from './resize.ts';
export * from './preprocess.ts';
export * from './prompt.ts';
export * from './pixel-values.ts';
