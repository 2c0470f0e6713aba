/**
 * Kernel microbenchmarks of the native core against this machine's measured memory bandwidth (decode is
 * memory-bound: every weight byte is read once per token, so GB/s of weights read / DRAM read GB/s is the figure
 * of merit). Usage: node --import tsx bench/kernels.ts [--threads 1,2] [--types q4_0,q8_0] [--mib 512] [--json]
 * "cold" cycles through enough distinct copies of the matrix to read --mib MiB per pass (DRAM-streaming, the real
 * decode situation); best of 5 passes (the machine is shared: best-of filters other jobs' interference).
 */
import { parseArgs } from 'node:util';
import type { DType } from '../src/tensor/index.ts';
import { DTYPES, byteSize } from '../src/tensor/index.ts';
import { tryCreateNativeBackend, type NativeBackend } from '../src/kernels/native/index.ts';

const { values: opt } = parseArgs({
  options: {
    threads: { type: 'string', default: '1,2' },
    types: { type: 'string', default: 'f32,f16,bf16,q8_0,q4_0,q4_k,q5_k,q6_k' },
    mib: { type: 'string', default: '512' },
    n: { type: 'string', default: '4096' },
    k: { type: 'string', default: '4096' },
    isa: { type: 'string' },
    json: { type: 'boolean', default: false },
  },
});
const threadList = opt.threads!.split(',').map(Number);
const types = opt.types!.split(',') as DType[];
const passBytes = Number(opt.mib) * 2 ** 20;
const N = Number(opt.n),
  K = Number(opt.k);

function best(passes: number, fn: () => void): number {
  let b = Infinity;
  for (let i = 0; i < passes; i++) {
    const t0 = process.hrtime.bigint();
    fn();
    b = Math.min(b, Number(process.hrtime.bigint() - t0) / 1e9);
  }
  return b;
}
// Random bytes with sane half-precision scales where the format has them (values are irrelevant to speed).
function randomBytes(dtype: DType, n: number): Uint8Array {
  const b = new Uint8Array(byteSize(dtype, n));
  for (let i = 0; i < b.length; i += 4096) b[i] = i & 255; // touch every page
  if (dtype === 'f32') new Float32Array(b.buffer).fill(0.01);
  return b;
}

interface Row {
  what: string;
  threads: number;
  gbps?: number;
  pctBw?: number;
  gflops?: number;
  us?: number;
}
const rows: Row[] = [];
const bw: Record<number, number> = {};

for (const threads of threadList) {
  const made = tryCreateNativeBackend({ threads, ...(opt.isa ? { isa: opt.isa as 'avx2' } : {}) });
  if (!made.backend) {
    console.error(`native backend unavailable: ${made.reason}`);
    process.exit(1);
  }
  const be: NativeBackend = made.backend;
  // Memory read bandwidth, measured on the spot with the same pool.
  const probe = new Uint8Array(passBytes).fill(1);
  const tb = best(5, () => be.streamRead(probe));
  bw[threads] = passBytes / tb / 1e9;
  rows.push({ what: `read bandwidth (${opt.mib} MiB)`, threads, gbps: bw[threads] });

  for (const dtype of types) {
    const bytesPer = byteSize(dtype, N * K);
    const copies = Math.max(1, Math.ceil(passBytes / bytesPer));
    const ws = Array.from({ length: copies }, () => be.weight({ name: 'w', dtype, shape: [N, K], bytes: randomBytes(dtype, N * K) }));
    const x = new Float32Array(K).fill(0.5),
      out = new Float32Array(N);
    const t = best(5, () => {
      for (const w of ws) be.matmul(out, x, w, 1);
    });
    const gbps = (bytesPer * copies) / t / 1e9;
    rows.push({
      what: `matvec ${dtype} ${N}x${K} cold`,
      threads,
      gbps,
      pctBw: (100 * gbps) / bw[threads]!,
      gflops: (2 * N * K * copies) / t / 1e9,
    });
    const hot = ws[0]!;
    const th = best(5, () => {
      for (let i = 0; i < 8; i++) be.matmul(out, x, hot, 1);
    });
    rows.push({ what: `matvec ${dtype} ${N}x${K} hot`, threads, gflops: (2 * N * K * 8) / th / 1e9 });
    if (DTYPES[dtype].blockSize > 1 || dtype === 'f32') {
      const T = 64,
        X = new Float32Array(T * K).fill(0.25),
        O = new Float32Array(T * N);
      const tg = best(3, () => be.matmul(O, X, hot, T));
      rows.push({ what: `gemm ${dtype} ${N}x${K} x T=${T}`, threads, gflops: (2 * N * K * T) / tg / 1e9 });
    }
  }
  // Dispatch overhead: a tiny matvec is pure call + hand-off cost.
  const tiny = be.weight({ name: 't', dtype: 'f32', shape: [16, 256], bytes: randomBytes('f32', 16 * 256) });
  const tx = new Float32Array(256),
    to = new Float32Array(16);
  const tt = best(5, () => {
    for (let i = 0; i < 10000; i++) be.matmul(to, tx, tiny, 1);
  });
  rows.push({ what: 'tiny matvec 16x256 f32 (dispatch)', threads, us: (tt / 10000) * 1e6 });
  be.dispose();
}

if (opt.json) console.log(JSON.stringify({ isa: tryCreateNativeBackend({ threads: 1 }).backend?.isa, rows }, null, 1));
else {
  console.log(
    `native kernels (${tryCreateNativeBackend({ threads: 1 }).backend?.isa}); best of several passes; cold = ${opt.mib} MiB of distinct weights per pass`,
  );
  console.log('what'.padEnd(40), 'thr', 'GB/s'.padStart(7), '%BW'.padStart(6), 'GFLOP/s'.padStart(8), 'µs'.padStart(7));
  for (const r of rows)
    console.log(
      r.what.padEnd(40),
      String(r.threads).padStart(3),
      (r.gbps?.toFixed(1) ?? '').padStart(7),
      (r.pctBw?.toFixed(0) ?? '').padStart(6),
      (r.gflops?.toFixed(1) ?? '').padStart(8),
      (r.us?.toFixed(2) ?? '').padStart(7),
    );
}
