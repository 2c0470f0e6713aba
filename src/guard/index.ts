/** Llama Guard 4 as a safety stage: categories, the guard prompt, verdicts from probabilities, loadGuard(). */
export * from './categories.ts';
export * from './prompt.ts';
export * from './verdict.ts';
export * from './guard.ts';
