/**
 * Child process of test/chat-session.test.ts (run with --expose-gc): loads the embedded default model, chats one
 * turn and disposes it, many times, and prints JSON facts about threads, file mappings and resident memory.
 */
import { readFileSync, readdirSync } from 'node:fs';
import { loadModel, DEFAULT_MODEL_DIR } from '../../src/index.ts';

const loads = Number(process.argv[2] ?? 60);
const gc = (globalThis as { gc?: () => void }).gc;
if (!gc) throw new Error('run with --expose-gc');
const mappings = () =>
  readFileSync('/proc/self/maps', 'utf8')
    .split('\n')
    .filter((l) => l.includes(DEFAULT_MODEL_DIR)).length;
const threads = () => readdirSync('/proc/self/task').length;
const tick = () => new Promise((r) => setImmediate(r));
const settle = async () => {
  // A detached mapping is unmapped when V8 releases its last view (a finalizer that runs on the next turns).
  for (let i = 0; i < 100 && mappings() > 0; i++) await tick();
};

async function cycle(): Promise<{ live: [number, number]; disposed: [number, number] }> {
  const model = await loadModel();
  await model.createChat().send('What is 7 plus 5?', { maxTokens: 8 });
  const live: [number, number] = [threads(), mappings()];
  model.dispose();
  const t = threads();
  await settle();
  return { live, disposed: [t, mappings()] };
}

for (let i = 0; i < 5; i++) await cycle(); // warm-up: code, caches, allocator arenas
await settle();
gc();
const base = { threads: threads(), mappings: mappings(), rss: process.memoryUsage().rss };
let maxThreads = 0;
let maxMappings = 0;
let liveThreads = 0;
let liveMappings = 0;
for (let i = 0; i < loads; i++) {
  const c = await cycle();
  liveThreads = Math.max(liveThreads, c.live[0]);
  liveMappings = Math.max(liveMappings, c.live[1]);
  maxThreads = Math.max(maxThreads, c.disposed[0]);
  maxMappings = Math.max(maxMappings, c.disposed[1]);
}
gc();
await settle();
process.stdout.write(
  JSON.stringify({
    loads,
    base,
    liveThreads,
    liveMappings,
    maxThreads,
    maxMappings,
    threads: threads(),
    mappings: mappings(),
    rssGrowth: process.memoryUsage().rss - base.rss,
  }) + '\n',
);
