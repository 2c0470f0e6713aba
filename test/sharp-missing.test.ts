/**
 * sharp is loaded only when an image is decoded: with a sharp that cannot load (simulated by a module resolve hook
 * that refuses the specifier 'sharp', as a missing or broken native install would), the package still imports, text
 * generation works, and an image call is one ImageError naming sharp.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { spawnSync } from 'node:child_process';
import { PROJECT_ROOT } from './helpers/shared.ts';

const hook = `export async function resolve(specifier, context, next) {
  if (specifier === 'sharp') throw new Error('simulated: sharp is not installed');
  return next(specifier, context);
}`;
const register = `import { register } from 'node:module'; register(${JSON.stringify(`data:text/javascript,${encodeURIComponent(hook)}`)});`;
const withoutSharp = ['--import', 'tsx', '--import', `data:text/javascript,${encodeURIComponent(register)}`];
const node = (args: string[]) =>
  spawnSync(process.execPath, [...withoutSharp, ...args], { cwd: PROJECT_ROOT, encoding: 'utf8', timeout: 120000 });

test('sharp unavailable: the root module imports and an image call is one clear error', () => {
  const code = `
    await import('./src/index.ts');
    const { decodeImage } = await import('./src/image/index.ts');
    try { await decodeImage(new Uint8Array([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]), {}); console.log('decoded?!'); }
    catch (e) { console.log(JSON.stringify({ name: e.name, message: e.message })); }`;
  const r = node(['--input-type=module', '-e', code]);
  assert.equal(r.status, 0, r.stderr);
  const out = JSON.parse(r.stdout.trim().split('\n').pop()!);
  assert.equal(out.name, 'ImageError');
  assert.match(out.message, /needs the 'sharp' package, which failed to load \(simulated: sharp is not installed\)/);
});

test('sharp unavailable: `llama4 run` still answers a text prompt', () => {
  const r = node([join(PROJECT_ROOT, 'src/cli/main.ts'), 'run', '-n', '6', '--temperature', '0', 'What is 2 plus 3?']);
  assert.equal(r.status, 0, r.stderr);
  assert.ok(r.stdout.trim().length > 0, 'some answer text');
});

test('the resolve hook really blocks sharp (the checks above would be empty otherwise)', () => {
  const r = node(['--input-type=module', '-e', `await import('sharp')`]);
  assert.notEqual(r.status, 0);
  assert.match(r.stderr, /simulated: sharp is not installed/);
});
