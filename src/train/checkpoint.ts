/**
 * Checkpoints in the Hugging Face safetensors text layout (model_type llama4_text): `model.safetensors` +
 * `config.json`, loadable by the engine and by transformers. Experts are converted between the trainer's
 * Linear-style stacks and HF's `x @ W` stacks: gate_up_proj [E, H, 2I] (gate = first I columns), down_proj [E, I, H].
 * Optimizer moments go to `optimizer.safetensors` and the step/RNG to `trainer_state.json` for exact resume.
 */
import { createHash } from 'node:crypto';
import {
  closeSync,
  existsSync,
  fsyncSync,
  lstatSync,
  mkdirSync,
  openSync,
  readdirSync,
  readFileSync,
  renameSync,
  rmSync,
  symlinkSync,
  writeSync,
} from 'node:fs';
import { dirname, join, relative, resolve } from 'node:path';
import { ModelFileError } from '../util/errors.ts';
import { parseTrainConfig, toHfConfig } from './config.ts';
import { transpose } from './kernels.ts';
import { TrainModel } from './model.ts';
import type { AdamW } from './optim.ts';

export interface StTensor {
  dtype: 'F32';
  shape: number[];
  data: Float32Array;
}

/** Serialises f32 tensors as safetensors (8-byte header length, JSON header, 8-aligned data). */
export function encodeSafetensors(tensors: Map<string, StTensor>, metadata: Record<string, string> = {}): Uint8Array {
  const header: Record<string, unknown> = { __metadata__: { format: 'pt', ...metadata } };
  let off = 0;
  const names = [...tensors.keys()].sort();
  for (const n of names) {
    const t = tensors.get(n)!;
    header[n] = { dtype: 'F32', shape: t.shape, data_offsets: [off, off + t.data.byteLength] };
    off += t.data.byteLength;
  }
  let hs = JSON.stringify(header);
  while ((8 + Buffer.byteLength(hs)) % 8 !== 0) hs += ' ';
  const hb = Buffer.from(hs, 'utf8');
  const out = new Uint8Array(8 + hb.length + off);
  new DataView(out.buffer).setBigUint64(0, BigInt(hb.length), true);
  out.set(hb, 8);
  let p = 8 + hb.length;
  for (const n of names) {
    const d = tensors.get(n)!.data;
    out.set(new Uint8Array(d.buffer, d.byteOffset, d.byteLength), p);
    p += d.byteLength;
  }
  return out;
}

function bf16ToF32(lo: number, hi: number): number {
  const b = new DataView(new ArrayBuffer(4));
  b.setUint16(2, hi | 0, true);
  b.setUint16(0, lo, true);
  return b.getFloat32(0, true);
}

/** Reads a safetensors file into f32 arrays (F32, F16 and BF16 accepted). Every structural error is a ModelFileError. */
export function decodeSafetensors(file: string, bytes: Uint8Array): Map<string, StTensor> {
  if (bytes.length < 8) throw new ModelFileError(file, 'too short for a safetensors header');
  const dv = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const hl = Number(dv.getBigUint64(0, true));
  if (hl > bytes.length - 8 || hl > 100_000_000) throw new ModelFileError(file, `header length ${hl} exceeds the file`);
  let header: Record<string, { dtype: string; shape: number[]; data_offsets: [number, number] }>;
  try {
    header = JSON.parse(Buffer.from(bytes.subarray(8, 8 + hl)).toString('utf8'));
  } catch (e) {
    throw new ModelFileError(file, `bad JSON header (${(e as Error).message})`);
  }
  const base = 8 + hl;
  const out = new Map<string, StTensor>();
  for (const [name, info] of Object.entries(header)) {
    if (name === '__metadata__') continue;
    const [a, b] = info.data_offsets ?? [];
    const n = (info.shape ?? []).reduce((x, y) => x * y, 1);
    const size = info.dtype === 'F32' ? 4 : info.dtype === 'F16' || info.dtype === 'BF16' ? 2 : 0;
    if (!size) throw new ModelFileError(file, `${name}: unsupported dtype ${info.dtype}`);
    if (typeof a !== 'number' || typeof b !== 'number' || b - a !== n * size || base + b > bytes.length)
      throw new ModelFileError(
        file,
        `${name}: data_offsets ${JSON.stringify(info.data_offsets)} do not match shape ${JSON.stringify(info.shape)}`,
      );
    const data = new Float32Array(n);
    const src = bytes.subarray(base + a, base + b);
    const sv = new DataView(src.buffer, src.byteOffset, src.byteLength);
    for (let i = 0; i < n; i++) {
      if (size === 4) data[i] = sv.getFloat32(i * 4, true);
      else if (info.dtype === 'BF16') data[i] = bf16ToF32(0, sv.getUint16(i * 2, true));
      else data[i] = f16ToF32(sv.getUint16(i * 2, true));
    }
    out.set(name, { dtype: 'F32', shape: info.shape, data });
  }
  return out;
}

