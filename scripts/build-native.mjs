#!/usr/bin/env node
// Builds the native compute core (native/binding.gyp) with node-gyp, offline.
//
//   node scripts/build-native.mjs             the package's `install` script: skipped when the prebuilt binary
//                                             shipped in the package (prebuilds/<platform>-<arch>/) loads, except in a
//                                             development checkout (a .git folder), which always builds from source
//   node scripts/build-native.mjs --verbose   `npm run build:native`: always builds, compiler output shown
//   node scripts/build-native.mjs --prebuild  `prepack`: builds with generic flags and copies the stripped binary to
//                                             prebuilds/<platform>-<arch>/llama4_native.node; any failure fails the pack.
//                                             On linux-x64 with aarch64-linux-gnu-g++ it also cross-builds
//                                             prebuilds/linux-arm64/ (load-tested under qemu-aarch64 when
//                                             LLAMA4_ARM64_NODE names an arm64 node binary)
//
// A failed install build never fails the install: it prints one line, and the engine falls back to the TypeScript
// backend at run time (src/kernels/native/addon.ts says why). Set LLAMA4_SKIP_NATIVE=1 to skip the build.
// The shipped binary keeps run-time CPU dispatch (native/binding.gyp: one static library per instruction set, a
// baseline addon); never -march=native, so it runs on every CPU of its architecture.
import { spawnSync } from 'node:child_process';
import { copyFileSync, cpSync, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const nativeDir = join(root, 'native');
const verbose = process.argv.includes('--verbose');
const prebuild = process.argv.includes('--prebuild');
const platformDir = `${process.platform}-${process.arch}`;
const prebuilt = join(root, 'prebuilds', platformDir, 'llama4_native.node');

/** Whether a .node file loads in a fresh Node process and reports its kernel sets. */
function loads(file) {
  if (!existsSync(file)) return false;
  const r = spawnSync(process.execPath, ['-e', `console.log(require(${JSON.stringify(file)}).isas().join(','))`], { encoding: 'utf8' });
  return r.status === 0 && r.stdout.trim().length > 0;
}

if (!prebuild && process.env.LLAMA4_SKIP_NATIVE === '1') {
  console.log('llama4-ts: native core skipped (LLAMA4_SKIP_NATIVE=1); the TypeScript backend will be used');
  process.exit(0);
}
if (!prebuild && !verbose && !existsSync(join(root, '.git')) && loads(prebuilt)) {
  console.log(`llama4-ts: using the prebuilt native core (prebuilds/${platformDir}); no source build needed`);
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
    } catch {
      /* the one line below is all we promise */
    }
  }
  if (prebuild) {
    console.error(`llama4-ts: prebuilt native core not made: ${why}${where}`);
    process.exit(1);
  }
  console.log(`llama4-ts: native core not built: ${why}${where}; the TypeScript backend will be used`);
  process.exit(0);
}

