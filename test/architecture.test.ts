/**
 * Keeps the import direction honest (spec/house-style.md §3): a module imports only from layers below it, siblings
 * in one layer never import each other, only the composition roots (src/load.ts; src/model-files for file tools)
 * name concrete backends or formats, the engine sees models only through model/types.ts, and the CLI and the server
 * reach the model only through src/load.ts and the engine (the server also through its worker thread).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { join, relative, dirname, resolve } from 'node:path';
import { PROJECT_ROOT } from './helpers/shared.ts';

const SRC = join(PROJECT_ROOT, 'src');
/** Layer rank; equal ranks are siblings that must not import each other. */
const RANK: Record<string, number> = {
  util: 0,
  tensor: 1,
  kernels: 2,
  io: 2,
  tokenizer: 2,
  chat: 2,
  image: 2,
  model: 3,
  engine: 4,
  train: 4,
  'load.ts': 4.5,
  'model-files': 4.5,
  'model-worker': 4.6,
  guard: 4.8,
  server: 5,
  cli: 6,
  'index.ts': 7,
  exports: 7,
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

/** Every relative import of a source file under src/: [importing file, imported file (resolved), import statement]. */
function imports(): [string, string, string][] {
  const out: [string, string, string][] = [];
  for (const f of files(SRC)) {
    const text = readFileSync(f, 'utf8');
    for (const m of text.matchAll(/(?:import|export)[^'"]*?from\s+['"](\.[^'"]+)['"]|import\(\s*['"](\.[^'"]+)['"]\s*\)/g)) {
      const target = resolve(dirname(f), m[1] ?? m[2]!);
      if (target.startsWith(SRC)) out.push([f, target, m[0]]);
    }
  }
  return out;
}

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
      const rf = RANK[from],
        rt = RANK[to];
      if (rf === undefined || rt === undefined) {
        bad.push(`${relative(SRC, f)}: unknown area ${rf === undefined ? from : to}`);
        continue;
      }
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
  assert.deepEqual(
    bad.map((f) => relative(SRC, f)),
    [],
  );
});

test('the CLI and the server reach the model only through src/load.ts and the engine', () => {
  // Not model/ (not even its types: the engine re-exports the ones callers need), kernels/ or io/. Loading is
  // load.ts (model-files for the file tools), chat turns are the engine's ChatEngine / ChatSession, and the server's
  // worker thread is model-worker/, which loads through load.ts in that thread.
  const allowed: Record<string, Set<string>> = {
    cli: new Set(['util', 'tensor', 'tokenizer', 'chat', 'image', 'engine', 'load.ts', 'model-files', 'train', 'guard', 'server', 'cli']),
    server: new Set(['util', 'tensor', 'tokenizer', 'chat', 'image', 'engine', 'load.ts', 'model-worker', 'guard', 'server']),
  };
  const bad = imports()
    .filter(([f, t]) => allowed[area(f)] && !allowed[area(f)]!.has(area(t)))
    .map(([f, t]) => `${relative(SRC, f)} imports ${relative(SRC, t)}`);
  assert.deepEqual(bad, []);
});

test('the engine sees models only through model/types.ts (so it runs on fake models)', () => {
  const bad = imports()
    .filter(([f, t]) => area(f) === 'engine' && area(t) === 'model' && relative(SRC, t) !== 'model/types.ts')
    .map(([f, t]) => `${relative(SRC, f)} imports ${relative(SRC, t)}`);
  assert.deepEqual(bad, []);
});

test('only the composition roots name a concrete backend or file format', () => {
  // kernels/ (TsBackend, NativeBackend, mapped files): load.ts; io/ (GGUF, safetensors): load.ts and model-files.
  // The public entry points (index.ts, exports/) re-export them.
  const roots: Record<string, Set<string>> = {
    kernels: new Set(['load.ts', 'index.ts', 'exports']),
    io: new Set(['load.ts', 'model-files', 'index.ts', 'exports']),
  };
  const bad = imports()
    .filter(([f, t]) => area(f) !== area(t) && roots[area(t)] && !roots[area(t)]!.has(area(f)))
    .map(([f, t]) => `${relative(SRC, f)} imports ${relative(SRC, t)}`);
  assert.deepEqual(bad, []);
});

