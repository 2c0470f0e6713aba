/**
 * Safetensors reader (single file or sharded with model.safetensors.index.json) and writer.
 * Format: u64 little-endian header length N, N bytes of JSON {name: {dtype, shape, data_offsets: [begin, end]},
 * "__metadata__"?: {...}}, then the data section; offsets are relative to the data section.
 * Every header is validated against the file size before any tensor is read, and every error names file and tensor.
 * Tensors are read one at a time by offset, so loading holds each tensor once.
 */
import { closeSync, existsSync, fstatSync, openSync, readFileSync, readSync, statSync, writeSync } from 'node:fs';
import { dirname, join } from 'node:path';
import type { DType, RawTensor } from '../tensor/index.ts';
import { ModelFileError } from '../util/index.ts';

const DTYPE_MAP: Record<string, { dtype: DType; size: number }> = {
  F32: { dtype: 'f32', size: 4 },
  F16: { dtype: 'f16', size: 2 },
  BF16: { dtype: 'bf16', size: 2 },
};
/** Dtypes that exist in safetensors but that this engine does not compute with. */
const KNOWN_UNSUPPORTED = new Set(['F64', 'I64', 'I32', 'I16', 'I8', 'U8', 'BOOL', 'F8_E4M3', 'F8_E5M2', 'U16', 'U32', 'U64']);
const MAX_HEADER = 256 * 1024 * 1024;

export interface SafetensorsEntry {
  readonly name: string;
  readonly dtype: DType;
  readonly shape: readonly number[];
  /** Absolute byte range in the file. */
  readonly start: number;
  readonly end: number;
}

export interface SafetensorsHeader {
  readonly path: string;
  readonly fileSize: number;
  readonly entries: Map<string, SafetensorsEntry>;
  readonly metadata: Record<string, string>;
}

/** Reads and validates the header of one .safetensors file. */
export function readSafetensorsHeader(path: string): SafetensorsHeader {
  let fd: number;
  try {
    fd = openSync(path, 'r');
  } catch (e) {
    throw new ModelFileError(path, `cannot open (${(e as NodeJS.ErrnoException).code ?? (e as Error).message})`);
  }
  try {
    const fileSize = fstatSync(fd).size;
    if (fileSize < 8) throw new ModelFileError(path, `file is ${fileSize} bytes, too short for a safetensors header`);
    const lenBuf = Buffer.alloc(8);
    readSync(fd, lenBuf, 0, 8, 0);
    const n = lenBuf.readBigUInt64LE(0);
    if (n > BigInt(fileSize - 8))
      throw new ModelFileError(path, `header length ${n} exceeds the file size ${fileSize} (truncated or not a safetensors file)`);
    if (n > BigInt(MAX_HEADER)) throw new ModelFileError(path, `header length ${n} is implausibly large`);
    const headerLen = Number(n);
    const hb = Buffer.alloc(headerLen);
    readSync(fd, hb, 0, headerLen, 8);
    let json: unknown;
    try {
      json = JSON.parse(hb.toString('utf8'));
    } catch (e) {
      throw new ModelFileError(path, `header is not valid JSON (${(e as Error).message})`);
    }
    if (!json || typeof json !== 'object' || Array.isArray(json)) throw new ModelFileError(path, 'header is not a JSON object');
    const dataStart = 8 + headerLen;
    const dataSize = fileSize - dataStart;
    const entries = new Map<string, SafetensorsEntry>();
    let metadata: Record<string, string> = {};
    for (const [name, v] of Object.entries(json as Record<string, unknown>)) {
      if (name === '__metadata__') {
        metadata = (v && typeof v === 'object' ? v : {}) as Record<string, string>;
        continue;
      }
      entries.set(name, parseEntry(path, name, v, dataStart, dataSize));
    }
    // Ranges must not overlap.
    const sorted = [...entries.values()].sort((a, b) => a.start - b.start);
    for (let i = 1; i < sorted.length; i++) {
      const prev = sorted[i - 1]!,
        cur = sorted[i]!;
      if (cur.start < prev.end) throw new ModelFileError(path, `tensors "${prev.name}" and "${cur.name}" overlap in the data section`);
    }
    return { path, fileSize, entries, metadata };
  } finally {
    closeSync(fd);
  }
}