// The shipped binary must not depend on the packing machine's CPU: refuse -march/-mtune=native anywhere in the
// build's inputs, and build without the caller's compiler flags (gyp appends CFLAGS/CXXFLAGS from the environment).
const env = { ...process.env };
if (prebuild) {
  for (const k of ['CFLAGS', 'CXXFLAGS', 'CPPFLAGS', 'LDFLAGS']) delete env[k];
  const gypFlags = readFileSync(join(nativeDir, 'binding.gyp'), 'utf8').replace(/^\s*#.*$/gm, ''); // comments may name it
  if (/-m(arch|tune|cpu)=native/.test(gypFlags)) fail('native/binding.gyp compiles with -march=native');
}

if (!gyp) fail('node-gyp not found');
if (!nodedir) fail('Node headers not found (set npm config nodedir)');
const args = [gyp, 'rebuild', `--nodedir=${nodedir}`, `--jobs=${process.env.LLAMA4_NATIVE_JOBS ?? '2'}`];
const t0 = Date.now();
const r = spawnSync(process.execPath, args, { cwd: nativeDir, env, encoding: 'utf8', stdio: verbose ? 'inherit' : 'pipe' });
if (r.status !== 0) {
  const log = `${r.stdout ?? ''}\n${r.stderr ?? ''}`;
  const firstError = log
    .split('\n')
    .find((l) => /error/i.test(l) && !/gyp ERR!/.test(l))
    ?.trim();
  fail(firstError ? firstError.slice(0, 200) : `node-gyp exited with ${r.status ?? r.signal}`, log);
}
const built = join(nativeDir, 'build', 'Release', 'llama4_native.node');
if (!prebuild) {
  console.log(`llama4-ts: native core built in ${((Date.now() - t0) / 1000).toFixed(1)} s`);
  process.exit(0);
}

// --prebuild: check the compile commands, copy and strip the binary, and check that the copy loads.
const makefiles = [
  'llama4_native.target.mk',
  'kern_avx2.target.mk',
  'kern_avx2_vnni.target.mk',
  'kern_avx2_vnni_evex.target.mk',
  'kern_avx512.target.mk',
  'kern_bf16.target.mk',
  'kern_amx.target.mk',
  'kern_amx_int8.target.mk',
  'kern_amx_int8_emu.target.mk',
].map((f) => join(nativeDir, 'build', f));
for (const mk of makefiles.filter((f) => existsSync(f))) {
  if (/-m(arch|tune|cpu)=native/.test(readFileSync(mk, 'utf8'))) fail(`${mk} compiles with -march=native`);
}
// The baseline objects (everything but the per-ISA kernel libraries) must not use AVX registers: those run before the
// CPU check. objdump is optional (binutils); without it the compile-flag check above is what we have.
const baseObjs = join(nativeDir, 'build', 'Release', 'obj.target', 'llama4_native', 'src');
for (const obj of existsSync(baseObjs) ? readdirSync(baseObjs).filter((f) => f.endsWith('.o')) : []) {
  const d = spawnSync('objdump', ['-d', join(baseObjs, obj)], { encoding: 'utf8', maxBuffer: 1 << 28 });
  if (d.status === 0 && /%[yz]mm\d/.test(d.stdout))
    fail(`native/src/${obj.replace(/\.o$/, '.cc')} compiled to AVX code outside the per-ISA kernels`);
}
mkdirSync(dirname(prebuilt), { recursive: true });
copyFileSync(built, prebuilt);
const strip = spawnSync('strip', ['--strip-unneeded', prebuilt], { encoding: 'utf8' });
if (strip.error || strip.status !== 0) console.log('llama4-ts: strip not available; the prebuilt binary keeps its symbols');
if (!loads(prebuilt)) fail(`${prebuilt} does not load after the build`);
console.log(
  `llama4-ts: prebuilt native core prebuilds/${platformDir}/llama4_native.node built in ${((Date.now() - t0) / 1000).toFixed(1)} s`,
);

// Cross-built linux-arm64 binary (portable kernel table: NEON kernels are not written yet). Optional: packing on a
// machine without the cross compiler ships linux-x64 only, and arm64 installs build from source.
const onPath = (cmd) => spawnSync('sh', ['-c', `command -v ${cmd}`], { encoding: 'utf8' }).status === 0;
if (process.platform === 'linux' && process.arch === 'x64' && onPath('aarch64-linux-gnu-g++')) {
  const t1 = Date.now();
  const dir = mkdtempSync(join(tmpdir(), 'llama4-arm64-'));
  try {
    cpSync(join(nativeDir, 'src'), join(dir, 'src'), { recursive: true });
    copyFileSync(join(nativeDir, 'binding.gyp'), join(dir, 'binding.gyp'));
    const crossEnv = {
      ...env,
      NODE_PATH: join(root, 'node_modules'), // binding.gyp resolves node-addon-api from the build folder
      CC: 'aarch64-linux-gnu-gcc',
      CXX: 'aarch64-linux-gnu-g++',
      LINK: 'aarch64-linux-gnu-g++',
      AR: 'aarch64-linux-gnu-ar',
    };
    const x = spawnSync(
      process.execPath,
      [gyp, 'rebuild', '--arch=arm64', `--nodedir=${nodedir}`, `--jobs=${process.env.LLAMA4_NATIVE_JOBS ?? '2'}`],
      {
        cwd: dir,
        env: crossEnv,
        encoding: 'utf8',
        stdio: verbose ? 'inherit' : 'pipe',
      },
    );
    if (x.status !== 0)
      fail(
        `linux-arm64 cross build failed: ${
          `${x.stdout ?? ''}\n${x.stderr ?? ''}`
            .split('\n')
            .find((l) => /error/i.test(l))
            ?.trim() ?? x.status
        }`,
      );
    const armOut = join(root, 'prebuilds', 'linux-arm64', 'llama4_native.node');
    mkdirSync(dirname(armOut), { recursive: true });
    copyFileSync(join(dir, 'build', 'Release', 'llama4_native.node'), armOut);
    spawnSync('aarch64-linux-gnu-strip', ['--strip-unneeded', armOut]);
    const armNode = process.env.LLAMA4_ARM64_NODE;
    let tested = 'not load-tested (set LLAMA4_ARM64_NODE to an arm64 node binary, with qemu-aarch64 installed)';
    if (armNode && onPath('qemu-aarch64')) {
      const q = spawnSync(
        'qemu-aarch64',
        ['-L', '/usr/aarch64-linux-gnu', armNode, '-e', `console.log(require(${JSON.stringify(armOut)}).isas().join(','))`],
        { encoding: 'utf8' },
      );
      if (q.status !== 0 || !q.stdout.trim()) fail(`prebuilds/linux-arm64 does not load under qemu-aarch64: ${q.stderr.split('\n')[0]}`);
      tested = `loads under qemu-aarch64 (kernel sets ${q.stdout.trim()})`;
    }
    console.log(
      `llama4-ts: prebuilt native core prebuilds/linux-arm64/llama4_native.node cross-built in ${((Date.now() - t1) / 1000).toFixed(1)} s; ${tested}`,
    );
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}
