/** Locates ../shared (the reference data beside the project) for tests; tests skip loudly when it is absent. */
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { join, resolve } from 'node:path';

export const PROJECT_ROOT = resolve(fileURLToPath(new URL('../..', import.meta.url)));
export const SHARED = resolve(PROJECT_ROOT, '..', 'shared');

/** Path inside ../shared, or null (with a loud message) when it is missing. */
export function sharedPath(...parts: string[]): string | null {
  const p = join(SHARED, ...parts);
  if (!existsSync(p)) {
    process.stderr.write(`\n*** SKIPPED: reference data ${p} is missing (../shared must sit beside the project) ***\n`);
    return null;
  }
  return p;
}

export function maxAbsDiff(a: ArrayLike<number>, b: ArrayLike<number>): number {
  if (a.length !== b.length) return Infinity;
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i]! - b[i]!));
  return m;
}