function f16ToF32(h: number): number {
  const s = h & 0x8000 ? -1 : 1,
    e = (h >> 10) & 0x1f,
    m = h & 0x3ff;
  if (e === 0) return s * m * 2 ** -24;
  if (e === 31) return m ? NaN : s * Infinity;
  return s * (1 + m / 1024) * 2 ** (e - 15);
}

/** Is this internal param an expert stack needing the layout conversion? */
function expertKind(name: string): 'gate_up' | 'down' | null {
  if (name.endsWith('.experts.gate_up_proj')) return 'gate_up';
  if (name.endsWith('.experts.down_proj')) return 'down';
  return null;
}

/** The model's weights under HF names and layouts. */
export function modelTensors(model: TrainModel): Map<string, StTensor> {
  const out = new Map<string, StTensor>();
  for (const p of model.params) {
    const kind = expertKind(p.name);
    if (!kind) {
      out.set(p.name, { dtype: 'F32', shape: [...p.shape], data: p.data });
      continue;
    }
    // internal [E, R, C] (Linear-style) → HF [E, C, R] (x @ W).
    const [E, R, C] = p.shape as [number, number, number];
    const data = new Float32Array(p.data.length);
    for (let e = 0; e < E; e++) transpose(data.subarray(e * R * C), p.data, R, C, e * R * C);
    out.set(p.name, { dtype: 'F32', shape: [E, C, R], data });
  }
  return out;
}

/** Copies HF-layout tensors into the model (shapes checked; every tensor must be present). */
export function loadModelTensors(model: TrainModel, tensors: Map<string, StTensor>, file = 'model.safetensors'): void {
  for (const p of model.params) {
    const t = tensors.get(p.name) ?? tensors.get(`language_model.${p.name}`);
    if (!t) throw new ModelFileError(file, `missing tensor ${p.name}`);
    const kind = expertKind(p.name);
    const want = kind ? [p.shape[0]!, p.shape[2]!, p.shape[1]!] : [...p.shape];
    if (t.shape.length !== want.length || t.shape.some((x, i) => x !== want[i]))
      throw new ModelFileError(file, `${p.name}: shape ${JSON.stringify(t.shape)}, expected ${JSON.stringify(want)}`);
    if (!kind) {
      p.data.set(t.data);
      continue;
    }
    const [E, R, C] = p.shape as [number, number, number];
    for (let e = 0; e < E; e++) transpose(p.data.subarray(e * R * C), t.data, C, R, e * R * C);
  }
}

/** Loads config.json + model.safetensors from a directory into a fresh TrainModel. */
export function loadCheckpoint(dir: string): TrainModel {
  const cfgPath = join(dir, 'config.json');
  if (!existsSync(cfgPath)) throw new ModelFileError(cfgPath, 'not found');
  let raw: unknown;
  try {
    raw = JSON.parse(readFileSync(cfgPath, 'utf8'));
  } catch (e) {
    throw new ModelFileError(cfgPath, (e as Error).message);
  }
  const model = new TrainModel(parseTrainConfig(raw));
  const stPath = join(dir, 'model.safetensors');
  if (!existsSync(stPath)) throw new ModelFileError(stPath, 'not found');
  loadModelTensors(model, decodeSafetensors(stPath, readFileSync(stPath)), stPath);
  return model;
}

export interface TrainerState {
  step: number;
  tokens: number;
  rng: number;
  [k: string]: unknown;
}

/**
 * Writes a checkpoint so that a kill at any moment leaves the previous or the new one whole:
 *   1. every file goes into a fresh folder `<dir>.ckpt/step-<n>-<time>.partial/`, fsynced, with `manifest.json`
 *      (sha256 and size of each file) written last;
 *   2. the folder is renamed to drop `.partial` (one rename: complete or absent);
 *   3. `<dir>` — a symlink to the current folder — is replaced by renaming a new symlink over it (one atomic rename).
 * Readers open `<dir>/model.safetensors` through the link as before. Older folders are pruned afterwards (the
 * previous one is kept). A `<dir>` that is a real folder (checkpoints from before this layout) is moved into the
 * store first; `resolveCheckpoint` finds the newest complete folder if a kill lands between that move and the link.
 */
