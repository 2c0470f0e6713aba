/** Bad checkpoints give one clear error each — through the library and the CLI — never a crash or a hang. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync, writeFileSync, cpSync, truncateSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { spawnSync } from 'node:child_process';
import { loadModel } from '../src/load.ts';
import { Llama4Error } from '../src/util/index.ts';
import { writeTinyCheckpoint } from './helpers/tiny-checkpoint.ts';
import { PROJECT_ROOT } from './helpers/shared.ts';

const tmp = mkdtempSync(join(tmpdir(), 'llama4-bad-'));
process.on('exit', () => rmSync(tmp, { recursive: true, force: true }));
const good = join(tmp, 'good');
writeTinyCheckpoint(good, { seed: 1 });

let n = 0;
function variant(mutate: (dir: string) => void): string {
  const dir = join(tmp, `bad${n++}`);
  cpSync(good, dir, { recursive: true });
  mutate(dir);
  return dir;
}

/** Rewrites the safetensors header through `edit` (keeping the data section). */
function editHeader(dir: string, edit: (h: Record<string, any>) => void): void {
  const file = join(dir, 'model.safetensors');
  const buf = readFileSync(file);
  const len = Number(buf.readBigUInt64LE(0));
  const header = JSON.parse(buf.subarray(8, 8 + len).toString('utf8'));
  edit(header);
  const json = Buffer.from(JSON.stringify(header));
  const data = buf.subarray(8 + len);
  const lenBuf = Buffer.alloc(8);
  lenBuf.writeBigUInt64LE(BigInt(json.length));
  writeFileSync(file, Buffer.concat([lenBuf, json, data]));
}

const CASES: [string, () => string, RegExp][] = [
  [
    'truncated file',
    () =>
      variant((d) => {
        const f = join(d, 'model.safetensors');
        truncateSync(f, statSync(f).size - 100);
      }),
    /past the end of the data section|truncated/,
  ],
  [
    'header length larger than the file',
    () =>
      variant((d) => {
        const f = join(d, 'model.safetensors');
        const b = readFileSync(f);
        b.writeBigUInt64LE(BigInt(b.length * 4), 0);
        writeFileSync(f, b);
      }),
    /header length .* exceeds the file size/,
  ],
  [
    'header that lies about a tensor size',
    () =>
      variant((d) =>
        editHeader(d, (h) => {
          h['model.norm.weight'].shape = [999];
        }),
      ),
    /model\.norm\.weight.*needs .* bytes but data_offsets give/,
  ],
  [
    'missing tensor',
    () =>
      variant((d) =>
        editHeader(d, (h) => {
          delete h['model.layers.1.self_attn.k_proj.weight'];
        }),
      ),
    /missing tensor "model\.layers\.1\.self_attn\.k_proj\.weight"/,
  ],
  [
    'wrong shape',
    () =>
      variant((d) =>
        editHeader(d, (h) => {
          const t = h['model.layers.0.self_attn.k_proj.weight'];
          t.shape = [t.shape[1], t.shape[0]];
        }),
      ),
    /"blk\.0\.attn_k" has shape \[32, 16\], the config needs \[16, 32\]/,
  ],
  [
    'unknown dtype',
    () =>
      variant((d) =>
        editHeader(d, (h) => {
          h['model.norm.weight'].dtype = 'Q9';
        }),
      ),
    /unknown dtype "Q9"/,
  ],
  [
    'unsupported dtype',
    () =>
      variant((d) =>
        editHeader(d, (h) => {
          h['model.norm.weight'].dtype = 'I64';
          h['model.norm.weight'].shape = [16];
        }),
      ),
    /dtype I64 is not supported/,
  ],
  [
    'overlapping tensors',
    () =>
      variant((d) =>
        editHeader(d, (h) => {
          h['model.norm.weight'].data_offsets = h['lm_head.weight'].data_offsets.map((x: number, i: number) => (i === 0 ? x : x));
          h['model.norm.weight'].shape = h['lm_head.weight'].shape;
        }),
      ),
    /overlap/,
  ],
  [
    'header that is not JSON',
    () =>
      variant((d) => {
        const f = join(d, 'model.safetensors');
        const b = readFileSync(f);
        b[8] = 0x21;
        writeFileSync(f, b);
      }),
    /not valid JSON/,
  ],
  [
    'config.json that is not JSON',
    () => variant((d) => writeFileSync(join(d, 'config.json'), '{"model_type": ')),
    /config\.json: not valid JSON/,
  ],
  [
    'unsupported model_type',
    () =>
      variant((d) => {
        const c = JSON.parse(readFileSync(join(d, 'config.json'), 'utf8'));
        c.model_type = 'llama';
        writeFileSync(join(d, 'config.json'), JSON.stringify(c));
      }),
    /unsupported model_type "llama"/,
  ],
  [
    'inconsistent config (heads not a multiple of kv heads)',
    () =>
      variant((d) => {
        const c = JSON.parse(readFileSync(join(d, 'config.json'), 'utf8'));
        c.num_key_value_heads = 3;
        writeFileSync(join(d, 'config.json'), JSON.stringify(c));
      }),
    /not a multiple of num_key_value_heads/,
  ],
  ['folder without weights', () => variant((d) => rmSync(join(d, 'model.safetensors'))), /no model\.safetensors/],
];

for (const [name, make, pattern] of CASES) {
  test(`bad checkpoint: ${name} -> one clear error`, async () => {
    const dir = make();
    await assert.rejects(loadModel(dir, { backend: 'typescript' }), (e: unknown) => {
      assert.ok(e instanceof Llama4Error, `expected a Llama4Error, got ${String(e)}`);
      assert.match((e as Error).message, pattern);
      return true;
    });
  });
}

test('CLI: a bad checkpoint prints one line on stderr and exits 1, no stack trace', () => {
  const dir = CASES[3]![1]();
  const r = spawnSync(process.execPath, ['--import', 'tsx', join(PROJECT_ROOT, 'src/cli/main.ts'), 'logits', '-m', dir, '--ids', '1,2'], {
    encoding: 'utf8',
    timeout: 60000,
  });
  assert.equal(r.status, 1);
  assert.equal(r.stderr.trim().split('\n').length, 1, r.stderr);
  assert.match(r.stderr, /missing tensor/);
  assert.doesNotMatch(r.stderr, /at .*\.ts:\d+/);
});
