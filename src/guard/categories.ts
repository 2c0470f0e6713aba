/**
 * Llama Guard 4's hazard categories S1–S14 (the MLCommons taxonomy) with the short names its prompt lists them by.
 * The names are those of Meta's Llama Guard chat templates ("S1: Violent Crimes." …); the moderation API keys its
 * `categories` / `category_scores` by the same names. S14 (code interpreter abuse) applies to text-only
 * conversations: the prompt omits it when the conversation holds an image.
 */
import { UsageError } from '../util/index.ts';

export interface GuardCategory {
  /** "S1" … "S14": what the model writes on its second line. */
  readonly code: string;
  /** "Violent Crimes" … : the prompt's wording without the final period. */
  readonly name: string;
}

export const LLAMA_GUARD_4_CATEGORIES: readonly GuardCategory[] = Object.freeze(
  [
    ['S1', 'Violent Crimes'],
    ['S2', 'Non-Violent Crimes'],
    ['S3', 'Sex Crimes'],
    ['S4', 'Child Exploitation'],
    ['S5', 'Defamation'],
    ['S6', 'Specialized Advice'],
    ['S7', 'Privacy'],
    ['S8', 'Intellectual Property'],
    ['S9', 'Indiscriminate Weapons'],
    ['S10', 'Hate'],
    ['S11', 'Self-Harm'],
    ['S12', 'Sexual Content'],
    ['S13', 'Elections'],
    ['S14', 'Code Interpreter Abuse'],
  ].map(([code, name]) => Object.freeze({ code: code!, name: name! })),
);

/** Categories that only make sense for text: left out of the prompt when an image is present. */
export const TEXT_ONLY_CATEGORIES: ReadonlySet<string> = new Set(['S14']);

/**
 * "S1,S10" (codes, case-insensitive, spaces allowed) -> the categories in S-order. Unknown or empty lists are a
 * UsageError naming what is wrong.
 */
export function parseCategoryCodes(list: string | readonly string[]): GuardCategory[] {
  const items = (typeof list === 'string' ? list.split(',') : [...list]).map((s) => s.trim().toUpperCase()).filter((s) => s !== '');
  if (items.length === 0) throw new UsageError('categories: give at least one of S1..S14');
  const known = new Map(LLAMA_GUARD_4_CATEGORIES.map((c) => [c.code, c]));
  for (const s of items) if (!known.has(s)) throw new UsageError(`categories: unknown category '${s}' (Llama Guard 4 has S1..S14)`);
  const want = new Set(items);
  return LLAMA_GUARD_4_CATEGORIES.filter((c) => want.has(c.code));
}