export function saveCheckpoint(
  dir: string,
  model: TrainModel,
  opt?: AdamW,
  state?: TrainerState,
  extraConfig: Record<string, unknown> = {},
): void {
  const store = `${dir}.ckpt`;
  mkdirSync(store, { recursive: true });
  const name = `step-${String(state?.step ?? 0).padStart(8, '0')}-${Date.now().toString(36)}${process.pid.toString(36)}`;
  const tmp = join(store, `${name}.partial`);
  mkdirSync(tmp, { recursive: true });
  const manifest: Record<string, { sha256: string; bytes: number }> = {};
  const put = (file: string, data: Uint8Array | string): void => {
    const bytes = typeof data === 'string' ? Buffer.from(data, 'utf8') : data;
    const fd = openSync(join(tmp, file), 'w');
    try {
      for (let off = 0; off < bytes.length; ) off += writeSync(fd, bytes, off, bytes.length - off);
      fsyncSync(fd);
    } finally {
      closeSync(fd);
    }
    if (file !== MANIFEST) manifest[file] = { sha256: createHash('sha256').update(bytes).digest('hex'), bytes: bytes.length };
  };
  put('config.json', JSON.stringify({ ...toHfConfig(model.cfg), ...extraConfig }, null, 2) + '\n');
  put('model.safetensors', encodeSafetensors(modelTensors(model)));
  if (opt && state) {
    const t = new Map<string, StTensor>();
    opt.params.forEach((p, i) => {
      t.set(`m.${p.name}`, { dtype: 'F32', shape: [p.data.length], data: opt.m[i]! });
      t.set(`v.${p.name}`, { dtype: 'F32', shape: [p.data.length], data: opt.v[i]! });
    });
    put('optimizer.safetensors', encodeSafetensors(t));
    put('trainer_state.json', JSON.stringify({ ...state, optStep: opt.step }, null, 2) + '\n');
  }
  put(MANIFEST, JSON.stringify({ step: state?.step ?? null, files: manifest }, null, 2) + '\n');
  const final = join(store, name);
  renameSync(tmp, final);
  syncDir(store);
  // An old-layout checkpoint (a real folder) moves into the store; then the link is swapped in one rename.
  const st = lstatOrNull(dir);
  if (st && !st.isSymbolicLink()) renameSync(dir, join(store, `legacy-${Date.now().toString(36)}`));
  const link = `${dir}.link-${process.pid}`;
  rmSync(link, { force: true });
  symlinkSync(relative(dirname(resolve(dir)), resolve(final)), link);
  renameSync(link, dir);
  syncDir(dirname(resolve(dir)));
  // Keep the new folder and the one before it; partial folders of killed saves go too.
  const keep = new Set([name]);
  const done = readdirSync(store)
    .filter((n) => n.startsWith('step-') && !n.endsWith('.partial'))
    .sort(byStep);
  if (done.length > 1) keep.add(done.filter((n) => n !== name).pop()!);
  for (const n of readdirSync(store))
    if (!keep.has(n) && (n.startsWith('step-') || n.startsWith('legacy-'))) rmSync(join(store, n), { recursive: true, force: true });
}

const MANIFEST = 'manifest.json';

function byStep(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}

function lstatOrNull(p: string): ReturnType<typeof lstatSync> | null {
  try {
    return lstatSync(p);
  } catch {
    return null;
  }
}

function syncDir(d: string): void {
  try {
    const fd = openSync(d, 'r');
    try {
      fsyncSync(fd);
    } finally {
      closeSync(fd);
    }
  } catch {
    /* not supported on every filesystem */
  }
}

/**
 * The folder to resume from: `dir` when it exists (a link or an old-layout folder), else the newest complete
 * folder of `<dir>.ckpt` (a kill between moving an old folder into the store and linking), else null.
 */
export function resolveCheckpoint(dir: string): string | null {
  if (existsSync(dir)) return dir;
  const store = `${dir}.ckpt`;
  if (!existsSync(store)) return null;
  const done = readdirSync(store)
    .filter((n) => (n.startsWith('step-') || n.startsWith('legacy-')) && !n.endsWith('.partial'))
    .sort(byStep);
  return done.length ? join(store, done[done.length - 1]!) : null;
}

/** Checks every file a manifest lists (size and sha256); throws ModelFileError naming the first mismatch. No manifest: old layout, nothing to check. */
export function verifyCheckpoint(dir: string): void {
  const mp = join(dir, MANIFEST);
  if (!existsSync(mp)) return;
  let m: { files: Record<string, { sha256: string; bytes: number }> };
  try {
    m = JSON.parse(readFileSync(mp, 'utf8'));
  } catch (e) {
    throw new ModelFileError(mp, `unreadable manifest (${(e as Error).message})`);
  }
  for (const [file, want] of Object.entries(m.files)) {
    const p = join(dir, file);
    if (!existsSync(p)) throw new ModelFileError(p, 'listed in the checkpoint manifest but missing');
    const bytes = readFileSync(p);
    if (bytes.length !== want.bytes || createHash('sha256').update(bytes).digest('hex') !== want.sha256)
      throw new ModelFileError(p, 'does not match the checkpoint manifest (size or sha256): the checkpoint is damaged');
  }
}

/** Restores optimizer moments and returns the trainer state, or null when the directory has none. */
export function loadTrainerState(dir: string, opt: AdamW): TrainerState | null {
  const sp = join(dir, 'trainer_state.json'),
    op = join(dir, 'optimizer.safetensors');
  if (!existsSync(sp) || !existsSync(op)) return null;
  const state = JSON.parse(readFileSync(sp, 'utf8')) as TrainerState & { optStep: number };
  const t = decodeSafetensors(op, readFileSync(op));
  opt.params.forEach((p, i) => {
    const m = t.get(`m.${p.name}`),
      v = t.get(`v.${p.name}`);
    if (!m || !v || m.data.length !== p.data.length) throw new ModelFileError(op, `optimizer state for ${p.name} missing or wrong size`);
    opt.m[i]!.set(m.data);
    opt.v[i]!.set(v.data);
  });
  opt.step = state.optStep;
  return state;
}