function parseEntry(path: string, name: string, v: unknown, dataStart: number, dataSize: number): SafetensorsEntry {
  const bad = (why: string) => new ModelFileError(path, `tensor "${name}": ${why}`);
  if (!v || typeof v !== 'object') throw bad('header entry is not an object');
  const { dtype, shape, data_offsets: offs } = v as { dtype?: unknown; shape?: unknown; data_offsets?: unknown };
  if (typeof dtype !== 'string') throw bad('missing dtype');
  const dt = DTYPE_MAP[dtype];
  if (!dt)
    throw bad(
      KNOWN_UNSUPPORTED.has(dtype) ? `dtype ${dtype} is not supported (F32, F16, BF16 are)` : `unknown dtype ${JSON.stringify(dtype)}`,
    );
  if (!Array.isArray(shape) || !shape.every((d) => Number.isSafeInteger(d) && d >= 0))
    throw bad(`shape ${JSON.stringify(shape)} is not a list of non-negative integers`);
  if (!Array.isArray(offs) || offs.length !== 2 || !offs.every((d) => Number.isSafeInteger(d) && d >= 0))
    throw bad(`data_offsets ${JSON.stringify(offs)} are not two non-negative integers`);
  const [b, e] = offs as [number, number];
  if (e < b) throw bad(`data_offsets [${b}, ${e}] end before they begin`);
  if (e > dataSize) throw bad(`data_offsets [${b}, ${e}] run past the end of the data section (${dataSize} bytes; file truncated?)`);
  let numel = 1;
  for (const d of shape as number[]) numel *= d;
  if (!Number.isSafeInteger(numel) || numel * dt.size !== e - b)
    throw bad(`shape [${shape.join(', ')}] × ${dtype} needs ${numel * dt.size} bytes but data_offsets give ${e - b}`);
  return { name, dtype: dt.dtype, shape: shape as number[], start: dataStart + b, end: dataStart + e };
}

/** Reads one tensor's bytes by offset. */
export function readSafetensorsTensor(header: SafetensorsHeader, name: string): RawTensor {
  const e = header.entries.get(name);
  if (!e) throw new ModelFileError(header.path, `no tensor named "${name}"`);
  const bytes = new Uint8Array(e.end - e.start);
  const fd = openSync(header.path, 'r');
  try {
    let done = 0;
    while (done < bytes.length) {
      const n = readSync(fd, bytes, done, bytes.length - done, e.start + done);
      if (n === 0) throw new ModelFileError(header.path, `tensor "${name}": file ended early`);
      done += n;
    }
  } finally {
    closeSync(fd);
  }
  return { name, dtype: e.dtype, shape: e.shape, bytes };
}

/** A checkpoint's tensors across one or more files, readable one at a time. */
export interface TensorSource {
  /** Shape and type of every tensor, without reading data. */
  readonly infos: Map<string, { dtype: DType; shape: readonly number[]; file: string }>;
  read(name: string): RawTensor;
}

/**
 * Opens a model folder's safetensors: `model.safetensors.index.json` (sharded) or the *.safetensors files in it,
 * or one .safetensors file path.
 */
export interface OpenSafetensorsOptions {
  /**
   * Maps a file and returns a function giving views of its bytes (the composition root passes the native core's
   * mmap here); tensors are then returned in place instead of read into memory. Null: read as usual.
   */
  readonly mapFile?: (file: string) => ((offset: number, length: number) => Uint8Array) | null;
}

