/**
 * The npm package holds what runs and nothing else (`files` in package.json, read through `npm pack --dry-run`):
 * the compiled dist/, the bin, the embedded model, the native sources and install script for a source build, the
 * chat page and the prebuilt binaries; no tests, source maps, TypeScript sources or native build leftovers. And the
 * addon loader looks where those files land.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { PROJECT_ROOT } from './helpers/shared.ts';
import { addonCandidates } from '../src/kernels/native/addon.ts';

const haveDist = existsSync(join(PROJECT_ROOT, 'dist/cli/main.js'));

test('npm pack: the tarball holds exactly what runs', { skip: haveDist ? false : 'dist/ not built (npm run build)' }, () => {
  // --ignore-scripts: list the files as they are (prepack would rebuild dist/ and the prebuilt binaries).
  const r = spawnSync('npm', ['pack', '--dry-run', '--ignore-scripts', '--json'], { cwd: PROJECT_ROOT, encoding: 'utf8' });
  assert.equal(r.status, 0, r.stderr);
  const files = (JSON.parse(r.stdout) as { files: { path: string }[] }[])[0]!.files.map((f) => f.path);
  for (const must of [
    'package.json',
    'README.md',
    'bin/llama4.js',
    'dist/index.js',
    'dist/index.d.ts',
    'dist/cli/main.js',
    'dist/model-worker/worker.js',
    'models/default/model.safetensors',
    'models/default/tokenizer.json',
    'native/binding.gyp',
    'native/probe-flag.sh',
    'native/src/addon.cc',
    'scripts/build-native.mjs',
    'src/server/public/index.html',
  ]) {
    assert.ok(files.includes(must), `${must} is in the package`);
  }
  const unwanted = files.filter(
    (f) =>
      /\.test\.|\.map$|^native\/build\/|^test\/|^bench\/|\.tgz$/.test(f) ||
      (f.startsWith('src/') && !f.startsWith('src/server/public/')) ||
      (f.startsWith('scripts/') && f !== 'scripts/build-native.mjs'),
  );
  assert.deepEqual(unwanted, []);
  for (const f of files.filter((p) => p.startsWith('prebuilds/'))) assert.match(f, /^prebuilds\/linux-(x64|arm64)\/llama4_native\.node$/);
});

test('addon loader: a source build first, then the prebuilt binary for this platform', () => {
  const rels = addonCandidates().map((c) => c.rel);
  assert.deepEqual(rels, ['native/build/Release/llama4_native.node', `prebuilds/${process.platform}-${process.arch}/llama4_native.node`]);
});
