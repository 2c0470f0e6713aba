#!/usr/bin/env node
// Builds the native compute core (native/binding.gyp) with node-gyp, offline. Run by `npm install` (the package's
// "install" script) and by hand (`node scripts/build-native.mjs [--verbose]`). A failed build never fails the
// install: it prints one line, and the engine falls back to the TypeScript backend at run time
// (src/kernels/native/index.ts says why). Set LLAMA4_SKIP_NATIVE=1 to skip the build.
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, writeFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const nativeDir = join(root, 'native');
const verbose = process.argv.includes('--verbose');

if (process.env.LLAMA4_SKIP_NATIVE === '1') {
  console.log('llama4-ts: native core skipped (LLAMA4_SKIP_NATIVE=1); the TypeScript backend will be used');
  process.exit(0);
}

// node-gyp: npm passes its bundled copy in npm_config_node_gyp; otherwise look beside npm, then in node_modules.
const prefix = resolve(dirname(process.execPath), '..');
const gypCandidates = [
  process.env.npm_config_node_gyp,
  join(prefix, 'lib/node_modules/npm/node_modules/node-gyp/bin/node-gyp.js'),
  join(root, 'node_modules/node-gyp/bin/node-gyp.js'),
].filter(Boolean);
const gyp = gypCandidates.find((p) => existsSync(p));

// Headers: never download them (no network here). Use npm's configured nodedir, else the running Node's prefix.
const nodedir = process.env.npm_config_nodedir || (existsSync(join(prefix, 'include/node/node_api.h')) ? prefix : '');

function fail(why, log) {
  let where = '';
  if (log) {
    try {
      mkdirSync(join(nativeDir, 'build'), { recursive: true });
      writeFileSync(join(nativeDir, 'build', 'build-error.log'), log);
      where = ' (log: native/build/build-error.log)';
    } catch { /* the one line below is all we promise */ }
  }
  console.log(`llama4-ts: native core not built: ${why}${where}; the TypeScript backend will be used`);
  process.exit(0);
}

if (!gyp) fail('node-gyp not found');
if (!nodedir) fail('Node headers not found (set npm config nodedir)');
const args = [gyp, 'rebuild', `--nodedir=${nodedir}`, `--jobs=${process.env.LLAMA4_NATIVE_JOBS ?? '2'}`];
const t0 = Date.now();
const r = spawnSync(process.execPath, args, { cwd: nativeDir, encoding: 'utf8', stdio: verbose ? 'inherit' : 'pipe' });
if (r.status !== 0) {
  const log = `${r.stdout ?? ''}\n${r.stderr ?? ''}`;
  const firstError = log.split('\n').find((l) => /error/i.test(l) && !/gyp ERR!/.test(l))?.trim();
  fail(firstError ? firstError.slice(0, 200) : `node-gyp exited with ${r.status ?? r.signal}`, log);
}
console.log(`llama4-ts: native core built in ${((Date.now() - t0) / 1000).toFixed(1)} s`);