export function openSafetensors(path: string, opts: OpenSafetensorsOptions = {}): TensorSource {
  const headers: SafetensorsHeader[] = [];
  if (statSync(path).isDirectory()) {
    const index = join(path, 'model.safetensors.index.json');
    if (existsSync(index)) {
      let map: Record<string, string>;
      try {
        map = (JSON.parse(readFileSync(index, 'utf8')) as { weight_map: Record<string, string> }).weight_map;
      } catch (e) {
        throw new ModelFileError(index, `not valid JSON (${(e as Error).message})`);
      }
      if (!map || typeof map !== 'object') throw new ModelFileError(index, 'missing "weight_map"');
      const files = [...new Set(Object.values(map))].sort();
      for (const f of files) headers.push(readSafetensorsHeader(join(path, f)));
      for (const [name, f] of Object.entries(map)) {
        const h = headers.find((x) => x.path === join(path, f))!;
        if (!h.entries.has(name))
          throw new ModelFileError(h.path, `tensor "${name}" is listed in model.safetensors.index.json but not in this shard`);
      }
    } else {
      const single = join(path, 'model.safetensors');
      if (!existsSync(single)) throw new ModelFileError(path, 'no model.safetensors or model.safetensors.index.json in this folder');
      headers.push(readSafetensorsHeader(single));
    }
  } else {
    headers.push(readSafetensorsHeader(path));
  }
  const infos = new Map<string, { dtype: DType; shape: readonly number[]; file: string }>();
  const owner = new Map<string, SafetensorsHeader>();
  for (const h of headers) {
    for (const e of h.entries.values()) {
      if (owner.has(e.name)) throw new ModelFileError(h.path, `tensor "${e.name}" also appears in ${owner.get(e.name)!.path}`);
      owner.set(e.name, h);
      infos.set(e.name, { dtype: e.dtype, shape: e.shape, file: h.path });
    }
  }
  const views = new Map<string, ((offset: number, length: number) => Uint8Array) | null>();
  return {
    infos,
    read(name) {
      const h = owner.get(name);
      if (!h) throw new ModelFileError(headers[0]?.path ? dirname(headers[0].path) : path, `missing tensor "${name}"`);
      if (opts.mapFile && !views.has(h.path)) views.set(h.path, opts.mapFile(h.path));
      const view = views.get(h.path);
      if (!view) return readSafetensorsTensor(h, name);
      const e = h.entries.get(name)!; // bounds were validated against the file size with the header
      return { name, dtype: e.dtype, shape: e.shape, bytes: view(e.start, e.end - e.start) };
    },
  };
}

/** Reads every tensor of a file or folder into memory. */
export function readSafetensors(path: string): Map<string, RawTensor> {
  const src = openSafetensors(path);
  const out = new Map<string, RawTensor>();
  for (const name of src.infos.keys()) out.set(name, src.read(name));
  return out;
}

const REVERSE_DTYPE: Record<string, string> = { f32: 'F32', f16: 'F16', bf16: 'BF16' };

/** Writes tensors (f32/f16/bf16) as one safetensors file, streaming tensor by tensor. */
export function writeSafetensors(path: string, tensors: Iterable<RawTensor>, metadata: Record<string, string> = {}): void {
  const list = [...tensors];
  const header: Record<string, unknown> = {};
  if (Object.keys(metadata).length) header['__metadata__'] = metadata;
  let off = 0;
  for (const t of list) {
    const dt = REVERSE_DTYPE[t.dtype];
    if (!dt) throw new Error(`safetensors cannot store ${t.dtype} (tensor ${t.name})`);
    header[t.name] = { dtype: dt, shape: t.shape, data_offsets: [off, off + t.bytes.length] };
    off += t.bytes.length;
  }
  const raw = Buffer.from(JSON.stringify(header), 'utf8');
  // Pad the header with spaces so the data section starts 8-byte aligned (aligned float views when read back).
  const hb = Buffer.concat([raw, Buffer.alloc((8 - ((raw.length + 8) % 8)) % 8, 0x20)]);
  const len = Buffer.alloc(8);
  len.writeBigUInt64LE(BigInt(hb.length));
  const fd = openSync(path, 'w');
  try {
    writeSync(fd, len);
    writeSync(fd, hb);
    for (const t of list) writeSync(fd, t.bytes);
  } finally {
    closeSync(fd);
  }
}
