/**
 * Keeps the import direction honest (spec/house-style.md §3): a module imports only from layers below it, siblings
 * in one layer never import each other, and only src/load.ts (the composition root) names concrete backends or formats.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { join, relative, dirname, resolve } from 'node:path';
import { PROJECT_ROOT } from './helpers/shared.ts';

const SRC = join(PROJECT_ROOT, 'src');
/** Layer rank; equal ranks are siblings that must not import each other. */
const RANK: Record<string, number> = {
  util: 0, tensor: 1, kernels: 2, io: 2, tokenizer: 2, chat: 2, image: 2, model: 3, engine: 4, train: 4, 'load.ts': 4.5, 'model-files': 4.5, 'model-worker': 4.6, guard: 4.8, server: 5, cli: 6, 'index.ts': 7,
};
/** chat may import tokenizer types (house style rule 3). */
const ALLOWED_SIBLING = new Set(['chat->tokenizer']);

function files(dir: string, out: string[] = []): string[] {
  for (const n of readdirSync(dir)) {
    const p = join(dir, n);
    if (statSync(p).isDirectory()) files(p, out);
    else if (n.endsWith('.ts') && !n.endsWith('.test.ts')) out.push(p);
  }
  return out;
}

const area = (file: string) => relative(SRC, file).split('/')[0]!;

test('imports point only down the layer chain', () => {
  const bad: string[] = [];
  for (const f of files(SRC)) {
    const from = area(f);
    const text = readFileSync(f, 'utf8');
    for (const m of text.matchAll(/(?:import|export)[^'"]*?from\s+['"](\.[^'"]+)['"]|import\(\s*['"](\.[^'"]+)['"]\s*\)/g)) {
      const spec = m[1] ?? m[2]!;
      const target = resolve(dirname(f), spec);
      if (!target.startsWith(SRC)) continue;
      const to = area(target);
      if (to === from) continue;
      const rf = RANK[from], rt = RANK[to];
      if (rf === undefined || rt === undefined) { bad.push(`${relative(SRC, f)}: unknown area ${rf === undefined ? from : to}`); continue; }
      const typeOnly = /^(import|export)\s+type\b/.test(m[0]);
      if (rt > rf || (rt === rf && !(typeOnly && ALLOWED_SIBLING.has(`${from}->${to}`)) && !ALLOWED_SIBLING.has(`${from}->${to}`))) {
        bad.push(`${relative(SRC, f)} imports ${relative(SRC, target)} (${from} -> ${to})`);
      }
    }
  }
  assert.deepEqual(bad, []);
});

test('model code never names a concrete backend or file format', () => {
  const bad = files(join(SRC, 'model')).filter((f) => /from\s+['"][^'"]*(kernels|io)\//.test(readFileSync(f, 'utf8')));
  assert.deepEqual(bad.map((f) => relative(SRC, f)), []);
});
