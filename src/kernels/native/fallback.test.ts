// Without a loadable addon the native module degrades to "null plus one line saying why" (load.ts then uses the
// TypeScript backend); a kernel set the CPU lacks is refused the same way.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { tryCreateNativeBackend, nativeIsas } from './index.ts';

test('native: LLAMA4_NATIVE=0 gives null and a one-line reason', () => {
  const code = `import('./src/kernels/native/index.ts').then((m) => { const r = m.tryCreateNativeBackend(); console.log(JSON.stringify({ b: r.backend === null, reason: r.reason, mmap: m.canMmap() })); })`;
  const r = spawnSync(process.execPath, ['--import', 'tsx', '-e', code], { env: { ...process.env, LLAMA4_NATIVE: '0' }, encoding: 'utf8' });
  assert.equal(r.status, 0, r.stderr);
  const out = JSON.parse(r.stdout.trim().split('\n').pop()!);
  assert.deepEqual(out, { b: true, reason: 'native core disabled by LLAMA4_NATIVE=0', mmap: false });
});

test('native: an unusable kernel set or thread count is refused with a reason', {
  skip: nativeIsas().length ? false : 'native core unavailable',
}, () => {
  const all = ['avx512', 'avx2-vnni', 'avx2', 'scalar'] as const;
  const missing = all.find((i) => !nativeIsas().includes(i));
  if (missing) {
    const r = tryCreateNativeBackend({ isa: missing });
    assert.equal(r.backend, null);
    assert.match(r.reason, new RegExp(`'${missing}' is not usable on this CPU`));
  }
  assert.match(tryCreateNativeBackend({ threads: 0 }).reason, /bad thread count/);
  assert.ok(nativeIsas().includes('scalar'));
});