test('the model worker is one folder whose halves meet only through protocol.ts and the CausalLM interface', () => {
  const dir = join(SRC, 'model-worker');
  const text = (n: string) => readFileSync(join(dir, n), 'utf8');
  assert.deepEqual(
    readdirSync(dir)
      .filter((n) => n.endsWith('.ts'))
      .sort(),
    ['host.ts', 'index.ts', 'protocol.ts', 'worker.ts'],
  );
  assert.doesNotMatch(text('host.ts'), /from '\.\/worker\.ts'/);
  assert.doesNotMatch(text('worker.ts'), /from '\.\/host\.ts'/);
  // No concrete model class crosses the boundary: sequences are SequenceStates, models CausalLMs.
  for (const n of ['host.ts', 'worker.ts', 'protocol.ts'])
    assert.doesNotMatch(text(n), /model\/llama4|instanceof Llama4(Sequence|TextModel)|\.caches\b/, n);
});

test('the public root exports a curated surface; the rest sits behind subpath exports', () => {
  const pkg = JSON.parse(readFileSync(join(PROJECT_ROOT, 'package.json'), 'utf8')) as { exports: Record<string, unknown> };
  for (const [sub, entry] of Object.entries(pkg.exports)) {
    if (sub === '.' || sub === './package.json') continue;
    const e = entry as { types: string; import: string };
    const src = join(SRC, 'exports', `${sub.slice(2)}.ts`);
    assert.ok(statSync(src).isFile(), `${sub} has a source entry ${relative(PROJECT_ROOT, src)}`);
    assert.equal(e.import, `./dist/exports/${sub.slice(2)}.js`);
    assert.equal(e.types, `./dist/exports/${sub.slice(2)}.d.ts`);
  }
  // The root names no backend, kernel, file format, trainer or server internals.
  const root = readFileSync(join(SRC, 'index.ts'), 'utf8');
  assert.doesNotMatch(root, /from '\.\/(kernels|io|train|model-files|model-worker|model\/llama4)\//);
});

test('one home each: the message type, the finish reason, the event-loop yield, the turn-end token union', () => {
  const homes: [RegExp, string][] = [
    [/^export (interface|type) ChatMessage\b/m, 'chat/types.ts'],
    [/^export type FinishReason\b/m, 'engine/common.ts'],
    [/new Promise<void>\(\(\w+\) => setImmediate\(\w+\)\)/, 'engine/common.ts'],
    [/new Set\(\[\.\.\.\w+\.stopIds/, 'engine/chat-engine.ts'],
  ];
  for (const [re, home] of homes) {
    // train/data.ts narrows the shared ChatMessage to text (a derived type, not a second definition).
    const where = files(SRC).filter(
      (f) =>
        re.test(readFileSync(f, 'utf8')) && !(home === 'chat/types.ts' && /ChatMessage = SharedChatMessage/.test(readFileSync(f, 'utf8'))),
    );
    assert.deepEqual(
      where.map((f) => relative(SRC, f)),
      [home],
      String(re),
    );
  }
});

test('training has one forward pass: model/llama4’s Llama4TextModel, run on the tape', () => {
  // src/train keeps what is training's own (backward rules, optimizer, data, checkpoints); the decoder it trains is
  // the inference model. Only tape.ts calls the forward kernels (it computes each Backend op for the model), and
  // kernels.ts defines them.
  const dir = join(SRC, 'train');
  const model = readFileSync(join(dir, 'model.ts'), 'utf8');
  assert.match(model, /from '\.\.\/model\/llama4\/text-model\.ts'/);
  const forwardOps = /\b(attnForward|rmsNormFwd|swigluFwd|linear|rope)\(/;
  const bad = readdirSync(dir)
    .filter((f) => f.endsWith('.ts') && !f.endsWith('.test.ts') && f !== 'tape.ts' && f !== 'kernels.ts')
    .filter((f) => forwardOps.test(readFileSync(join(dir, f), 'utf8')));
  assert.deepEqual(bad, []);
});
